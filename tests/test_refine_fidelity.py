"""Refine fidelity rules of issue 13, each on a small real workbook built here with openpyxl."""

from __future__ import annotations

import json

import pytest

from sheetfill.bundle.profiles import load_profile
from sheetfill.refine import refine_bundle, write_outputs
from sheetfill.sample import SACAA_HEADER

openpyxl = pytest.importorskip("openpyxl")

ORGANISATION_HEADER = ["Organisation Name", "ID", "Reachout Date", "Area", "Type", "Website", "Address", "Planes"]
ORGANISATION_HEADER += ["Description Type", "Notes"]
CONTACT_INFO_HEADER = ["ID", "Organisation Name", "Reachout Date", "Firstname", "Surname", "Position", "Phone"]
CONTACT_INFO_HEADER += ["WhatsApp", "Email"]
COMPANY_HEADER = ["C_ID", "Company", "Last_Order_Date", "Category", "Priority", "Status", "Website"]
PEOPLE_HEADER = ["C_ID", "Company", "Status", "FirstName", "Surname", "Position", "Cellnumber", "Email"]


def write_workbook(path, sheets: dict[str, list[list]]) -> None:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
    workbook.save(path)


def refine(folder):
    return refine_bundle(folder, load_profile("aviation"))


def by_name(result) -> dict:
    return {r["organization_name"]: r for r in result.records.to_dict("records")}


def test_renamed_workbook_is_recognised_by_its_header_row(tmp_path):
    write_workbook(
        tmp_path / "registry.xlsx",
        {"Sheet A": [SACAA_HEADER, ["Acme Aviation", "GP", "Active", "acme.co.za", "Jo Soap", "0115551234", ""]]},
    )
    write_workbook(tmp_path / "notes.xlsx", {"Misc": [["Anything", "Else"], ["x", "y"]]})
    result = refine(tmp_path)
    sheets = {(s["file"], s["sheet"]): s for s in result.sources}
    assert sheets[("registry.xlsx", "Sheet A")]["source"] == "sacaa"
    assert sheets[("registry.xlsx", "Sheet A")]["matched_by"] == "header row"
    assert sheets[("notes.xlsx", "Misc")]["note"] == "skipped: no profile source"
    assert sheets[("notes.xlsx", "Misc")]["matched_by"] == ""
    assert by_name(result)["Acme Aviation"]["province"] == "Gauteng"
    out = write_outputs(result, tmp_path / "out")
    summary = openpyxl.load_workbook(out[0])["Summary"]
    lines = [row[1] for row in summary.iter_rows(values_only=True) if str(row[0]).startswith("sheet: registry")]
    assert lines == ["1 rows, source sacaa (matched by header row), read"]


def test_sheet_matched_by_file_name_says_so(tmp_path):
    write_workbook(tmp_path / "SACAA 2025.xlsx", {"Cleaned": [SACAA_HEADER, ["Acme Aviation", "", "", "", "", "", ""]]})
    (sheet,) = refine(tmp_path).sources
    assert (sheet["source"], sheet["matched_by"]) == ("sacaa", "file name")


def test_hotpass_fields_are_kept_planes_merge_every_distinct_value(tmp_path):
    write_workbook(
        tmp_path / "Reachout Database.xlsx",
        {
            "Organisation": [
                ORGANISATION_HEADER,
                ["Acme Aviation", 1, "2025-03-01", "Gauteng", "Fixed-wing", "acme.co.za", "1 Hangar Rd", "C172, PA28"]
                + ["Ab initio school", "call back"],
                ["ACME AVIATION", 2, "2025-07-09", "GP", "", "", "", "C172; Sling 2", "", ""],
            ],
        },
    )
    write_workbook(
        tmp_path / "Contact Database.xlsx",
        {"Company_Cat": [COMPANY_HEADER, [7, "Acme Aviation", "2025-05-05", "ATO", "High", "Contacted", ""]]},
    )
    result = refine(tmp_path)
    (record,) = result.records.to_dict("records")
    assert record["planes"] == "C172; PA28; Sling 2"
    assert record["province"] == "Gauteng"  # Reachout's Area holds provinces
    assert (record["organisation_type"], record["category"]) == ("Fixed-wing", "ATO")
    assert (record["status"], record["priority"]) == ("Contacted", "High")
    assert (record["description"], record["notes"]) == ("Ab initio school", "call back")
    assert record["last_interaction_date"] == "2025-07-09"  # the newest, not the preferred source's
    provenance = json.loads(record["provenance"])
    rows = json.loads(record["source_rows"])
    assert rows[provenance["last_interaction_date"]["row"]][2] == 3
    assert "alternatives" not in provenance["planes"]


