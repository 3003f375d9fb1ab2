"""Disk room kept for the error of a job that starts on a full disk.

A bundle job reserves room for its log and its bundle.json when it starts, so that running out of
space later still leaves both. A job that starts after another has filled the disk cannot reserve
anything. For it, the run keeps a pool under `<restore_root>/.sheetfill/reserve`, topped up when the
run starts: files with room allocated for a log, and staging folders holding an allocated
bundle.json. Such a job takes one of each by renaming it into place (atomic: no two jobs get the
same one, and a rename needs no free space). Standard library only: this runs in every job.
"""

from __future__ import annotations

import os
from pathlib import Path

SLOTS = 8  # of each kind: enough for the jobs of one run that start with no byte free
ROOM = 64 * 1024  # bytes per slot: a job's error in its log, or a bundle.json


def pool(restore_root) -> Path:
    return Path(restore_root) / ".sheetfill" / "reserve"


def allocate(path: Path, size: int = ROOM) -> bool:
    """Create path with `size` bytes of disk allocated to it; False if there is no room."""
    with open(path, "wb") as handle:
        try:
            os.posix_fallocate(handle.fileno(), 0, size)
            return True
        except OSError:  # no room, or a file system without fallocate: the write may still fit
            return False


def fill_pool(restore_root) -> None:
    """Top the pool up to SLOTS of each kind, as far as the disk allows (called as a run starts)."""
    folder = pool(restore_root)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(SLOTS):
            log, record = folder / f"log-{index}", folder / f"record-{index}"
            if not log.exists() and not allocate(log):
                log.unlink(missing_ok=True)
            if not record.exists():
                record.mkdir()
                if not allocate(record / "bundle.json"):
                    (record / "bundle.json").unlink(missing_ok=True)
    except OSError:  # a full or read-only disk: the jobs do without
        pass


def take(restore_root, kind: str, destination: Path) -> bool:
    """Move one pool slot of `kind` (log | record) to destination; False when none is left."""
    for slot in sorted(pool(restore_root).glob(f"{kind}-*")):
        try:
            os.rename(slot, destination)
            return True
        except FileNotFoundError:  # another job took it first
            continue
        except OSError:
            return False
    return False
