"""The SLURM execution profile (profiles/slurm) on a real single-node SLURM set up by hpc/slurm-local.sh.

Needs root and either apt-get or installed SLURM daemons; elsewhere the tests skip and say why. If the
set-up itself fails they skip with its output too. Under CI=true (or SHEETFILL_REQUIRE_SLURM=1) both fail.
Snakemake ignores SIGTERM while it waits for cluster jobs, so every run is bounded by `timeout -s INT -k`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import REPO, Workflow, unavailable

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

SETUP = REPO / "hpc" / "slurm-local.sh"
BUNDLES = ["2025-09-29--v1", "2025-09-29--v2", "2025-09-30--v1", "2025-09-30--v2", "2025-10-01--v1", "2025-10-01--v2"]
# The test cluster has no accounting database: job states come from squeue, polled soon after submitting.
# Groups of 3 instead of the profile's 50, so the 6 sample bundles make two SLURM jobs (run side by side).
ON_SLURM = [
    "--profile",
    str(REPO / "profiles" / "slurm"),
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "2",
    "--group-components",
    "bundles=3",
]
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+)")


def why_no_slurm() -> str | None:
    if os.geteuid() != 0:
        return "needs root to install and start SLURM (hpc/slurm-local.sh up)"
    if not shutil.which("apt-get") and not shutil.which("slurmctld"):
        return "no apt-get to install SLURM and no slurmctld installed"
    return None


@pytest.fixture(scope="module")
def slurm():
    reason = why_no_slurm()
    if reason:
        unavailable(reason)
    started = time.monotonic()
    up = subprocess.run(["bash", str(SETUP), "up"], capture_output=True, text=True, timeout=900)
    if up.returncode != 0:
        subprocess.run(["bash", str(SETUP), "down"], capture_output=True, timeout=120)
        message = f"hpc/slurm-local.sh up failed (exit {up.returncode}):\n{up.stdout}\n{up.stderr[-3000:]}"
        if os.environ.get("SHEETFILL_REQUIRE_SLURM") == "1":
            pytest.fail(message)
        unavailable(message)
    print(f"\nSLURM set up in {time.monotonic() - started:.1f} s")
    yield
    down = subprocess.run(["bash", str(SETUP), "down"], capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    # Left behind, its slurm.conf would make every later snakemake start wait 9 s on `scontrol`.
    conf = Path("/etc/slurm/slurm.conf")
    assert not conf.exists() or "sheetfill" not in conf.read_text()


def run_on_slurm_command(workflow: Workflow) -> list[str]:
    command = workflow.command(*ON_SLURM)
    at = command.index("--cores")  # the helper's local `--cores 2` would override the profile's group sizing
    del command[at : at + 2]
    # SIGINT, not timeout's default SIGTERM: Snakemake then scancels its SLURM jobs and exits; SIGKILL backs it up.
    return ["timeout", "-s", "INT", "-k", "30", "300", *command]


def run_on_slurm(workflow: Workflow, check: bool) -> tuple[subprocess.CompletedProcess, float]:
    command = run_on_slurm_command(workflow)
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=360)
    if (done.returncode == 0) != check:
        raise AssertionError(f"snakemake on SLURM exit {done.returncode}\n{done.stdout}\n{done.stderr[-6000:]}")
    return done, time.monotonic() - started


def slurm_jobs(done: subprocess.CompletedProcess) -> dict[str, str]:
    """State of each SLURM job this run submitted (squeue keeps finished jobs for MinJobAge)."""
    ids = SUBMITTED.findall(done.stdout + done.stderr)
    listed = subprocess.run(
        ["squeue", "-h", "-t", "all", "-j", ",".join(ids), "-o", "%i %T"], capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split() for line in listed.splitlines())


def without(record: dict, *keys: str) -> dict:
    return {key: value for key, value in record.items() if key not in keys}


def test_backfill_on_slurm_equals_a_local_run(slurm, tmp_path, archives):
    local = Workflow(tmp_path / "local", archives)
    started = time.monotonic()
    local.run()
    local_wall = time.monotonic() - started
    cluster = Workflow(tmp_path / "cluster", archives)
    done, cluster_wall = run_on_slurm(cluster, check=True)
    print(f"\nsample backfill ({len(BUNDLES)} bundles): local --cores 2 {local_wall:.1f} s, SLURM {cluster_wall:.1f} s")
    # The bundles really went through SLURM, grouped: 2 jobs of 3 bundles, not 6 jobs.
    assert list(slurm_jobs(done).values()) == ["COMPLETED", "COMPLETED"]
    for bundle in BUNDLES:
        assert cluster.status(bundle)["status"] == "ok"
    # Every file the runs wrote is the same, refined.xlsx included; only the times a job ran differ.
    for folder in ("outputs", "data-docs"):
        assert_same_files(cluster.restore / folder, local.restore / folder)


BUILT = re.compile(rb"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:\d{2}|Z)?")


def assert_same_files(ours: Path, theirs: Path) -> None:
    """Same file names under both folders, byte for byte the same, except when each job ran:
    provenance.json's started/finished and job record (timings, host, SLURM job id), the run record's
    run id, and the data docs' "built" line that shows the times."""
    names = sorted(p.relative_to(ours).as_posix() for p in ours.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(theirs).as_posix() for p in theirs.rglob("*") if p.is_file())
    assert names
    for name in names:
        mine, reference = (ours / name).read_bytes(), (theirs / name).read_bytes()
        if name.endswith("provenance.json"):
            mine, reference = (without(json.loads(text), "started", "finished", "job") for text in (mine, reference))
        elif name.startswith("runs/") and name.endswith(".json"):  # not the gate's .passed marker
            mine, reference = (without(json.loads(text), "run_id") for text in (mine, reference))
        elif name.endswith(".html"):
            mine, reference = BUILT.sub(b"<time>", mine), BUILT.sub(b"<time>", reference)
        assert mine == reference, name


