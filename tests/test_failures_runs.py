"""Runs cannot spoil each other, and the remaining run-level failures are clear (issue 11):
the restore_root lock, cursor trouble, permission denied, a full disk, stale staging folders and
the worker pool losing its server. Real processes, real Snakemake runs, real file systems."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import Workflow

pytestmark = pytest.mark.slow
ALL6 = ["2025-09-29--v1", "2025-09-29--v2", "2025-09-30--v1", "2025-09-30--v2", "2025-10-01--v1", "2025-10-01--v2"]
HOLD = (
    "import sys; from sheetfill.runs.lock import acquire; "
    "acquire(sys.argv[1], {'since': '2025-09-29', 'until': '2025-09-30', 'versions': None}); "
    "print('held', flush=True); sys.stdin.read()"
)
# Root ignores file permissions; without these two capabilities it obeys them like any user.
NO_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


def cli(*args, prefix=(), cwd=None):
    command = [*prefix, sys.executable, "-m", "sheetfill.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=cwd)


def locations(workflow: Workflow) -> list[str]:
    return ["--archive-root", str(workflow.archives), "--restore-root", str(workflow.restore)]


@pytest.fixture
def holder(workflow):
    """Another process holding the restore_root's lock, as a running workflow would."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(workflow.restore)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def test_a_held_restore_root_refuses_the_run_before_any_job_and_names_the_holder(workflow, holder):
    from sheetfill.runs.lock import holder as lock_holder

    info = lock_holder(workflow.restore)
    assert info["pid"] == holder.pid and info["window"]["since"] == "2025-09-29"

    done = workflow.run(check=False)
    assert done.returncode != 0
    message = done.stdout + done.stderr
    assert "another run holds the lock on restore_root" in message
    assert f"pid {holder.pid}" in message and socket.gethostname() in message and info["started"] in message
    assert "2025-09-29 .. 2025-09-30" in message
    assert sorted(p.name for p in workflow.restore.iterdir()) == [".sheetfill"]  # no job ran
    assert workflow.planned_bundles() == ALL6  # a dry run needs no lock

    backfill = cli("backfill", "--start-date", "2025-09-29", "--end-date", "2025-09-29", *locations(workflow))
    assert backfill.returncode == 2
    assert backfill.stdout == ""  # no made-up per-bundle report
    assert "another run holds the lock" in backfill.stderr and f"pid {holder.pid}" in backfill.stderr
    assert "failed" not in backfill.stderr
    assert sorted(p.name for p in workflow.restore.iterdir()) == [".sheetfill"]


def test_the_lock_goes_with_its_holder_even_on_kill_9(workflow):
    from sheetfill.runs.lock import holder as lock_holder

    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(workflow.restore)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    proc.kill()
    proc.wait()
    assert lock_holder(workflow.restore) is None
    done = cli(
        "backfill", "--start-date", "2025-09-29", "--end-date", "2025-09-29", "--version", "v1", *locations(workflow)
    )
    assert done.returncode == 0, done.stderr
    assert lock_holder(workflow.restore) is None  # released when the run ended


def test_cursor_that_is_a_directory_or_corrupt(workflow):
    cursor = workflow.restore / ".sheetfill" / "cursor.json"
    cursor.mkdir(parents=True)
    for args in (["cursor", "show"], ["cursor", "reset"], ["backfill"]):
        done = cli(*args, *locations(workflow))
        assert done.returncode == 2, (args, done.stderr)
        assert "is a directory" in done.stderr and "Traceback" not in done.stderr
    planned = workflow.run(check=False)  # a scheduled Snakemake run stops before any job
    assert planned.returncode != 0 and "is a directory" in planned.stderr
    assert not (workflow.restore / "outputs").exists()

    cursor.rmdir()
    cursor.write_text("{not json")  # a corrupt cursor never blocks a backfill, which never reads it
    done = cli(
        "backfill", "--start-date", "2025-09-29", "--end-date", "2025-09-29", "--version", "v2", *locations(workflow)
    )
    assert done.returncode == 0, done.stderr
    assert workflow.status("2025-09-29--v2")["status"] == "ok"
    assert cursor.read_text() == "{not json"