@pytest.mark.parametrize("blank", ["", 0])
def test_contacts_with_a_blank_link_key_attach_to_their_organisation_by_name(tmp_path, blank):
    write_workbook(
        tmp_path / "Contact Database.xlsx",
        {
            "Company_Cat": [COMPANY_HEADER, [1, "Acme Aviation", "", "ATO", "", "", "acme.co.za"]],
            "Company_Contacts": [
                PEOPLE_HEADER,
                [blank, "Acme Aviation", "Active", "Jo", "Soap", "CFI", "0825550001", "jo@acme.co.za"],
                [blank, "Acme Aviation", "Active", "Sam", "Bee", "Owner", "0825550002", "sam@gmail.com"],
            ],
        },
    )
    result = refine(tmp_path)
    (record,) = result.records.to_dict("records")  # with C_ID filled in it is one record too
    assert record["source_count"] == 3
    assert set(record["phones"].split("; ")) == {"+27825550001", "+27825550002"}


def test_a_contact_joins_the_same_named_organisation_whose_domain_is_its_e_mail_domain(tmp_path):
    write_workbook(
        tmp_path / "Contact Database.xlsx",
        {
            "Company_Cat": [
                COMPANY_HEADER,
                [1, "Blue Sky Aviation", "", "", "", "", "bluesky-ct.co.za"],
                [2, "Blue Sky Aviation", "", "", "", "", "bluesky-jhb.co.za"],
            ],
            "Company_Contacts": [
                PEOPLE_HEADER,
                ["", "Blue Sky Aviation", "", "Jo", "Soap", "", "", "jo@bluesky-jhb.co.za"],
            ],
        },
    )
    records = refine(tmp_path).records
    assert sorted(records["source_count"].tolist()) == [1, 2]
    joined = records[records["source_count"] == 2].iloc[0]
    assert joined["website"] == "https://bluesky-jhb.co.za"


def test_a_row_with_only_a_name_two_organisations_share_is_left_alone(tmp_path):
    # two different "Highveld Savanna Aviation"s: one with its website, one known by its manager's
    # e-mail domain (a contact row, in another workbook); the second catalogue row says nothing but
    # the name, so it cannot say which one it belongs to, whichever row the reader meets first
    write_workbook(
        tmp_path / "Contact Database.xlsx",
        {
            "Company_Cat": [
                COMPANY_HEADER,
                [1, "Highveld Savanna Aviation", "", "", "", "", "highveldsavanna-pta.co.za"],
                [2, "Highveld Savanna Aviation", "", "ATO", "", "", ""],
            ]
        },
    )
    write_workbook(
        tmp_path / "Reachout Database.xlsx",
        {
            "Contact Info": [
                CONTACT_INFO_HEADER,
                [7, "Highveld Savanna Aviation", "", "Fatima", "Dlamini", "Admin", "", "", "fd@hsa-durban.co.za"],
            ]
        },
    )
    assert merged_rows(tmp_path) == [[2], [2], [3]]  # Company_Cat rows 2 and 3, Contact Info row 2


def write_sacaa(folder, *rows) -> None:
    """A SACAA workbook of these rows under the header the aviation profile declares."""
    write_workbook(folder / "SACAA.xlsx", {"Cleaned": [SACAA_HEADER, *rows]})


def test_a_website_host_shared_by_differently_named_organisations_is_not_identity(tmp_path):
    write_sacaa(
        tmp_path,
        ["Paramount Aerospace Systems", "", "", "https://paramountgroup.biz/aerospace", "", "", ""],
        ["Paramount Advanced Technologies", "", "", "paramountgroup.biz", "", "", ""],
        ["Paramount Group", "", "", "www.paramountgroup.biz/", "", "", ""],
    )
    assert len(refine(tmp_path).records) == 3


def test_hosts_are_compared_without_their_path(tmp_path):
    write_sacaa(
        tmp_path,
        ["Fuze Aviation Academy", "", "", "fuze.edu.za", "", "", ""],
        ["Fuze Aviation Academy", "", "", "https://fuze.edu.za/aviation", "", "", ""],
    )
    (record,) = refine(tmp_path).records.to_dict("records")
    assert record["source_count"] == 2


def test_one_managers_e_mail_and_phone_on_two_organisations_does_not_merge_them(tmp_path):
    manager = ["Jo Soap", "0825550001", "jo.soap@webmail.co.za"]
    write_sacaa(
        tmp_path,
        ["Karoo Flight Training", "", "", "", *manager],
        ["Lowveld Helicopters", "", "", "", *manager],
    )
    assert len(refine(tmp_path).records) == 2


