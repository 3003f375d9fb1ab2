"""Snakemake log records -> sheetfill RunEvents, read defensively.

Snakemake 9 names some fields differently from the logger interface's README (a finished job carries
`job_id`, an info record `jobid`; a started record lists `jobs`), and records arrive in an order that
differs between versions (the "Execute N jobs" record comes before the jobs' info). Every field is
therefore looked up under each name it has had, and a job is reported started once both are known.
"""

from __future__ import annotations

from sheetfill.runs import events as ev

NOTHING_TO_DO = "Nothing to be done"
INTERRUPTED = ("Terminating processes on user request", "Will exit after finishing currently running jobs")


def field(record, *names, default=None):
    for name in names:
        value = getattr(record, name, None)
        if value is not None:
            return value
    return default


def kind_of(record) -> str:
    event = getattr(record, "event", None)
    return str(getattr(event, "value", event) or "").lower()


def bundle_of(wildcards) -> str | None:
    if isinstance(wildcards, dict) and wildcards.get("date") and wildcards.get("version"):
        return f"{wildcards['date']}--{wildcards['version']}"
    return None


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class Converter:
    """Keeps the per-job state needed to turn a record stream into RunEvents."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.jobs: dict[int, dict] = {}  # jobid -> rule, bundle, reason
        self.started: set[int] = set()  # "Execute" seen, info maybe not yet
        self.reported: set[int] = set()  # job_started emitted
        self.run_started = False
        self.interrupted = False
        self.errors: list[str] = []

    def convert(self, record) -> list[ev.RunEvent]:
        kind = kind_of(record)
        handler = getattr(self, f"_{kind}", None) if kind else None
        if handler is not None:
            return handler(record)
        return self._message(record)

    def _make(self, kind, jobid=None, **fields) -> ev.RunEvent:
        info = self.jobs.get(jobid, {}) if jobid is not None else {}
        fields.setdefault("rule", info.get("rule"))
        fields.setdefault("bundle", info.get("bundle"))
        return ev.RunEvent(kind=kind, run_id=self.run_id, jobid=jobid, **fields)

    def _start_run(self, total) -> list[ev.RunEvent]:
        if self.run_started:
            return []
        self.run_started = True
        return [self._make(ev.RUN_STARTED, total=total)]

    def _run_info(self, record) -> list[ev.RunEvent]:
        stats = field(record, "stats", default={}) or {}
        total = _int(stats.get("total")) if isinstance(stats, dict) else None
        if total is None and isinstance(stats, dict):
            total = sum(v for k, v in stats.items() if isinstance(v, int) and k != "total") or None
        return self._start_run(total)

    def _job_info(self, record) -> list[ev.RunEvent]:
        jobid = _int(field(record, "jobid", "job_id"))
        if jobid is None:
            return []
        self.jobs[jobid] = {
            "rule": field(record, "rule_name", "rule", "name"),
            "bundle": bundle_of(field(record, "wildcards", default={})),
            "reason": field(record, "reason"),
        }
        return self._report_started(jobid) if jobid in self.started else []

    def _job_started(self, record) -> list[ev.RunEvent]:
        ids = field(record, "jobs", "job_ids", default=None)
        if ids is None:
            ids = [field(record, "jobid", "job_id")]
        out = self._start_run(None)
        for jobid in filter(lambda j: j is not None, map(_int, ids if isinstance(ids, list | tuple) else [ids])):
            self.started.add(jobid)
            if jobid in self.jobs:
                out += self._report_started(jobid)
        return out

    def _report_started(self, jobid: int) -> list[ev.RunEvent]:
        if jobid in self.reported:
            return []
        self.reported.add(jobid)
        return [self._make(ev.JOB_STARTED, jobid, data={"reason": self.jobs[jobid].get("reason")})]

    def _job_finished(self, record) -> list[ev.RunEvent]:
        jobid = _int(field(record, "job_id", "jobid"))
        return [] if jobid is None else [self._make(ev.JOB_FINISHED, jobid, ok=True)]

    def _job_error(self, record) -> list[ev.RunEvent]:
        jobid = _int(field(record, "jobid", "job_id"))
        rule = field(record, "rule_name", "rule")
        message = str(record.getMessage()) if hasattr(record, "getMessage") else None
        self.errors.append(message or f"a {rule} job failed")
        extra = {"rule": rule} if rule else {}
        data = {"interrupted": self.interrupted}
        return [self._make(ev.JOB_ERROR, jobid, ok=False, message=message, data=data, **extra)]

    def _progress(self, record) -> list[ev.RunEvent]:
        done, total = _int(field(record, "done")), _int(field(record, "total"))
        return [self._make(ev.PROGRESS, done=done, total=total)]

    def _error(self, record) -> list[ev.RunEvent]:
        self.errors.append(_text(record) or str(field(record, "exception", default="error")))
        return []

    def _message(self, record) -> list[ev.RunEvent]:
        text = _text(record)
        if not text:
            return []
        if text.startswith(NOTHING_TO_DO):
            return self._start_run(0)
        if text.startswith(INTERRUPTED):
            self.interrupted = True
        return []

    def finished(self) -> ev.RunEvent | None:
        if not self.run_started:
            return None
        ok = not self.errors and not self.interrupted
        message = self.errors[-1] if self.errors else None
        return self._make(ev.RUN_FINISHED, ok=ok, message=message, data={"interrupted": self.interrupted})


def _text(record) -> str:
    msg = getattr(record, "msg", None)
    if msg is None:
        return ""
    try:
        return str(record.getMessage())
    except Exception:  # a record whose args do not match its format: use the raw text
        return str(msg)
