import datetime as dt

import pytest

from sheetfill.errors import ConfigError
from sheetfill.runs.discovery import compile_pattern, explain_empty, scan, select

D = dt.date


def touch(root, rel):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PK")
    return path


def test_nested_layout_finds_every_archive(tmp_path):
    for day in ("2025-09-29", "2025-09-30"):
        for version in ("v1", "v2"):
            touch(tmp_path, f"{day}/hotpass-inputs-{version}.zip")
    touch(tmp_path, "2025-09-30/notes.txt")
    touch(tmp_path, "not-a-date/hotpass-inputs-v1.zip")
    found = scan(tmp_path, "{date}/hotpass-inputs-{version}.zip")
    assert [a.bundle for a in found] == ["2025-09-29--v1", "2025-09-29--v2", "2025-09-30--v1", "2025-09-30--v2"]


def test_flat_layout_with_strftime_format(tmp_path):
    touch(tmp_path, "hotpass-inputs-20250929-v1.zip")
    touch(tmp_path, "hotpass-inputs-20251001-v12.zip")
    touch(tmp_path, "hotpass-inputs-20251345-v1.zip")  # not a real date: ignored
    found = scan(tmp_path, "hotpass-inputs-{date:%Y%m%d}-v{version}.zip")
    assert [(a.date, a.version) for a in found] == [(D(2025, 9, 29), "1"), (D(2025, 10, 1), "12")]


def test_window_is_inclusive_at_both_ends_and_versions_filter(tmp_path):
    for day in range(1, 6):
        for version in ("v1", "v2"):
            touch(tmp_path, f"2025-10-0{day}/hotpass-inputs-{version}.zip")
    found = scan(tmp_path, "{date}/hotpass-inputs-{version}.zip")
    chosen = select(found, D(2025, 10, 2), D(2025, 10, 4), ("v2",))
    assert [a.bundle for a in chosen] == ["2025-10-02--v2", "2025-10-03--v2", "2025-10-04--v2"]
    assert len(select(found, None, None, None)) == 10


def test_unknown_version_is_an_error_listing_what_exists(tmp_path):
    touch(tmp_path, "2025-10-01/hotpass-inputs-v1.zip")
    found = scan(tmp_path, "{date}/hotpass-inputs-{version}.zip")
    with pytest.raises(ConfigError, match="versions v3 not found.*versions found there: v1"):
        select(found, None, None, ("v1", "v3"))


def test_empty_window_names_root_pattern_window_and_nearest_dates(tmp_path):
    touch(tmp_path, "2025-09-01/hotpass-inputs-v1.zip")
    touch(tmp_path, "2025-12-01/hotpass-inputs-v1.zip")
    found = scan(tmp_path, "{date}/hotpass-inputs-{version}.zip")
    message = explain_empty(tmp_path, "{date}/hotpass-inputs-{version}.zip", found, D(2025, 10, 1), D(2025, 10, 31))
    assert str(tmp_path) in message and "{date}/hotpass-inputs-{version}.zip" in message
    assert "2025-10-01 .. 2025-10-31" in message
    assert "2025-09-01 (before the window)" in message and "2025-12-01 (after it)" in message


def test_scan_handles_ten_thousand_archives(tmp_path):
    start = D(2000, 1, 1)
    for i in range(5000):
        day = (start + dt.timedelta(days=i)).strftime("%Y%m%d")
        for version in ("1", "2"):
            (tmp_path / f"hotpass-inputs-{day}-v{version}.zip").write_bytes(b"")
    found = scan(tmp_path, "hotpass-inputs-{date:%Y%m%d}-v{version}.zip")
    assert len(found) == 10000 and found[0].date == start and found[-1].version == "2"


def test_pattern_example_uses_the_date_format():
    assert compile_pattern("x-{date:%Y%m%d}-v{version}.zip").example() == "x-20250929-vv1.zip"
