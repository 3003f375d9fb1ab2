"""The run ledger: every run, every bundle slot of it and its numbered events, in SQLite (WAL).

One file per restore_root, `<restore_root>/.sheetfill/ledger.sqlite`, written by the logger plugin
(through LedgerSink) and by the service, read by the service and `sheetfill runs`. WAL lets readers
go on while a run writes. SQLite locking needs a local disk (docs/hpc.md).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from sheetfill import wal

LEDGER_NAME = "ledger.sqlite"
RUN_STATUSES = ("queued", "running", "cancelling", "cancelled", "succeeded", "completed_with_failures", "failed")
ACTIVE = ("queued", "running", "cancelling")
FINAL = ("cancelled", "succeeded", "completed_with_failures", "failed")
# a bundle slot: pending -> running -> ok | failed_validation | failed_processing; or skipped (up to date),
# planned (dry runs), not_run (the run ended before it)
FAILED_BUNDLE = ("failed_validation", "failed_processing")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, kind TEXT, origin TEXT, since TEXT, until TEXT, versions TEXT,
    reprocess TEXT, force INTEGER DEFAULT 0, dry_run INTEGER DEFAULT 0, status TEXT NOT NULL,
    created REAL, started REAL, finished REAL, heartbeat REAL, exit_code INTEGER, error TEXT,
    pid INTEGER, cancel_mode TEXT, request TEXT, bundles_planned INTEGER, done INTEGER, total INTEGER
);
CREATE INDEX IF NOT EXISTS runs_by_created ON runs (created);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status);
CREATE TABLE IF NOT EXISTS bundles (
    run_id TEXT NOT NULL, bundle TEXT NOT NULL, status TEXT NOT NULL, reason TEXT,
    started REAL, finished REAL, duration_s REAL, rows_in INTEGER, records_out INTEGER, error TEXT,
    updated REAL, threads INTEGER, memory_mb INTEGER, host TEXT, slurm_job_id TEXT, mode TEXT,
    expectations_failed INTEGER, PRIMARY KEY (run_id, bundle)
);
CREATE INDEX IF NOT EXISTS bundles_by_bundle ON bundles (bundle, updated);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, kind TEXT NOT NULL, time REAL,
    data TEXT
);
CREATE INDEX IF NOT EXISTS events_by_run ON events (run_id, seq);
"""
RUN_FIELDS = (
    "kind origin since until versions reprocess force dry_run status created started finished heartbeat "
    "exit_code error pid cancel_mode request bundles_planned done total"
).split()
# the bundle job's task metadata (bundle.json "job.task", sheetfill.telemetry.stages)
TASK_FIELDS = "threads memory_mb host slurm_job_id mode".split()
# columns added after the first ledgers were written: older files get them on opening
ADDED_COLUMNS = {"threads": "INTEGER", "memory_mb": "INTEGER", "host": "TEXT", "slurm_job_id": "TEXT"}
ADDED_COLUMNS |= {"mode": "TEXT", "expectations_failed": "INTEGER"}
SLOT_FIELDS = "status reason started finished duration_s rows_in records_out expectations_failed error".split()
SLOT_FIELDS += TASK_FIELDS
JSON_FIELDS = ("versions", "request")


def ledger_path(restore_root) -> Path:
    return Path(restore_root) / ".sheetfill" / LEDGER_NAME


