"""sheetfill.runs.gate.summarise (run summary and verdict from bundle.json summaries) and
sheetfill.bundle.diff.diff_records (what changed between two builds, without any cell values)."""

from __future__ import annotations

import itertools
import json

import pandas as pd
import pytest

from sheetfill.bundle.diff import diff_records
from sheetfill.runs.gate import summarise

NAN = float("nan")
COUNTS = {"rows_in": 120, "records_out": 39, "duplicates_merged": 81, "flagged": 2, "rejected": 0}


def summary(bundle: str, status: str = "ok", error=None, failed: int | None = None) -> dict:
    """A bundle.json as sheetfill.bundle.process.process_bundle writes it."""
    processed = status != "failed_processing"
    date, version = bundle.split("--")
    return {
        "bundle": bundle,
        "date": date,
        "version": version,
        "status": status,
        "error": error,
        "counts": COUNTS if processed else {},
        "quality": {},
        "diff": None,
        "validation": {"success": not failed, "evaluated": 8, "failed": failed or 0} if processed else None,
    }


OK = summary("2025-09-29--v1")
FAILED_VALIDATION = summary("2025-09-29--v2", "failed_validation", failed=2)
FAILED_PROCESSING = summary("2025-09-30--v1", "failed_processing", error="bad zip:\n  member x.xlsx\tis encrypted")


def bundle_line(text: str, bundle: str) -> list[str]:
    [line] = [line for line in text.splitlines() if line.split()[:1] == [bundle]]
    return line.split()


@pytest.mark.parametrize(
    "bundle, words, ok",
    [
        (OK, ["ok", "120", "39", "81"], True),
        (
            FAILED_VALIDATION,
            ["FAILED", "validation", "120", "39", "81", "2", "of", "8", "expectations", "failed"],
            False,
        ),
        (
            FAILED_PROCESSING,
            ["FAILED", "to", "process", "-", "-", "-", "bad", "zip:", "member", "x.xlsx", "is", "encrypted"],
            False,
        ),
    ],
)
def test_one_line_per_bundle_and_its_verdict(bundle, words, ok):
    text, passed = summarise([bundle])
    assert passed is ok
    assert bundle_line(text, bundle["bundle"]) == [bundle["bundle"], *words]
    assert len(text.splitlines()) == 4  # title, column header, the bundle, the verdict


def test_mixed_run_fails_and_counts_each_status():
    text, ok = summarise([OK, FAILED_VALIDATION, FAILED_PROCESSING])
    lines = text.splitlines()
    assert ok is False and lines[0] == "sheetfill run summary:" and len(lines) == 6
    assert lines[1].split() == ["bundle", "status", "rows", "in", "records", "merged", "detail"]
    assert lines[-1] == (
        "sheetfill: 3 bundles: 1 ok, 1 FAILED validation, 1 FAILED to process -> FAILED (exit non-zero)"
    )


@pytest.mark.parametrize(
    "summaries, verdict",
    [
        ([OK, summary("2025-09-30--v2")], "sheetfill: 2 bundles: 2 ok -> ok"),
        ([], "sheetfill: 0 bundles: none in the window -> ok"),
    ],
)
def test_passing_runs(summaries, verdict):
    text, ok = summarise(summaries)
    assert ok is True and text.splitlines()[-1] == verdict


@pytest.mark.parametrize("status, label", [("half_done", "half_done"), (None, "unknown")])
def test_a_status_the_gate_does_not_know_fails(status, label):
    odd = summary("2025-10-01--v1", status or "ok")
    if status is None:
        del odd["status"]
    text, ok = summarise([OK, odd])
    assert ok is False
    assert bundle_line(text, "2025-10-01--v1")[1:3] == ["FAILED", f"({label})"]
    assert text.splitlines()[-1] == f"sheetfill: 2 bundles: 1 ok, 1 {label} -> FAILED (exit non-zero)"


# --- diff_records --------------------------------------------------------------------------------


def records(ids, **columns) -> pd.DataFrame:
    return pd.DataFrame({"record_id": ids, **columns})


