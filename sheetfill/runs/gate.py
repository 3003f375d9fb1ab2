"""The per-bundle summary printed at the end of a run, and the run's verdict (pure: no I/O)."""

from __future__ import annotations

LABELS = {
    "ok": "ok",
    "failed_validation": "FAILED validation",
    "failed_processing": "FAILED to process",
    "failed_enrichment": "FAILED enrichment",
}
COLUMNS = "  {:<26} {:<18} {:>8} {:>8} {:>10}  {}"


def _detail(summary: dict) -> str:
    """Why a bundle failed: the processing error, or how many expectations failed."""
    if summary.get("error"):
        return " ".join(str(summary["error"]).split())  # one line per bundle, whatever the message
    validation = summary.get("validation") or {}
    if validation.get("failed"):
        return f"{validation['failed']} of {validation.get('evaluated', '?')} expectations failed"
    return ""


def _line(summary: dict) -> str:
    counts = summary.get("counts") or {}
    status = summary.get("status", "unknown")
    return COLUMNS.format(
        summary.get("bundle", "?"),
        LABELS.get(status, f"FAILED ({status})"),
        counts.get("rows_in", "-"),
        counts.get("records_out", "-"),
        counts.get("duplicates_merged", "-"),
        _detail(summary),
    ).rstrip()


def summarise(summaries: list[dict]) -> tuple[str, bool]:
    """(text, ok): one line per bundle, then counts per status; ok is False when any bundle failed.

    A status other than "ok" (including an unknown one) counts as a failure: the gate must never
    pass a bundle it does not understand.
    """
    tally = {status: 0 for status in LABELS}
    for summary in summaries:
        status = summary.get("status", "unknown")
        tally[status] = tally.get(status, 0) + 1
    failed = len(summaries) - tally["ok"]
    totals = ", ".join(f"{n} {LABELS.get(s, s)}" for s, n in tally.items() if n)
    verdict = f"sheetfill: {len(summaries)} bundles: {totals or 'none in the window'} -> " + (
        "FAILED (exit non-zero)" if failed else "ok"
    )
    header = COLUMNS.format("bundle", "status", "rows in", "records", "merged", "detail").rstrip()
    ordered = sorted(summaries, key=lambda s: s.get("status") == "ok")  # failures first, each in run order
    text = "\n".join(["sheetfill run summary:", header, *(_line(s) for s in ordered), verdict])
    return text, failed == 0
