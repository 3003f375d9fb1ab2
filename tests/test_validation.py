"""sheetfill.bundle.validation: each check on small frames, `mostly`, result fields, masked examples,
expectation problems, and validate() on a real generated bundle (records and source rows)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import zipfile

import pandas as pd
import pytest

from sheetfill.bundle.profiles import CHECKS, expectation_problems, load_profile
from sheetfill.bundle.validation import EXAMPLE_CHARS, EXAMPLES, evaluate, mask_value, validate
from sheetfill.errors import ProfileError
from sheetfill.refine import refine_bundle
from sheetfill.sample import generate_bundle

NAN = float("nan")
MISSING = [None, None, "", "  ", NAN]  # every spelling of "no value", the None twice


def check(cells, kind, pii=False, **options) -> dict:
    """One expectation on a one-column frame (column "c")."""
    spec = {"name": "e", "column": "c", "check": kind, **options}
    return evaluate(pd.DataFrame({"c": cells}), spec, ["c"] if pii else [])


def shown(result) -> list:
    return [example["value"] for example in result["examples"]]


# --- each check ----------------------------------------------------------------------------------

CASES = {  # check, options, values, the values expected to fail
    "unique": ("unique", {}, ["a", "b", "a", "c"], ["a", "a"]),
    "regex searches": ("regex", {"pattern": "a"}, ["xa", "ax", "b"], ["b"]),
    "regex anchored": ("regex", {"pattern": "^a"}, ["xa", "ax", "b"], ["xa", "b"]),
    "in_set exact": ("in_set", {"values": ["Gauteng", "Limpopo"]}, ["Gauteng", "gauteng", "Limpopo"], ["gauteng"]),
    "between inclusive": ("between", {"min": 0, "max": 1}, [0, 0.5, 1, 1.5, -0.1, "0.5", "abc"], [1.5, -0.1, "abc"]),
    "between min only": ("between", {"min": 5}, [5, 10, 4], [4]),
    "between max only": ("between", {"max": 5}, [5, 10, 4], [10]),
    # dates are not supported: min/max are numbers (schema) and date text is not a number
    "between date text": ("between", {"min": 0}, ["2025-01-01", 3], ["2025-01-01"]),
}


@pytest.mark.parametrize("name", CASES)
def test_check_semantics(name):
    kind, options, values, failing = CASES[name]
    result = check(values, kind, **options)
    assert shown(result) == failing
    assert result["observed"] == round(1 - len(failing) / len(values), 4)
    assert result["unexpected_count"] == len(failing) and result["success"] is False


@pytest.mark.parametrize(
    "kind, options, present",
    [
        ("unique", {}, ["a", "b"]),
        ("regex", {"pattern": r"^[a-z]\d$"}, ["a1", "b2"]),
        ("in_set", {"values": ["Gauteng", "Limpopo"]}, ["Gauteng", "Limpopo"]),
        ("between", {"min": 0, "max": 1}, [0, 1]),
    ],
)
def test_missing_values_fail_only_not_null(kind, options, present):
    result = check(present + MISSING, kind, **options)
    assert (result["success"], result["observed"], result["unexpected_count"]) == (True, 1.0, 0)
    assert result["missing_count"] == len(MISSING) and result["element_count"] == len(present) + len(MISSING)
    assert check(present + MISSING, "not_null")["unexpected_count"] == len(MISSING)


def test_not_null_result_fields():
    result = check(["x", "y", *MISSING], "not_null")
    total = 2 + len(MISSING)
    assert result["observed"] == round(2 / total, 4)
    assert result["unexpected_percent"] == round(100 * len(MISSING) / total, 2)
    assert result["missing_count"] == result["unexpected_count"] == len(MISSING)
    assert result["examples"][:2] == [{"row": "row 2", "value": None}, {"row": "row 3", "value": None}]


def test_result_fields_count_present_values_only():
    result = check(["a@x.com", "b@x.com", "c@x.com", "bad", None, ""], "regex", pattern="@")
    assert {
        k: result[k]
        for k in (
            "success",
            "observed",
            "element_count",
            "missing_count",
            "unexpected_count",
            "unexpected_percent",
            "mostly",
            "source",
        )
    } == {
        "success": False,
        "observed": 0.75,
        "element_count": 6,
        "missing_count": 2,
        "unexpected_count": 1,
        "unexpected_percent": 25.0,
        "mostly": 1.0,
        "source": "records",
    }
    assert result["examples"] == [{"row": "row 3", "value": "bad"}]


@pytest.mark.parametrize(
    "passing, total, mostly, success",
    [
        (3, 4, 0.75, True),
        (3, 4, 0.76, False),
        (75, 100, 0.75, True),
        (74, 100, 0.75, False),
        (99, 100, 0.99, True),
        (98, 100, 0.99, False),
        (9, 10, 0.9, True),
        (8, 10, 0.9, False),
    ],
)
def test_mostly_threshold(passing, total, mostly, success):
    result = check(["ok"] * passing + ["no"] * (total - passing), "regex", pattern="^ok$", mostly=mostly)
    assert result["success"] is success and result["mostly"] == mostly
    assert result["observed"] == round(passing / total, 4)


def test_nothing_present_is_vacuously_met():
    result = check([None, ""], "regex", pattern="^x$")
    assert (result["success"], result["observed"], result["unexpected_percent"]) == (True, 1.0, 0.0)


@pytest.mark.parametrize(
    "rows, bounds, ok",
    [
        (3, {"min": 3}, True),
        (2, {"min": 3}, False),
        (3, {"max": 3}, True),
        (4, {"max": 3}, False),
        (0, {"min": 0, "max": 0}, True),
        (5, {"min": 1, "max": 4}, False),
    ],
)
def test_row_count_bounds(rows, bounds, ok):
    result = evaluate(pd.DataFrame({"c": range(rows)}), {"name": "n", "check": "row_count", **bounds})
    assert (result["success"], result["observed"], result["element_count"]) == (ok, rows, rows)
    assert (result["unexpected_count"], result["unexpected_percent"]) == ((0, 0.0) if ok else (1, 100.0))


def test_unknown_column_is_a_failed_result_saying_why():
    result = evaluate(pd.DataFrame({"c": [1]}), {"name": "e", "column": "nope", "check": "not_null"})
    assert result["success"] is False and result["examples"] == []
    assert result["error"] == "column 'nope' is not in the records data"


# --- examples: capped, cut, masked, labelled -----------------------------------------------------


def test_examples_are_capped_in_row_order():
    result = check([f"bad{i}" for i in range(EXAMPLES + 7)], "regex", pattern="^ok$")
    assert result["unexpected_count"] == EXAMPLES + 7
    assert result["examples"] == [{"row": f"row {i}", "value": f"bad{i}"} for i in range(EXAMPLES)]


def test_long_values_are_cut():
    assert shown(check(["x" * (EXAMPLE_CHARS + 10)], "regex", pattern="^ok$")) == ["x" * EXAMPLE_CHARS + "…"]


@pytest.mark.parametrize(
    "value, masked",
    [
        ("john@example.com", "j***@e***.com"),
        ("jane@localhost", "j***@***"),
        ("+27821234567", "+*********67"),  # 11 digits: all but the last two hidden
        ("082 123 4567", "*** *** **67"),
        ("John Smith", "J*** S***"),
        ("john@example.com; +27821234567", "j***@e***.com; +*********67"),
        ("Ann Lee; Bob", "A*** L***; B***"),
    ],
)
def test_mask_value(value, masked):
    assert mask_value(value) == masked


def test_pii_examples_are_masked_and_other_columns_shown():
    frame = pd.DataFrame({"email": ["john@example.com", "ok@x.org"], "site": ["nope", "www.x.org"]})
    specs = [
        {"name": "e", "column": "email", "check": "regex", "pattern": r"\.org$"},
        {"name": "s", "column": "site", "check": "regex", "pattern": r"^www\."},
    ]
    email, site = (evaluate(frame, spec, pii_fields=["email"]) for spec in specs)
    assert shown(email) == ["j***@e***.com"] and "john" not in json.dumps(email)
    assert shown(site) == ["nope"]


@pytest.mark.parametrize(
    "extra, label",
    [
        ({"record_id": ["r1", "r2"]}, "r2"),
        ({"_file": ["a.xlsx"] * 2, "_sheet": ["S"] * 2, "_row": [7, 9]}, "a.xlsx | S | row 9"),
        ({}, "row 1"),
    ],
)
def test_example_row_labels(extra, label):
    frame = pd.DataFrame({"c": ["ok", "bad"], **extra})
    result = evaluate(frame, {"name": "e", "column": "c", "check": "in_set", "values": ["ok"]})
    assert result["examples"] == [{"row": label, "value": "bad"}]


@pytest.mark.parametrize(
    "column",
    [pd.Series([dt.datetime(2025, 1, 1), None], dtype="datetime64[us]"), pd.Series(["a", None], dtype="string")],
)
@pytest.mark.parametrize("pii", [False, True])
def test_missing_example_is_none_for_every_dtype(column, pii):
    assert shown(check(column, "not_null", pii=pii)) == [None]


# --- expectation problems ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"check": "nope", "column": "c"}, f".check: 'nope' is unknown; fix: use one of {', '.join(CHECKS)}"),
        ({"check": None}, ".check: None is unknown"),
        ({"check": "not_null"}, ".column: missing; fix: name the column to check"),
        ({"check": "regex", "column": "c", "pattern": "("}, ".pattern: not a valid regular expression"),
        ({"check": "in_set", "column": "c", "values": []}, ".values: missing; fix: list the allowed values"),
        ({"check": "between", "column": "c"}, ": between needs min and/or max"),
        ({"check": "row_count"}, ": row_count needs min and/or max"),
    ],
)
def test_expectation_problems_name_the_spec_and_the_fix(spec, message):
    ok = {"name": "fine", "check": "row_count", "min": 1}
    problems = expectation_problems([ok, {"name": "bad", **spec}])
    assert len(problems) == 1 and problems[0].startswith("expectations[1] (bad)")
    assert message in problems[0]


def test_real_profile_expectations_have_no_problems():
    assert expectation_problems(load_profile("aviation").expectations) == []


def test_regex_without_pattern_is_a_problem():
    assert expectation_problems([{"name": "r", "column": "c", "check": "regex"}]) != []


# --- validate() on a real bundle -----------------------------------------------------------------


@pytest.fixture(scope="module")
def refined(tmp_path_factory):
    root = tmp_path_factory.mktemp("validation")
    generate_bundle(root / "bundle.zip", dt.date(2025, 9, 29), "v1", scale=0.05)
    with zipfile.ZipFile(root / "bundle.zip") as zf:
        zf.extractall(root / "restored")
    profile = load_profile("aviation")
    return profile, refine_bundle(root / "restored", profile)


def results_by_name(report) -> dict:
    return {r["name"]: r for r in report["results"]}


def test_validate_real_bundle_on_records_and_source_rows(refined):
    profile, result = refined
    report = validate(result.records, profile, sources=result.frames)
    assert (report["success"], report["evaluated"], report["failed"]) == (True, len(profile.expectations), 0)
    for spec, outcome in zip(profile.expectations, report["results"]):
        source = spec.get("source", "records")
        frame = result.records if source == "records" else result.frames[source]
        assert (outcome["name"], outcome["source"], outcome["element_count"]) == (spec["name"], source, len(frame))
    json.dumps(report)  # JSON-able as written to validation.json


def test_source_expectation_is_evaluated_on_that_sources_rows(refined):
    profile, result = refined
    sacaa = result.frames["sacaa"].copy()
    blanked = len(sacaa) // 2  # leaves well under the profile's mostly 0.9
    sacaa.loc[: blanked - 1, "organization_name"] = ""
    report = validate(result.records, profile, sources={**result.frames, "sacaa": sacaa})
    outcome = results_by_name(report)["sacaa_rows_named"]
    assert (report["failed"], outcome["success"], outcome["missing_count"]) == (1, False, blanked)
    assert outcome["observed"] == round((len(sacaa) - blanked) / len(sacaa), 4)
    first = sacaa.head(min(blanked, EXAMPLES))
    assert [e["row"] for e in outcome["examples"]] == [
        f"{file} | {sheet} | row {row}" for file, sheet, row in zip(first["_file"], first["_sheet"], first["_row"])
    ]


def test_source_expectation_without_source_rows_fails_saying_why(refined):
    profile, result = refined
    report = validate(result.records, profile)
    outcome = results_by_name(report)["sacaa_rows_named"]
    assert outcome["error"] == "source 'sacaa' has no rows in this bundle"
    assert (report["failed"], outcome["success"]) == (1, False)


def test_validate_masks_the_profiles_pii_fields(refined):
    profile, result = refined
    spec = {"name": "no_names", "column": "contact_name", "check": "regex", "pattern": "^$"}
    report = validate(result.records, dataclasses.replace(profile, expectations=[spec]))
    named = result.records[result.records["contact_name"].fillna("").str.strip() != ""]
    assert [(e["row"], e["value"]) for e in report["results"][0]["examples"]] == [
        (rid, mask_value(name)) for rid, name in zip(named["record_id"][:EXAMPLES], named["contact_name"])
    ]
    assert not any(name in json.dumps(report) for name in named["contact_name"])


def test_validate_rejects_invalid_expectations(refined):
    profile, result = refined
    broken = dataclasses.replace(profile, expectations=[{"name": "x", "check": "nope"}])
    with pytest.raises(
        ProfileError,
        match=r"data profile aviation: invalid expectations:\n  "
        r"expectations\[0\] \(x\)\.check: 'nope' is unknown",
    ):
        validate(result.records, broken, sources=result.frames)
