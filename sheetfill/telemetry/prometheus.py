"""`GET /metrics` of `sheetfill serve`: the service's figures in the Prometheus text format.

Read from the run ledger at scrape time (one read-only SQLite connection per scrape), so they are
true after a restart and include runs started from the CLI or a plain `snakemake`. The bundle
metrics carry the names the OpenTelemetry export gets in Prometheus (docs/observability.md).
"""

from __future__ import annotations

import hmac
import sqlite3
from contextlib import closing
from pathlib import Path

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from sheetfill.runs.ledger import ACTIVE, FINAL, RUN_STATUSES, ledger_path
from sheetfill.telemetry import DURATION_BUCKETS

router = APIRouter()
BUNDLE_LABELS = ["kind", "profile", "version", "status"]
BUNDLE_ROWS = """
SELECT r.kind AS kind, substr(b.bundle, instr(b.bundle, '--') + 2) AS version, b.status AS status,
       b.duration_s AS duration, b.rows_in AS rows_in, b.records_out AS records_out,
       b.expectations_failed AS expectations
FROM bundles b JOIN runs r ON r.id = b.run_id
WHERE b.status IN ('ok', 'failed_validation', 'failed_processing', 'skipped')
"""
# Runs that ended, as the OpenTelemetry export reports them (dry runs export nothing)
RUN_ROWS = f"""
SELECT kind, status, finished - started FROM runs
WHERE status IN ({", ".join(f"'{status}'" for status in FINAL)}) AND started IS NOT NULL AND finished IS NOT NULL
  AND NOT dry_run
"""


class LedgerCollector:
    """Runs by status, queue length, the active run's progress, and the bundle metrics."""

    def __init__(self, db: sqlite3.Connection, profile: str) -> None:
        self.db, self.profile = db, profile

    def collect(self):
        yield from self.run_metrics()
        yield self.run_durations()
        yield from self.bundle_metrics()

    def run_metrics(self):
        counts = dict.fromkeys(RUN_STATUSES, 0)
        counts.update(dict(self.db.execute("SELECT status, COUNT(*) FROM runs GROUP BY status")))
        runs = GaugeMetricFamily("sheetfill_runs", "Runs in the ledger by status", labels=["status"])
        for status, n in counts.items():
            runs.add_metric([status], n)
        yield runs
        yield GaugeMetricFamily("sheetfill_queue_length", "Runs waiting to start", value=counts["queued"])
        marks = ", ".join("?" * len(ACTIVE))
        active = self.db.execute(
            f"SELECT done, total FROM runs WHERE status IN ({marks}) AND status != 'queued' ORDER BY created LIMIT 1",
            ACTIVE,
        ).fetchone()
        done, total = active if active else (0, 0)
        yield GaugeMetricFamily("sheetfill_active_run_jobs_done", "Jobs done in the active run", value=done or 0)
        yield GaugeMetricFamily("sheetfill_active_run_jobs_total", "Jobs planned in the active run", value=total or 0)

    def run_durations(self):
        """sheetfill.run.duration: status ok for a succeeded run, failed for any other end, as exported."""
        groups: dict[tuple, list] = {}
        for kind, status, seconds in self.db.execute(RUN_ROWS):
            key = (kind or "", self.profile, "ok" if status == "succeeded" else "failed")
            groups.setdefault(key, []).append(max(0.0, seconds))
        family = HistogramMetricFamily(
            "sheetfill_run_duration_seconds", "Wall time of a run", labels=["kind", "profile", "status"]
        )
        for key, durations in sorted(groups.items()):
            family.add_metric(list(key), cumulative_buckets(durations), sum(durations))
        return family

    def bundle_metrics(self):
        groups: dict[tuple, dict] = {}
        for kind, version, status, duration, rows_in, records_out, expectations in self.db.execute(BUNDLE_ROWS):
            key = (kind or "", self.profile, version, status)
            group = groups.setdefault(key, {"n": 0, "rows": 0, "records": 0, "expectations": 0, "durations": []})
            group["n"] += 1
            if status != "skipped":  # as in the OpenTelemetry export: only bundles built count their figures
                group["rows"] += rows_in or 0
                group["records"] += records_out or 0
                group["expectations"] += expectations or 0
                if duration is not None:
                    group["durations"].append(duration)
        families = {
            "n": CounterMetricFamily("sheetfill_bundles", "Bundles by status", labels=BUNDLE_LABELS),
            "rows": CounterMetricFamily("sheetfill_rows_in", "Source rows read", labels=BUNDLE_LABELS),
            "records": CounterMetricFamily("sheetfill_records_out", "Records written", labels=BUNDLE_LABELS),
            "expectations": CounterMetricFamily(
                "sheetfill_expectations_failed", "Failed expectations", labels=BUNDLE_LABELS
            ),
        }
        durations = HistogramMetricFamily(
            "sheetfill_bundle_duration_seconds", "Wall time of a bundle job", labels=BUNDLE_LABELS
        )
        for key, group in sorted(groups.items()):
            for field, family in families.items():
                family.add_metric(list(key), group[field])
            if group["durations"]:
                durations.add_metric(list(key), cumulative_buckets(group["durations"]), sum(group["durations"]))
        yield from families.values()
        yield durations


def cumulative_buckets(values: list[float]) -> list[tuple[str, int]]:
    buckets = [(str(float(le)), sum(v <= le for v in values)) for le in DURATION_BUCKETS]
    return [*buckets, ("+Inf", len(values))]


def scrape(restore_root, profile: str) -> bytes:
    path = ledger_path(restore_root)
    registry = CollectorRegistry(auto_describe=False)
    if not path.exists():
        return generate_latest(registry)
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
        registry.register(LedgerCollector(db, profile))
        return generate_latest(registry)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    settings = request.app.state.service.settings
    if settings.token and not _token_ok(request, settings.token):
        return Response("missing or wrong token: send Authorization: Bearer <token>\n", status_code=401)
    body = scrape(settings.restore_root, Path(settings.sheetfill.profile).stem)  # as the OTel export names it
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _token_ok(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
