"""The run's telemetry context, fixed when the Snakefile is parsed and handed to every job.

Two environment variables carry it (declared in `envvars:`, so cluster jobs get them too, and never
params, which would make bundles look out of date):
- TRACEPARENT (W3C trace context): the run span, parent of every bundle span;
- SHEETFILL_TELEMETRY: JSON with whether to export, the run's kind, profile, start time and the
  trace context the run itself was started under (if any).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time

from sheetfill.runs.events import current_run_id

VARIABLE = "SHEETFILL_TELEMETRY"
TRACEPARENT = "TRACEPARENT"
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def parse_traceparent(text: str | None) -> tuple[int, int] | None:
    """(trace id, span id) of a W3C traceparent, None when absent or malformed (all-zero ids are invalid)."""
    match = _TRACEPARENT.match((text or "").strip().lower())
    if not match or not int(match[1], 16) or not int(match[2], 16):
        return None
    return int(match[1], 16), int(match[2], 16)


def format_traceparent(trace_id: int, span_id: int) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-01"


def current() -> dict:
    """The context of the run this process belongs to ({} outside a run)."""
    try:
        context = json.loads(os.environ.get(VARIABLE) or "{}")
    except ValueError:
        return {}
    return context if isinstance(context, dict) else {}


def prepare_run(enabled: bool, *, kind: str, profile: str, restore_root: str) -> dict:
    """Set up the run's context in os.environ (called at Snakefile parse time), and return it.

    Parsing again within the same run (a cluster job re-reads the Snakefile) keeps the context; a
    new run in the same process (two sheetfill.run() calls) gets a new one. A TRACEPARENT that the
    starter of the run set becomes the run span's parent.
    """
    run_id = current_run_id()
    previous = current()
    if previous.get("run_id") == run_id:
        return previous
    incoming = os.environ.get(TRACEPARENT)
    if incoming == previous.get("traceparent"):
        incoming = None  # the previous run's own span, not a parent of this run
    parent = parse_traceparent(incoming)
    trace_id = parent[0] if parent else int(secrets.token_hex(16), 16)
    context = {
        "run_id": run_id,
        "enabled": enabled,
        "kind": kind,
        "profile": profile,
        "restore_root": restore_root,
        "started": time.time(),
        "traceparent": format_traceparent(trace_id, int(secrets.token_hex(8), 16) or 1),
        "parent": incoming if parent else None,
    }
    os.environ[VARIABLE] = json.dumps(context, sort_keys=True)
    os.environ[TRACEPARENT] = context["traceparent"]
    return context


def reported_marker(context: dict):
    """Left by the gate once it reported the run, so the logger plugin's sink does not report it again."""
    from pathlib import Path

    return Path(context["restore_root"]) / ".sheetfill" / "telemetry" / f"{context['run_id']}.reported"
