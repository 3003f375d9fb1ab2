"""The warm worker's life: each worker process is replaced after JOBS_PER_WORKER jobs, the server exits
after IDLE_SECONDS without work, and `worker: off` runs every bundle job without one.

Each test gets its own runtime folder (XDG_RUNTIME_DIR), so its server is its own and no other
test's or helper's server can answer its jobs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from test_worker import CLIENT

IDLE = 6  # seconds: long enough that sequential jobs never find the server gone, short to wait for
PER_WORKER = 2


def runtime_env(tmp_path: Path) -> dict:
    (tmp_path / "run").mkdir(exist_ok=True)
    return {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path / "run")}


def socket_of(env: dict) -> str:
    code = "from sheetfill.jobs.worker import socket_path; print(socket_path())"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def server(tmp_path):
    """A worker server with small IDLE_SECONDS and JOBS_PER_WORKER, at the socket clients look for."""
    env = runtime_env(tmp_path)
    path = socket_of(env)
    code = (
        "import sys, sheetfill.jobs.worker as w; "
        f"w.IDLE_SECONDS = {IDLE}; w.JOBS_PER_WORKER = {PER_WORKER}; w.serve(sys.argv[1])"
    )
    with open(tmp_path / "server.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", code, path], env=env, stdout=log, stderr=log, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120  # preloading and the warm-up refine come first
        while not os.path.exists(path) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert os.path.exists(path), (tmp_path / "server.log").read_text()
        yield process, path, env
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # its own session: the server and its workers only
            process.wait(timeout=30)


def pack_job(folder: Path, env: dict) -> str:
    (folder / "out").mkdir(parents=True)
    (folder / "out" / "a.txt").write_text(folder.name)
    argv = ["pack", "--outputs", str(folder / "out"), "--zip", str(folder / "o.zip")]
    done = subprocess.run([sys.executable, "-c", CLIENT, *argv], env=env, capture_output=True, text=True, timeout=60)
    return done.stdout.strip()


def test_workers_are_replaced_after_their_job_count_and_the_server_exits_when_idle(server, tmp_path):
    process, path, env = server
    parent = psutil.Process(process.pid)
    seen, stop = set(), threading.Event()
    # Every worker is watched for, not sampled between jobs: on a loaded machine a worker could be
    # forked, serve its two jobs and be reaped between two samples (a CI failure).
    watcher = threading.Thread(target=watch_children, args=(parent, seen, stop), daemon=True)
    watcher.start()
    try:
        for i in range(6):
            assert pack_job(tmp_path / f"job{i}", env) == "code=0"
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert process.poll() is None  # jobs kept coming: the server stays
    # 6 jobs, at most 2 per worker: at least 3 workers served (one worker for all would be 1 or 2)
    assert len(seen) >= 3, seen
    deadline = time.monotonic() + 10
    while seen <= {child.pid for child in alive_children(parent)} and time.monotonic() < deadline:
        time.sleep(0.1)  # a used-up worker exits after its last job; the server reaps it within a second
    assert not seen <= {child.pid for child in alive_children(parent)}, "no worker was retired"
    process.wait(timeout=IDLE + 30)  # then nothing: it exits on its own, with its workers
    assert process.returncode == 0
    assert not os.path.exists(path)
    assert not [pid for pid in seen if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    # a job after that starts a new server (default settings) and still runs
    assert pack_job(tmp_path / "later", env) == "code=0"
    stop_servers_at(path)


def watch_children(parent: psutil.Process, seen: set[int], stop: threading.Event) -> None:
    """Add the pid of every child of parent to seen until stop is set (each job is a client process
    start, tens of milliseconds, so a worker serving two jobs lives far longer than one poll)."""
    while not stop.wait(0.005):
        try:
            seen |= {child.pid for child in parent.children()}
        except psutil.NoSuchProcess:
            return


def alive_children(parent: psutil.Process) -> list[psutil.Process]:
    try:
        return [c for c in parent.children() if c.status() != psutil.STATUS_ZOMBIE]
    except psutil.NoSuchProcess:  # the server itself is gone: so are its workers
        return []


def stop_servers_at(path: str) -> None:
    """Stop the server this test's own client started (it would idle for a minute otherwise)."""
    for proc in psutil.process_iter(["cmdline"]):
        if proc.info["cmdline"] and path in proc.info["cmdline"] and "sheetfill.jobs.worker" in proc.info["cmdline"]:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


@pytest.mark.slow
def test_worker_off_runs_bundle_jobs_without_a_worker_and_gives_the_same_outputs(tmp_path, archives, monkeypatch):
    from conftest import Workflow

    window = {"since": "2025-09-29", "until": "2025-09-29", "versions": ["v1"]}
    runtime = tmp_path / "run" / f"sheetfill-{os.getuid()}"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    off = Workflow(tmp_path / "off", archives)
    off.run(worker="off", **window)
    assert off.status("2025-09-29--v1")["status"] == "ok"
    assert not runtime.exists() or not list(runtime.iterdir()), "a worker was started or asked"
    auto = Workflow(tmp_path / "auto", archives)
    auto.run(worker="auto", **window)
    sockets = sorted(p.suffix for p in runtime.iterdir())
    assert ".lock" in sockets and ".log" in sockets  # the control: with auto the job did use a worker
    stop_servers_at(str(next(runtime.glob("*.lock"))).removesuffix(".lock") + ".sock")
    for name in ("refined.parquet", "refined.xlsx", "rejected.csv", "validation.json", "bundle.json"):
        assert (off.outputs("2025-09-29--v1") / name).read_bytes() == (
            auto.outputs("2025-09-29--v1") / name
        ).read_bytes()
