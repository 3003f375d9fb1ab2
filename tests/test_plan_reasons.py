"""The plan names why each bundle would be (re)built, and agrees with `snakemake -n`.

Every test drives real Snakemake runs on a copy of the workflow (so the code-change case can edit
a rule), and compares sheetfill's plan (sheetfill.dryrun, read from Snakemake's DAG) with the jobs
`snakemake -n` lists for the same working directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, Workflow, make_archives
from test_workflow import wait_until_group_is_gone

from sheetfill.dryrun import dry_run
from sheetfill.runs import reasons

pytestmark = pytest.mark.slow

ALL4 = ["2025-09-29--v1", "2025-09-29--v2", "2025-09-30--v1", "2025-09-30--v2"]


class CopiedWorkflow(Workflow):
    """The repository's Snakefile, rules and scripts copied next to the working directory."""

    def __init__(self, base: Path, archives: Path):
        code = base / "code"
        code.mkdir(parents=True)
        for name in ("Snakefile", "workflow", "scripts", "config", "profiles", "envs"):
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, code / name, symlinks=True)
            else:
                shutil.copy(source, code / name)
        self.snakefile = code / "Snakefile"
        self.profile = base / "profile.yaml"
        shutil.copy(REPO / "config" / "profiles" / "aviation.yaml", self.profile)
        super().__init__(base, archives)

    def config(self, **extra) -> dict:
        return super().config(profile=str(self.profile), since="2025-09-29", **extra)  # a backfill

    def command(self, *args, **config) -> list[str]:
        command = super().command(*args, **config)
        command[command.index(str(REPO / "Snakefile"))] = str(self.snakefile)
        return command

    def plan(self, forcerun=()) -> reasons.DryRun:
        return dry_run(self.config(), forcerun=forcerun, snakefile=self.snakefile, workdir=self.workdir)

    def plan_agrees(self, *args, forcerun=()) -> dict[str, str]:
        """{bundle: reason} from sheetfill's plan, checked against the bundles `snakemake -n` lists."""
        planned = self.plan(forcerun=forcerun)
        snakemake_says = self.planned_bundles_with(*args)
        assert [b.bundle for b in planned.would_build] == snakemake_says
        assert planned.up_to_date == len(ALL4) - len(snakemake_says)
        return {b.bundle: b.reason for b in planned.would_build}

    def planned_bundles_with(self, *args) -> list[str]:
        import re

        done = self.run("-n", *args)
        found = re.findall(r"date=(\d{4}-\d{2}-\d{2}), version=([^\s,]+)", done.stdout + done.stderr)
        return sorted({f"{date}--{version}" for date, version in found})


@pytest.fixture
def built(tmp_path) -> CopiedWorkflow:
    archives = tmp_path / "archives"
    make_archives(archives, days=2)
    flow = CopiedWorkflow(tmp_path, archives)
    flow.run()
    return flow


def test_a_fresh_restore_root_plans_every_bundle_as_a_new_archive(tmp_path):
    archives = tmp_path / "archives"
    make_archives(archives, days=2)
    flow = CopiedWorkflow(tmp_path, archives)
    assert flow.plan_agrees() == dict.fromkeys(ALL4, reasons.NEW_ARCHIVE)
    assert flow.plan().run_jobs == ["data_docs", "gate"]


def test_after_a_run_everything_is_up_to_date_and_snakemake_agrees(built):
    planned = built.plan()
    assert planned.would_build == [] and planned.up_to_date == 4 and planned.nothing_to_do
    assert "Nothing to be done" in built.run("-n").stdout + built.run("-n").stderr
    assert "No bundle to (re)build; 4 up to date." == planned.describe()


def test_changed_archive_bytes_and_missing_outputs_are_named_per_bundle(built):
    make_archives(built.archives / "other", days=1, seed=7)  # same dates, other records: other bytes
    shutil.copy(built.archives / "other/2025-09-29/hotpass-inputs-v1.zip", built.archives / "2025-09-29")
    shutil.rmtree(built.outputs("2025-09-30--v2"))
    assert built.plan_agrees() == {
        "2025-09-29--v1": reasons.ARCHIVE_CHANGED,
        "2025-09-30--v2": reasons.OUTPUTS_MISSING,
    }


