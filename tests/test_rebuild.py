"""Real Snakemake runs over the life of a bundle: its first build, a rebuild after its archive changed
(the diff against the previous build, in bundle.json and the data docs), the run record, forced
re-runs and the CLI's --force / --archive."""

from __future__ import annotations

import json
import shutil
import subprocess

import pandas as pd
import pytest
from conftest import START, make_archives

pytestmark = pytest.mark.slow
BUNDLE = "2025-09-29--v2"
ONE = {"since": "2025-09-29", "until": "2025-09-29", "versions": ["v2"]}


def page_of(workflow, bundle: str) -> str:
    return (workflow.restore / "data-docs" / "bundles" / f"{bundle}.html").read_text()


def since_previous_build(page: str) -> str:
    """The text of the bundle page's 'Since the previous build' section."""
    start = page.index("Since the previous build")
    return page[start : page.find("<h", start + 30)]


def test_a_rebuild_after_the_archive_changed_shows_what_changed_since_the_last_build(workflow, tmp_path):
    workflow.run(**ONE)
    assert workflow.status(BUNDLE)["diff"] is None
    assert "This is its first build." in since_previous_build(page_of(workflow, BUNDLE))
    before = pd.read_parquet(workflow.outputs(BUNDLE) / "refined.parquet")

    other = tmp_path / "other"  # the same bundle captured again: same names, other bytes
    make_archives(other, days=1, versions=("v2",), start=START, seed=7)
    archive = workflow.archives / "2025-09-29" / "hotpass-inputs-v2.zip"
    shutil.copyfile(other / "2025-09-29" / "hotpass-inputs-v2.zip", archive)
    workflow.run(**ONE)

    after = pd.read_parquet(workflow.outputs(BUNDLE) / "refined.parquet")
    old, new = set(before["record_id"]), set(after["record_id"])
    diff = workflow.status(BUNDLE)["diff"]
    assert diff is not None, "the rebuild did not compare with the previous build"
    assert (diff["added"], diff["removed"]) == (len(new - old), len(old - new))
    assert diff["changed"] + diff["unchanged"] == len(old & new)
    assert diff["added"] + diff["removed"] + diff["changed"] > 0  # another capture: something differs
    section = since_previous_build(page_of(workflow, BUNDLE))
    assert f"+{diff['added']} added, −{diff['removed']} removed, ~{diff['changed']} changed" in section

    workflow.run("--forcerun", "bundle", **ONE)  # same bytes again: the previous build is the last one
    same = workflow.status(BUNDLE)["diff"]
    assert (same["added"], same["removed"], same["changed"]) == (0, 0, 0)


def test_the_run_record_names_the_window_each_bundle_status_and_the_cursor(workflow):
    record = workflow.restore / "outputs" / "runs" / "first_2025-09-30_all.json"
    workflow.run(until="2025-09-30")  # a scheduled run
    scheduled = json.loads(record.read_text())
    assert scheduled.pop("run_id")  # the run's id, shared with the ledger (SHEETFILL_RUN_ID)
    assert scheduled == {
        "window": {"since": None, "until": "2025-09-30", "versions": None, "backfill": False, "cursor": None},
        "ok": True,
        "cursor": "2025-09-30",
        "bundles": {b: "ok" for b in ("2025-09-29--v1", "2025-09-29--v2", "2025-09-30--v1", "2025-09-30--v2")},
    }
    workflow.run(since="2025-09-29", until="2025-10-01", versions=["v2"])  # a backfill: its own record
    backfill = json.loads((workflow.restore / "outputs" / "runs" / "2025-09-29_2025-10-01_v2.json").read_text())
    assert backfill["window"] == {
        "since": "2025-09-29",
        "until": "2025-10-01",
        "versions": ["v2"],
        "backfill": True,
        "cursor": "2025-09-30",
    }
    assert backfill["ok"] is True and backfill["cursor"] is None  # a backfill never moves the cursor
    assert backfill["bundles"] == {b: "ok" for b in ("2025-09-29--v2", "2025-09-30--v2", "2025-10-01--v2")}


