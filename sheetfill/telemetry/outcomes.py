"""What a run did, in the terms of its metrics and spans (standard library only).

Built from bundle.json summaries by the gate, or from run events by the logger plugin's sink; the
exporter (report.py) turns the same objects into OpenTelemetry data whoever built them.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

FAILED = ("failed_validation", "failed_processing")


@dataclass
class BundleOutcome:
    bundle: str
    status: str  # ok | failed_validation | failed_processing | skipped
    summary: dict = field(default_factory=dict)  # its bundle.json + "job" (empty when the job died)

    @property
    def version(self) -> str:
        return self.bundle.split("--", 1)[1] if "--" in self.bundle else ""

    @property
    def job(self) -> dict:
        return self.summary.get("job") or {}

    @property
    def counts(self) -> dict:
        return self.summary.get("counts") or {}

    @property
    def expectations_failed(self) -> int:
        return int((self.summary.get("validation") or {}).get("failed") or 0)

    @property
    def failure(self) -> str | None:
        """The message a failed bundle's span carries."""
        if self.status not in FAILED:
            return None
        if self.summary.get("error"):
            return " ".join(str(self.summary["error"]).split())
        validation = self.summary.get("validation") or {}
        return f"{validation.get('failed', '?')} of {validation.get('evaluated', '?')} expectations failed"


@dataclass
class RunOutcome:
    context: dict  # sheetfill.telemetry.context.current()
    ok: bool
    bundles: list[BundleOutcome]
    finished: float = field(default_factory=time.time)
    error: str | None = None

    @property
    def status(self) -> str:
        return "ok" if self.ok else "failed"


def built_in(summary: dict, context: dict) -> bool:
    """Whether this run wrote the bundle's outcome: its job record says so, or, for the bare failure
    record a job writes when it cannot write its normal one (no job record of its own, next to the
    previous build's provenance), bundle.json is newer than the run's start."""
    if (summary.get("job") or {}).get("run_id") == context.get("run_id"):
        return True
    if summary.get("written", 0.0) >= context.get("started", float("inf")):
        summary["job"] = {}  # the previous build's timings are not this job's
        return True
    return False


def outcome_of(summary: dict, context: dict) -> BundleOutcome:
    """A bundle built by another run (up to date, so not re-run) counts as skipped in this one."""
    status = summary.get("status", "unknown") if built_in(summary, context) else "skipped"
    return BundleOutcome(bundle=summary.get("bundle", "?"), status=status, summary=summary)


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def job_record(outputs: Path) -> dict:
    """The bundle job's own account (timings, task metadata), kept in provenance.json: bundle.json
    stays identical between two builds of the same bundle."""
    return (_read_json(Path(outputs) / "provenance.json") or {}).get("job") or {}


def read_summary(outputs: Path) -> dict | None:
    """bundle.json, with the job record under "job" and the file's mtime under "written"."""
    path = Path(outputs) / "bundle.json"
    summary = _read_json(path)
    if summary is not None:
        summary["job"] = job_record(outputs)
        try:
            summary["written"] = path.stat().st_mtime
        except OSError:  # removed since: as if written long ago
            summary["written"] = 0.0
    return summary


def unreadable(bundle: str, why: str) -> BundleOutcome:
    return BundleOutcome(bundle=bundle, status="failed_processing", summary={"bundle": bundle, "error": why})


def report_from_gate(bundle_dirs: list, ok: bool) -> None:
    """The gate's part: every bundle of the window, from its bundle.json. Nothing happens when off."""
    from sheetfill.telemetry.context import current, reported_marker

    context = current()
    if not context.get("enabled"):
        return
    try:
        bundles = []
        for folder in map(Path, bundle_dirs):
            summary = read_summary(folder)
            bundles.append(outcome_of(summary, context) if summary else unreadable(folder.name, "no bundle.json"))
        from sheetfill.telemetry.report import report

        report(RunOutcome(context=context, ok=ok, bundles=bundles))
        marker = reported_marker(context)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except Exception as exc:  # noqa: BLE001 - telemetry never fails the gate
        print(
            f"sheetfill: telemetry not reported ({type(exc).__name__}: {exc}); the run is unaffected", file=sys.stderr
        )
