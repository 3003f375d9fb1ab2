"""How a bundle job fails: always as a recorded bundle, never as a lost one.

Whatever goes wrong inside a bundle job becomes status failed_processing with one line naming the
bundle, the stage (and the member, when the error knows it) and the cause; the job then exits 0 so
that Snakemake keeps bundle.json and the data docs and the gate still run. Also: which archive
members a bundle read and which it skipped, and why (bundle.json "members").
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path, PurePosixPath

from sheetfill.errors import BundleError

MAX_ERROR_CHARS = 600  # one line in the summary and the data docs, even for a 4,000-character path


def one_line(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failure_message(bundle: str, stage: str, exc: BaseException) -> str:
    """'<bundle>: <stage>: <cause>'; an unforeseen error also gets its type and a traceback in the log."""
    if isinstance(exc, BundleError):
        cause = str(exc)
    else:
        traceback.print_exception(exc, file=sys.stderr)  # the job's log: enough to report a bug
        cause = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, OSError) and exc.errno is not None:
            cause += "; free space or fix permissions under restore_root, then re-run"
    return one_line(f"{bundle}: {stage} failed: {cause}")


def record_failure(outputs: Path, restored: Path, bundle: str, error: str) -> None:
    """Last resort when the job could not even write its normal record: a bare failed bundle.json."""
    date, _, version = bundle.partition("--")
    summary = {
        "bundle": bundle,
        "date": date,
        "version": version,
        "status": "failed_processing",
        "error": one_line(error),
        "counts": {},
        "quality": {},
        "validation": None,
        "diff": None,
    }
    Path(restored).mkdir(parents=True, exist_ok=True)  # both declared outputs must exist
    Path(outputs).mkdir(parents=True, exist_ok=True)
    temp = Path(outputs) / f".bundle.json.{os.getpid()}"
    temp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    os.replace(temp, Path(outputs) / "bundle.json")


def account_members(members: list[dict], sources: list[dict]) -> list[dict]:
    """Every restored member as read or skipped (with the reason), from the sheets the refine saw."""
    from sheetfill.refine.read import skip_reason

    sheets: dict[str, list[dict]] = {}
    for source in sources:
        sheets.setdefault(source["file"], []).append(source)
    accounted = []
    for member in members:
        name = PurePosixPath(member["name"].replace("\\", "/")).as_posix()  # as restored on disk
        entry = {"name": member["name"], "size": member.get("size"), "status": "read", "reason": None}
        seen = sheets.get(name)
        if seen is None:
            entry.update(status="skipped", reason=skip_reason(PurePosixPath(name)) or "not read")
        elif not any(s["note"] == "read" for s in seen):
            entry.update(status="skipped", reason="; ".join(f"sheet {s['sheet']!r}: {s['note']}" for s in seen))
        accounted.append(entry)
    return accounted
