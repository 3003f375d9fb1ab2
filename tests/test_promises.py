"""Documented promises that the sample bundles cannot see: each test here is built so that breaking the
promise (fuzzy merging off, a limit never checked, a hash over the wrong thing, required fields that
never reject, outputs stamped with the clock) makes it fail."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from test_refine import write_workbook

from sheetfill.bundle.process import BundleJob, process_bundle
from sheetfill.bundle.profiles import load_profile
from sheetfill.bundle.restore import restore_archive
from sheetfill.errors import BundleError
from sheetfill.refine import refine_bundle, write_outputs
from sheetfill.runs.config import Limits

LIMITS = Limits(max_uncompressed_bytes=50 * 2**20, max_compression_ratio=200, max_members=100)
ORGANISATION = ["Organisation Name", "Province", "Website", "Email"]
SACAA = ["Organisation Name", "Province", "Phone"]


def aviation_bundle(root: Path, reachout: list[list], sacaa: list[list]) -> Path:
    """Two workbooks the aviation profile reads: Reachout's Organisation sheet and SACAA's register."""
    write_workbook(root / "Reachout Database.xlsx", {"Organisation": [ORGANISATION, *reachout]})
    write_workbook(root / "SACAA Flight Schools.xlsx", {"Cleaned": [SACAA, *sacaa]})
    return root


def files_of(record: dict) -> set[str]:
    return {file for file, _, _ in json.loads(record["source_rows"])}


# ---------------------------------------------------------------- fuzzy name evidence (docs/profiles.md (b))

# Each pair is one organisation captured twice with a typo, in two workbooks, with no ID, website,
# e-mail or phone in common and different name keys: only name similarity can join them.
TYPO_PAIRS = [
    ("Highveld Horizon Aviation", "Highveld Horizon Aviatoin"),
    ("Blue Sky Flight School", "Bleu Sky Flight School"),  # typo in the first letters: the reversed order
    ("Karoo Gliding Academy", "Karoo Gliding Acadmey"),
]


def test_name_variants_that_only_fuzzy_matching_can_join_become_one_record(tmp_path):
    reachout = [[typo, "Gauteng", f"www.site{i}.co.za", None] for i, (_, typo) in enumerate(TYPO_PAIRS)]
    reachout.append(["Eagle Air 2", "Gauteng", None, None])
    sacaa = [[name, "GP", f"011 555 100{i}"] for i, (name, _) in enumerate(TYPO_PAIRS)]
    sacaa += [["Eagle Air 1", "GP", None], ["Durban Flyers", "KZN", None]]
    result = refine_bundle(aviation_bundle(tmp_path / "bundle", reachout, sacaa), load_profile("aviation"))
    records = result.records.to_dict("records")
    for official, typo in TYPO_PAIRS:
        merged = [r for r in records if r["source_count"] == 2 and official in r["organization_name"] + typo]
        assert len(merged) == 1, f"{official!r} and {typo!r} were not merged: {records}"
        assert files_of(merged[0]) == {"Reachout Database.xlsx", "SACAA Flight Schools.xlsx"}
    # names whose numbers differ, and names that are merely alike, stay apart
    alone = sorted(r["organization_name"] for r in records if r["source_count"] == 1)
    assert alone == ["Durban Flyers", "Eagle Air 1", "Eagle Air 2"]
    assert result.counts["duplicates_merged"] == len(TYPO_PAIRS)


# ---------------------------------------------------------------- required fields reject (docs/output-schema.md)


def test_a_record_without_a_required_field_is_rejected_with_its_reason(tmp_path):
    reachout = [["Acme Aviation", "Gauteng", "www.acme.co.za", None], [None, "Limpopo", "www.nameless.co.za", None]]
    sacaa = [["Zenith Flight Academy", "GP", None]]
    result = refine_bundle(aviation_bundle(tmp_path / "bundle", reachout, sacaa), load_profile("aviation"))
    assert sorted(result.records["organization_name"]) == ["Acme Aviation", "Zenith Flight Academy"]
    assert result.counts["rejected"] == 1 and result.counts["records_out"] == 2
    write_outputs(result, tmp_path / "out", xlsx=False)
    rejected = pd.read_csv(tmp_path / "out" / "rejected.csv", keep_default_na=False)
    row = rejected[rejected["status"] == "rejected"].to_dict("records")
    assert len(row) == 1
    assert row[0]["source_file"] == "Reachout Database.xlsx" and row[0]["source_row"] == 3
    assert "missing organization_name" in row[0]["reasons"] and row[0]["record_id"] == ""


# ---------------------------------------------------------------- limits.max_members


def zip_with(path: Path, count: int) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(count):
            zf.writestr(f"sheets/part-{i}.csv", f"Company\nAcme {i}\n")
    return path


def test_an_archive_over_max_members_is_refused_and_one_at_the_limit_restores(tmp_path):
    limits = Limits(max_uncompressed_bytes=2**20, max_compression_ratio=200, max_members=5)
    with pytest.raises(BundleError, match=r"6 members, over limits.max_members=5"):
        restore_archive(zip_with(tmp_path / "six.zip", 6), tmp_path / "six", limits)
    assert not (tmp_path / "six").exists()
    restore_archive(zip_with(tmp_path / "five.zip", 5), tmp_path / "five", limits)
    assert len(list((tmp_path / "five" / "sheets").iterdir())) == 5


# ---------------------------------------------------------------- provenance.json's archive hash


@pytest.fixture(scope="module")
def small_archive(tmp_path_factory) -> Path:
    from sheetfill.sample import generate_bundle

    archive = tmp_path_factory.mktemp("archive") / "2025-09-29" / "hotpass-inputs-v1.zip"
    archive.parent.mkdir(parents=True)
    generate_bundle(archive, dt.date(2025, 9, 29), "v1", scale=0.05)
    return archive


def build(archive: Path, where: Path) -> dict:
    process_bundle(
        BundleJob(
            archive=archive,
            bundle="2025-09-29--v1",
            restored=where / "restored",
            outputs=where / "outputs",
            profile="aviation",
            limits=LIMITS,
            window={},
        )
    )
    return json.loads((where / "outputs" / "provenance.json").read_text())


def test_provenance_hashes_the_archive_bytes_not_its_path(small_archive, tmp_path):
    provenance = build(small_archive, tmp_path / "a")
    assert provenance["archive"]["sha256"] == hashlib.sha256(small_archive.read_bytes()).hexdigest()
    moved = tmp_path / "elsewhere" / "renamed.zip"  # same bytes, other path: same hash
    moved.parent.mkdir()
    shutil.copyfile(small_archive, moved)
    assert build(moved, tmp_path / "b")["archive"]["sha256"] == provenance["archive"]["sha256"]
    member = provenance["members"][0]
    restored = tmp_path / "a" / "restored" / member["name"]
    assert member["sha256"] == hashlib.sha256(restored.read_bytes()).hexdigest()


# ---------------------------------------------------------------- determinism across processes


def job_in_a_fresh_process(archive: Path, where: Path) -> None:
    """One bundle job as the workflow runs it, in its own interpreter (no warm worker)."""
    command = [
        *(sys.executable, "-m", "sheetfill.jobs.job", "bundle", "--archive", str(archive)),
        *("--bundle", "2025-09-29--v1", "--restored", str(where / "restored"), "--outputs", str(where / "out")),
        *("--profile", "aviation", "--limits", json.dumps(LIMITS.__dict__), "--history", str(where / "history")),
    ]
    env = {**os.environ, "SHEETFILL_WORKER": "off"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    pack = [sys.executable, "-m", "sheetfill.jobs.job", "pack", "--outputs", str(where / "out")]
    packed = subprocess.run(
        [*pack, "--zip", str(where / "out.zip")], capture_output=True, text=True, timeout=60, env=env
    )
    assert packed.returncode == 0, packed.stderr


def zip_clock_tick() -> int:
    return int(time.time()) // 2  # zip member times have a 2-second resolution


def test_every_output_file_is_byte_identical_across_processes_seconds_apart(small_archive, tmp_path):
    job_in_a_fresh_process(small_archive, tmp_path / "first")
    finished = zip_clock_tick()
    deadline = time.monotonic() + 10
    while zip_clock_tick() - finished < 2 and time.monotonic() < deadline:
        time.sleep(0.2)  # until a clock-based zip time could no longer be the same
    assert zip_clock_tick() - finished >= 2
    job_in_a_fresh_process(small_archive, tmp_path / "second")
    first, second = tmp_path / "first" / "out", tmp_path / "second" / "out"
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    assert {"refined.xlsx", "refined.parquet", "rejected.csv", "validation.json", "bundle.json"} <= set(names)
    for name in names:
        if name == "provenance.json":  # records when the job ran, by design
            stamps = ("started", "finished", "job")  # job: its timings, host and run (sheetfill.telemetry)
            a, b = (json.loads((f / name).read_text()) for f in (first, second))
            assert {k: v for k, v in a.items() if k not in stamps} == {k: v for k, v in b.items() if k not in stamps}
        else:
            assert (first / name).read_bytes() == (second / name).read_bytes(), name
    packs = [zipfile.ZipFile(tmp_path / run / "out.zip") for run in ("first", "second")]
    assert [i.filename for i in packs[0].infolist()] == [i.filename for i in packs[1].infolist()]
    for info in packs[0].infolist():  # the packed copy: same members, same fixed times
        assert info.date_time == packs[1].getinfo(info.filename).date_time == (1980, 1, 1, 0, 0, 0)
        if info.filename not in ("provenance.json", "SHA256SUMS"):
            assert packs[0].read(info) == packs[1].read(info.filename), info.filename
