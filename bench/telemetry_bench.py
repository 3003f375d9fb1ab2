"""Telemetry's cost: per bundle job, and over a 200-bundle backfill.

    python bench/telemetry_bench.py               # all figures (~2 min on 2 cores)
    python bench/telemetry_bench.py --bundles 20  # quicker, smaller backfill

Prints, measured in this run:
  T1  per-job cost of what every bundle job does for telemetry (import sheetfill.telemetry.stages,
      time the stages, build the provenance.json "job" record), the same with telemetry off or on;
      and whether any opentelemetry module gets imported with telemetry off          goal: 0 ms, none
  T2  per-job cost of the alternative: the job starting the OpenTelemetry SDK and exporting its own
      7 spans over OTLP/HTTP (what the job record route avoids)                (for the choice)
  T3  the gate's export of a 200-bundle run (metrics + 1,401 spans) to a local receiver, and the
      wall of the same backfill with telemetry off and on                         goal: on <= 5 % of wall
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests"))

from backfill_bench import archives, fresh  # noqa: E402
from otlp_receiver import Receiver  # noqa: E402

CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SHEETFILL_", "TRACEPARENT"))}
JOB_IMPORT = """
import os, sys, time
import sheetfill  # the job entry has imported these already
t = time.perf_counter()
import sheetfill.telemetry.stages
print((time.perf_counter() - t) * 1000, sum(m.startswith("opentelemetry") for m in sys.modules))
"""
JOB_RECORD = """
import time
from sheetfill.telemetry.stages import StageClock
t = time.perf_counter()
for _ in range(1000):
    clock = StageClock()
    for name in ("restore", "write", "validate"):
        with clock.stage(name):
            pass
    clock.sequence(time.time(), {"read": 0.1, "normalise": 0.1, "resolve": 0.1})
    clock.record()
print((time.perf_counter() - t) * 1000)  # ms per 1000 jobs = us per job
"""
SPANS_IN_JOB = """
import time
t = time.perf_counter()
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
provider = TracerProvider(shutdown_on_exit=False)
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
tracer = provider.get_tracer("bench")
with tracer.start_as_current_span("sheetfill.bundle"):
    for name in ("restore", "read", "normalise", "resolve", "write", "validate"):
        tracer.start_span(name).end()
print((time.perf_counter() - t) * 1000)
"""


def python_ms(code: str, env: dict, runs: int, *flags: str) -> list[list[float]]:
    """Each run's printed figures, from a fresh Python (`-S`: as the job clients start)."""
    env = {**env, "PYTHONPATH": str(REPO)}
    out = []
    for _ in range(runs):
        command = [sys.executable, *flags, "-c", code]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        out.append([float(x) for x in done.stdout.split()])
    return out


def t1_t2(runs: int) -> None:
    imports = python_ms(JOB_IMPORT, CLEAN_ENV, runs, "-S")
    record = python_ms(JOB_RECORD, CLEAN_ENV, 1, "-S")[0][0]
    print(f"T1  per bundle job, telemetry off or on alike (the job never knows): clock + job record {record:.1f} us;")
    fastest, median = min(r[0] for r in imports), statistics.median(r[0] for r in imports)
    print(f"    import of sheetfill.telemetry.stages: {fastest:.2f} ms fastest, {median:.2f} ms median of {runs} fresh")
    print("    processes; paid once per worker process (preloaded) and once per in-process (cluster) job;")
    print(f"    opentelemetry modules imported by a job: {max(int(r[1]) for r in imports)}")
    with Receiver() as receiver:
        env = {**CLEAN_ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        spans = python_ms(SPANS_IN_JOB, env, runs)  # with site: the SDK lives in site-packages
    alternative = statistics.median(r[0] for r in spans)
    print(f"T2  per-job SDK start + own spans export (the alternative): median {alternative:.0f} ms")


def backfill(root: Path, restore: Path, endpoint: str | None) -> tuple[float, str]:
    env = dict(CLEAN_ENV)
    if endpoint:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    command = [sys.executable, "-m", "snakemake", "--cores", "2", "--config", f"archive_root={root}"]
    command += [f"restore_root={restore}", "since=2020-01-01"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"snakemake failed:\n{done.stderr[-3000:]}")
    return wall, done.stderr


def gate_export(restore: Path, endpoint: str) -> float:
    """report_from_gate over the run's bundles, in a fresh process as the gate runs it."""
    code = f"""
import json, os, sys, time
from pathlib import Path
t = time.perf_counter()
from sheetfill.telemetry import wanted
from sheetfill.telemetry.context import prepare_run
from sheetfill.telemetry.outcomes import report_from_gate
folders = sorted(p for p in Path({str(restore)!r}, "outputs").iterdir() if (p / "bundle.json").exists())
run_id = json.loads((folders[0] / "provenance.json").read_text())["job"]["run_id"]
os.environ["SHEETFILL_RUN_ID"] = run_id
prepare_run(wanted(), kind="backfill", profile="aviation", restore_root={str(restore)!r})
report_from_gate(folders, True)
print((time.perf_counter() - t) * 1000)
"""
    env = {**CLEAN_ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1]) / 1000


def t3(bundles: int) -> None:
    root = archives("default", bundles, 1.0)
    off_restore, on_restore = fresh("telemetry-off"), fresh("telemetry-on")
    off_wall, _ = backfill(root, off_restore, None)
    with Receiver() as receiver:
        on_wall, stderr = backfill(root, on_restore, receiver.endpoint)
        shutil.rmtree(off_restore)
        off_again, _ = backfill(root, fresh("telemetry-off"), None)  # off, on, off: the order effect averaged out
        off_wall = (off_wall + off_again) / 2
        spans = len(receiver.spans())
        alone = gate_export(on_restore, receiver.endpoint)
    assert "metrics exported, traces exported" in stderr, stderr[-2000:]
    print(f"T3  {bundles}-bundle backfill wall: off {off_wall:.1f} s, on {on_wall:.1f} s ({spans} spans exported)")
    print(f"    the gate's export alone: {alone:.2f} s = {100 * alone / off_wall:.1f} % of the off wall (goal <= 5 %)")
    print(f"    wall on / off: {on_wall / off_wall:.3f} (two runs on a shared machine: noise of a few %)")
    for folder in (off_restore, on_restore):
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundles", type=int, default=200)
    parser.add_argument("--runs", type=int, default=15, help="fresh processes for T1/T2")
    args = parser.parse_args()
    t1_t2(args.runs)
    t3(args.bundles)


if __name__ == "__main__":
    main()
