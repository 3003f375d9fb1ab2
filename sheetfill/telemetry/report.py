"""Turn a RunOutcome into OpenTelemetry metrics and spans and export them over OTLP/HTTP, once.

The only module that imports the OpenTelemetry SDK. Called at the end of a run (by the gate or the
logger plugin's sink); it never raises, and returns within the OTLP export timeout
(OTEL_EXPORTER_OTLP_TIMEOUT, seconds, default 10) even when the collector is unreachable.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags

from sheetfill import __version__
from sheetfill.telemetry import DURATION_BUCKETS, exporter_wanted
from sheetfill.telemetry.context import parse_traceparent
from sheetfill.telemetry.outcomes import BundleOutcome, RunOutcome
from sheetfill.telemetry.stages import STAGES

SCOPE = "sheetfill"


def export_timeout() -> float:
    """Seconds, read as the OTLP exporters read it."""
    try:
        return float(os.environ.get("OTEL_EXPORTER_OTLP_TIMEOUT") or 10)
    except ValueError:
        return 10.0


def resource() -> Resource:
    """OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES win over these defaults.

    service.instance.id is the host, not one per process: every run is a short-lived process, and
    delta metrics of one host's runs must add up into one series (docs/observability.md).
    """
    given = os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    keys = {item.split("=", 1)[0].strip() for item in given.split(",") if "=" in item}
    if os.environ.get("OTEL_SERVICE_NAME"):
        keys.add("service.name")
    defaults = {"service.name": "sheetfill", "service.version": __version__, "service.instance.id": os.uname().nodename}
    return Resource.create({key: value for key, value in defaults.items() if key not in keys})


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


# ---------------------------------------------------------------- metrics


def bundle_attributes(run: RunOutcome, bundle: BundleOutcome) -> dict:
    return {
        "sheetfill.kind": run.context.get("kind", ""),
        "sheetfill.profile": run.context.get("profile", ""),
        "sheetfill.version": bundle.version,
        "sheetfill.status": bundle.status,
    }


def record_metrics(provider: MeterProvider, run: RunOutcome) -> None:
    meter = provider.get_meter(SCOPE, __version__)
    seconds = {"unit": "s", "explicit_bucket_boundaries_advisory": DURATION_BUCKETS}
    run_duration = meter.create_histogram("sheetfill.run.duration", description="Wall time of a run", **seconds)
    bundle_duration = meter.create_histogram(
        "sheetfill.bundle.duration", description="Wall time of a bundle job", **seconds
    )
    bundles = meter.create_counter("sheetfill.bundles", unit="{bundle}", description="Bundles by status")
    rows_in = meter.create_counter("sheetfill.rows.in", unit="{row}", description="Source rows read")
    records_out = meter.create_counter("sheetfill.records.out", unit="{record}", description="Records written")
    expectations = meter.create_counter(
        "sheetfill.expectations.failed", unit="{expectation}", description="Failed expectations"
    )
    for bundle in run.bundles:
        attributes = bundle_attributes(run, bundle)
        bundles.add(1, attributes)
        if bundle.status == "skipped":
            continue  # built by an earlier run, whose figures counted it
        job = bundle.job
        if job.get("started") and job.get("finished"):
            bundle_duration.record(max(0.0, job["finished"] - job["started"]), attributes)
        rows_in.add(int(bundle.counts.get("rows_in") or 0), attributes)
        records_out.add(int(bundle.counts.get("records_out") or 0), attributes)
        expectations.add(bundle.expectations_failed, attributes)
    started = run.context.get("started") or run.finished
    run_attributes = {
        "sheetfill.kind": run.context.get("kind", ""),
        "sheetfill.profile": run.context.get("profile", ""),
        "sheetfill.status": run.status,
    }
    run_duration.record(max(0.0, run.finished - started), run_attributes)


# ---------------------------------------------------------------- traces


class PresetIds(RandomIdGenerator):
    """Gives the run span the ids fixed at parse time (TRACEPARENT), random ids to every other span."""

    def __init__(self, trace_id: int, span_id: int) -> None:
        self.trace_id, self.span_ids = trace_id, [span_id]

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        return self.span_ids.pop() if self.span_ids else super().generate_span_id()


def remote_context(traceparent: str | None):
    ids = parse_traceparent(traceparent)
    if ids is None:
        return None
    span = NonRecordingSpan(SpanContext(ids[0], ids[1], is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)))
    return trace.set_span_in_context(span)


def _fail(span, message: str | None) -> None:
    if message:
        span.set_status(Status(StatusCode.ERROR, message))
        span.add_event("sheetfill.failure", {"message": message})


def task_attributes(task: dict) -> dict:
    names = {"threads": "sheetfill.task.threads", "memory_mb": "sheetfill.task.memory_mb", "host": "host.name"}
    names |= {"slurm_job_id": "slurm.job_id", "mode": "sheetfill.task.mode"}
    return {names[k]: v for k, v in task.items() if k in names and v is not None}


def bundle_span(tracer, run: RunOutcome, bundle: BundleOutcome, run_context) -> None:
    job = bundle.job
    start, end = job.get("started") or run.finished, job.get("finished") or run.finished
    parent = remote_context(job.get("traceparent")) or run_context
    attributes = {
        "sheetfill.bundle": bundle.bundle,
        "sheetfill.date": bundle.bundle.split("--")[0],
        **bundle_attributes(run, bundle),
        "sheetfill.rows.in": int(bundle.counts.get("rows_in") or 0),
        "sheetfill.records.out": int(bundle.counts.get("records_out") or 0),
        "sheetfill.expectations.failed": bundle.expectations_failed,
        **task_attributes(job.get("task") or {}),
    }
    span = tracer.start_span("sheetfill.bundle", context=parent, start_time=_ns(start), attributes=attributes)
    _fail(span, bundle.failure)
    context = trace.set_span_in_context(span)
    for name in STAGES:
        if name in (job.get("stages") or {}):
            stage_start, stage_end = job["stages"][name]
            tracer.start_span(name, context=context, start_time=_ns(stage_start)).end(end_time=_ns(stage_end))
    span.end(end_time=_ns(max(start, end)))


def window_attributes() -> dict:
    """The run's window (dates belong on spans, not on metrics), from the jobs' SHEETFILL_WINDOW."""
    try:
        window = json.loads(os.environ.get("SHEETFILL_WINDOW") or "{}")
    except ValueError:
        return {}
    found = {key: window.get(key) for key in ("since", "until", "cursor")}
    found["versions"] = ",".join(window.get("versions") or []) or None
    return {f"sheetfill.window.{key}": value for key, value in found.items() if value}


def record_spans(tracer, run: RunOutcome) -> None:
    context = run.context
    counts = {}
    for bundle in run.bundles:
        counts[bundle.status] = counts.get(bundle.status, 0) + 1
    attributes = {
        "sheetfill.run_id": context.get("run_id") or "",
        "sheetfill.kind": context.get("kind", ""),
        "sheetfill.profile": context.get("profile", ""),
        "sheetfill.status": run.status,
        **{f"sheetfill.bundles.{status}": n for status, n in counts.items()},
        **window_attributes(),
    }
    started = context.get("started") or run.finished
    span = tracer.start_span(
        "sheetfill.run", context=remote_context(context.get("parent")), start_time=_ns(started), attributes=attributes
    )
    if not run.ok:
        failed = sum(n for s, n in counts.items() if s not in ("ok", "skipped"))
        _fail(span, run.error or (f"{failed} of {len(run.bundles)} bundles failed" if failed else "the run failed"))
    run_context = trace.set_span_in_context(span)
    for bundle in run.bundles:
        if bundle.status != "skipped":
            bundle_span(tracer, run, bundle, run_context)
    span.end(end_time=_ns(max(started, run.finished)))


# ---------------------------------------------------------------- export


def _in_background(target) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)  # a hung export never holds the process at exit
    thread.start()
    return thread


def metric_exporter(timeout: float):
    """The OTLP/HTTP metric exporter, telling whether its export went through (flush does not)."""
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics.export import MetricExportResult

    class Exporter(OTLPMetricExporter):
        succeeded = False

        def export(self, *args, **kwargs):
            result = super().export(*args, **kwargs)
            self.succeeded = result == MetricExportResult.SUCCESS
            return result

    return Exporter(timeout=timeout)


def export_run(run: RunOutcome) -> str:
    """Export the run's metrics and spans; return a one-line account. Bounded by the export timeout."""
    timeout = export_timeout()
    jobs = []
    if exporter_wanted("metrics"):
        exporter = metric_exporter(timeout)
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=math.inf)  # exports on flush only
        meters = MeterProvider(resource=resource(), metric_readers=[reader], shutdown_on_exit=False)
        record_metrics(meters, run)
        jobs.append(("metrics", lambda: meters.force_flush(timeout_millis=timeout * 1000) and exporter.succeeded))
    if exporter_wanted("traces"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import SpanExportResult

        ids = parse_traceparent(run.context.get("traceparent")) or (RandomIdGenerator().generate_trace_id(), 1)
        memory = InMemorySpanExporter()
        tracers = TracerProvider(resource=resource(), id_generator=PresetIds(*ids), shutdown_on_exit=False)
        tracers.add_span_processor(SimpleSpanProcessor(memory))
        record_spans(tracers.get_tracer(SCOPE, __version__), run)
        spans_exporter = OTLPSpanExporter(timeout=timeout)
        jobs.append(("traces", lambda: spans_exporter.export(memory.get_finished_spans()) == SpanExportResult.SUCCESS))
    results = {}
    deadline = time.monotonic() + timeout + 0.5
    threads = [(name, _in_background(lambda n=name, j=job: results.__setitem__(n, j()))) for name, job in jobs]
    for _, thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    account = ", ".join(f"{name} {'exported' if results.get(name) else 'NOT exported'}" for name, _ in threads)
    return f"sheetfill: telemetry: {account or 'nothing to export'}"


def report(run: RunOutcome) -> None:
    """export_run, and never let telemetry fail or hold up the run."""
    try:
        print(export_run(run), file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - telemetry is best effort by design
        print(
            f"sheetfill: telemetry not exported ({type(exc).__name__}: {exc}); the run is unaffected", file=sys.stderr
        )