@pytest.fixture
def no_dac():
    probe = subprocess.run([*NO_DAC, "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("setpriv cannot drop capabilities here")
    return NO_DAC if os.geteuid() == 0 else []


def test_permission_denied_is_named_for_an_archive_and_for_archive_root(workflow, no_dac):
    unreadable = workflow.archives / "2025-09-29" / "hotpass-inputs-v1.zip"
    unreadable.chmod(0)
    command = [*no_dac, *workflow.command(since="2025-09-29", until="2025-09-29", worker="off")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    failed = workflow.status("2025-09-29--v1")
    assert failed["status"] == "failed_processing" and "permission denied" in failed["error"]
    assert "2025-09-29--v1" in failed["error"] and "hotpass-inputs-v1.zip" in failed["error"]
    assert failed["members"] is None  # an archive nobody can open cannot be listed either, and says so
    assert workflow.status("2025-09-29--v2")["status"] == "ok"
    assert (workflow.restore / "data-docs" / "index.html").exists()
    page = (workflow.restore / "data-docs" / "bundles" / "2025-09-29--v1.html").read_text()
    assert "members could not be listed" in page
    assert list((workflow.restore / "outputs" / "runs").glob("*.json"))

    workflow.archives.chmod(0)
    try:
        done = cli("backfill", "--start-date", "2025-09-29", *locations(workflow), prefix=no_dac)
    finally:
        workflow.archives.chmod(0o755)
    assert done.returncode == 2
    assert "permission denied" in done.stderr and "no archive" not in done.stderr.lower()


@pytest.fixture
def small_disk(tmp_path):
    """restore_root on a tmpfs of about half the space the window needs."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a tmpfs")
    mount = tmp_path / "restore"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr!r}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_fails_visibly_and_the_next_run_cleans_up_and_builds(workflow, small_disk):
    subprocess.run(["mount", "-o", "remount,size=256M", str(small_disk)], check=True)
    workflow.run()  # measures what the window needs
    needed = shutil.disk_usage(small_disk).used
    for entry in small_disk.iterdir():
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    shutil.rmtree(workflow.workdir / ".snakemake")
    subprocess.run(["mount", "-o", f"remount,size={needed // 2}", str(small_disk)], check=True)
    done = workflow.run(check=False)
    assert done.returncode != 0
    logs = workflow.restore / "logs" / "bundle"
    recorded = []
    for bundle in ALL6:  # every bundle has its record, even one whose job started with no byte free
        status = workflow.status(bundle)
        if status["status"] != "ok":
            assert "No space left on device" in status["error"], status
            assert status["error"] in (logs / f"{bundle}.log").read_text()  # the job's log says it too
            # its restored copy gave its room back (Snakemake's own timestamp file aside)
            assert {p.name for p in (workflow.restore / bundle).iterdir()} <= {".snakemake_timestamp"}
            recorded.append(bundle)
    assert recorded, "no bundle recorded its full-disk failure"
    failed_jobs = re.findall(r"Error in rule (\w+):", done.stderr)
    assert "bundle" not in failed_jobs  # each bundle job recorded its failure and exited 0
    for name in failed_jobs:  # a run-level job that failed says why in its log
        assert "No space left on device" in (workflow.restore / "logs" / f"{name}.log").read_text(), name

    # A killed job's staging folders, left behind; the next run (with room again) removes them all.
    for parent in (workflow.restore, workflow.restore / "outputs"):
        parent.mkdir(exist_ok=True)
        (parent / ".2025-09-29--v1.partial-999999").mkdir(exist_ok=True)
    subprocess.run(["mount", "-o", "remount,size=256M", str(small_disk)], check=True)
    workflow.run("--forcerun", "bundle")  # failed bundles keep their record until forced (README)
    assert all(workflow.status(b)["status"] == "ok" for b in ALL6)
    assert not list(workflow.restore.rglob(".*.partial-*"))
    assert json.loads(next((workflow.restore / "outputs" / "runs").glob("*.json")).read_text())["ok"] is True


# ---------------------------------------------------------------- the worker pool

CLIENT = (
    "import sys; from sheetfill.jobs.worker import run_via_worker; code = run_via_worker(sys.argv[1:]); "
    "print('fallback' if code is None else f'code={code}'); sys.exit(0)"
)


def pack_via_worker(tmp_path) -> str:
    (tmp_path / "out").mkdir(exist_ok=True)
    (tmp_path / "out" / "a.txt").write_text("hello")
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, "pack", "--outputs", str(tmp_path / "out"), "--zip", str(tmp_path / "o.zip")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout.strip()


def server_of(path: str):
    """The worker server listening on path (its forked workers share its command line)."""
    import psutil

    procs = [p for p in psutil.process_iter(["cmdline", "ppid"]) if path in (p.info["cmdline"] or [])]
    pids = {p.pid for p in procs}
    servers = [p for p in procs if p.info["ppid"] not in pids]
    return servers[0] if servers else None


def gone(proc) -> bool:
    import psutil

    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_workers_exit_when_their_server_dies_and_stale_sockets_are_removed(tmp_path):
    from sheetfill.jobs.worker import socket_path

    path = socket_path()
    assert pack_via_worker(tmp_path) == "code=0"
    server = server_of(path)
    assert server is not None
    workers = server.children()
    assert workers, "the server forked no worker"
    server.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 30  # far less than the 60 s idle timeout
    while time.monotonic() < deadline and not all(gone(w) for w in workers):
        time.sleep(0.05)
    assert all(gone(w) for w in workers), "workers outlived their server"
    assert os.path.exists(path)  # a killed server leaves its socket behind ...

    stale = os.path.join(os.path.dirname(path), "0000000000stale.sock")  # ... as did older servers
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(stale)
    leftover.close()
    assert pack_via_worker(tmp_path) == "code=0"  # a new server replaces the dead one's socket
    assert not os.path.exists(stale)
    fresh = server_of(path)
    assert fresh is not None and fresh.pid != server.pid
