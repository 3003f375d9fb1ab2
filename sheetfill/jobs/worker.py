"""A warm worker that makes per-bundle jobs cheap on one machine.

Every bundle job is its own Snakemake job (per-bundle resumption, clear failures, cluster-ready),
but a fresh Python paying `import pandas` & co. on each job would cost more than the refine itself.
So the job's tiny client (`python -m sheetfill.jobs.job`) asks a long-lived server that has imported
everything once; a pool of worker processes forked from it takes the requests, runs each job with
the client's stdout/stderr (the job's log), working directory and environment, and reports its exit
code back. A worker dies when its client dies mid-job (Ctrl-C, kill, Snakemake cancelling the job),
so no job outlives its Snakemake job.

The server is started on demand, is keyed by the sheetfill source files (edited code → new
server) and exits after IDLE_SECONDS without work. Cluster jobs (SLURM_JOB_ID set) and
SHEETFILL_WORKER=off run in-process instead.
"""

from __future__ import annotations

# The client half runs once per job: standard library only, no pathlib/subprocess/threading at import.
import hashlib
import json
import os
import socket
import sys
import time

PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the sheetfill package
IDLE_SECONDS = 60
MAX_WORKERS = 64  # worker processes at most (one per job running at once)
JOBS_PER_WORKER = 200  # then the worker is replaced: bounds what slow leaks a job could leave behind
PRELOAD = (
    "sheetfill.bundle.process",
    "sheetfill.refine",
    "sheetfill.bundle.validation",
    "sheetfill.bundle.diff",
    "pandas",
    "pyarrow.parquet",
)


def enabled() -> bool:
    return os.environ.get("SHEETFILL_WORKER", "auto") != "off" and "SLURM_JOB_ID" not in os.environ


def socket_path() -> str:
    """One server per interpreter + source tree state; short path (AF_UNIX allows ~107 bytes)."""
    stamp = hashlib.sha256(sys.executable.encode())
    for folder, _, files in sorted(os.walk(PACKAGE)):
        for name in sorted(f for f in files if f.endswith(".py")):
            info = os.stat(os.path.join(folder, name))
            stamp.update(f"{folder}/{name}:{info.st_mtime_ns}:{info.st_size}".encode())
    runtime = os.path.join(os.environ.get("XDG_RUNTIME_DIR") or "/tmp", f"sheetfill-{os.getuid()}")
    os.makedirs(runtime, mode=0o700, exist_ok=True)
    return os.path.join(runtime, f"{stamp.hexdigest()[:16]}.sock")


# ---------------------------------------------------------------- client side


def run_via_worker(argv: list[str]) -> int | None:
    """Run `sheetfill.jobs.job` argv in a warm worker; None when no worker can be used."""
    if not enabled():
        return None
    try:
        path = socket_path()
        conn = _connect(path) or _start_server_and_connect(path)
        if conn is None:
            return None
        with conn:
            request = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
            socket.send_fds(conn, [len(request).to_bytes(8, "big") + request], [1, 2])
            reply = conn.makefile("rb").readline()
        return int(reply) if reply.strip() else None
    except OSError:
        return None


def _connect(path: str) -> socket.socket | None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
        return conn
    except OSError:
        conn.close()
        return None


