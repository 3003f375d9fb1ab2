"""LedgerSink: records a run's events into the ledger; and the hand-off from the Snakefile to the sinks.

The Snakefile announces its plan (restore_root, bundles, window) when it is parsed; the logger plugin
runs in the same process and builds its sinks from that announcement once the DAG is ready.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from sheetfill.runs.events import RUN_FINISHED, RunEvent
from sheetfill.runs.ledger import FAILED_BUNDLE, TASK_FIELDS, Ledger
from sheetfill.telemetry.outcomes import job_record

_ANNOUNCED: dict[str, dict] = {}


def announce_run(run_id: str, plan) -> None:
    """Called by the Snakefile at parse time (no I/O): what the sinks of this process record."""
    window = plan.window()
    _ANNOUNCED[run_id] = {
        "run_id": run_id,
        "restore_root": str(Path(plan.settings.restore_root).resolve()),
        "bundles": list(plan.bundles),
        "window": window,
        "kind": "backfill" if window.get("backfill") else "scheduled",
    }


def announced(run_id: str) -> dict | None:
    return _ANNOUNCED.get(run_id)


def bundle_summary(restore_root, bundle: str) -> dict | None:
    try:
        return json.loads((Path(restore_root) / "outputs" / bundle / "bundle.json").read_text())
    except (OSError, ValueError):
        return None


def run_status(counts: dict[str, int], other_errors: int) -> str:
    """The verdict of a run that ran to its end, from its bundle slots."""
    if any(counts.get(status) for status in FAILED_BUNDLE):
        return "completed_with_failures"
    return "failed" if other_errors else "succeeded"


class LedgerSink:
    """Writes runs, bundle slots and numbered events; safe to use from one thread at a time."""

    def __init__(self, context: dict, ledger: Ledger | None = None):
        self.context = context
        self.root = Path(context["restore_root"])
        self.ledger = ledger or Ledger.for_root(self.root)
        self.other_errors = 0

    def handle(self, event: RunEvent) -> None:
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None and event.run_id:
            handler(event)

    def close(self) -> None:
        self.ledger.close()

    def _event(self, event: RunEvent, **data) -> None:
        fields = (("rule", event.rule), ("jobid", event.jobid), ("bundle", event.bundle))
        payload = {key: value for key, value in fields if value is not None}
        if event.message:
            payload["message"] = event.message
        self.ledger.add_event(event.run_id, event.kind, {**payload, **event.data, **data}, at=event.time)

    def _on_run_started(self, event: RunEvent) -> None:
        window, bundles = self.context.get("window") or {}, self.context.get("bundles") or []
        with self.ledger.transaction():
            self.ledger.create_run(
                event.run_id,
                status="running",
                bundles=bundles,
                kind=self.context.get("kind"),
                origin=os.environ.get("SHEETFILL_ORIGIN", "snakemake"),
                since=window.get("since"),
                until=window.get("until"),
                versions=window.get("versions"),
                bundles_planned=len(bundles),
                started=event.time,
                heartbeat=event.time,
                pid=os.getpid(),
            )
            self.ledger.set_status(
                event.run_id,
                "running",
                only_from=("queued",),
                started=event.time,
                heartbeat=event.time,
                pid=os.getpid(),
            )
            self.ledger.add_slots(event.run_id, bundles)
            self._event(event, total=event.total, bundles=len(bundles))

    def _on_job_started(self, event: RunEvent) -> None:
        if event.bundle:
            reason = event.data.get("reason")
            self.ledger.update_slot(event.run_id, event.bundle, status="running", started=event.time, reason=reason)
        self._event(event)

    def _on_job_finished(self, event: RunEvent) -> None:
        if event.bundle and event.rule == "bundle":
            status = self._finish_from_summary(event, bundle_summary(self.root, event.bundle) or {})
            self._event(event, status=status)
            return
        self._event(event)

    def _finish_from_summary(self, event: RunEvent, summary: dict) -> str:
        counts = summary.get("counts") or {}
        status = summary.get("status", "failed_processing")
        error = summary.get("error") or _validation_error(summary)
        task = job_record(self.root / "outputs" / event.bundle).get("task") or {}
        task = {key: task.get(key) for key in TASK_FIELDS}
        failed = (summary.get("validation") or {}).get("failed") if status == "failed_validation" else 0
        self._finish_slot(
            event, status, error, counts.get("rows_in"), counts.get("records_out"), expectations_failed=failed, **task
        )
        return status

    def _on_job_error(self, event: RunEvent) -> None:
        if event.bundle and self._interrupted(event):
            self.ledger.update_slot(event.run_id, event.bundle, status="not_run", reason="stopped by cancel")
        elif event.bundle and event.rule == "bundle":
            log = self.root / "logs" / "bundle" / f"{event.bundle}.log"
            self._finish_slot(event, "failed_processing", f"the bundle job failed; see {log}")
        else:
            self.other_errors += 1
        self._event(event)

    def _interrupted(self, event: RunEvent) -> bool:
        """A job killed because the run is being cancelled did not fail: it was stopped."""
        return (
            bool(event.data.get("interrupted")) or (self.ledger.run(event.run_id) or {}).get("status") == "cancelling"
        )

    def _finish_slot(self, event: RunEvent, status: str, error=None, rows_in=None, records_out=None, **task) -> None:
        started = (self.ledger.slot(event.run_id, event.bundle) or {}).get("started")
        self.ledger.update_slot(
            event.run_id,
            event.bundle,
            status=status,
            error=error,
            finished=event.time,
            duration_s=round(event.time - started, 3) if started else None,
            rows_in=rows_in,
            records_out=records_out,
            **task,
        )

    def _settle_running_slots(self, run_id: str) -> None:
        """Jobs whose end Snakemake did not log (`--quiet progress` drops it): their bundle.json tells."""
        for slot in self.ledger.slots(run_id):
            if slot["status"] != "running":
                continue
            summary = _summary_written_after(self.root, slot["bundle"], slot["started"])
            if summary is not None:
                written = (self.root / "outputs" / slot["bundle"] / "bundle.json").stat().st_mtime
                self._finish_from_summary(
                    RunEvent("job_finished", run_id, time=written, bundle=slot["bundle"]), summary
                )

    def _on_progress(self, event: RunEvent) -> None:
        self.ledger.heartbeat(event.run_id, done=event.done, total=event.total)
        self._event(event, done=event.done, total=event.total)

    def _on_heartbeat(self, event: RunEvent) -> None:
        self.ledger.heartbeat(event.run_id)

    def _on_run_finished(self, event: RunEvent) -> None:
        run = self.ledger.run(event.run_id) or {}
        interrupted = event.data.get("interrupted") or run.get("status") == "cancelling"
        with self.ledger.transaction():
            self._settle_running_slots(event.run_id)
            if interrupted:
                self.ledger.set_slots_where(event.run_id, "running", "not_run", "stopped by cancel")
                self.ledger.set_slots_where(event.run_id, "pending", "not_run", "the run was cancelled first")
                status = "cancelled"
            else:
                self.ledger.set_slots_where(event.run_id, "running", "not_run", "the job did not finish")
                self.ledger.set_slots_where(event.run_id, "pending", "skipped", "up to date")
                status = run_status(self.ledger.counts(event.run_id), self.other_errors)
            error = {} if status in ("succeeded", "cancelled") or not event.message else {"error": event.message}
            self.ledger.set_status(
                event.run_id, status, only_from=("running", "cancelling", "queued"), finished=event.time, **error
            )
            self._event(event, status=status)


def _summary_written_after(restore_root, bundle: str, started: float | None) -> dict | None:
    path = Path(restore_root) / "outputs" / bundle / "bundle.json"
    try:
        written = path.stat().st_mtime
    except OSError:
        return None
    return bundle_summary(restore_root, bundle) if started is None or written >= started - 1 else None


def _validation_error(summary: dict) -> str | None:
    validation = summary.get("validation") or {}
    if summary.get("status") == "failed_validation" and validation.get("failed"):
        return f"{validation['failed']} of {validation.get('evaluated', '?')} expectations failed"
    return None


def mark_stale_runs(ledger: Ledger, timeout_s: float, now: float | None = None, watched=()) -> list[dict]:
    """Runs still 'running' whose Snakemake stopped beating: failed, with the reason. Returns them.

    watched: ids of runs whose process the caller watches itself (it knows when they end).
    """
    now = now or time.time()
    stale = []
    for run in ledger.active_runs():
        beat = run.get("heartbeat") or run.get("started")
        if run["status"] == "queued" or run["id"] in watched or beat is None or now - beat <= timeout_s:
            continue
        reason = f"heartbeat timeout: no sign of life from Snakemake (pid {run.get('pid')}) for {now - beat:.0f} s"
        with ledger.transaction():
            if ledger.set_status(run["id"], "failed", only_from=("running", "cancelling"), error=reason):
                ledger.set_slots_where(run["id"], "running", "not_run", "Snakemake died while it ran")
                ledger.set_slots_where(run["id"], "pending", "not_run", "Snakemake died first")
                ledger.add_event(run["id"], RUN_FINISHED, {"status": "failed", "message": reason})
                stale.append(run)
    return stale