OLD = records(
    ["a", "b", "c", "d"],
    name=["Ann Air", "Bee Air", "Cee Air", "Dee Air"],
    city=["Durban", "Cape Town", "Pretoria", "Polokwane"],
    provenance=["p1", "p2", "p3", "p4"],
    source_rows=["1", "2", "3", "4"],
    source_count=[1, 1, 1, 1],
)


def test_added_removed_changed_unchanged():
    new = records(
        ["b", "c", "d", "e"],
        name=["Bee Aviation", "Cee Aviation", "Dee Air", "Eee Air"],
        city=["Cape Town", "Durban", "Polokwane", "George"],
        provenance=["p2", "p3", "p4", "p5"],
        source_rows=["2", "3", "4", "5"],
        source_count=[1, 1, 1, 1],
    )
    result = diff_records(OLD, new)
    assert {k: result[k] for k in ("added", "removed", "changed", "unchanged")} == {
        "added": 1,
        "removed": 1,
        "changed": 2,
        "unchanged": 1,
    }
    assert result["changed_columns"] == {"name": 2, "city": 1}
    assert result["examples"] == {
        "added": ["e"],
        "removed": ["a"],
        "changed": [{"record_id": "b", "columns": ["name"]}, {"record_id": "c", "columns": ["name", "city"]}],
    }
    assert result["columns_added"] == result["columns_removed"] == []


def test_provenance_only_changes_are_not_changes():
    new = OLD.assign(provenance=["q1", "q2", "q3", "q4"], source_rows=["9", "9", "9", "9"], source_count=[2, 3, 4, 5])
    result = diff_records(OLD, new)
    assert (result["changed"], result["unchanged"], result["changed_columns"]) == (0, 4, {})


@pytest.mark.parametrize("before, after", list(itertools.permutations([None, NAN, "", pd.NA], 2)))
def test_missing_value_spellings_are_equal(before, after):
    result = diff_records(records(["a", "b"], city=[before, "x"]), records(["a", "b"], city=[after, "x"]))
    assert (result["changed"], result["unchanged"]) == (0, 2)


@pytest.mark.parametrize("missing", [None, NAN, ""])
def test_a_value_appearing_or_vanishing_is_a_change(missing):
    for before, after in (("x", missing), (missing, "x")):
        result = diff_records(records(["a"], city=[before]), records(["a"], city=[after]))
        assert (result["changed"], result["changed_columns"]) == (1, {"city": 1})


def test_columns_added_and_removed_are_listed_not_compared():
    new = OLD.drop(columns="city").assign(phone=["1", "2", "3", "4"])
    result = diff_records(OLD, new)
    assert (result["columns_added"], result["columns_removed"]) == (["phone"], ["city"])
    assert (result["changed"], result["unchanged"], result["changed_columns"]) == (0, 4, {})


def test_duplicated_record_ids_count_once_and_compare_the_first_row():
    old = records(["a", "a"], name=["Ann", "Ann (old duplicate)"])
    new = records(["a", "b", "b"], name=["Ann", "Bob", "Bob again"])
    result = diff_records(old, new)
    assert {k: result[k] for k in ("added", "removed", "changed", "unchanged")} == {
        "added": 1,
        "removed": 0,
        "changed": 0,
        "unchanged": 1,
    }
    assert result["examples"]["added"] == ["b"]


def strings(value) -> set[str]:
    """Every string in a JSON-like value, keys included."""
    if isinstance(value, dict):
        return set(value) | set().union(*map(strings, value.values()))
    if isinstance(value, list):
        return set().union(*map(strings, value))
    return {value} if isinstance(value, str) else set()


def test_only_ids_and_column_names_leave_the_diff():
    old = records(["r1", "r2", "r3"], email=["ann@x.org", "bob@x.org", "cy@x.org"], phone=["+2711", "+2712", "+2713"])
    new = records(["r2", "r3", "r4"], email=["bob@y.org", "cy@x.org", "dee@x.org"], mobile=["+2791"] * 3)
    result = diff_records(old, new)
    assert strings(result) <= {"r1", "r2", "r3", "r4", "record_id", "email", "phone", "mobile"} | {
        "added",
        "removed",
        "changed",
        "unchanged",
        "changed_columns",
        "columns_added",
        "columns_removed",
        "examples",
        "columns",
    }
    text = json.dumps(result)
    assert not any(cell in text for cell in ("@", "+27"))
