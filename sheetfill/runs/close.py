"""Closing a run: gather per-bundle statuses, write the run record, move the cursor on success,
and make this run's builds "the previous build" that the next build of each bundle diffs against."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from sheetfill.runs.cursor import advance_cursor


def load_summary(folder: Path) -> dict:
    """A bundle's bundle.json; a missing or broken one is a failed bundle, never a crashed gate."""
    folder = Path(folder)
    try:
        summary = json.loads((folder / "bundle.json").read_text())
        if isinstance(summary, dict) and "status" in summary:
            return summary
        problem = "bundle.json has no status"
    except (OSError, ValueError) as exc:
        problem = f"bundle.json is unreadable ({exc})"
    date, _, version = folder.name.partition("--")
    return {"bundle": folder.name, "date": date, "version": version, "status": "failed_processing", "error": problem}


def load_summaries(bundle_dirs: list[Path]) -> list[dict]:
    return [load_summary(d) for d in bundle_dirs]


def promote_builds(bundle_dirs: list[Path], summaries: list[dict], history: Path) -> None:
    """Keep each processed bundle's records as its previous build (a hard link: no copy).

    Done here, by the gate, and not by the bundle job: the gate runs only after Snakemake has
    recorded every bundle job, so a job killed after writing its outputs but before Snakemake
    recorded it is rebuilt against the last *completed* build, not against itself.
    """
    history.mkdir(parents=True, exist_ok=True)
    for folder, summary in zip(bundle_dirs, summaries):
        refined = Path(folder) / "refined.parquet"
        if summary["status"] == "failed_processing" or not refined.exists():
            continue
        kept = history / f"{Path(folder).name}.parquet"
        if kept.exists() and os.path.samefile(kept, refined):
            continue
        temp = kept.with_name(f".{kept.name}.{os.getpid()}")
        temp.unlink(missing_ok=True)
        try:
            os.link(refined, temp)
        except OSError:  # another file system, or no hard links there
            import shutil

            shutil.copyfile(refined, temp)
        os.replace(temp, kept)


def write_record(record: Path, payload: dict) -> None:
    record.parent.mkdir(parents=True, exist_ok=True)
    temp = record.with_name(f".{record.name}.{os.getpid()}")
    temp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    os.replace(temp, record)


def close_run(
    bundle_dirs: list[Path],
    window: dict,
    record: Path,
    cursor_file: Path,
    run_id: str | None = None,
    history: Path | None = None,
) -> tuple[str, bool]:
    """Return (per-bundle summary text, ok). A scheduled run that is ok advances the cursor."""
    from sheetfill.runs.gate import summarise

    summaries = load_summaries(bundle_dirs)
    text, ok = summarise(summaries)
    if history is not None:
        promote_builds(bundle_dirs, summaries, Path(history))
    if run_id:
        text = f"sheetfill run {run_id}\n{text}"
    cursor = None
    if ok and not window.get("backfill") and summaries:
        newest = max(dt.date.fromisoformat(s["date"]) for s in summaries)
        cursor = advance_cursor(cursor_file, newest).isoformat()
        text += f"\ncursor advanced to {cursor}"
    payload = {
        "run_id": run_id,
        "window": window,
        "ok": ok,
        "cursor": cursor,
        "bundles": {s["bundle"]: s["status"] for s in summaries},
    }
    write_record(record, payload)
    return text, ok
