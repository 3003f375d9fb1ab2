"""Read-only ledger queries for the UI pages: the bundles grid as one compact payload, a bundle's runs.

The grid must be interactive within a second at 10,000 bundles, so it is not built from the paginated
API's full rows: the page gets one payload of parallel lists (dates, versions, statuses, run ids and
a flat list of index triples) that its script draws in one pass. "Latest" means what the ledger
says it means (ledger.LATEST_SQL). The connection is opened read-only: the UI never writes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

HISTORY_LIMIT = 50  # runs listed for one bundle


def _connect(restore_root: Path) -> sqlite3.Connection | None:
    from sheetfill.runs.ledger import ledger_path

    path = ledger_path(restore_root)
    if not path.exists():
        return None  # no run yet
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)


def grid_payload(restore_root: Path) -> dict:
    """{dates, versions, statuses, runs, errors, cells}: cells is [date, version, status, run, error] * n."""
    from sheetfill.runs.ledger import LATEST_SQL

    payload = {"dates": [], "versions": [], "statuses": [], "runs": [], "errors": [], "cells": []}
    db = _connect(restore_root)
    if db is None:
        return payload
    try:
        rows = db.execute(f"SELECT bundle, status, run_id, error FROM ({LATEST_SQL}) ORDER BY bundle").fetchall()
    finally:
        db.close()
    indexes = {key: {} for key in ("dates", "versions", "statuses", "runs", "errors")}

    def index(key: str, value) -> int:
        table = indexes[key]
        if value not in table:
            table[value] = len(payload[key])
            payload[key].append(value)
        return table[value]

    cells = payload["cells"]
    for bundle, status, run_id, error in rows:
        date, _, version = bundle.partition("--")
        cells += [index("dates", date), index("versions", version), index("statuses", status)]
        cells += [index("runs", run_id), index("errors", error)]
    return payload


def bundle_runs(restore_root: Path, bundle: str) -> list[dict]:
    """The runs that had a slot for this bundle, newest first, with the bundle's status in each."""
    db = _connect(restore_root)
    if db is None:
        return []
    sql = (
        "SELECT b.run_id, b.status, b.error, b.duration_s, r.status, r.kind, r.started, r.created "
        "FROM bundles b LEFT JOIN runs r ON r.id = b.run_id WHERE b.bundle = ? "
        "ORDER BY COALESCE(r.created, b.updated) DESC LIMIT ?"
    )
    try:
        rows = db.execute(sql, (bundle, HISTORY_LIMIT)).fetchall()
    finally:
        db.close()
    keys = ("run_id", "status", "error", "duration_s", "run_status", "kind", "started", "created")
    return [dict(zip(keys, row)) for row in rows]
