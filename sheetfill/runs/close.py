"""Closing a run: gather per-bundle statuses, write the run record, move the cursor on success."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from sheetfill.runs.cursor import advance_cursor


def load_summaries(bundle_dirs: list[Path]) -> list[dict]:
    return [json.loads((Path(d) / "bundle.json").read_text()) for d in bundle_dirs]


def close_run(
    bundle_dirs: list[Path], window: dict, record: Path, cursor_file: Path, run_id: str | None = None
) -> tuple[str, bool]:
    """Return (per-bundle summary text, ok). A scheduled run that is ok advances the cursor."""
    from sheetfill.runs.gate import summarise

    summaries = load_summaries(bundle_dirs)
    text, ok = summarise(summaries)
    if run_id:
        text = f"sheetfill run {run_id}\n{text}"
    cursor = None
    if ok and not window.get("backfill") and summaries:
        newest = max(dt.date.fromisoformat(s["date"]) for s in summaries)
        cursor = advance_cursor(cursor_file, newest).isoformat()
        text += f"\ncursor advanced to {cursor}"
    record.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "run_id": run_id,
        "window": window,
        "ok": ok,
        "cursor": cursor,
        "bundles": {s["bundle"]: s["status"] for s in summaries},
    }
    record.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return text, ok
