"""refine_bundle + write_outputs on real files: reading, provenance, errors, determinism, safety."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import xlsxwriter

from sheetfill.bundle.profiles import load_profile
from sheetfill.errors import BundleError
from sheetfill.refine import refine_bundle, write_outputs
from sheetfill.refine import write as write_module


def write_workbook(path: Path, sheets: dict[str, list[list]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_numbers": False})
    for name, rows in sheets.items():
        sheet = workbook.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value is not None:
                    sheet.write(r, c, value)
    workbook.close()
    return path


@pytest.fixture
def bundle(tmp_path) -> Path:
    """A small generic bundle: nested folder, title row above the header, header drift, CSV."""
    root = tmp_path / "bundle"
    write_workbook(
        root / "2025" / "exports" / "Schools.xlsx",
        {
            "Sheet One": [
                ["Exported list of schools"],  # title row: the header is row 2
                ["ORGANISATION  name", "Province", "website", "E-Mail", "Phone", "Notes"],
                [
                    "Acme Aviation (Pty) Ltd",
                    "gauteng",
                    "www.acme.co.za",
                    "mailto:Info@Acme.co.za",
                    "+27 (0)11 555 1234",
                    "ignored",
                ],
                [None, None, None, None, None, "only an unmapped note"],  # no mapped value: skipped
                ['=HYPERLINK("http://x")', "Atlantis", "nope", "bad@", "12", None],
                [
                    "Blue Sky Flight School",
                    "KZN",
                    "blue-sky.co.za",
                    "a@bluesky.co.za; B@BlueSky.co.za",
                    821234567,
                    None,
                ],
            ],
            "Lookup": [["code", "meaning"], ["A", "active"]],  # no known header: skipped
        },
    )
    with open(root / "contacts.csv", "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(
            [["Company", "Contact Person", "Email"], ["Blue  Sky Flight school", "jane smith", " JANE@BLUESKY.CO.ZA "]]
        )
    (root / "__MACOSX").mkdir()
    (root / "__MACOSX" / "._Schools.xlsx").write_bytes(b"resource fork, not a workbook")
    (root / "~$Schools.xlsx").write_bytes(b"office lock file")
    return root


def by_name(records: pd.DataFrame) -> dict[str, dict]:
    return {row["organization_name"]: row for row in records.to_dict("records")}


def test_generic_profile_maps_trims_and_records_where_each_row_came_from(bundle):
    result = refine_bundle(bundle, load_profile("generic"))
    records = by_name(result.records)
    acme = records["Acme Aviation (Pty) Ltd"]
    assert (acme["province"], acme["website"], acme["contact_email"], acme["contact_phone"]) == (
        "Gauteng",
        "https://acme.co.za",
        "info@acme.co.za",
        "+27115551234",
    )
    assert json.loads(acme["source_rows"]) == [["2025/exports/Schools.xlsx", "Sheet One", 3]]
    blue = records["Blue Sky Flight School"]
    assert blue["emails"] == "a@bluesky.co.za; b@bluesky.co.za"
    assert blue["contact_phone"] == "+27821234567"  # a number cell that lost its 0
    assert json.loads(records["Blue Sky Flight school"]["source_rows"]) == [["contacts.csv", "contacts", 2]]
    assert records["Blue Sky Flight school"]["contact_name"] == "Jane Smith"
    assert result.counts == {"rows_in": 4, "records_out": 4, "duplicates_merged": 0, "flagged": 1, "rejected": 0}
    sheets = {(s["file"], s["sheet"]): s for s in result.sources}
    assert sheets[("2025/exports/Schools.xlsx", "Sheet One")]["rows"] == 3
    assert sheets[("2025/exports/Schools.xlsx", "Lookup")]["note"].startswith("skipped")
    assert not any("MACOSX" in s["file"] or "~$" in s["file"] for s in result.sources)


def test_invalid_values_are_flagged_with_reasons_not_dropped(bundle):
    result = refine_bundle(bundle, load_profile("generic"))
    flagged = result.rejected.to_dict("records")
    assert len(flagged) == 1
    row = flagged[0]
    assert (row["source_file"], row["source_sheet"], row["source_row"], row["status"]) == (
        "2025/exports/Schools.xlsx",
        "Sheet One",
        5,
        "flagged",
    )
    for reason in (
        "invalid province: 'Atlantis'",
        "invalid website: 'nope'",
        "invalid contact_email: 'bad@'",
        "invalid contact_phone: '12'",
    ):
        assert reason in row["reasons"]
    record = result.records[result.records["record_id"] == row["record_id"]].iloc[0]
    assert "invalid_contact_email" in record["flags"] and record["contact_email"] is None


def test_quality_score_and_flags(bundle):
    result = refine_bundle(bundle, load_profile("generic"))
    acme = by_name(result.records)["Acme Aviation (Pty) Ltd"]
    assert acme["quality_score"] == 0.8 and acme["flags"] == "missing_address"
    assert result.quality["flag_counts"]["missing_address"] == 4
    assert 0 < result.quality["mean_score"] < 1


def test_source_frames_for_validation(bundle):
    frames = refine_bundle(bundle, load_profile("generic")).frames
    assert frames == {}  # generic expectations check records only


def test_source_frames_hold_the_rows_expectations_check(tmp_path):
    import datetime as dt
    import zipfile

    from sheetfill.sample import generate_bundle

    truth = generate_bundle(tmp_path / "b.zip", dt.date(2025, 9, 29), "v1", scale=0.2)
    with zipfile.ZipFile(tmp_path / "b.zip") as zf:
        zf.extractall(tmp_path / "b")
    frames = refine_bundle(tmp_path / "b", load_profile("aviation")).frames
    assert list(frames) == ["sacaa"]  # aviation.yaml: sacaa_rows_named
    sacaa = frames["sacaa"]
    assert {"_file", "_sheet", "_row", "organization_name", "province"} <= set(sacaa.columns)
    assert len(sacaa) == sum(1 for _, sheet, _, _ in truth["rows"] if sheet == "Cleaned")


def test_no_spreadsheets_is_a_bundle_error(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing to see")
    with pytest.raises(BundleError, match=r"no spreadsheets \(\.xlsx"):
        refine_bundle(tmp_path, load_profile("generic"))


def test_unreadable_workbook_is_a_bundle_error_naming_the_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "Broken.xlsx").write_bytes(b"PK\x03\x04 this is not a workbook")
    with pytest.raises(BundleError, match=r"sub/Broken\.xlsx: unreadable workbook"):
        refine_bundle(tmp_path, load_profile("generic"))


def test_unreadable_workbook_among_good_ones_read_on_threads_is_the_same_error(bundle, monkeypatch):
    monkeypatch.setenv("SHEETFILL_PROCESSES", "2")
    (bundle / "Broken.xlsx").write_bytes(b"PK\x03\x04 this is not a workbook")
    with pytest.raises(BundleError, match=r"Broken\.xlsx: unreadable workbook"):
        refine_bundle(bundle, load_profile("generic"))


def test_missing_required_column_is_a_bundle_error_naming_sheet_field_and_fix(tmp_path):
    write_workbook(
        tmp_path / "SACAA Flight Schools.xlsx", {"Cleaned": [["Province", "Website URL"], ["Gauteng", "x.co.za"]]}
    )
    with pytest.raises(BundleError) as error:
        refine_bundle(tmp_path, load_profile("aviation"))
    message = str(error.value)
    assert "SACAA Flight Schools.xlsx sheet 'Cleaned'" in message and "organization_name" in message
    assert "'Province'" in message and "synonyms" in message


def test_sheets_the_profile_cannot_map_give_a_clear_error(tmp_path):
    write_workbook(tmp_path / "Other.xlsx", {"S": [["code", "meaning"], ["A", "active"]]})
    with pytest.raises(BundleError, match=r"no sheet has rows the data profile can map.*Other\.xlsx:S"):
        refine_bundle(tmp_path, load_profile("generic"))


def test_outputs_are_byte_identical_for_the_same_inputs(bundle, tmp_path):
    profile = load_profile("generic")
    first = write_outputs(refine_bundle(bundle, profile), tmp_path / "one")
    second = write_outputs(refine_bundle(bundle, profile), tmp_path / "two")
    assert [p.name for p in first] == ["refined.xlsx", "refined.parquet", "rejected.csv"]
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes(), a.name
    core = zipfile.ZipFile(first[0]).read("docProps/core.xml").decode()
    assert "2000-01-01T00:00:00Z" in core


def test_parquet_round_trip_keeps_types(bundle, tmp_path):
    result = refine_bundle(bundle, load_profile("generic"))
    write_outputs(result, tmp_path)
    back = pd.read_parquet(tmp_path / "refined.parquet")
    assert list(back.columns) == list(result.records.columns)
    assert back["source_count"].dtype == "int64" and back["quality_score"].dtype == "float64"
    assert back["record_id"].is_unique


@pytest.mark.parametrize("writer", ["rust", "xlsxwriter"])
def test_formula_like_cells_are_stored_as_text(bundle, tmp_path, monkeypatch, writer):
    result = refine_bundle(bundle, load_profile("generic"))
    risky = ["=1+1", "+27 11 555", "-2", "@SUM(A1)"]
    result.records.loc[: len(risky) - 1, "area"] = risky
    path = write_module.write_xlsx(result, tmp_path / "refined.xlsx", writer=writer)
    sheet = openpyxl.load_workbook(path)["Data"]
    column = [c.value for c in sheet[1]].index("area") + 1
    cells = [sheet.cell(row=r, column=column) for r in range(2, 2 + len(risky))]
    assert [(c.value, c.data_type) for c in cells] == [(v, "s") for v in risky]
    names = [sheet.cell(row=r, column=2) for r in range(2, sheet.max_row + 1)]
    assert any(c.value == '=HYPERLINK("http://x")' and c.data_type == "s" for c in names)


@pytest.mark.parametrize("writer", ["rust", "xlsxwriter"])
def test_workbook_layout(bundle, tmp_path, writer):
    result = refine_bundle(bundle, load_profile("generic"))
    path = write_module.write_xlsx(result, tmp_path / "refined.xlsx", writer=writer)
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == ["Data", "Summary"]
    data = workbook["Data"]
    assert data.freeze_panes == "A2" and data["A1"].font.b
    assert [c.value for c in data[1]] == list(result.records.columns)
    assert data.max_row == len(result.records) + 1
    summary = dict(row for row in workbook["Summary"].iter_rows(values_only=True))
    assert summary["profile"] == "generic" and summary["count: rows_in"] == 4


def test_data_sheet_stops_at_excels_row_limit(bundle, tmp_path, monkeypatch):
    monkeypatch.setattr(write_module, "EXCEL_MAX_ROWS", 3)
    result = refine_bundle(bundle, load_profile("generic"))
    write_outputs(result, tmp_path)
    workbook = openpyxl.load_workbook(tmp_path / "refined.xlsx")
    assert workbook["Data"].max_row == 3
    summary = dict(row for row in workbook["Summary"].iter_rows(values_only=True))
    assert "Excel's row limit" in summary["note"]
    assert len(pd.read_parquet(tmp_path / "refined.parquet")) == len(result.records)


@pytest.mark.parametrize("cores", ["1", "2"])
def test_files_are_read_on_as_many_threads_as_the_job_has_cores_and_kept_in_order(bundle, monkeypatch, cores):
    from concurrent.futures import ThreadPoolExecutor

    from sheetfill.refine import read

    pools = []

    class CountedPool(ThreadPoolExecutor):
        def __init__(self, max_workers):
            pools.append(max_workers)
            super().__init__(max_workers)

    monkeypatch.setattr(read, "ThreadPoolExecutor", CountedPool)
    monkeypatch.setenv("SHEETFILL_PROCESSES", cores)
    rows, sheets = read.read_bundle(bundle, load_profile("generic").data)
    assert pools == ([] if cores == "1" else [2])
    assert [s.file for s in sheets] == ["2025/exports/Schools.xlsx", "2025/exports/Schools.xlsx", "contacts.csv"]
    assert rows["_file"].tolist() == ["2025/exports/Schools.xlsx"] * 3 + ["contacts.csv"]
