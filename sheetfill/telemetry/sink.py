"""TelemetrySink: the logger plugin's telemetry consumer of RunEvents.

The gate reports every run it closes (sheetfill.telemetry.outcomes.report_from_gate). This sink
reports the others, whose gate never ran or never got that far: a bundle job that crashed, a
cancelled or killed run, a run with nothing to do. It reads only RunEvents and the outputs of the
bundles that finished, and imports the OpenTelemetry SDK only when it has something to export.
"""

from __future__ import annotations

import time
from pathlib import Path

from sheetfill.runs.events import JOB_ERROR, JOB_FINISHED, JOB_STARTED, RUN_FINISHED, RunEvent
from sheetfill.telemetry.outcomes import BundleOutcome, RunOutcome, built_in, outcome_of, read_summary


class TelemetrySink:
    def __init__(self, context: dict | None = None) -> None:
        """context: the plugin's run announcement (unused: the telemetry context is in the environment)."""
        self.started: dict[str, float] = {}  # bundle -> job start
        self.finished: list[str] = []
        self.errors: dict[str, tuple[float, str]] = {}  # bundle -> (time, message)
        self.done = False

    def handle(self, event: RunEvent) -> None:
        if event.kind == RUN_FINISHED:
            interrupted = "the run was interrupted" if event.data.get("interrupted") else None
            self.finish(bool(event.ok), interrupted or event.message, event.time)
        elif not event.bundle:
            return
        elif event.kind == JOB_STARTED:
            self.started[event.bundle] = event.time
        elif event.kind == JOB_FINISHED:
            self.finished.append(event.bundle)
        elif event.kind == JOB_ERROR:
            self.errors[event.bundle] = (event.time, event.message or "the bundle job failed")

    def close(self) -> None:
        self.finish(False, "the run ended before Snakemake reported its end", time.time())

    def finish(self, ok: bool, error: str | None, when: float) -> None:
        if self.done:
            return
        self.done = True
        from sheetfill.telemetry.context import current, reported_marker

        context = current()
        if not context.get("enabled"):
            return
        marker = reported_marker(context)
        if marker.exists():
            marker.unlink(missing_ok=True)
            return
        from sheetfill.telemetry.report import report

        report(RunOutcome(context=context, ok=ok, bundles=self.outcomes(context), finished=when, error=error))

    def outcomes(self, context: dict) -> list[BundleOutcome]:
        outputs = Path(context["restore_root"]) / "outputs"
        bundles = []
        # A job whose end Snakemake did not log (interrupted as it finished) still counts when its
        # outputs say this run built them; an earlier run's outputs are not this run's work.
        for bundle in dict.fromkeys([*self.finished, *self.started]):
            summary = read_summary(outputs / bundle)
            if bundle not in self.errors and summary and built_in(summary, context):
                bundles.append(outcome_of(summary, context))
        for bundle, (when, message) in self.errors.items():
            job = {"run_id": context["run_id"], "started": self.started.get(bundle, when), "finished": when}
            summary = {"bundle": bundle, "status": "failed_processing", "error": message, "job": job}
            bundles.append(BundleOutcome(bundle=bundle, status="failed_processing", summary=summary))
        return bundles