def test_a_failing_run_records_which_bundle_failed_and_keeps_the_cursor(tmp_path):
    """close_run itself (the gate's job): Snakemake removes a failing job's outputs, the record too."""
    from sheetfill.runs.close import close_run

    statuses = {"2025-09-29--v1": "ok", "2025-09-30--v1": "failed_processing", "2025-09-30--v2": "failed_validation"}
    folders = []
    for bundle, status in statuses.items():
        folder = tmp_path / bundle
        folder.mkdir()
        date = bundle.split("--")[0]
        (folder / "bundle.json").write_text(json.dumps({"bundle": bundle, "date": date, "status": status}))
        folders.append(folder)
    cursor = tmp_path / "cursor.json"
    window = {"since": None, "until": "2025-09-30", "backfill": False}
    text, ok = close_run(folders, window, tmp_path / "runs" / "w.json", cursor, run_id="run-7")
    assert not ok and "FAILED to process" in text and "FAILED validation" in text and "run-7" in text
    assert json.loads((tmp_path / "runs" / "w.json").read_text()) == {
        "run_id": "run-7",
        "window": window,
        "ok": False,
        "cursor": None,
        "bundles": statuses,
    }
    assert not cursor.exists()


def mtimes(workflow, bundles) -> dict[str, int]:
    return {b: (workflow.outputs(b) / "refined.parquet").stat().st_mtime_ns for b in bundles}


def test_forcerun_redoes_the_named_rule_only(workflow):
    workflow.run(**ONE)
    built, docs = mtimes(workflow, [BUNDLE]), (workflow.restore / "data-docs" / "index.html").stat().st_mtime_ns
    again = workflow.run(**ONE)
    assert "Nothing to be done" in again.stdout + again.stderr
    workflow.run("--forcerun", "data_docs", **ONE)
    assert mtimes(workflow, [BUNDLE]) == built  # the bundle job was not redone
    assert (workflow.restore / "data-docs" / "index.html").stat().st_mtime_ns != docs
    workflow.run("--forcerun", "bundle", **ONE)
    assert mtimes(workflow, [BUNDLE]) != built


def cli(*args):
    return subprocess.run(["sheetfill", *args], capture_output=True, text=True, timeout=600)


def test_cli_force_redoes_every_bundle_of_the_window_and_archive_packs_them(archives, tmp_path):
    restore = tmp_path / "r"
    window = ["--start-date", "2025-09-29", "--end-date", "2025-09-29"]
    common = [*window, "--archive-root", str(archives), "--restore-root", str(restore)]
    bundles = ["2025-09-29--v1", "2025-09-29--v2"]
    first = cli("backfill", *common)
    assert first.returncode == 0, first.stderr
    assert not list((restore / "outputs").glob("*.zip"))  # no --archive: nothing packed
    stamp = {b: (restore / "outputs" / b / "refined.parquet").stat().st_mtime_ns for b in bundles}
    again = cli("backfill", *common, "--archive")
    assert again.returncode == 0, again.stderr
    assert {b: (restore / "outputs" / b / "refined.parquet").stat().st_mtime_ns for b in bundles} == stamp
    assert sorted(p.name for p in (restore / "outputs").glob("*.zip")) == [f"{b}.zip" for b in bundles]
    forced = cli("backfill", *common, "--force")
    assert forced.returncode == 0, forced.stderr
    redone = {b: (restore / "outputs" / b / "refined.parquet").stat().st_mtime_ns for b in bundles}
    assert all(redone[b] != stamp[b] for b in bundles)
    words = [line.split() for line in forced.stdout.splitlines()]
    reported = [line[:2] for line in words if line and line[0] in bundles]
    assert reported == [[b, "ok"] for b in bundles]  # one line per bundle of the window
