"""How a bundle job fails: always as a recorded bundle, never as a lost one.

Whatever goes wrong inside a bundle job becomes status failed_processing with one line naming the
bundle, the stage (and the member, when the error knows it) and the cause (a Rust reader's panic, pyo3's
PanicException, is a BaseException: the guards catch all but KeyboardInterrupt and SystemExit); the job then exits 0 so
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
    if not isinstance(exc, BundleError) or exc.__cause__ is not None:
        traceback.print_exception(exc, file=sys.stderr)  # the job's log: enough to report a bug
    if isinstance(exc, BundleError):
        cause = str(exc)
    else:
        cause = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, OSError) and exc.errno is not None:
            cause += "; free space or fix permissions under restore_root, then re-run"
    return one_line(f"{bundle}: {stage} failed: {cause}")


def record_failure(outputs: Path, restored: Path, bundle: str, error: str, members: dict | None = None) -> None:
    """Last resort when the job could not even write its normal record: a bare failed bundle.json
    (members: failed_members' answer; none given, the members are not listed)."""
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
        **(members or {"members": None}),
    }
    Path(restored).mkdir(parents=True, exist_ok=True)  # both declared outputs must exist
    Path(outputs).mkdir(parents=True, exist_ok=True)
    temp = Path(outputs) / f".bundle.json.{os.getpid()}"
    temp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    os.replace(temp, Path(outputs) / "bundle.json")


def failed_members(archive: Path, restored: Path, limit: int, sources: list[dict] | None, stage: str) -> dict:
    """bundle.json's "members" of a failed bundle, as far as its archive can be listed (null when it cannot),
    and "members_not_listed" past limits.max_members. Best effort: the record must be written whatever."""
    from sheetfill.bundle.restore import list_members

    try:
        listed = list_members(archive, restored, limit)
    except Exception:  # noqa: BLE001 - the failure record matters more than its member list
        listed = None
    if listed is None:
        return {"members": None}
    members, unlisted = listed
    accounted = account_members(members, sources) if sources is not None else _not_read(members, stage)
    return {"members": accounted, **({"members_not_listed": unlisted} if unlisted else {})}


def _not_read(members: list[dict], stage: str) -> list[dict]:
    """Members of a bundle that failed before its sheets were read: each skipped, with the rule it
    breaks, why it is no spreadsheet, or the stage that failed."""
    from sheetfill.refine.read import skip_reason

    return [
        {
            "name": member["name"],
            "size": member["size"],
            "status": "skipped",
            "reason": member.get("problem")
            or skip_reason(_as_restored(member["name"]))
            or f"not read: the bundle failed at {stage} (see its error)",
        }
        for member in members
    ]


def _as_restored(name: str) -> PurePosixPath:
    return PurePosixPath(name.replace("\\", "/"))


def account_members(members: list[dict], sources: list[dict]) -> list[dict]:
    """Every restored member as read or skipped (with the reason), from the sheets the refine saw."""
    from sheetfill.refine.read import skip_reason

    sheets: dict[str, list[dict]] = {}
    for source in sources:
        sheets.setdefault(source["file"], []).append(source)
    accounted = []
    for member in members:
        name = _as_restored(member["name"]).as_posix()
        entry = {"name": member["name"], "size": member.get("size"), "status": "read", "reason": None}
        seen = sheets.get(name)
        if seen is None:
            entry.update(status="skipped", reason=skip_reason(PurePosixPath(name)) or "not read")
        elif not any(s["note"] == "read" for s in seen):
            entry.update(status="skipped", reason="; ".join(f"sheet {s['sheet']!r}: {s['note']}" for s in seen))
        accounted.append(entry)
    return accounted
