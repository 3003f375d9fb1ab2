"""Data docs over a long history: index size and render time in headless Chromium.

    python bench/datadocs_bench.py                 # 10,000 bundles (5,000 dates x 2 versions)
    python bench/datadocs_bench.py --dates 500     # smaller

Writes a synthetic history of bundle folders (bundle.json, validation.json, provenance.json and a
small refined.xlsx stand-in; no parquet, so no version diffs) under a temporary restore_root, builds
the data docs with the last 7 dates as the run's window, and prints the build time, the index size
and the time Chromium takes from navigation to the load event (images decoded), measured once.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START = dt.date(2016, 1, 1)
STATUSES = ["ok"] * 96 + ["failed_validation"] * 3 + ["failed_processing"]


def make_history(restore_root: Path, dates: int, versions=("v1", "v2"), seed: int = 0) -> list[Path]:
    """One output folder per date and version, as the bundle job leaves it (light files only)."""
    rng = random.Random(seed)
    folders = []
    for day in range(dates):
        date = (START + dt.timedelta(days=day)).isoformat()
        for version in versions:
            folders.append(_bundle(restore_root / "outputs" / f"{date}--{version}", date, version, rng))
    return folders


def _bundle(folder: Path, date: str, version: str, rng: random.Random) -> Path:
    folder.mkdir(parents=True)
    status = rng.choice(STATUSES)
    records = 700 + rng.randrange(200)
    summary = {"bundle": folder.name, "date": date, "version": version, "status": status, "diff": None}
    if status == "failed_processing":
        summary.update(error=f"{folder.name}.zip is not a readable zip archive", counts={}, quality={}, validation=None)
    else:
        failed = 1 if status == "failed_validation" else 0
        summary.update(
            error=None,
            counts={
                "rows_in": 2 * records,
                "records_out": records,
                "duplicates_merged": records,
                "flagged": 3,
                "rejected": 1,
            },
            quality={"mean_score": round(0.7 + rng.random() / 5, 3)},
            validation={"success": not failed, "evaluated": 9, "failed": failed},
        )
        checks = [{"name": f"check_{i}", "check": "not_null", "column": "c", "success": i >= failed} for i in range(9)]
        (folder / "validation.json").write_text(json.dumps({"results": checks}))
        (folder / "refined.xlsx").write_bytes(b"PK stand-in")
    provenance = {"archive": {"path": f"/archives/{date}/{version}.zip", "size": 1, "sha256": "0" * 64}}
    (folder / "provenance.json").write_text(json.dumps(provenance))
    (folder / "bundle.json").write_text(json.dumps(summary))
    return folder


def render_seconds(index: Path) -> float:
    """Navigation to load event of the index in headless Chromium (the test suite's DevTools client)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from test_browser import Chromium, Tab

    with tempfile.TemporaryDirectory() as profile:
        browser = Chromium(Path(profile) / "p", Path(profile) / "log")
        try:
            tab = Tab(browser)
            tab.open(index.parent / "style.css")  # warm the browser up on something else first
            started = time.perf_counter()
            tab.open(index)
            seconds = time.perf_counter() - started
            assert tab.js("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
            return seconds
        finally:
            browser.close()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dates", type=int, default=5000)
    parser.add_argument("--render", type=Path, help=argparse.SUPPRESS)  # the measuring child process
    args = parser.parse_args(argv)
    if args.render:
        print(render_seconds(args.render))
        return
    from sheetfill.datadocs import build_data_docs

    with tempfile.TemporaryDirectory() as temp:
        restore = Path(temp) / "restore"
        folders = make_history(restore, args.dates)
        window = {"since": folders[-14].name[:10], "until": folders[-1].name[:10], "backfill": True}
        started = time.perf_counter()
        index = build_data_docs(folders[-14:], restore / "data-docs", window, restore_root=restore)
        built = time.perf_counter() - started
        started = time.perf_counter()
        build_data_docs(folders[-14:], restore / "data-docs", window, restore_root=restore)  # the next run
        again = time.perf_counter() - started
        size = index.stat().st_size
        print(f"bundles: {len(folders)}; data docs built in {built:.1f} s, rebuilt (pages cached) in {again:.1f} s")
        print(f"index.html: {size / 1e6:.3f} MB ({size / 1.5e6:.1%} of the 1.5 MB budget)")
        # in a fresh process: the DevTools client wires fds 3 and 4, which matplotlib's files may hold here
        child = [sys.executable, __file__, "--render", str(index)]
        seconds = float(subprocess.run(child, capture_output=True, text=True, check=True).stdout.split()[-1])
        print(f"index render in headless Chromium: {seconds:.2f} s ({seconds / 2:.1%} of the 2 s budget)")


if __name__ == "__main__":
    main()