def test_word_order_makes_another_organisation_unless_other_evidence_links_them(tmp_path):
    write_sacaa(
        tmp_path,
        ["Blue Sky Aviation", "", "", "bluesky.co.za", "", "", ""],
        ["Sky Blue Aviation", "", "", "skyblue.co.za", "", "", ""],
        ["Eagle Karoo Flight School", "", "", "", "", "", "info@eaglekaroo.co.za"],
        ["Karoo Eagle Flight School", "", "", "eaglekaroo.co.za", "", "", ""],
    )
    counts = sorted(refine(tmp_path).records["source_count"].tolist())
    assert counts == [1, 1, 2]  # the e-mail domain is the other one's website host


def test_placeholders_are_flagged_never_evidence_nor_chosen(tmp_path):
    write_sacaa(
        tmp_path,
        ["Karoo Flight Training", "", "", "", "Accountable Manager (Not Listed)", "000-000-0123"]
        + ["unknown+12@example.com"],
        ["Lowveld Helicopters", "", "", "", "", "011 111 1111", "unknown+12@example.com"],
        ["Lowveld Helicopters", "", "", "", "Jo Soap", "0825550001", "unknown+13@example.com; jo@lowveld.co.za"],
    )
    result = refine(tmp_path)
    records = by_name(result)
    assert len(records) == 2  # the shared stand-in address links nothing
    karoo, lowveld = records["Karoo Flight Training"], records["Lowveld Helicopters"]
    assert karoo["contact_email"] is None and karoo["contact_phone"] is None and karoo["emails"] is None
    assert (karoo["contact_name"], karoo["contact_role"]) == (None, "Accountable Manager")
    assert "placeholder_contact_email" in karoo["flags"] and "placeholder_contact_phone" in karoo["flags"]
    assert (lowveld["contact_email"], lowveld["emails"], lowveld["phones"]) == (
        "jo@lowveld.co.za",
        "jo@lowveld.co.za",
        "+27825550001",
    )
    reasons = result.rejected.set_index("source_row")["reasons"].to_dict()
    assert "placeholder contact_email: 'unknown+12@example.com'" in reasons[2]
    assert "placeholder contact_phone: '000-000-0123'" in reasons[2]
    assert result.quality["flag_counts"]["placeholder_contact_email"] == 2


