"""The SLURM execution profile (profiles/slurm) on a real single-node SLURM set up by hpc/slurm-local.sh.

Needs root and either apt-get or installed SLURM daemons; elsewhere the tests skip and say why.
Snakemake ignores SIGTERM while it waits for cluster jobs, so every run is bounded by `timeout -k`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import REPO, Workflow

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

SETUP = REPO / "hpc" / "slurm-local.sh"
BUNDLES = ["2025-09-29--v1", "2025-09-29--v2", "2025-09-30--v1", "2025-09-30--v2", "2025-10-01--v1", "2025-10-01--v2"]
# No accounting database on the test cluster: job states come from squeue; poll soon after submitting.
ON_SLURM = ["--profile", str(REPO / "profiles" / "slurm"), "--slurm-status-command", "squeue",
            "--slurm-init-seconds-before-status-checks", "2"]


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
        pytest.skip(reason)
    started = time.monotonic()
    up = subprocess.run(["bash", str(SETUP), "up"], capture_output=True, text=True, timeout=900)
    if up.returncode != 0:  # the machine can run SLURM, so a failed set-up is a failure, not a skip
        pytest.fail(f"hpc/slurm-local.sh up failed:\n{up.stdout}\n{up.stderr}")
    print(f"\nSLURM set up in {time.monotonic() - started:.1f} s")
    yield
    down = subprocess.run(["bash", str(SETUP), "down"], capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    # Left behind, its slurm.conf would make every later snakemake start wait 9 s on `scontrol`.
    conf = Path("/etc/slurm/slurm.conf")
    assert not conf.exists() or "sheetfill" not in conf.read_text()


def slurm_job_count() -> int:
    listed = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i"], capture_output=True, text=True, check=True)
    return len(listed.stdout.split())


def run_on_slurm(workflow: Workflow, check: bool) -> tuple[subprocess.CompletedProcess, float]:
    command = ["timeout", "-k", "10", "400", *workflow.command(*ON_SLURM)]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=450)
    if (done.returncode == 0) != check:
        raise AssertionError(f"snakemake on SLURM exit {done.returncode}\n{done.stdout}\n{done.stderr[-6000:]}")
    return done, time.monotonic() - started


def test_backfill_on_slurm_equals_a_local_run(slurm, tmp_path, archives):
    local = Workflow(tmp_path / "local", archives)
    started = time.monotonic()
    local.run()
    local_wall = time.monotonic() - started
    cluster = Workflow(tmp_path / "cluster", archives)
    jobs_before = slurm_job_count()
    _, cluster_wall = run_on_slurm(cluster, check=True)
    print(f"\nsample backfill ({len(BUNDLES)} bundles): local --cores 2 {local_wall:.1f} s, "
          f"SLURM {cluster_wall:.1f} s")
    assert slurm_job_count() > jobs_before  # the bundles really went through SLURM
    for bundle in BUNDLES:
        ours, theirs = cluster.outputs(bundle), local.outputs(bundle)
        assert (ours / "refined.parquet").read_bytes() == (theirs / "refined.parquet").read_bytes()
        assert (ours / "validation.json").read_text() == (theirs / "validation.json").read_text()
        assert cluster.status(bundle) == local.status(bundle)
    assert (cluster.restore / "data-docs" / "index.html").exists()


def test_a_failing_bundle_on_slurm_is_reported_and_the_others_finish(slurm, tmp_path, archives):
    (archives / "2025-09-30" / "hotpass-inputs-v1.zip").write_bytes(b"not a zip")
    cluster = Workflow(tmp_path / "cluster", archives)
    done, _ = run_on_slurm(cluster, check=False)
    assert done.returncode != 0
    assert "2025-09-30--v1" in done.stderr and "FAILED to process" in done.stderr
    assert cluster.status("2025-09-30--v1")["status"] == "failed_processing"
    assert [b for b in BUNDLES if cluster.status(b)["status"] != "ok"] == ["2025-09-30--v1"]
    assert all((cluster.outputs(b) / "refined.parquet").exists() for b in BUNDLES if b != "2025-09-30--v1")
