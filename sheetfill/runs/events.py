"""What a run reports while it goes: one small event type shared by the consumers of Snakemake's log.

The logger plugin (snakemake_logger_plugin_sheetfill) turns Snakemake's log records into RunEvents
and hands each one to its sinks: the run ledger, the progress line of the CLI, telemetry. Sinks never
see Snakemake's records, so they do not depend on how a Snakemake version names its fields.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Protocol

RUN_ID_VARIABLE = "SHEETFILL_RUN_ID"

# kinds of event, in the order a run produces them
RUN_STARTED = "run_started"  # the DAG is built: total = jobs planned
JOB_STARTED = "job_started"
JOB_FINISHED = "job_finished"
JOB_ERROR = "job_error"
PROGRESS = "progress"  # done / total
HEARTBEAT = "heartbeat"
RUN_FINISHED = "run_finished"  # ok tells whether every job succeeded


@dataclass
class RunEvent:
    kind: str
    run_id: str | None = None
    time: float = field(default_factory=time.time)
    rule: str | None = None
    jobid: int | None = None
    bundle: str | None = None  # "date--version" for per-bundle jobs
    done: int | None = None
    total: int | None = None
    ok: bool | None = None
    message: str | None = None
    data: dict = field(default_factory=dict)


class Sink(Protocol):
    def handle(self, event: RunEvent) -> None: ...

    def close(self) -> None: ...


def new_run_id() -> str:
    """Sortable by creation time (UTC timestamp first), unique across hosts."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


def current_run_id() -> str:
    """The run id handed down by whoever started the run, or a new one that this process then hands on."""
    return os.environ.setdefault(RUN_ID_VARIABLE, new_run_id())
