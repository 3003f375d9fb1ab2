"""What pandera would add to every bundle job that starts a fresh Python (SLURM jobs, `worker: off`).

    python bench/validation_import_bench.py

Each import set is timed in fresh interpreters, best of 5; the difference is pandera's own cost,
printed in seconds and as a share of a 1 s per-job budget.
"""

from __future__ import annotations

import subprocess
import sys
import time

RUNS = 5
BUDGET_S = 1.0
IMPORTS = {
    "pandas": "import pandas",
    "pandas + pandera": "import pandas, pandera",
    "pandas + pandera.pandas": "import pandas, pandera.pandas",
}


def best_import_time(statement: str) -> float:
    """Best wall time of a fresh interpreter running the statement, minus an empty interpreter's."""

    def run(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        return time.perf_counter() - started

    empty = min(run("pass") for _ in range(RUNS))
    return min(run(statement) for _ in range(RUNS)) - empty


def main() -> None:
    times = {}
    for name, statement in IMPORTS.items():
        try:
            times[name] = best_import_time(statement)
        except subprocess.CalledProcessError:
            print(f"{name:<26} not importable here")
            continue
        print(f"{name:<26} {times[name]:.3f} s")
    base = times.get("pandas")
    for name, seconds in times.items():
        if name != "pandas" and base is not None:
            extra = seconds - base
            print(f"{name} adds {extra:.3f} s per job = {extra / BUDGET_S:.0%} of a {BUDGET_S:g} s job budget")


if __name__ == "__main__":
    main()
