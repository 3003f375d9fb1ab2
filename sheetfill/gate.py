"""The per-bundle summary printed at the end of a run, and the run's verdict."""

from __future__ import annotations

LABELS = {"ok": "ok", "failed_validation": "FAILED validation", "failed_processing": "FAILED to process"}


def _line(summary: dict) -> str:
    counts = summary.get("counts") or {}
    validation = summary.get("validation") or {}
    detail = summary.get("error") or (
        f"{validation.get('failed', 0)} of {validation.get('evaluated', 0)} expectations failed"
        if validation.get("failed") else "")
    return (f"  {summary['bundle']:<26} {LABELS.get(summary['status'], summary['status']):<18} "
            f"{counts.get('rows_in', '-'):>8} {counts.get('records_out', '-'):>8}  {detail}").rstrip()


def summarise(summaries: list[dict]) -> tuple[str, bool]:
    """(text, ok): a table of every bundle, then the totals; ok is False when any bundle failed."""
    failed = [s for s in summaries if s["status"] != "ok"]
    header = f"  {'bundle':<26} {'status':<18} {'rows in':>8} {'records':>8}  detail"
    verdict = (f"sheetfill: {len(summaries) - len(failed)} of {len(summaries)} bundles ok"
               + (f", {len(failed)} FAILED" if failed else ""))
    text = "\n".join(["sheetfill run summary:", header, *(_line(s) for s in summaries), verdict])
    return text, not failed