def kill_snakemake_while_a_bundle_job_runs(flow: CopiedWorkflow) -> None:
    """kill -9 of Snakemake alone once a forced bundle job has started: the job runs to its end and
    writes its outputs, but Snakemake never records it, so its incomplete marker stays."""
    started = time.time()
    logs = flow.restore / "logs" / "bundle"
    markers = flow.workdir / ".snakemake" / "incomplete"
    command = flow.command("--forcerun", "bundle", "--cores", "1")  # one job at a time: one in flight
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120

    def job_running() -> bool:  # its shell has (re)written its log, and Snakemake has marked it
        fresh = any(log.stat().st_mtime >= started for log in logs.glob("*.log"))
        return fresh and markers.is_dir() and any(markers.rglob("*"))

    while time.monotonic() < deadline and proc.poll() is None and not job_running():
        time.sleep(0.02)
    assert proc.poll() is None, "the forced run ended before a bundle job could be caught running"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    wait_until_group_is_gone(proc.pid)


def test_a_killed_runs_incomplete_outputs_are_named_as_such(built):
    kill_snakemake_while_a_bundle_job_runs(built)
    planned = built.plan_agrees()  # no --unlock needed: a dry run only warns about the stale lock
    assert len(planned) == 1 and set(planned.values()) == {reasons.OUTPUTS_MISSING}
    [bundle] = planned
    [detail] = [b.detail for b in built.plan().would_build]
    assert detail.startswith("incomplete: ") and str(built.outputs(bundle)) in detail


def test_a_touched_but_identical_archive_is_not_a_reason(built):
    archive = built.archives / "2025-09-29/hotpass-inputs-v1.zip"
    archive.write_bytes(archive.read_bytes())  # newer mtime, same bytes: Snakemake compares checksums
    assert built.plan_agrees() == {}


def test_an_edited_data_profile_replans_every_bundle_refined_with_it(built):
    built.profile.write_text(built.profile.read_text() + "\n# reviewed\n")
    assert built.plan_agrees() == dict.fromkeys(ALL4, reasons.PROFILE_CHANGED)


def test_an_edited_rule_command_is_a_code_change(built):
    rules = built.snakefile.parent / "workflow/rules/bundle.smk"
    rules.write_text(rules.read_text().replace("> {{log:q}} 2>&1", ">> {{log:q}} 2>&1", 1))
    assert built.plan_agrees() == dict.fromkeys(ALL4, reasons.CODE_CHANGED)


def test_forced_bundles_are_planned_as_forced(built):
    assert built.plan_agrees("--forcerun", "bundle", forcerun=("bundle",)) == dict.fromkeys(ALL4, reasons.FORCED)


def test_python_api_and_cli_dry_runs_give_the_same_plan(archives, tmp_path):
    import subprocess

    import sheetfill

    restore = tmp_path / "restore"
    window = dict(since="2025-09-29", until="2025-09-30", archive_root=archives, restore_root=restore)
    sheetfill.run(**window, versions=["v1"], cores=2)
    planned = sheetfill.run(**window, dry_run=True)
    assert [(b.bundle, b.reason.split(":")[0]) for b in planned.bundles] == [
        ("2025-09-29--v2", reasons.NEW_ARCHIVE),
        ("2025-09-30--v2", reasons.NEW_ARCHIVE),
    ]
    assert planned.up_to_date == 2 and "2 bundles would be (re)built" in planned.note
    common = ["--archive-root", str(archives), "--restore-root", str(restore)]
    cli = [sys.executable, "-m", "sheetfill.cli", "backfill", "--start-date", "2025-09-29", "--end-date", "2025-09-30"]
    done = subprocess.run([*cli, "--dry-run", *common], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:-1]] == [["2025-09-29--v2", "planned"], ["2025-09-30--v2", "planned"]]
    assert lines[-1] == planned.note
    assert not (restore / "outputs" / "2025-09-29--v2").exists()  # a plan writes nothing
