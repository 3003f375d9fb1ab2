"""End-to-end: real Snakemake runs on generated archives in temporary folders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import zipfile

import pandas as pd
import pytest
from conftest import START, Workflow, make_archives

pytestmark = pytest.mark.slow
ALL6 = ["2025-09-29--v1", "2025-09-29--v2", "2025-09-30--v1", "2025-09-30--v2", "2025-10-01--v1", "2025-10-01--v2"]


def files_outside(root, allowed):
    return sorted(str(p) for p in root.rglob("*") if not any(p.is_relative_to(a) for a in allowed))


def test_dry_run_lists_exactly_the_window_and_writes_nothing(workflow):
    assert workflow.planned_bundles(since="2025-09-30", until="2025-10-01", versions=["v2"]) == [
        "2025-09-30--v2",
        "2025-10-01--v2",
    ]
    assert workflow.planned_bundles(since="2025-09-30", until="2025-09-30") == ["2025-09-30--v1", "2025-09-30--v2"]
    assert workflow.planned_bundles() == ALL6
    assert not workflow.restore.exists()


@pytest.mark.parametrize(("extra", "cores"), [((), "1"), (("--set-threads", "bundle=2"), "2")])
def test_bundle_jobs_get_the_cores_snakemake_gives_them(workflow, extra, cores):
    done = workflow.run("-n", "-p", *extra, since="2025-09-29", until="2025-09-29", versions=["v1"])
    commands = [line for line in done.stdout.splitlines() if "sheetfill.jobs.job bundle" in line]
    assert commands and all(f"SHEETFILL_PROCESSES={cores} " in line for line in commands)


def test_run_builds_outputs_then_second_run_is_a_noop(workflow):
    workflow.run(since="2025-09-29", until="2025-09-30")
    built = sorted(p.name for p in (workflow.restore / "outputs").iterdir() if p.is_dir() and p.name != "runs")
    assert built == ALL6[:4]
    for bundle in built:
        out = workflow.outputs(bundle)
        assert {"refined.xlsx", "refined.parquet", "provenance.json", "bundle.json"} <= {p.name for p in out.iterdir()}
        assert (workflow.restore / bundle).is_dir()
        records = pd.read_parquet(out / "refined.parquet")
        assert len(records) > 0
        provenance = json.loads((out / "provenance.json").read_text())
        assert provenance["archive"]["sha256"] and provenance["members"]
        assert provenance["versions"]["snakemake"] and provenance["profile"]["sha256"]
    assert (workflow.restore / "data-docs" / "index.html").exists()
    again = workflow.run(since="2025-09-29", until="2025-09-30")
    assert "Nothing to be done" in again.stdout + again.stderr


def test_changed_archive_reruns_only_its_bundle(workflow, tmp_path):
    window = {"since": "2025-09-29"}  # a backfill: the cursor must not hide the window on re-runs
    workflow.run(**window)
    before = {b: workflow.outputs(b).joinpath("refined.parquet").stat().st_mtime_ns for b in ALL6}
    other = tmp_path / "other"
    make_archives(other, days=1, versions=("v2",), start=START, seed=7)  # same names, other bytes
    target = workflow.archives / "2025-09-29" / "hotpass-inputs-v2.zip"
    target.write_bytes((other / "2025-09-29" / "hotpass-inputs-v2.zip").read_bytes())
    assert workflow.planned_bundles(**window) == ["2025-09-29--v2"]
    workflow.run(**window)
    after = {b: workflow.outputs(b).joinpath("refined.parquet").stat().st_mtime_ns for b in ALL6}
    assert [b for b in ALL6 if before[b] != after[b]] == ["2025-09-29--v2"]


def test_changed_profile_reruns_its_bundles(workflow, tmp_path):
    from sheetfill.bundle.profiles import resolve_profile_path

    profile = tmp_path / "aviation-copy.yaml"
    profile.write_text(resolve_profile_path("aviation").read_text())
    window = {"profile": str(profile), "since": "2025-09-29", "until": "2025-09-29"}
    workflow.run(**window)
    assert workflow.planned_bundles(**window) == []
    profile.write_text(profile.read_text() + "\n# governance fix\n")
    assert workflow.planned_bundles(**window) == ALL6[:2]


def test_generic_profile_runs_end_to_end_without_merging(workflow):
    window = {"profile": "generic", "since": "2025-09-29", "until": "2025-09-29", "versions": ["v1"]}
    workflow.run(**window)
    status = workflow.status("2025-09-29--v1")
    assert status["status"] == "ok"
    assert status["counts"]["duplicates_merged"] == 0  # generic maps and cleans; it does not resolve
    records = pd.read_parquet(workflow.outputs("2025-09-29--v1") / "refined.parquet")
    assert len(records) == status["counts"]["records_out"] > 0
    assert (records["source_count"] == 1).all()
    provenance = json.loads((workflow.outputs("2025-09-29--v1") / "provenance.json").read_text())
    assert "generic" in json.dumps(provenance["profile"])


def bundle_in_flight(workflow) -> bool:
    """A bundle job has started (its log exists) and not yet written its bundle.json."""
    logs = (workflow.restore / "logs" / "bundle").glob("*.log")
    return any(not (workflow.outputs(log.stem) / "bundle.json").exists() for log in logs)


def wait_until_group_is_gone(pgid: int) -> None:
    """The orphaned jobs of a killed Snakemake run to their end; bounded in time."""
    import psutil

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        members = [p for p in psutil.process_iter(["status"]) if _pgid(p.pid) == pgid]
        if all(p.info["status"] == psutil.STATUS_ZOMBIE for p in members):
            return
        time.sleep(0.1)
    raise AssertionError("the killed run's jobs did not end")


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


@pytest.mark.parametrize("kill", ["whole run", "snakemake only"])
def test_kill_then_resume_gives_identical_outputs(workflow, tmp_path, kill):
    """kill -9 of the whole run, or of Snakemake alone while a job runs: that job then finishes
    but Snakemake never records it, so the resumed run rebuilds it, and must diff it against the
    previous *completed* build (none here), not against the build it just wrote."""
    reference = Workflow(tmp_path / "reference", workflow.archives)
    reference.run()
    proc = subprocess.Popen(
        workflow.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 120
    done = (
        (lambda: bundle_in_flight(workflow))
        if kill == "snakemake only"
        else (lambda: any((workflow.restore / "outputs").glob("*/bundle.json")))
    )
    while time.monotonic() < deadline and not done():
        time.sleep(0.02)
    if kill == "snakemake only":
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        wait_until_group_is_gone(proc.pid)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    written = {b: workflow.outputs(b) / "bundle.json" for b in ALL6}
    before = {b: p.stat().st_mtime_ns for b, p in written.items() if p.exists()}
    assert len(before) < len(ALL6), "the run finished before it could be killed"
    workflow.run("--unlock")  # the documented recovery: a hard kill leaves Snakemake's lock behind
    workflow.run()
    if kill == "snakemake only":
        rebuilt = [b for b in before if written[b].stat().st_mtime_ns != before[b]]
        assert rebuilt, "no job finished unrecorded: the kill did not land between finish and record"
    for bundle in ALL6:
        ours, theirs = workflow.outputs(bundle), reference.outputs(bundle)
        assert (ours / "refined.parquet").read_bytes() == (theirs / "refined.parquet").read_bytes()
        mine_xlsx = pd.read_excel(ours / "refined.xlsx", sheet_name=None, engine="calamine")
        ref_xlsx = pd.read_excel(theirs / "refined.xlsx", sheet_name=None, engine="calamine")
        assert list(mine_xlsx) == list(ref_xlsx) == ["Data", "Summary"]
        assert all(mine_xlsx[s].equals(ref_xlsx[s]) for s in mine_xlsx)
        mine, ref = workflow.status(bundle), reference.status(bundle)
        assert mine == ref  # "diff" included: both are first builds
    assert not list(workflow.restore.rglob(".*partial*"))


def test_scheduled_runs_follow_the_cursor_and_backfills_do_not_move_it(workflow, tmp_path):
    from sheetfill.runs.cursor import read_cursor

    cursor = workflow.restore / ".sheetfill" / "cursor.json"
    workflow.run(until="2025-09-30")  # until alone: never past until
    assert str(read_cursor(cursor)) == "2025-09-30"
    assert workflow.planned_bundles() == ["2025-10-01--v1", "2025-10-01--v2"]
    workflow.run()
    assert str(read_cursor(cursor)) == "2025-10-01"
    done = workflow.run()
    assert "Nothing new" in done.stderr
    make_archives(workflow.archives, days=1, start=START.replace(day=30).replace(month=10), versions=("v1",))
    assert workflow.planned_bundles() == ["2025-10-30--v1"]
    workflow.run(since="2025-09-29", until="2025-10-30")  # a backfill
    assert str(read_cursor(cursor)) == "2025-10-01"
    reset = subprocess.run(
        ["sheetfill", "cursor", "reset", "--restore-root", str(workflow.restore)], capture_output=True, text=True
    )
    assert reset.returncode == 0 and read_cursor(cursor) is None


@pytest.mark.parametrize(
    "config, message",
    [
        ({"since": "2025-10-02", "until": "2025-10-01"}, "is after until"),
        ({"since": "2025-9-31"}, "YYYY-MM-DD"),
        ({"colour": "blue"}, "Unknown config key 'colour'"),
        ({"archive_root": "/nonexistent/archives"}, "is not a folder"),
        ({"since": "2030-01-01"}, "Nearest dates that exist: 2025-10-01"),
        ({"versions": ["v9"]}, "versions v9 not found"),
        ({"profile": "nosuch"}, "profile 'nosuch' not found"),
    ],
)
def test_bad_input_fails_before_any_job_and_writes_nothing(workflow, config, message):
    done = workflow.run(check=False, **config)
    assert done.returncode != 0
    assert message in done.stderr
    assert not workflow.restore.exists()


def test_bad_archives_fail_only_their_bundle(workflow, tmp_path):
    (workflow.archives / "2025-09-30" / "hotpass-inputs-v1.zip").write_bytes(b"not a zip at all")
    evil = workflow.archives / "2025-09-30" / "hotpass-inputs-v2.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../escaped.csv", "a,b\n1,2\n")
    done = workflow.run(check=False)
    assert done.returncode != 0
    assert "2025-09-30--v1" in done.stderr and "failed" in done.stderr
    assert workflow.status("2025-09-30--v1")["status"] == "failed_processing"
    assert "not a readable zip" in workflow.status("2025-09-30--v1")["error"]
    assert "'..'" in workflow.status("2025-09-30--v2")["error"]
    assert [b for b in ALL6 if workflow.status(b)["status"] == "failed_processing"] == ALL6[2:4]
    assert files_outside(tmp_path, [workflow.restore, workflow.archives, workflow.workdir, tmp_path / "other"]) == []
    assert (workflow.restore / "data-docs" / "index.html").exists()


def test_failed_validation_is_visible_keeps_good_work_and_holds_the_cursor(workflow, tmp_path):
    import datetime as dt

    import yaml

    from sheetfill.bundle.profiles import resolve_profile_path
    from sheetfill.runs.cursor import read_cursor
    from sheetfill.sample import generate_bundle

    # 2025-09-30--v1 is a truncated capture: far fewer organisations than its neighbours.
    generate_bundle(workflow.archives / "2025-09-30" / "hotpass-inputs-v1.zip", dt.date(2025, 9, 30), "v1", scale=0.01)
    profile = yaml.safe_load(resolve_profile_path("aviation").read_text())
    profile["expectations"].append({"name": "enough_records", "check": "row_count", "min": 25})
    strict = tmp_path / "strict.yaml"
    strict.write_text(yaml.safe_dump(profile))
    cursor = workflow.restore / ".sheetfill" / "cursor.json"

    done = workflow.run(check=False, profile=str(strict), until="2025-09-30")  # a scheduled run
    assert done.returncode != 0
    assert "2025-09-30--v1" in done.stderr and "FAILED validation" in done.stderr
    assert "1 of " in done.stderr and "expectations failed" in done.stderr
    assert {b: workflow.status(b)["status"] for b in ALL6[:4]} == {
        "2025-09-29--v1": "ok",
        "2025-09-29--v2": "ok",
        "2025-09-30--v1": "failed_validation",
        "2025-09-30--v2": "ok",
    }
    assert all((workflow.outputs(b) / "refined.parquet").exists() for b in ALL6[:4])  # failing one too
    failing = json.loads((workflow.outputs("2025-09-30--v1") / "validation.json").read_text())
    assert [e["name"] for e in failing["results"] if not e["success"]] == ["enough_records"]
    page = (workflow.restore / "data-docs" / "index.html").read_text()
    assert "2025-09-30--v1" in page and "failed" in page.lower()
    assert read_cursor(cursor) is None  # a failing run never advances the cursor

    profile["expectations"][-1]["min"] = 5  # the governance fix
    strict.write_text(yaml.safe_dump(profile))
    workflow.run(profile=str(strict), until="2025-09-30")
    assert workflow.status("2025-09-30--v1")["status"] == "ok"
    assert str(read_cursor(cursor)) == "2025-09-30"


def test_archive_option_packs_outputs_with_checksums(workflow):
    import hashlib

    workflow.run(until="2025-09-29", archive=True)
    for bundle in ALL6[:2]:
        with zipfile.ZipFile(workflow.restore / "outputs" / f"{bundle}.zip") as zf:
            names = set(zf.namelist())
            assert {"refined.xlsx", "refined.parquet", "provenance.json", "SHA256SUMS"} <= names
            for line in zf.read("SHA256SUMS").decode().splitlines():
                digest, name = line.split("  ", 1)
                assert hashlib.sha256(zf.read(name)).hexdigest() == digest


def test_flat_layout_with_date_format(tmp_path):
    root = tmp_path / "flat"
    pattern = "hotpass-inputs-{date:%Y%m%d}-v{version}.zip"
    make_archives(root, days=2, versions=("1", "2"), pattern=pattern)
    flow = Workflow(tmp_path, root)
    assert flow.planned_bundles(archive_pattern=pattern, versions=["2"]) == ["2025-09-29--2", "2025-09-30--2"]


def test_lint_is_clean():
    done = subprocess.run(
        ["snakemake", "--lint", "--cores", "1"],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Lints for" not in done.stdout + done.stderr


def test_report_contains_refined_outputs_and_data_docs(workflow, tmp_path):
    window = {"since": "2025-09-29", "until": "2025-09-29"}
    workflow.run(**window)
    report = tmp_path / "report.zip"
    workflow.run("--report", str(report), **window)
    names = zipfile.ZipFile(report).namelist()
    # one per bundle of the window (the data docs link theirs in as files/<bundle>.refined.xlsx)
    assert sum(n.endswith("/refined.xlsx") for n in names) == 2
    assert any(n.endswith("/index.html") for n in names)
    assert any(n.endswith("bundles/2025-09-29--v2.html") for n in names)
