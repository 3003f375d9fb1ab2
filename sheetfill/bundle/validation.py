"""Evaluate a data profile's expectations on refined records (or on a source's raw rows).

Each column check is one vectorised pandas expression giving a per-value "passes" mask; `mostly`,
counts, percentages and masked examples are derived from that mask the same way for every check.
pandera was measured and not used: importing it adds ~0.12-0.17 s to every bundle job that runs
without the warm worker (SLURM, `worker: off`), a sixth of the 1 s per-job budget, and it has no
`mostly` threshold nor masked examples, so it would sit under as much code as it replaces.
Numbers and reasoning: docs/data-docs.md; re-measure with bench/validation_import_bench.py.

Semantics follow the Great Expectations conventions users know: a missing value (null or blank
text) fails only `not_null`; every other column check looks at the present values alone, and
`mostly` is the share of those that must pass.
"""

from __future__ import annotations

import datetime as dt
import math
import re

import pandas as pd

from sheetfill.bundle.profiles import CHECKS, expectation_problems  # noqa: F401 - checked at load, re-checked here
from sheetfill.errors import ProfileError

EXAMPLES = 5  # unexpected values shown per expectation
EXAMPLE_CHARS = 80  # long cells are cut: the docs show a hint, not the cell


# --- masking -----------------------------------------------------------------------------------


def _mask_email(text: str) -> str:
    local, _, domain = text.partition("@")
    host, dot, tld = domain.rpartition(".")
    return f"{local[:1]}***@{host[:1]}***.{tld}" if dot else f"{local[:1]}***@***"


def _mask_one(text: str) -> str:
    """Keep the shape, hide the person: j***@e***.com, +**********89, J*** S***."""
    text = text.strip()
    if "@" in text:
        return _mask_email(text)
    if sum(ch.isdigit() for ch in text) >= 5:
        return re.sub(r"\d(?=(?:\D*\d){2})", "*", text)  # every digit but the last two
    return " ".join(f"{word[:1]}***" for word in text.split())


def mask_value(value) -> str:
    """Mask a PII cell; `; `-joined lists (the emails / phones columns) are masked item by item."""
    return "; ".join(_mask_one(part) for part in str(value).split(";") if part.strip())


# --- checks: each returns a boolean mask over the present values ----------------------------------


def _missing(column: pd.Series) -> pd.Series:
    """Null, or text that is empty after stripping."""
    missing = column.isna()
    try:
        blank = column.str.strip().eq("")  # non-text cells give NaN here: not blank
    except AttributeError:  # no text in the column at all
        return missing
    return missing | blank.fillna(False).astype(bool)


def _unique(values: pd.Series, spec: dict) -> pd.Series:
    return ~values.astype(str).duplicated(keep=False)  # every row sharing a value is unexpected


def _regex(values: pd.Series, spec: dict) -> pd.Series:
    # search semantics, as Python's re.search: anchor the pattern (^...$) to match whole values
    return values.astype(str).str.contains(spec["pattern"], regex=True)


def _in_set(values: pd.Series, spec: dict) -> pd.Series:
    return values.isin(spec["values"])


def _between(values: pd.Series, spec: dict) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")  # text that is not a number fails
    return numbers.between(spec.get("min", -math.inf), spec.get("max", math.inf)).astype(bool)


COLUMN_CHECKS = {"unique": _unique, "regex": _regex, "in_set": _in_set, "between": _between}


# --- results -------------------------------------------------------------------------------------


