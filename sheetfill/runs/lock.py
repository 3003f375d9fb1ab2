"""One active run per restore_root: an exclusive lock on `<restore_root>/.sheetfill/run.lock`.

Snakemake's own lock covers one working directory; two runs from different working directories
that share a restore_root would replace each other's restored folders mid-read. This lock is taken
when a run starts executing jobs (not for dry runs) and names its holder: pid, host, start time,
window. It is an flock(2): the kernel drops it when the holder dies, even on kill -9, so a stale
lock never blocks the next run. Within one process the lock is re-entrant: a second acquire (the
Snakefile's, under a front end that holds the lock around the run it drives in-process) returns a
handle whose release does nothing, so only the first holder ever gives the lock up.

    lock = acquire(restore_root, window)   # RunLocked (a SheetfillError) names the holder
    ...
    lock.release()
    holder(restore_root)                    # None, or {"pid", "host", "started", "window", ...}
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
from pathlib import Path

from sheetfill.errors import SheetfillError

_HELD: dict[str, RunLock] = {}  # lock file → the lock this process holds on it


class RunLocked(SheetfillError):
    """Another run holds the restore_root; `holder` describes it (may be {} while it is starting)."""

    def __init__(self, restore_root: Path, info: dict):
        self.holder = info
        super().__init__(f"another run holds the lock on restore_root {restore_root}: {describe(info)}")


def describe(info: dict) -> str:
    if not info:
        return "a run that is just starting (no details yet); try again in a moment."
    window = info.get("window") or {}
    span = f"{window.get('since') or 'first'} .. {window.get('until') or 'newest'}" if window else "unknown"
    return (
        f"pid {info.get('pid')} on host {info.get('host')}, started {info.get('started')}, window {span}"
        f" (run {info.get('run_id') or '-'}, working directory {info.get('cwd')}). Wait for it to finish;"
        " this run did nothing."
    )


def lock_file(restore_root: Path) -> Path:
    return Path(restore_root).resolve() / ".sheetfill" / "run.lock"  # one key however it is spelled


class RunLock:
    def __init__(self, path: Path, fd: int, info: dict):
        self.path, self.fd, self.info = path, fd, info  # fd -1: a nested handle, owning nothing

    def release(self) -> None:
        """Give the lock up (a no-op for a nested handle or a second call)."""
        if self.fd < 0:
            return
        _HELD.pop(str(self.path), None)
        try:
            os.ftruncate(self.fd, 0)  # no stale holder details for a reader
        except OSError:
            pass
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = -1


def acquire(restore_root: Path, window: dict | None = None) -> RunLock:
    """Take the restore_root's lock without waiting; RunLocked when another process holds it."""
    path = lock_file(restore_root)
    held = _HELD.get(str(path))
    if held is not None:
        return RunLock(path, -1, held.info)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunLocked(restore_root, _read_info(path)) from None
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "window": window,
        "run_id": os.environ.get("SHEETFILL_RUN_ID"),
        "cwd": os.getcwd(),
    }
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info, sort_keys=True) + "\n").encode(), 0)
    except OSError:  # a full disk: the lock holds all the same, others see "no details yet"
        pass
    lock = _HELD[str(path)] = RunLock(path, fd, info)
    return lock


def holder(restore_root: Path) -> dict | None:
    """Who holds the restore_root's lock now, or None when nobody does."""
    path = lock_file(restore_root)
    if str(path) in _HELD:
        return _HELD[str(path)].info
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_info(path)
    finally:
        os.close(fd)
    return None


def _read_info(path: Path) -> dict:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