def _start_server_and_connect(path: str) -> socket.socket | None:
    """Start the server once even when several jobs start together (a lock file serialises them)."""
    import fcntl
    import subprocess

    stem = path.removesuffix(".sock")
    with open(stem + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        conn = _connect(path)
        if conn:
            return conn
        with open(stem + ".log", "ab") as log:
            pythonpath = os.pathsep.join(filter(None, [os.path.dirname(PACKAGE), os.environ.get("PYTHONPATH")]))
            subprocess.Popen(
                [sys.executable, "-m", "sheetfill.jobs.worker", path],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                env={**os.environ, "PYTHONPATH": pythonpath},
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            conn = _connect(path)
            if conn:
                return conn
            time.sleep(0.02)
    return None


# ---------------------------------------------------------------- server side


def serve(path: str) -> None:
    """Preload, warm up, then keep a pool of forked worker processes serving jobs until idle.

    Each worker blocks in accept() on the shared socket and serves jobs one after another, so a job
    pays neither start-up nor a fork; the server forks another worker whenever none is idle
    (so the pool grows to the number of jobs Snakemake runs at once) and stops them all after
    IDLE_SECONDS without work.
    """
    import importlib
    import selectors
    import signal

    from sheetfill.jobs.commands import enable_site

    enable_site()  # the server needs site-packages even when the client ran with python -S
    for module in PRELOAD:
        try:
            importlib.import_module(module)
        except ImportError as exc:  # still useful: workers import what they need themselves
            print(f"sheetfill worker: could not preload {module}: {exc}", file=sys.stderr)
    _warm_up()
    _remove(path)
    remove_stale_sockets(os.path.dirname(path))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(256)
    listener.setblocking(False)  # the workers wait in select() so that they also see the server die
    events_r, events_w = os.pipe()  # workers report b"+<pid>" when a job starts, b"-<pid>" when it ends
    lifeline = os.pipe()  # only the server holds the write end: EOF in a worker = the server is gone
    selector = selectors.DefaultSelector()
    selector.register(events_r, selectors.EVENT_READ)
    alive, busy = set(), set()
    last_work = time.monotonic()
    try:
        while busy or time.monotonic() - last_work < IDLE_SECONDS:
            if len(alive) == len(busy) and len(alive) < MAX_WORKERS:
                alive.add(_fork_worker(listener, events_w, lifeline))
            if selector.select(timeout=1.0):
                _apply_events(os.read(events_r, 4096), busy)
                last_work = time.monotonic()
            for pid in _reaped(alive):
                alive.discard(pid)
                busy.discard(pid)
    finally:
        _remove(path)
        for pid in alive:
            os.kill(pid, signal.SIGTERM)


def _apply_events(data: bytes, busy: set[int]) -> None:
    for event in data.decode().split():
        pid = int(event[1:])
        (busy.add if event[0] == "+" else busy.discard)(pid)


def _fork_worker(listener: socket.socket, events_w: int, lifeline: tuple[int, int]) -> int:
    pid = os.fork()
    if pid:
        return pid
    os.close(lifeline[1])
    code = 1
    try:
        for _ in range(JOBS_PER_WORKER):
            conn = _next_client(listener, lifeline[0])
            if conn is None:
                break  # the server died (even kill -9): no idle worker outlives it
            _tell(events_w, f"+{os.getpid()} ")
            _serve_one(conn)
            _tell(events_w, f"-{os.getpid()} ")
        code = 0
    finally:
        os._exit(code)


def _next_client(listener: socket.socket, lifeline: int) -> socket.socket | None:
    """The next job's connection, or None once the server is gone (its lifeline pipe at EOF)."""
    import select

    while True:
        ready, _, _ = select.select([listener, lifeline], [], [])
        if lifeline in ready:
            return None
        try:
            conn, _ = listener.accept()
        except BlockingIOError:  # another worker took this one
            continue
        conn.setblocking(True)
        return conn


def _tell(events_w: int, event: str) -> None:
    try:
        os.write(events_w, event.encode())
    except OSError:  # the server is gone; the job itself still runs to its end
        pass


def remove_stale_sockets(folder: str) -> list[str]:
    """Sockets in the runtime folder that nobody serves any more (a server killed with -9)."""
    removed = []
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if not name.endswith(".sock"):
            continue
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            _remove(path)
            removed.append(path)
        except OSError:
            pass
        finally:
            probe.close()
    return removed


def _warm_up() -> None:
    """Refine one tiny sample bundle so that every worker starts with lazy imports done and caches
    filled (phone metadata, compiled patterns, writers); figures in bench/RESULTS.md."""
    import gc
    import tempfile
    from datetime import date
    from pathlib import Path

    from sheetfill.bundle.process import BundleJob, process_bundle
    from sheetfill.runs.config import load_settings
    from sheetfill.sample import generate_bundle

    try:
        with tempfile.TemporaryDirectory(prefix="sheetfill-warm-") as tmp:
            root = Path(tmp)
            generate_bundle(root / "warm.zip", date(2025, 1, 1), "v1", scale=0.02)
            limits = load_settings({"archive_root": tmp}, check_paths=False).limits  # the config defaults
            process_bundle(
                BundleJob(
                    archive=root / "warm.zip",
                    bundle="2025-01-01--v1",
                    restored=root / "restored",
                    outputs=root / "out",
                    profile="aviation",
                    limits=limits,
                    window={},
                    history=root / "history",
                )
            )
    except Exception as exc:  # a cold worker is slower, not wrong
        print(f"sheetfill worker: warm-up skipped: {exc}", file=sys.stderr)
    gc.freeze()  # the workers' garbage collections then leave the inherited heap (and its pages) alone


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _reaped(children: set[int]) -> set[int]:
    done = set()
    for pid in children:
        if os.waitpid(pid, os.WNOHANG)[0]:
            done.add(pid)
    return done


def _serve_one(conn: socket.socket) -> None:
    """Run one client's job with its stdout/stderr, working directory and environment, then put
    the worker's own back, so nothing of one job leaks into the next."""
    import threading

    with conn:
        header, fds, _, _ = socket.recv_fds(conn, 8, 2)
        size = int.from_bytes(header, "big")
        payload = b""
        while len(payload) < size:
            payload += conn.recv(size - len(payload))
        request = json.loads(payload)
        saved = _enter_job(request, fds)
        finished = threading.Event()
        threading.Thread(target=_die_with_client, args=(conn, finished), daemon=True).start()
        try:
            code = _run_job(request["argv"])
        finally:
            finished.set()
            _leave_job(saved, fds)
        conn.sendall(f"{code}\n".encode())


def _enter_job(request: dict, fds: list[int]) -> tuple:
    saved = (os.dup(1), os.dup(2), os.getcwd(), dict(os.environ))
    os.dup2(fds[0], 1)
    os.dup2(fds[1], 2)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    return saved


def _leave_job(saved: tuple, fds: list[int]) -> None:
    stdout, stderr, cwd, environ = saved
    sys.stdout.flush()
    sys.stderr.flush()
    for fd, original in ((1, stdout), (2, stderr)):
        os.dup2(original, fd)
        os.close(original)
    for fd in fds:
        os.close(fd)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(environ)


def _die_with_client(conn: socket.socket, finished) -> None:
    """The client never sends more: EOF before the job finished means it was killed (Ctrl-C, kill,
    Snakemake cancelling), so the worker stops working on its job at once; the server replaces it."""
    try:
        closed = conn.recv(1) == b""
    except OSError:  # the worker closed the connection itself: the job is over
        return
    if closed and not finished.is_set():
        os._exit(1)


def _run_job(argv: list[str]) -> int:
    from sheetfill.jobs.commands import run_in_process

    os.environ["SHEETFILL_JOB_MODE"] = "worker"  # task metadata (provenance.json "job"); reset after the job
    try:
        return run_in_process(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
        return 1


if __name__ == "__main__":
    serve(sys.argv[1])