def plain(value):
    """A JSON-native version of a cell (numpy scalars, timestamps, NaN)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if hasattr(value, "item"):  # numpy scalar
        return plain(value.item())
    if isinstance(value, (dt.date, dt.datetime, pd.Timestamp)):
        return value.isoformat()
    return str(value)


def _row_label(frame: pd.DataFrame, index) -> str:
    """Where an unexpected value is: record_id for records, file | sheet | row for source rows."""
    row = frame.loc[index]
    if "record_id" in frame.columns:
        return str(row["record_id"])
    if {"_file", "_sheet", "_row"} <= set(frame.columns):
        return f"{row['_file']} | {row['_sheet']} | row {plain(row['_row'])}"
    return f"row {plain(index)}"


def _example(frame: pd.DataFrame, index, value, pii: bool) -> dict:
    if pd.api.types.is_scalar(value) and pd.isna(value):  # None, NaN, NaT, pd.NA
        shown = None
    elif pii:
        shown = mask_value(value)
    else:
        shown = plain(value)
        shown = shown[:EXAMPLE_CHARS] + "…" if isinstance(shown, str) and len(shown) > EXAMPLE_CHARS else shown
    return {"row": _row_label(frame, index), "value": shown}


def _header(spec: dict) -> dict:
    return {
        "name": spec["name"],
        "column": spec.get("column"),
        "check": spec["check"],
        "source": spec.get("source", "records"),
        "mostly": spec.get("mostly", 1.0),
    }


def _error(spec: dict, message: str) -> dict:
    """An expectation that could not be evaluated fails, saying why."""
    return _header(spec) | {
        "success": False,
        "error": message,
        "observed": None,
        "element_count": 0,
        "missing_count": 0,
        "unexpected_count": 0,
        "unexpected_percent": 0.0,
        "examples": [],
    }


def _row_count(frame: pd.DataFrame, spec: dict) -> dict:
    count = len(frame)
    ok = spec.get("min", 0) <= count <= spec.get("max", math.inf)
    return _header(spec) | {
        "success": ok,
        "observed": count,
        "element_count": count,
        "missing_count": 0,
        "unexpected_count": 0 if ok else 1,
        "unexpected_percent": 0.0 if ok else 100.0,
        "examples": [],
    }


def _column_check(frame: pd.DataFrame, spec: dict, pii: bool) -> dict:
    column = frame[spec["column"]]
    missing = _missing(column)
    if spec["check"] == "not_null":
        passes, considered = ~missing, column
    else:
        considered = column[~missing]
        passes = COLUMN_CHECKS[spec["check"]](considered, spec)
    unexpected = considered[~passes]
    total = len(considered)
    share = float(passes.mean()) if total else 1.0  # nothing to check: vacuously met
    return _header(spec) | {
        "success": share >= spec.get("mostly", 1.0),
        "observed": round(share, 4),
        "element_count": len(column),
        "missing_count": int(missing.sum()),
        "unexpected_count": len(unexpected),
        "unexpected_percent": round(100 * len(unexpected) / total, 2) if total else 0.0,
        "examples": [_example(frame, i, v, pii) for i, v in unexpected.head(EXAMPLES).items()],
    }


def evaluate(frame: pd.DataFrame, spec: dict, pii_fields=()) -> dict:
    """One expectation's result on one frame."""
    frame = frame.reset_index(drop=True)  # example rows are looked up by label
    if spec["check"] == "row_count":
        return _row_count(frame, spec)
    if spec.get("column") not in frame.columns:
        return _error(spec, f"column {spec.get('column')!r} is not in the {spec.get('source', 'records')} data")
    return _column_check(frame, spec, spec["column"] in set(pii_fields))


def validate(records: pd.DataFrame, profile, sources=None) -> dict:
    """Every expectation of the profile, on the records or on the named source's rows.

    `sources` maps source name -> DataFrame (the refine result's `frames`). The report is JSON-able:
    {"success", "evaluated", "failed", "results": [per expectation]}.
    """
    problems = expectation_problems(profile.expectations)
    if problems:
        raise ProfileError(f"data profile {profile.name}: invalid expectations:\n  " + "\n  ".join(problems))
    sources = sources if sources is not None else {}
    results = []
    for spec in profile.expectations:
        source = spec.get("source", "records")
        frame = records if source == "records" else sources.get(source)
        if frame is None:
            results.append(_error(spec, f"source {source!r} has no rows in this bundle"))
        else:
            results.append(evaluate(frame, spec, profile.pii_fields))
    failed = sum(not r["success"] for r in results)
    return {"success": failed == 0, "evaluated": len(results), "failed": failed, "results": results}