class Ledger:
    """Thread-safe access to one ledger file; every method is one short transaction."""

    def __init__(self, path, timeout: float = 30.0):
        self.path = Path(path)
        self._lock = threading.RLock()
        with wal.opening(self.path, timeout):
            self._db = wal.connect(self.path, timeout, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            self._add_columns()
            self._columns = self._create_latest()

    def _add_columns(self) -> None:
        """Ledgers written before a column existed get it (empty for old rows)."""
        have = {row["name"] for row in self._db.execute("PRAGMA table_info(bundles)")}
        for name, kind in ADDED_COLUMNS.items():
            if name not in have:
                self._db.execute(f"ALTER TABLE bundles ADD COLUMN {name} {kind}")

    def _create_latest(self) -> list[str]:
        """The `latest` table: one row per bundle, kept up to date on every slot write (GET /bundles reads it).

        Same columns as `bundles`; built once from the slots for ledgers that predate it.
        """
        columns = [row["name"] for row in self._db.execute("PRAGMA table_info(bundles)")]
        self._db.execute("CREATE TABLE IF NOT EXISTS latest AS SELECT * FROM bundles WHERE 0")
        self._db.execute("CREATE UNIQUE INDEX IF NOT EXISTS latest_by_bundle ON latest (bundle)")
        have = {row["name"] for row in self._db.execute("PRAGMA table_info(latest)")}
        for name in columns:
            if name not in have:
                self._db.execute(f"ALTER TABLE latest ADD COLUMN {name}")
        self._columns = columns
        empty = self._db.execute("SELECT NOT EXISTS (SELECT 1 FROM latest)").fetchone()[0]
        if empty:
            self._refresh_latest("1 = 1 ORDER BY updated", ())
        return columns

    def _refresh_latest(self, where: str, args) -> None:
        """Copy the selected slots into `latest`: a slot that did something replaces whatever is there;
        a skipped/planned/not-run one only replaces another such (a skip never hides a result)."""
        columns = ", ".join(self._columns)
        updates = ", ".join(f"{name} = excluded.{name}" for name in self._columns if name != "bundle")
        with self._lock:
            self._db.execute(
                f"INSERT INTO latest ({columns}) SELECT {columns} FROM bundles WHERE {where} "
                f"ON CONFLICT (bundle) DO UPDATE SET {updates} "
                f"WHERE excluded.status NOT IN {PASSIVE_SQL} OR latest.status IN {PASSIVE_SQL}",
                args,
            )

    @classmethod
    def for_root(cls, restore_root) -> Ledger:
        return cls(ledger_path(restore_root))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, sql: str, args=()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    def _read(self, sql: str, args=()) -> list[dict]:
        with self._lock:
            return [_decode(row) for row in self._db.execute(sql, args).fetchall()]

    def transaction(self):
        return _Transaction(self)

    # runs ---------------------------------------------------------------------------------------
    def create_run(self, run_id: str, status: str = "queued", bundles=(), **fields) -> None:
        """A new run row (and its pending slots); an existing row with that id is left as is."""
        values = {"status": status, "created": time.time(), **fields}
        columns = ", ".join(["id", *values])
        marks = ", ".join("?" * (len(values) + 1))
        with self.transaction():
            self._write(f"INSERT OR IGNORE INTO runs ({columns}) VALUES ({marks})", [run_id, *_encode(values)])
            self.add_slots(run_id, bundles)

    def update_run(self, run_id: str, **fields) -> None:
        unknown = set(fields) - set(RUN_FIELDS)
        if unknown:
            raise ValueError(f"unknown run fields {sorted(unknown)}")
        assignments = ", ".join(f"{key} = ?" for key in fields)
        self._write(f"UPDATE runs SET {assignments} WHERE id = ?", [*_encode(fields), run_id])

    def set_status(self, run_id: str, status: str, *, only_from=None, **fields) -> bool:
        """Move a run to status (optionally only from the given statuses); True if it moved."""
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        if status in FINAL:
            fields.setdefault("finished", time.time())
        values = {"status": status, **fields}
        assignments = ", ".join(f"{key} = ?" for key in values)
        sql, args = f"UPDATE runs SET {assignments} WHERE id = ?", [*_encode(values), run_id]
        if only_from:
            sql += f" AND status IN ({', '.join('?' * len(only_from))})"
            args += list(only_from)
        return self._write(sql, args).rowcount > 0

    def run(self, run_id: str) -> dict | None:
        rows = self._read("SELECT * FROM runs WHERE id = ?", (run_id,))
        return rows[0] if rows else None

    def runs(self, limit: int = 50, offset: int = 0, status: str | None = None) -> list[dict]:
        where, args = ("WHERE status = ?", [status]) if status else ("", [])
        sql = f"SELECT * FROM runs {where} ORDER BY created DESC, id DESC LIMIT ? OFFSET ?"
        return self._read(sql, [*args, limit, offset])

    def count_runs(self, status: str | None = None) -> int:
        where, args = ("WHERE status = ?", [status]) if status else ("", [])
        return self._read(f"SELECT COUNT(*) AS n FROM runs {where}", args)[0]["n"]

    def active_runs(self) -> list[dict]:
        """Runs not finished yet, oldest first (the queue order)."""
        return self._read("SELECT * FROM runs WHERE status IN ('queued', 'running', 'cancelling') ORDER BY created, id")

    def heartbeat(self, run_id: str, done=None, total=None) -> None:
        fields = {"heartbeat": time.time()}
        if done is not None:
            fields.update(done=done, total=total)
        self.update_run(run_id, **fields)

    # bundle slots -------------------------------------------------------------------------------
    def add_slots(self, run_id: str, bundles, status: str = "pending", reason: str | None = None) -> None:
        now = time.time()
        rows = [(run_id, bundle, status, reason, now) for bundle in bundles]
        with self._lock:
            self._db.executemany(
                "INSERT OR IGNORE INTO bundles (run_id, bundle, status, reason, updated) VALUES (?, ?, ?, ?, ?)", rows
            )
            if rows:
                self._refresh_latest("run_id = ? AND status = ?", (run_id, status))

    def update_slot(self, run_id: str, bundle: str, **fields) -> None:
        unknown = set(fields) - set(SLOT_FIELDS)
        if unknown:
            raise ValueError(f"unknown bundle fields {sorted(unknown)}")
        values = {"status": fields.pop("status", "pending"), **fields, "updated": time.time()}
        columns = ", ".join(values)
        updates = ", ".join(f"{key} = excluded.{key}" for key in values)
        sql = (
            f"INSERT INTO bundles (run_id, bundle, {columns}) VALUES (?, ?, {', '.join('?' * len(values))}) "
            f"ON CONFLICT (run_id, bundle) DO UPDATE SET {updates}"
        )
        with self._lock:
            self._write(sql, [run_id, bundle, *values.values()])
            self._refresh_latest("run_id = ? AND bundle = ?", (run_id, bundle))

    def set_slots_where(self, run_id: str, from_status: str, status: str, reason: str | None) -> int:
        sql = "UPDATE bundles SET status = ?, reason = COALESCE(?, reason), updated = ? WHERE run_id = ? AND status = ?"
        with self._lock:
            changed = self._write(sql, (status, reason, time.time(), run_id, from_status)).rowcount
            if changed:
                self._refresh_latest("run_id = ? AND status = ?", (run_id, status))
            return changed

    def slot(self, run_id: str, bundle: str) -> dict | None:
        rows = self._read("SELECT * FROM bundles WHERE run_id = ? AND bundle = ?", (run_id, bundle))
        return rows[0] if rows else None

    def slots(self, run_id: str) -> list[dict]:
        return self._read("SELECT * FROM bundles WHERE run_id = ? ORDER BY bundle", (run_id,))

    def counts(self, run_id: str) -> dict[str, int]:
        rows = self._read("SELECT status, COUNT(*) AS n FROM bundles WHERE run_id = ? GROUP BY status", (run_id,))
        return {row["status"]: row["n"] for row in rows}

    def latest_bundles(self, limit=100, offset=0, status=None, version=None, since=None, until=None) -> list[dict]:
        """The latest slot that ran or was planned for every date x version (skipped slots do not hide results)."""
        where, args = _bundle_filter(status, version, since, until)
        sql = f"{LATEST_SQL} {where} ORDER BY bundle LIMIT ? OFFSET ?"
        return self._read(sql, [*args, limit, offset])

    def count_latest_bundles(self, status=None, version=None, since=None, until=None) -> int:
        where, args = _bundle_filter(status, version, since, until)
        return self._read(f"SELECT COUNT(*) AS n FROM ({LATEST_SQL} {where})", args)[0]["n"]

    # events -------------------------------------------------------------------------------------
    def add_event(self, run_id: str, kind: str, data: dict | None = None, at: float | None = None) -> int:
        sql = "INSERT INTO events (run_id, kind, time, data) VALUES (?, ?, ?, ?)"
        payload = json.dumps(data or {}, default=str)
        return self._write(sql, (run_id, kind, at or time.time(), payload)).lastrowid

    def events(self, run_id: str, after: int = 0, limit: int = 1000) -> list[dict]:
        sql = "SELECT * FROM events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?"
        rows = self._read(sql, (run_id, after, limit))
        for row in rows:
            row["data"] = json.loads(row["data"] or "{}")
        return rows


# per date x version, the newest slot that did something (or the newest skipped one if none did): see _refresh_latest
LATEST_SQL = "SELECT * FROM latest WHERE 1 = 1"
PASSIVE_SQL = "('skipped', 'planned', 'not_run', 'pending')"


def _bundle_filter(status, version, since, until) -> tuple[str, list]:
    clauses, args = [], []
    if status:
        clauses.append("status = ?")
        args.append(status)
    if version:
        clauses.append("bundle LIKE ?")
        args.append(f"%--{version}")
    if since:
        clauses.append("substr(bundle, 1, 10) >= ?")
        args.append(str(since))
    if until:
        clauses.append("substr(bundle, 1, 10) <= ?")
        args.append(str(until))
    return ("AND " + " AND ".join(clauses) if clauses else ""), args


def _encode(values: dict) -> list:
    return [json.dumps(v) if k in JSON_FIELDS and v is not None else v for k, v in values.items()]


def _decode(row: sqlite3.Row) -> dict:
    item = dict(row)
    for key in JSON_FIELDS:
        if item.get(key) is not None:
            item[key] = json.loads(item[key])
    item.pop("rank", None)
    return item


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT under the ledger's lock (nested use joins the outer one)."""

    def __init__(self, ledger: Ledger):
        self.ledger = ledger
        self.outer = False

    def __enter__(self):
        self.ledger._lock.acquire()
        self.outer = not self.ledger._db.in_transaction
        if self.outer:
            self.ledger._db.execute("BEGIN IMMEDIATE")
        return self.ledger

    def __exit__(self, exc_type, *_):
        try:
            if self.outer:
                self.ledger._db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.ledger._lock.release()
