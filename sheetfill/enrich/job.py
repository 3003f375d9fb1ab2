"""One bundle's enrichment: `python -m sheetfill.jobs.job enrich --outputs O --enriched E --profile P`
(the job entry hands it to a warm worker, like bundle jobs: its imports cost more than its work).

E (`<restore_root>/enriched/<bundle>/`) is a complete copy of the bundle's outputs O, so the data docs
and the gate can read it instead of O, plus:

* `enriched.parquet`: the refined records with the providers' fields, an `enrichment` column (JSON:
  field -> provider, URL, fetched-at, cache hit/miss, or why it is unavailable) and the
  `enrichment_unavailable` flag where a lookup stayed unavailable;
* `enrichment.json`: per provider, lookups, network requests, cache hits, what was found;
* `bundle.json` with an `enrichment` summary; with `on_error: fail`, status failed_enrichment.

Run settings come from SHEETFILL_ENRICH (sheetfill.enrich.settings). Nothing here writes a header
value anywhere: the secrets exist only in the request.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections import Counter
from pathlib import Path

from sheetfill.enrich.apply import UNAVAILABLE_FLAG, add_flag, apply_outcome, build_request, request_key
from sheetfill.enrich.settings import RunSettings


def _write_json(path: Path, payload) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def _copy_outputs(source: Path, staging: Path) -> None:
    for item in sorted(source.iterdir()):
        if item.is_file():
            shutil.copy2(item, staging / item.name)


def _fetchers(spec, settings: RunSettings):
    from sheetfill.enrich.breaker import Breaker
    from sheetfill.enrich.fetch import Fetcher, Mode, open_cache
    from sheetfill.enrich.ratelimit import SharedRateLimiter, is_redis

    Path(settings.cache).parent.mkdir(parents=True, exist_ok=True)
    mode = Mode(
        network=settings.network, only_if_cached=settings.only_if_cached, refresh_before=settings.refresh_before
    )
    breaker_store = settings.rate_limit_store if is_redis(settings.rate_limit_store) else settings.breaker
    fetchers = []
    for provider in spec.providers:
        session = open_cache(settings.cache, secret_headers=provider.headers)
        limiter = None
        if mode.network:
            limiter = SharedRateLimiter(provider.bucket_key, provider.rate_limit, settings.rate_limit_store)
        breaker = Breaker(breaker_store, settings.run_id, provider.name, provider.breaker_failures)
        fetcher = Fetcher(provider, session, limiter, breaker, mode)
        fetcher.headers = {header: os.environ.get(var, "") for header, var in provider.headers.items()}
        fetchers.append(fetcher)
    return fetchers


def _enrich_records(records: list[dict], fetchers) -> tuple[list[dict], dict]:
    """Look up every record once per provider (same request -> one lookup); returns (provenance, report)."""
    provenance = [{} for _ in records]
    report = {}
    for fetcher in fetchers:
        provider = fetcher.provider
        outcomes, counts, reasons = {}, Counter(), Counter()
        for record, notes in zip(records, provenance):
            request = build_request(provider, record)
            if request is None:
                counts["skipped_no_key"] += 1
                continue
            key = request_key(request)
            if key not in outcomes:
                outcomes[key] = fetcher.lookup(request)
                counts[outcomes[key].status] += 1
                if outcomes[key].reason:
                    reasons[outcomes[key].reason] += 1
            counts.update(apply_outcome(record, notes, provider, request["url"], outcomes[key]))
            if outcomes[key].status == "unavailable":
                add_flag(record, UNAVAILABLE_FLAG)
        report[provider.name] = {
            **dict(sorted(counts.items())),
            **fetcher.tally.as_dict(),
            "circuit_open": fetcher.breaker.opened,
            "unavailable_reasons": dict(sorted(reasons.items())),
            "rate_limit": {"burst": provider.rate_limit.burst, "per_second": provider.rate_limit.per_second},
        }
    return provenance, report


def _write_enriched(table, records: list[dict], provenance: list[dict], fields: list[str], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    for name in [f for f in fields if f not in columns]:
        columns[name] = [None] * len(records)
    for name in columns:
        if name in fields or name == "flags":
            columns[name] = [r.get(name) for r in records]
    columns["enrichment"] = [json.dumps(p, sort_keys=True, separators=(",", ":")) if p else None for p in provenance]
    schema = pa.schema(
        [table.schema.field(n) if n in table.column_names else pa.field(n, pa.string()) for n in columns]
    )
    pq.write_table(pa.table(columns, schema=schema), path, compression="zstd")


def _summarise(report: dict, records: list[dict]) -> dict:
    total = Counter()
    for stats in report.values():
        total.update({k: v for k, v in stats.items() if isinstance(v, int) and not isinstance(v, bool)})
    return {
        "providers": sorted(report),
        "records": len(records),
        "records_unavailable": sum(UNAVAILABLE_FLAG in (r.get("flags") or "") for r in records),
        "fields_enriched": total["fields_enriched"],
        "fields_unavailable": total["fields_unavailable"],
        "lookups": total["lookups"],
        "requests": total["requests"],
        "cache_hits": total["cache_hits"],
    }


def enrich_bundle(outputs: Path, enriched: Path, profile_path: str, settings: RunSettings) -> dict:
    """Build `enriched` from a bundle's `outputs`; returns its bundle.json."""
    import pyarrow.parquet as pq

    from sheetfill.enrich.spec import enrich_spec
    from sheetfill.runs.config import load_yaml

    # validated when the run was planned; reading it again with the schema would cost every job ~0.3 s
    spec = enrich_spec(load_yaml(Path(profile_path).read_bytes()))
    staging = enriched.with_name(f".{enriched.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    _copy_outputs(outputs, staging)
    summary = json.loads((outputs / "bundle.json").read_text())
    refined = outputs / "refined.parquet"
    if spec is None or not refined.exists():
        summary["enrichment"] = {"skipped": "no providers" if spec is None else "the bundle has no refined records"}
    else:
        table = pq.ParquetFile(refined).read()  # not read_table: that imports pyarrow.dataset and pandas
        records = table.to_pylist()
        fetchers = _fetchers(spec, settings)
        provenance, report = _enrich_records(records, fetchers)
        fields = [f for p in spec.providers for f in p.fields]
        _write_enriched(table, records, provenance, list(dict.fromkeys(fields)), staging / "enriched.parquet")
        _write_json(staging / "enrichment.json", {"bundle": summary["bundle"], "providers": report})
        summary["enrichment"] = _summarise(report, records)
        if spec.on_error == "fail" and summary["enrichment"]["records_unavailable"] and summary["status"] == "ok":
            reasons = sorted({r for stats in report.values() for r in stats["unavailable_reasons"]})
            summary["status"] = "failed_enrichment"
            summary["error"] = (
                f"enrichment unavailable for {summary['enrichment']['records_unavailable']} records "
                f"({'; '.join(reasons)}); the profile says on_error: fail"
            )
        for fetcher in fetchers:  # a warm worker runs many jobs: leave no connection behind
            fetcher.close()
    _write_json(staging / "bundle.json", summary)
    shutil.rmtree(enriched, ignore_errors=True)
    staging.rename(enriched)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sheetfill.jobs.job enrich")
    parser.add_argument("--outputs", type=Path, required=True, help="the bundle's outputs folder")
    parser.add_argument("--enriched", type=Path, required=True, help="where the enriched copy goes")
    parser.add_argument("--profile", required=True)
    args = parser.parse_args(argv)
    settings = RunSettings.from_env()
    summary = enrich_bundle(args.outputs, args.enriched, args.profile, settings)
    print(f"{summary['bundle']}: {summary['status']}; enrichment {json.dumps(summary['enrichment'], sort_keys=True)}")
    if summary.get("error"):
        print(summary["error"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
