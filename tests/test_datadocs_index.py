"""The data docs over a long history: failures first, the status calendar, trends, months, the window.

The history is synthetic bundle folders (bench/datadocs_bench.py writes them the way the bundle job
does); the browser test renders the same index in headless Chromium.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
import zipfile

import pytest
from conftest import REPO
from test_browser import tab  # noqa: F401 - the headless Chromium fixture
from test_datadocs import Page

from sheetfill.datadocs import COUNTS_ORDER, build_data_docs
from sheetfill.datadocs.charts import STATUS_CODES, calendar_grid

sys.path.insert(0, str(REPO / "bench"))
from datadocs_bench import make_history  # noqa: E402

DATES = 400  # 2016-01-01 … 2017-02-03, two versions: 800 bundles over 14 months
WINDOW_BUNDLES = 6  # the last 3 dates


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    restore = tmp_path_factory.mktemp("history") / "restore"
    folders = make_history(restore, DATES)
    window = {"since": folders[-WINDOW_BUNDLES].name[:10], "until": folders[-1].name[:10], "backfill": False}
    index = build_data_docs(folders[-WINDOW_BUNDLES:], restore / "data-docs", window, restore_root=restore)
    return index, folders


def statuses(folders) -> dict[str, str]:
    import json

    return {f.name: json.loads((f / "bundle.json").read_text())["status"] for f in folders}


def test_index_covers_every_bundle_built_and_the_window_is_a_filter(history):
    index, folders = history
    months = Page(index)
    text = months.all_text
    assert f"{len(folders)} bundles built, 2016-01-01 … 2017-02-03" in text
    cells = r'data-month="([\d-]+)"><td><a href="[^"]+">[^<]+</a></td><td class="num">(\d+)'
    month_rows = re.findall(cells, index.read_text())
    assert sum(int(n) for _, n in month_rows) == len(folders) and len(month_rows) == 14
    assert [m for m, _ in month_rows] == sorted((m for m, _ in month_rows), reverse=True)  # newest month first
    window = Page(index.parent / "window.html")
    assert window.rows == statuses(folders[-WINDOW_BUNDLES:])
    assert "window.html" in months.links


def test_failures_come_first_then_the_calendar_the_trends_and_the_months(history):
    index, folders = history
    html = index.read_text()
    order = [html.index(marker) for marker in ('id="attention"', 'id="calendar"', "charts/records.png", 'id="months"')]
    assert order == sorted(order)
    failed = sorted((b for b, s in statuses(folders).items() if s != "ok"), reverse=True)
    assert list(Page(index).rows) == failed[:50]  # newest failures, at most 50 on the index
    assert list(Page(index.parent / "failures.html").rows) == failed


def test_the_calendar_holds_every_bundle_status_by_date_and_version(history):
    index, folders = history
    from sheetfill.datadocs import load_bundle

    bundles = [load_bundle(f) for f in folders]
    labels, grid = calendar_grid(bundles)
    assert labels == ["2017 v1", "2017 v2", "2016 v1", "2016 v2"]
    for bundle in bundles:
        day = dt.date.fromisoformat(bundle["date"])
        row = labels.index(f"{day.year} {bundle['version']}")
        assert grid[row][day.timetuple().tm_yday - 1] == STATUS_CODES[bundle["status"]]
    assert sum(cell > 0 for row in grid for cell in row) == len(bundles)
    assert (index.parent / "charts" / "calendar.png").read_bytes()[:4] == b"\x89PNG"


def test_bundle_pages_show_counts_in_the_index_order(history):
    index, folders = history
    page = (index.parent / "bundles" / f"{folders[-1].name}.html").read_text()
    counts = re.search(r'<table class="facts" id="counts"><tr>(.*?)</tr>', page).group(1)
    shown = re.findall(r"<th>([^<]+)</th>", counts)
    assert shown[: len(COUNTS_ORDER)] == [k.replace("_", " ") for k in COUNTS_ORDER]
    header = re.search(r"<thead><tr>(.*?)</tr></thead>", (index.parent / "window.html").read_text()).group(1)
    columns = re.findall(r"<th>([^<]+)</th>", header)
    assert columns[2 : 2 + len(COUNTS_ORDER)] == shown[: len(COUNTS_ORDER)]


def test_the_docs_folder_works_zipped_on_its_own(history, tmp_path):
    index, _ = history
    archive = tmp_path / "docs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in index.parent.rglob("*"):
            zf.write(path, path.relative_to(index.parent.parent))
    elsewhere = tmp_path / "unzipped"
    zipfile.ZipFile(archive).extractall(elsewhere)
    pages = sorted((elsewhere / "data-docs").rglob("*.html"))
    refined = 0
    for path in pages[:: max(1, len(pages) // 60)] + [elsewhere / "data-docs" / "index.html"]:
        page = Page(path)
        for ref in page.links + page.images:
            assert "://" not in ref
            assert (path.parent / ref.split("#")[0]).resolve().is_relative_to(elsewhere / "data-docs"), ref
            assert (path.parent / ref.split("#")[0]).exists(), (path, ref)
            refined += ref.endswith("refined.xlsx")
    assert refined  # bundle pages link their refined files, inside the folder


def test_a_clean_history_says_no_failures_and_draws_no_empty_chart(tmp_path):
    restore = tmp_path / "restore"
    folders = [f for f in make_history(restore, 20) if statuses([f])[f.name] == "ok"]
    index = build_data_docs(folders, restore / "docs", {}, restore_root=None)
    text = Page(index).all_text
    assert "No failures in" in text
    assert not (index.parent / "charts" / "failures.png").exists()


def test_charts_span_exactly_the_dates_and_captions_add_to_the_title(history):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    from sheetfill.datadocs.charts import _date_axis

    bundles = [{"date": "2025-09-29"}, {"date": "2025-10-01"}]
    figure, axes = plt.subplots()
    _date_axis(axes, bundles)
    low, high = axes.get_xlim()
    plt.close(figure)
    assert mdates.num2date(low).date() == dt.date(2025, 9, 28) and mdates.num2date(low).hour == 12  # half a day
    assert mdates.num2date(high).date() == dt.date(2025, 10, 1)
    index, _ = history
    figures = re.findall(r"<h3>([^<]+)</h3><img[^>]+><figcaption>([^<]+)</figcaption>", index.read_text())
    assert len(figures) == 3
    for title, caption in figures:
        assert title.lower() not in caption.lower()


@pytest.mark.browser
def test_the_long_history_index_renders_with_failures_first(history, tab):  # noqa: F811
    index, _ = history
    tab.open(index)
    tops = tab.js(
        "['attention', 'calendar', 'months'].map(id => document.getElementById(id).getBoundingClientRect().top)"
    )
    assert tops == sorted(tops)
    images = tab.js("Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
    assert images and all(images)
    assert tab.js("document.querySelectorAll('#failures tr.in-window, #failures tr:not(.in-window)').length") > 0
    tab.open(index.parent / "window.html")
    assert tab.js("document.querySelectorAll('#bundles tr[data-bundle]').length") == WINDOW_BUNDLES
