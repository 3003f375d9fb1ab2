"""SQLite files in WAL mode that several processes open at once (run ledger, enrichment cache/breaker).

Switching a new file to WAL and creating its tables race when two processes do it together: SQLite
answers the loser "database is locked" at once, without waiting out the busy timeout. A file lock
beside the database serialises that first step; later reads and writes need no lock of ours.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def opening(path, timeout: float = 60.0):
    """Hold while opening and initialising the database at `path` (its folder is created)."""
    from filelock import FileLock

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.open-lock", timeout=timeout):
        yield


def connect(path, timeout: float, **options) -> sqlite3.Connection:
    """A connection in autocommit mode with the file in WAL mode; call inside `opening`."""
    db = sqlite3.connect(path, timeout=timeout, isolation_level=None, **options)
    db.execute("PRAGMA journal_mode=WAL")
    return db
