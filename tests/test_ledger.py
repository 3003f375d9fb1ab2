"""The run ledger and the logger plugin that feeds it, on real SQLite files and real Snakemake runs."""

import json
import logging
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import REPO

import sheetfill
from sheetfill.runs.ledger import Ledger, ledger_path
from sheetfill.runs.recorder import mark_stale_runs


def test_ledger_keeps_runs_slots_and_numbered_events(tmp_path):
    ledger = Ledger.for_root(tmp_path)
    ledger.create_run("r1", bundles=["2025-09-29--v1", "2025-09-29--v2"], kind="backfill", versions=["v1", "v2"])
    ledger.create_run("r2", bundles=["2025-09-29--v1"], kind="scheduled")
    ledger.update_slot("r1", "2025-09-29--v1", status="ok", rows_in=10, records_out=7)
    ledger.update_slot("r1", "2025-09-29--v2", status="failed_validation", error="2 of 9 expectations failed")
    ledger.update_slot("r2", "2025-09-29--v1", status="skipped", reason="up to date")
    seqs = [ledger.add_event("r1", "job_started", {"bundle": b}) for b in ("a", "b", "c")]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert [e["data"]["bundle"] for e in ledger.events("r1", after=seqs[0])] == ["b", "c"]
    assert ledger.run("r1")["versions"] == ["v1", "v2"] and ledger.run("missing") is None
    assert [r["id"] for r in ledger.runs()] == ["r2", "r1"]  # newest first
    assert ledger.counts("r1") == {"ok": 1, "failed_validation": 1}
    latest = {b["bundle"]: (b["run_id"], b["status"]) for b in ledger.latest_bundles()}
    # a later run that skipped the bundle does not hide the result that is on disk
    assert latest == {"2025-09-29--v1": ("r1", "ok"), "2025-09-29--v2": ("r1", "failed_validation")}
    assert [b["bundle"] for b in ledger.latest_bundles(version="v2")] == ["2025-09-29--v2"]
    assert ledger.count_latest_bundles(status="ok", since="2025-09-30") == 0
    assert ledger.set_status("r1", "running", only_from=("queued",))
    assert not ledger.set_status("r1", "running", only_from=("queued",))
    ledger.close()
    mode = sqlite3.connect(ledger_path(tmp_path)).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_a_run_that_stopped_beating_is_failed_with_the_reason(tmp_path):
    ledger = Ledger.for_root(tmp_path)
    ledger.create_run("old", status="running", bundles=["2025-09-29--v1"], heartbeat=time.time() - 100, pid=4242)
    ledger.create_run("alive", status="running", heartbeat=time.time())
    ledger.create_run("waiting", status="queued")
    assert [run["id"] for run in mark_stale_runs(ledger, timeout_s=30)] == ["old"]
    run = ledger.run("old")
    assert run["status"] == "failed" and "heartbeat timeout" in run["error"] and "4242" in run["error"]
    assert [s["status"] for s in ledger.slots("old")] == ["not_run"]
    assert ledger.run("alive")["status"] == "running" and ledger.run("waiting")["status"] == "queued"


def _ledger_runs(restore):
    ledger = Ledger.for_root(restore)
    try:
        return [(run, ledger.slots(run["id"]), ledger.events(run["id"])) for run in reversed(ledger.runs())]
    finally:
        ledger.close()


@pytest.mark.slow
def test_plain_snakemake_run_is_recorded_under_the_gates_run_id(workflow, archives):
    (archives / "2025-09-30" / "hotpass-inputs-v2.zip").write_bytes(b"garbage")
    first = workflow.run("--logger-sheetfill-heartbeat", "0.2", check=False, since="2025-09-29", until="2025-09-30")
    assert first.returncode != 0
    workflow.run(since="2025-09-29", until="2025-09-29")  # the next run: nothing to do
    (run, slots, events), (again, again_slots, _) = _ledger_runs(workflow.restore)
    assert f"sheetfill run {run['id']}" in first.stderr  # the gate's summary
    assert run["status"] == "completed_with_failures" and run["kind"] == "backfill" and run["origin"] == "snakemake"
    assert {s["bundle"]: s["status"] for s in slots} == {
        "2025-09-29--v1": "ok",
        "2025-09-29--v2": "ok",
        "2025-09-30--v1": "ok",
        "2025-09-30--v2": "failed_processing",
    }
    ok = next(s for s in slots if s["bundle"] == "2025-09-29--v1")
    assert ok["rows_in"] > 0 and ok["records_out"] > 0 and ok["duration_s"] > 0 and "Missing output" in ok["reason"]
    assert "not a readable zip" in next(s["error"] for s in slots if s["status"] == "failed_processing")
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("job_started") == kinds.count("job_finished") + kinds.count("job_error")
    assert run["heartbeat"] > run["started"]
    assert again["status"] == "succeeded" and {s["status"] for s in again_slots} == {"skipped"}
    assert len(again_slots) == 2


