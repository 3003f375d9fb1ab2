"""The bundles grid at 10,000 ledger bundles: how soon the page is interactive in a real browser.

    python bench/ui_grid_bench.py            # one server, three page loads (~30 s)

Seeds a ledger with one run of 10,000 bundle slots (2,000 dates x 5 versions, ~1 % failed), starts
the real `sheetfill serve` on a free 127.0.0.1 port and opens /bundles in Debian's headless Chromium
(Playwright). Prints, measured in this run:
  U1  navigation start -> grid drawn and listening (body[data-grid-ready]), per load   goal <= 1000 ms
  U2  the page's size (HTML with the embedded grid payload)
  U3  for comparison: fetching the same rows through GET /api/v1/bundles, page by page
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from conftest import make_archives  # noqa: E402
from ui_server import Service  # noqa: E402

BUNDLES, VERSIONS, LOADS = 10_000, 5, 3


def seed_rows() -> list[tuple[str, str, str | None]]:
    start, rows = dt.date(2020, 1, 1), []
    for i in range(BUNDLES):
        date, version = start + dt.timedelta(days=i // VERSIONS), f"v{i % VERSIONS + 1}"
        failed = i % 97 == 0
        rows.append((f"{date}--{version}", "failed_validation" if failed else "ok", "row_count" if failed else None))
    return rows


def main() -> int:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        make_archives(base / "archives", days=1, versions=("v1",))
        service = Service(base, base / "archives")
        service.seed_ledger(seed_rows(), run_id="bench-history")
        service.start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                ready = []
                for _ in range(LOADS):
                    page.goto(service.url("/bundles"))
                    page.wait_for_selector("body[data-grid-ready]", timeout=60_000)
                    assert page.locator(".cell[data-k]").count() == BUNDLES
                    ready.append(int(page.get_attribute("body", "data-grid-ready")))
                browser.close()
            html = urllib.request.urlopen(service.url("/bundles"), timeout=30).read()
            started, offset, rows = time.perf_counter(), 0, 0
            while True:
                status, data = service.api("GET", f"/api/v1/bundles?limit=1000&offset={offset}")
                page_rows = (data or {}).get("bundles", []) if isinstance(data, dict) else data or []
                rows, offset = rows + len(page_rows), offset + len(page_rows)
                if status != 200 or len(page_rows) < 1000:
                    break
            api_s = time.perf_counter() - started
        finally:
            service.stop()
    print(f"U1  /bundles interactive after {ready} ms (first load is cold); median {statistics.median(ready)} ms,")
    print(f"    goal <= 1000 ms: {'met' if max(ready) <= 1000 else 'NOT met'} on every load")
    print(f"U2  page with embedded grid payload: {len(html) / 1024:.0f} KiB for {BUNDLES} bundles")
    print(f"U3  GET /api/v1/bundles in pages of 1000: {rows} rows in {api_s * 1000:.0f} ms (status {status})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
