"""Window resolution: backfill vs scheduled runs, the cursor, and the run-record key."""

import datetime as dt

import pytest

from sheetfill.errors import ConfigError
from sheetfill.runs.cursor import write_cursor
from sheetfill.runs.plan import make_plan


@pytest.fixture
def root(tmp_path):
    for day in ("2025-09-29", "2025-09-30", "2025-10-01"):
        for version in ("v1", "v2"):
            path = tmp_path / "a" / day / f"hotpass-inputs-{version}.zip"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
    return tmp_path


def plan(root, **config):
    return make_plan({"archive_root": str(root / "a"), "restore_root": str(root / "r"), **config})


def test_first_scheduled_run_takes_everything(root):
    p = plan(root)
    assert len(p.bundles) == 6 and not p.settings.backfill and p.cursor is None


def test_scheduled_run_starts_after_the_cursor_and_backfill_ignores_it(root):
    write_cursor(root / "r" / ".sheetfill" / "cursor.json", dt.date(2025, 9, 29))
    assert plan(root).bundles == ["2025-09-30--v1", "2025-09-30--v2", "2025-10-01--v1", "2025-10-01--v2"]
    assert plan(root, since="2025-09-29", until="2025-09-29").bundles == ["2025-09-29--v1", "2025-09-29--v2"]


def test_nothing_new_is_a_note_not_an_error(root):
    write_cursor(root / "r" / ".sheetfill" / "cursor.json", dt.date(2025, 10, 1))
    p = plan(root)
    assert p.bundles == [] and "Nothing new" in p.note and "2025-10-01" in p.note


def test_empty_backfill_window_is_an_error(root):
    with pytest.raises(ConfigError, match="Nearest dates that exist: 2025-10-01"):
        plan(root, since="2025-11-01")


def test_window_key_names_the_window(root):
    assert plan(root, since="2025-09-29", until="2025-09-30", versions=["v2"]).window_key == "2025-09-29_2025-09-30_v2"
    assert plan(root).window_key == "first_newest_all"
    assert plan(root, since="2025-09-29").window()["backfill"] is True


def test_input_pattern_only_for_iso_dates(root):
    assert plan(root).archive_input_pattern().endswith("{date}/hotpass-inputs-{version}.zip")
    flat = plan(root, archive_pattern="{date:%Y-%m-%d}/hotpass-inputs-{version}.zip")
    assert flat.archive_input_pattern() is None and len(flat.bundles) == 6


def test_named_bundles_narrow_the_window_make_a_backfill_and_name_their_own_record(root):
    write_cursor(root / "r" / ".sheetfill" / "cursor.json", dt.date(2025, 10, 1))  # never read: a backfill
    chosen = plan(root, bundles="2025-10-01--v1,2025-09-29--v2")
    assert chosen.bundles == ["2025-09-29--v2", "2025-10-01--v1"] and chosen.settings.backfill
    assert chosen.window_key != plan(root, since="2025-09-29").window_key
    assert chosen.window_key != plan(root, bundles=["2025-09-29--v2"]).window_key
    with pytest.raises(ConfigError, match=r"2025-09-30--v3 have no archive .*e\.g\. 2025-09-29--v1"):
        plan(root, bundles=["2025-09-30--v3"])
    with pytest.raises(ConfigError, match=r"2025-09-29--v1 have no archive"):
        plan(root, since="2025-09-30", bundles=["2025-09-29--v1"])  # outside the window
    with pytest.raises(ConfigError, match="DATE--VERSION"):
        plan(root, bundles=["2025-09-29"])
