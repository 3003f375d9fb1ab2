"""Backfill at scale: Snakemake's cost over the same library calls in one process per core.

    python bench/backfill_bench.py            # all figures (~5 min on 2 cores)
    python bench/backfill_bench.py --only P5  # one figure

Prints each figure as a ratio measured in this run, with its inputs:
  P3  wall(snakemake --cores 2, 200 default bundles) / wall(in-process floor, 2 processes)   goal <= 1.5
  P4  wall of a no-op re-run: the same backfill window again, 1,000 finished bundles        goal <= 1 s
  P5  snakemake -n over 10,000 bundles: wall and peak RSS                                  goal <= 8 s, 400 MB
  P6  wall(--cores 1) / wall(--cores 2) on the P3 workload                                  goal >= 1.8
Generated archives are cached under $SHEETFILL_BENCH_DIR (default /tmp/sheetfill-bench).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BENCH = Path(os.environ.get("SHEETFILL_BENCH_DIR", "/tmp/sheetfill-bench"))
START = dt.date(2020, 1, 1)
PATTERN = "{date}/hotpass-inputs-{version}.zip"


def archives(name: str, bundles: int, scale: float) -> Path:
    """Generated once and cached: `bundles` archives (2 versions a day) at `scale`."""
    from sheetfill.sample import generate_archives

    root = BENCH / f"{name}-{bundles}-{scale}"
    if not (root / ".complete").exists():
        shutil.rmtree(root, ignore_errors=True)
        generate_archives(
            root, start=START, days=bundles // 2, versions=("v1", "v2"), pattern=PATTERN, scale=scale, seed=1
        )
        (root / ".complete").touch()
    return root


def snakemake(root: Path, restore: Path, *args: str, config: tuple[str, ...] = ()) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one snakemake run from the repository."""
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--cores",
        "2",
        *args,
        "--quiet",
        "--config",
        f"archive_root={root}",
        f"restore_root={restore}",
        *config,
    ]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"snakemake failed ({' '.join(command)}):\n{done.stderr[-3000:]}")
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def _process_share(jobs: list[tuple[str, str, str, str]]) -> int:
    from sheetfill.bundle.process import BundleJob, process_bundle
    from sheetfill.runs.config import load_settings

    os.environ["SHEETFILL_PROCESSES"] = "1"  # one core per bundle, as the workflow's jobs get
    limits = load_settings({"archive_root": jobs[0][0]}, check_paths=False).limits
    for _, archive, bundle, restore in jobs:
        restore_root = Path(restore)
        process_bundle(
            BundleJob(
                archive=Path(archive),
                bundle=bundle,
                restored=restore_root / bundle,
                outputs=restore_root / "outputs" / bundle,
                profile=str(REPO / "config/profiles/aviation.yaml"),
                limits=limits,
                window={},
                history=restore_root / ".sheetfill" / "history",
            )
        )
    return len(jobs)


def in_process_floor(root: Path, restore: Path, cores: int) -> float:
    """The same library calls for the same bundles, one Python process per core, then the run-level
    steps the workflow also ends with: data docs for the window and the gate's summary."""
    from sheetfill.datadocs import build_data_docs
    from sheetfill.runs.close import close_run
    from sheetfill.runs.discovery import scan

    found = scan(root, PATTERN)
    jobs = [(str(root), str(a.path), a.bundle, str(restore)) for a in found]
    shares = [jobs[i::cores] for i in range(cores)]
    started = time.perf_counter()
    with ProcessPoolExecutor(cores) as pool:
        assert sum(pool.map(_process_share, shares)) == len(jobs)
    outputs = [restore / "outputs" / bundle for _, _, bundle, _ in jobs]
    window = {"backfill": True}
    build_data_docs(outputs, restore / "data-docs", window)
    close_run(outputs, window, restore / "runs" / "floor.json", restore / ".sheetfill" / "cursor.json")
    return time.perf_counter() - started


