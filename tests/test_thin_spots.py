"""Smaller promises that had no test of their own: Windows-style member names, the record-id suffix
that separates organisations sharing a name, and the pairwise scores the resolution floors use."""

from __future__ import annotations

import hashlib
import json
import zipfile

import pytest
from test_promises import aviation_bundle

from sheetfill.bundle.profiles import load_profile
from sheetfill.bundle.restore import restore_archive
from sheetfill.errors import BundleError
from sheetfill.refine import refine_bundle
from sheetfill.refine.evaluate import pairwise_scores
from sheetfill.refine.normalise import name_match_key
from sheetfill.runs.config import Limits

LIMITS = Limits(max_uncompressed_bytes=2**20, max_compression_ratio=200, max_members=100)


def zip_of(path, names):
    with zipfile.ZipFile(path, "w") as zf:
        for name in names:
            zf.writestr(zipfile.ZipInfo(name), b"Company\nAcme\n")  # ZipInfo keeps the name as written
    return path


@pytest.mark.parametrize(
    "name, reason",
    [
        ("C:/Windows/evil.csv", "absolute path"),
        ("C:\\Windows\\evil.csv", "absolute path"),
        ("d:evil.csv", "absolute path"),  # drive-relative: still not inside the bundle folder
        ("\\\\server\\share\\evil.csv", "absolute path"),
        ("inputs\\..\\..\\evil.csv", "'..'"),
    ],
)
def test_drive_letters_and_backslash_escapes_are_refused(tmp_path, name, reason):
    archive = zip_of(tmp_path / "bad.zip", ["ok.csv", name])
    with pytest.raises(BundleError, match=reason):
        restore_archive(archive, tmp_path / "restore" / "b", LIMITS)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["bad.zip"]  # nothing written anywhere


def test_backslash_separated_folders_restore_as_folders(tmp_path):
    archive = zip_of(tmp_path / "windows.zip", ["inputs\\2025\\Reachout Database.csv", "top.csv"])
    members = restore_archive(archive, tmp_path / "b", LIMITS)
    assert (tmp_path / "b" / "inputs" / "2025" / "Reachout Database.csv").read_bytes() == b"Company\nAcme\n"
    assert sorted(p.relative_to(tmp_path / "b").as_posix() for p in (tmp_path / "b").rglob("*.csv")) == [
        "inputs/2025/Reachout Database.csv",
        "top.csv",
    ]
    assert len(members) == 2


# ---------------------------------------------------------------- organisations sharing a name


def name_id(name: str) -> str:
    return "sf-" + hashlib.sha256(f"name:{name_match_key(name)}".encode()).hexdigest()[:16]


def ids_by_website(tmp_path, reachout) -> dict:
    records = refine_bundle(aviation_bundle(tmp_path, reachout, []), load_profile("aviation")).records
    return dict(zip(records["website"], records["record_id"]))


def test_organisations_sharing_a_name_get_ids_suffixed_by_their_website(tmp_path):
    twins = [
        ["Apex Aviation", "Gauteng", "www.apex-jhb.co.za", None],
        ["Apex Aviation", "Western Cape", "www.apex-cpt.co.za", None],
        ["Solo Flight School", "Limpopo", "www.solo.co.za", None],
    ]
    ids = ids_by_website(tmp_path / "a", twins)
    assert len(ids) == 3  # different websites: never merged, however equal the names
    for site in ("https://apex-jhb.co.za", "https://apex-cpt.co.za"):
        assert ids[site] == f"{name_id('Apex Aviation')}-{hashlib.sha256(site.encode()).hexdigest()[:6]}"
    assert ids["https://solo.co.za"] == name_id("Solo Flight School")  # a name of its own: no suffix
    # each twin keeps its id when the bundle lists them the other way round
    assert ids_by_website(tmp_path / "b", [twins[2], twins[1], twins[0]]) == ids


def test_without_a_website_the_suffix_comes_from_the_email(tmp_path):
    twins = [["Apex Aviation", "Gauteng", None, "ops@apex-jhb.co.za"], ["Apex Aviation", "KZN", None, "ops@apex.kzn"]]
    records = refine_bundle(aviation_bundle(tmp_path, twins, []), load_profile("aviation")).records
    ids = dict(zip(records["contact_email"], records["record_id"]))
    for email in ("ops@apex-jhb.co.za", "ops@apex.kzn"):
        assert ids[email] == f"{name_id('Apex Aviation')}-{hashlib.sha256(email.encode()).hexdigest()[:6]}"


# ---------------------------------------------------------------- pairwise_scores


def refs(*rows) -> str:
    return json.dumps([["inputs/Book.xlsx", "S", row] for row in rows])


def test_pairwise_scores_count_pairs_by_cluster():
    # truth: A = rows 1-3, B = rows 4-5, C = row 6 -> 3 + 1 true pairs
    truth = [["Book.xlsx", "S", r, e] for r, e in [(1, "A"), (2, "A"), (3, "A"), (4, "B"), (5, "B"), (6, "C")]]
    # records {1,2} {3,4,5} {6}: predicted pairs 1 + 3; right ones: (1,2) and (4,5)
    scores = pairwise_scores([refs(1, 2), refs(3, 4, 5), refs(6)], truth)
    assert scores == {
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
        "true_pairs": 4,
        "predicted_pairs": 4,
        "rows": 6,
        "entities": 3,
        "records": 3,
    }
    perfect = pairwise_scores([refs(1, 2, 3), refs(4, 5), refs(6)], truth)
    assert (perfect["precision"], perfect["recall"], perfect["f1"]) == (1.0, 1.0, 1.0)
    # every row its own record: nothing predicted (precision 1 by convention), nothing found
    apart = pairwise_scores([refs(r) for r in range(1, 7)], truth)
    assert (apart["precision"], apart["recall"], apart["f1"], apart["predicted_pairs"]) == (1.0, 0.0, 0.0, 0)


def test_pairwise_scores_treat_rejected_rows_as_unmerged_and_compare_file_names_only():
    truth = [["Book.xlsx", "S", r, "A"] for r in (1, 2, 3)]
    # row 3 was rejected (absent from the output); the records name the file inside a nested folder
    scores = pairwise_scores([refs(1, 2)], truth)
    assert (scores["true_pairs"], scores["predicted_pairs"], scores["precision"]) == (3, 1, 1.0)
    assert scores["recall"] == round(1 / 3, 4) and scores["f1"] == round(2 * (1 / 3) / (1 + 1 / 3), 4)
    two = [["Book.xlsx", "S", 1, "A"], ["Book.xlsx", "S", 2, "A"], ["Book.xlsx", "S", 3, "B"]]
    overmerged = pairwise_scores([refs(1, 2, 3)], two)  # 3 predicted pairs, 1 of them right
    assert (overmerged["precision"], overmerged["recall"]) == (round(1 / 3, 4), 1.0)
