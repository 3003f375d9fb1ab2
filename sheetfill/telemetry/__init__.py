"""OpenTelemetry metrics and traces for sheetfill runs (docs/observability.md).

This module and context.py / stages.py use the standard library only: the Snakefile, the gate and
every bundle job import them whatever the setting, and with telemetry off no OpenTelemetry module
is ever imported. The SDK is imported by report.py, and only when a run exports something.

Who records what: bundle jobs write their stage timings and task metadata into provenance.json
(cheaper than starting an SDK in every job, see bench/telemetry_bench.py); the gate, which reads
every bundle's outputs at the end of a run, turns them into metrics and spans; the logger plugin's
TelemetrySink reports the runs whose gate never ran (a crashed job, a cancelled run).
"""

from __future__ import annotations

import os

SETTINGS = ("auto", "off")
# Histogram buckets of sheetfill.*.duration, seconds: a small bundle takes seconds, a backfill hours.
DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400)


def exporter_wanted(signal: str) -> bool:
    """OTEL_<SIGNAL>_EXPORTER is otlp (the default) and an OTLP endpoint is configured."""
    exporters = os.environ.get(f"OTEL_{signal.upper()}_EXPORTER", "otlp").replace(" ", "").split(",")
    if "none" in exporters or "otlp" not in exporters:
        return False
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
    )


def wanted(setting: str = "auto") -> bool:
    """Telemetry is on when the config allows it (`telemetry: auto`) and the OTEL_* variables ask for it."""
    return setting != "off" and (exporter_wanted("metrics") or exporter_wanted("traces"))