def fresh(name: str) -> Path:
    path = BENCH / "runs" / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def p3_p6(bundles: int) -> dict:
    root = archives("default", bundles, 1.0)
    floor = in_process_floor(root, fresh("floor"), cores=2)
    floor_one = in_process_floor(root, fresh("floor1"), cores=1)
    two, _ = snakemake(root, fresh("cores2"))
    one, _ = snakemake(root, fresh("cores1"), "--cores", "1")
    print(
        f"P3 {bundles} default bundles: snakemake --cores 2 {two:.1f} s, in-process floor {floor:.1f} s "
        f"-> ratio {two / floor:.2f} (goal <= 1.5)"
    )
    print(
        f"P6 --cores 1 {one:.1f} s / --cores 2 {two:.1f} s -> speedup {one / two:.2f} (goal >= 1.8); "
        f"the floor's own: 1 process {floor_one:.1f} s / 2 processes {floor:.1f} s -> {floor_one / floor:.2f}"
    )
    return {
        "P3_ratio": two / floor,
        "P3_snakemake_s": two,
        "P3_floor_s": floor,
        "P6_speedup": one / two,
        "P6_cores1_s": one,
        "P6_floor_speedup": floor_one / floor,
    }


def output_stamps(restore: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (restore / "outputs").iterdir()}


def noop_rerun(root: Path, restore: Path, since: dt.date, until: dt.date) -> float:
    """Wall of running the window [since, until] a second time, after checking the first run finished
    every bundle and that the second one rebuilt nothing."""
    window = (f"since={since}", f"until={until}")
    snakemake(root, restore, config=window)  # builds whatever is missing (only the first time)
    finished = [d for d in (restore / "outputs").iterdir() if (d / "bundle.json").exists()]
    statuses = [json.loads((d / "bundle.json").read_text())["status"] for d in finished]
    expected = 2 * ((until - since).days + 1)
    if len(statuses) != expected or set(statuses) != {"ok"}:
        sys.exit(f"P4 needs {expected} finished bundles, found {len(statuses)} ({set(statuses)})")
    before = output_stamps(restore)
    wall, _ = snakemake(root, restore, config=window)
    if output_stamps(restore) != before:
        sys.exit("P4: the second run of the same window rebuilt something; it is not a no-op")
    return wall


def p4(bundles: int) -> dict:
    """The same backfill window run twice: the second run finds every bundle finished and does nothing.
    The same no-op over 2 bundles (its own restore_root) shows Snakemake's fixed start-up cost."""
    root = archives("small", bundles, 0.05)
    last = START + dt.timedelta(days=bundles // 2 - 1)
    wall = noop_rerun(root, BENCH / "runs" / f"noop-{bundles}", START, last)
    floor = noop_rerun(root, BENCH / "runs" / "noop-2", START, START)
    print(
        f"P4 no-op re-run of the same backfill window, {bundles} finished bundles: {wall:.2f} s (goal <= 1 s); "
        f"the same over 2 bundles: {floor:.2f} s, so {wall - floor:.2f} s is the {bundles - 2} further bundles"
    )
    return {"P4_noop_s": wall, "P4_noop_2_bundles_s": floor}


def p5(bundles: int) -> dict:
    """-n never opens the archives, so one small zip hard-linked 10,000 times stands in for them."""
    template = next(archives("small", 2, 0.05).rglob("*.zip"))
    root = BENCH / f"dry-{bundles}"
    if not (root / ".complete").exists():
        for i in range(bundles // 2):
            folder = root / (START + dt.timedelta(days=i)).isoformat()
            folder.mkdir(parents=True, exist_ok=True)
            for version in ("v1", "v2"):
                target = folder / f"hotpass-inputs-{version}.zip"
                if not target.exists():
                    os.link(template, target)
        (root / ".complete").touch()
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-n",
        "--cores",
        "2",
        "--quiet",
        "--config",
        f"archive_root={root}",
        f"restore_root={fresh('dry')}",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(done.stderr[-3000:])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"P5 snakemake -n over {bundles} bundles: {wall:.2f} s (goal <= 8 s), peak RSS {peak:.0f} MB "
        f"(goal <= 400 MB; largest child process of this bench so far)"
    )
    return {"P5_dry_run_s": wall, "P5_peak_rss_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["P3", "P4", "P5", "P6"], action="append")
    parser.add_argument("--bundles", type=int, default=200, help="P3/P6 workload")
    parser.add_argument("--noop-bundles", type=int, default=1000)
    parser.add_argument("--dry-bundles", type=int, default=10000)
    args = parser.parse_args()
    only = set(args.only or ["P3", "P4", "P5", "P6"])
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, {dt.date.today()}")
    results = {}
    if only & {"P5"}:
        results |= p5(args.dry_bundles)  # first: ru_maxrss only grows, so measure it before the others
    if only & {"P3", "P6"}:
        results |= p3_p6(args.bundles)
    if only & {"P4"}:
        results |= p4(args.noop_bundles)
    print(json.dumps({k: round(v, 3) for k, v in results.items()}))


if __name__ == "__main__":
    main()