def test_a_failing_bundle_on_slurm_is_reported_and_the_others_finish(slurm, tmp_path, archives):
    (archives / "2025-09-30" / "hotpass-inputs-v1.zip").write_bytes(b"not a zip at all")
    cluster = Workflow(tmp_path / "cluster", archives)
    done, wall = run_on_slurm(cluster, check=False)
    print(f"\nsample backfill with a failing bundle on SLURM: {wall:.1f} s")
    assert done.returncode != 0
    assert "2025-09-30--v1" in done.stderr and "FAILED to process" in done.stderr
    # The bundle job records the failure and succeeds; the gate (a local rule) fails the run.
    assert set(slurm_jobs(done).values()) == {"COMPLETED"}
    assert cluster.status("2025-09-30--v1")["status"] == "failed_processing"
    assert "not a readable zip" in cluster.status("2025-09-30--v1")["error"]
    assert [b for b in BUNDLES if cluster.status(b)["status"] != "ok"] == ["2025-09-30--v1"]
    assert all((cluster.outputs(b) / "refined.parquet").exists() for b in BUNDLES if b != "2025-09-30--v1")
    assert (cluster.restore / "data-docs" / "index.html").exists()


def test_a_killed_slurm_job_fails_its_group_only_and_a_rerun_redoes_it(slurm, tmp_path, archives):
    """A job SLURM kills (time or memory limit, node failure; here scancel) fails its whole group."""
    cluster = Workflow(tmp_path / "cluster", archives)
    command = run_on_slurm_command(cluster)
    listed = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i"], capture_output=True, text=True, check=True)
    known = set(listed.stdout.split())
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        victim = None
        deadline = time.monotonic() + 120
        while victim is None and time.monotonic() < deadline and run.poll() is None:
            listed = subprocess.run(["squeue", "-h", "-t", "running", "-o", "%i"], capture_output=True, text=True)
            victim = next((job for job in listed.stdout.split() if job not in known), None)
            time.sleep(0.2)
        assert victim, "no SLURM job of this run was seen running"
        subprocess.run(["scancel", victim], check=True)
        stdout, stderr = run.communicate(timeout=360)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode != 0, stdout + stderr
    # Reported with the job's SLURM log (show-failed-logs), which carries slurmstepd's reason.
    assert "Error in group bundles" in stderr and f"JOB {victim} ON" in stderr and "CANCELLED" in stderr
    done = {b for b in BUNDLES if (cluster.outputs(b) / "bundle.json").exists()}
    assert len(done) == 3  # the other group of 3 finished; the killed group's outputs were removed
    assert not (cluster.restore / "data-docs").exists()  # no docs or gate over an incomplete window
    rerun, _ = run_on_slurm(cluster, check=True)
    assert len(SUBMITTED.findall(rerun.stdout + rerun.stderr)) == 1  # only the killed group again
    assert all(cluster.status(b)["status"] == "ok" for b in BUNDLES)