@pytest.mark.slow
def test_python_api_hands_its_run_id_to_the_ledger_and_the_gate(archives, tmp_path):
    restore = tmp_path / "restore"
    result = sheetfill.run(since="2025-10-01", versions=["v1"], archive_root=archives, restore_root=restore, cores=2)
    again = sheetfill.run(since="2025-10-01", versions=["v1"], archive_root=archives, restore_root=restore, cores=2)
    assert result.ok and result.run_id and again.run_id != result.run_id
    [(run, slots, _), (second, _, _)] = _ledger_runs(restore)
    assert (run["id"], second["id"]) == (result.run_id, again.run_id)
    assert run["status"] == "succeeded" and [(s["bundle"], s["status"]) for s in slots] == [("2025-10-01--v1", "ok")]
    record = json.loads((restore / "outputs" / "runs" / "2025-10-01_newest_v1.json").read_text())
    assert record["run_id"] == result.run_id


def _record(message: str, **extra) -> logging.LogRecord:
    record = logging.LogRecord("snakemake", logging.INFO, __file__, 1, message, None, None)
    record.__dict__.update(extra)
    return record


def test_plugin_reads_job_records_in_either_order_and_under_either_field_name():
    from snakemake_interface_logger_plugins.common import LogEvent

    from snakemake_logger_plugin_sheetfill.convert import Converter

    converter = Converter("r1")
    info = {"rule_name": "bundle", "wildcards": {"date": "2025-09-29", "version": "v1"}, "reason": "Missing output"}
    out = converter.convert(_record("stats", event=LogEvent.RUN_INFO, stats={"bundle": 2, "total": 3}))
    assert [(e.kind, e.total) for e in out] == [("run_started", 3)]
    # Snakemake 9: "Execute 1 jobs" (ids under `jobs`) comes before the job's info (id under `jobid`)
    assert converter.convert(_record("Execute", event=LogEvent.JOB_STARTED, jobs=[3])) == []
    [started] = converter.convert(_record(" Rule: bundle", event=LogEvent.JOB_INFO, jobid=3, **info))
    assert (started.kind, started.bundle, started.data["reason"]) == ("job_started", "2025-09-29--v1", "Missing output")
    # another order, and the other field name for the id
    converter.convert(_record(" Rule: bundle", event=LogEvent.JOB_INFO, job_id=4, **{**info, "wildcards": {}}))
    [other] = converter.convert(_record("Execute", event=LogEvent.JOB_STARTED, jobs=[4]))
    assert (other.jobid, other.rule, other.bundle) == (4, "bundle", None)
    [finished] = converter.convert(_record("Finished jobid: 3", event=LogEvent.JOB_FINISHED, job_id=3))
    assert (finished.kind, finished.bundle) == ("job_finished", "2025-09-29--v1")
    [error] = converter.convert(_record("Error in rule bundle", event=LogEvent.JOB_ERROR, jobid=4, rule_name="bundle"))
    assert error.kind == "job_error" and not error.ok and error.data == {"interrupted": False}
    assert converter.convert(_record("no fields at all", event=LogEvent.PROGRESS))[0].done is None
    converter.convert(_record("Terminating processes on user request, this might take some time."))
    final = converter.finished()
    assert final.kind == "run_finished" and final.ok is False and final.data == {"interrupted": True}
    nothing = Converter("r2")
    assert [e.total for e in nothing.convert(_record("Nothing to be done (all requested files are present)."))] == [0]
    assert nothing.finished().ok


@pytest.mark.slow
def test_cli_backfill_records_its_run_under_the_id_it_prints(archives, tmp_path):
    restore = tmp_path / "restore"
    where = ["--archive-root", str(archives), "--restore-root", str(restore)]
    done = subprocess.run(
        [sys.executable, "-m", "sheetfill.cli", "backfill", "--start-date", "2025-10-01", "--version", "v2", *where],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [(run, slots, _)] = _ledger_runs(restore)
    assert (run["origin"], run["kind"], run["status"]) == ("cli", "backfill", "succeeded")
    assert [(s["bundle"], s["status"]) for s in slots] == [("2025-10-01--v2", "ok")]
    assert f"run {run['id']} (details: sheetfill runs show {run['id']})" in done.stdout
    record = json.loads((restore / "outputs" / "runs" / "2025-10-01_newest_v2.json").read_text())
    assert record["run_id"] == run["id"]