def test_n_a_like_tokens_in_contact_fields_are_placeholders_never_evidence_nor_chosen(tmp_path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    write_sacaa(
        bundle,
        ["Karoo Flight Training", "n/a", "", "N/A", "Jo Soap", "n/a", "None"],
        ["Lowveld Helicopters", "", "", "-", "Sam Bee", "TBC", "not listed"],
        ["Lowveld Helicopters", "", "", "lowveld.co.za", "", "0825550001", "sam@lowveld.co.za"],
        ["Cape Gliding Club", "", "", "", "Lee Dube", "", ""],
    )
    result = refine(bundle)
    records = by_name(result)
    assert len(records) == 3
    karoo, lowveld, cape = (records[n] for n in ("Karoo Flight Training", "Lowveld Helicopters", "Cape Gliding Club"))
    contact_flags = {"placeholder_website", "placeholder_contact_phone", "placeholder_contact_email"}
    assert contact_flags <= set(karoo["flags"].split("; "))
    assert (karoo["website"], karoo["contact_phone"], karoo["contact_email"]) == (None, None, None)
    assert "missing_province" in karoo["flags"]  # 'n/a' in a non-contact field is simply empty
    assert not {"placeholder_province", "invalid_province"} & set(karoo["flags"].split("; "))
    # the stand-in row comes first, the real values are chosen
    assert contact_flags <= set(lowveld["flags"].split("; ")) and lowveld["source_count"] == 2
    assert (lowveld["website"], lowveld["contact_phone"], lowveld["contact_email"]) == (
        "https://lowveld.co.za",
        "+27825550001",
        "sam@lowveld.co.za",
    )
    assert "placeholder" not in (cape["flags"] or "")  # blank cells are missing values, not stand-ins
    reasons = result.rejected.set_index("source_row")["reasons"].to_dict()
    assert "placeholder contact_phone: 'TBC'" in reasons[3] and "placeholder website: '-'" in reasons[3]
    assert "placeholder contact_email: 'None'" in reasons[2]
    first = [path.read_bytes() for path in write_outputs(result, tmp_path / "one")]
    again = [path.read_bytes() for path in write_outputs(refine(bundle), tmp_path / "two")]
    assert first == again


def test_a_sister_domain_or_an_acronym_domain_does_not_split_one_organisation(tmp_path):
    write_sacaa(
        tmp_path,
        ["Lowveld Aero Club", "", "", "lowveldaeroclub.co.za", "", "", ""],
        ["Lowveld Aero Club (Flight School)", "", "", "lac.co.za", "", "", "admin@lac.co.za"],
        ["Madiba Bay School of Flight", "", "", "", "", "", "info@madibabay.com"],
        ["Madiba Bay School Of Flight CC", "", "", "madibabay.co.za", "", "", ""],
    )
    assert sorted(refine(tmp_path).records["source_count"].tolist()) == [2, 2]


def test_a_typo_in_a_shared_website_s_names_keeps_it_evidence(tmp_path):
    # 'Cape Faclon' and 'Cape Falcon iAr' are one organisation's typos: its website stays identity
    # and keeps the one-letter-different 'Apex Falcon Air Services' (another host) apart
    write_sacaa(
        tmp_path,
        ["Cape Faclon Air Services", "", "", "capefalcon.co.za", "", "", ""],
        ["Cape Falcon iAr Services", "", "", "www.capefalcon.co.za", "", "", ""],
        ["Apex Falcon Air Services", "", "", "apexfalcon.co.za", "", "", ""],
    )
    assert sorted(refine(tmp_path).records["source_count"].tolist()) == [1, 2]


def merged_rows(folder) -> list[list[int]]:
    """The worksheet rows of each record (row 2 is the first data row), sorted."""
    records = refine(folder).records["source_rows"].tolist()
    return sorted(sorted(row[2] for row in json.loads(rows)) for rows in records)


def sacaa_names(folder, *names) -> None:
    write_sacaa(folder, *([name, "", "", "", "", "", ""] for name in names))


def test_a_leading_the_is_the_same_organisation_a_name_starting_with_theo_is_not(tmp_path):
    sacaa_names(tmp_path, "The Flying Pig Aviation", "Flying Pig Aviation", "Theo Flight Academy", "Flight Academy")
    assert merged_rows(tmp_path) == [[2, 3], [4], [5]]


@pytest.mark.parametrize(
    "trading",
    ["Karoo Aviation (Pty) Ltd t/a Karoo Flyers", "Karoo Aviation T/A Karoo Flyers", "Karoo Aviation (Karoo Flyers)"],
)
def test_a_trading_name_after_t_a_or_in_brackets_is_the_same_organisation(tmp_path, trading):
    sacaa_names(tmp_path, trading, "Karoo Aviation", "Alpha Aviation t/a Karoo Flyers")
    assert merged_rows(tmp_path) == [[2, 3], [4]]  # a shared trading name alone links nothing


def test_a_branch_in_brackets_is_the_same_organisation_another_name_with_that_branch_is_not(tmp_path):
    sacaa_names(
        tmp_path, "Acme Aviation (Lanseria)", "Acme Aviation (Durban)", "Acme Aviation", "Apex Helicopters (Lanseria)"
    )
    assert merged_rows(tmp_path) == [[2, 3, 4], [5]]


def test_a_moved_space_is_a_typo_of_the_same_name_another_word_order_is_not(tmp_path):
    # five names sort between the two spellings by words and by reversed words (more than the window
    # of 4): only the space-free order brings them side by side
    between = ["Durban Aviation", "East Rand Aviation", "Gold Aviation", "Hope Aviation", "Kestrel Aviation"]
    sacaa_names(tmp_path, "Lowveld Condor Aviation", *between, "LowveldC ondor Aviation", "Condor Lowveld Aviation")
    assert merged_rows(tmp_path) == [[2, 8], [3], [4], [5], [6], [7], [9]]


def test_entity_resolution_stays_precise_on_a_2000_organisation_bundle(tmp_path):
    import datetime as dt
    import zipfile

    from sheetfill.refine.evaluate import pairwise_scores
    from sheetfill.sample import generate_bundle

    truth = generate_bundle(tmp_path / "b.zip", dt.date(2025, 9, 29), "v1", scale=2.23, seed=0)
    zipfile.ZipFile(tmp_path / "b.zip").extractall(tmp_path / "b")
    scores = pairwise_scores(refine(tmp_path / "b").records["source_rows"].tolist(), truth["rows"])
    assert scores["rows"] > 4000 and len({e for *_, e in truth["rows"]}) > 1700
    assert scores["precision"] >= 0.97 and scores["f1"] >= 0.97, scores
