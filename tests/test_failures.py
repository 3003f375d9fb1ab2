"""Every bad bundle is a recorded failure (issue 11): real hostile archives, real Snakemake runs.

Each failing bundle must end with bundle.json status failed_processing and a one-line error naming
the bundle, the member and the cause; the other bundles are built, the data docs and the run
record exist, the run exits non-zero and nothing is written outside restore_root.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import warnings
import zipfile

import pandas as pd
import pytest
from conftest import START, Workflow, make_archives, unavailable
from markupsafe import escape

pytestmark = pytest.mark.slow

ORGS = "Organisation Name,Email,Address\nAcme Flying,info@acme.example,1 Main Rd\nBeta Air,bad-email,2 Side St\n"


def archive_path(workflow: Workflow, day: int, version: str):
    import datetime as dt

    date = (START + dt.timedelta(days=day)).isoformat()
    return workflow.archives / date / f"hotpass-inputs-{version}.zip", f"{date}--{version}"


def write_zip(path, members: list[tuple[str, bytes | str]]) -> None:
    path.unlink(missing_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names we write on purpose
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members:
                zf.writestr(name, data)


def zipcrypto_zip(path, tmp_path) -> None:
    """A ZipCrypto-encrypted member, written by Info-ZIP's zip (Python's zipfile cannot encrypt)."""
    folder = tmp_path / "plain"
    folder.mkdir(exist_ok=True)
    (folder / "orgs.csv").write_text(ORGS)
    path.unlink(missing_ok=True)
    subprocess.run(["zip", "-q", "-P", "secret", str(path), "orgs.csv"], cwd=folder, check=True)


def aes_zip(path) -> None:
    pyzipper = pytest.importorskip("pyzipper")
    path.unlink(missing_ok=True)
    with pyzipper.AESZipFile(path, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES) as zf:
        zf.setpassword(b"secret")
        zf.writestr("orgs.csv", ORGS)


def ods_bytes() -> bytes:
    buffer = io.BytesIO()
    frame = pd.DataFrame({"Organisation Name": ["Gamma Gliders"], "Email": ["ops@gamma.example"]})
    frame.to_excel(buffer, engine="odf", index=False, sheet_name="Orgs")
    return buffer.getvalue()


def xls_bytes() -> bytes:
    xlwt = pytest.importorskip("xlwt")
    book = xlwt.Workbook()
    sheet = book.add_sheet("Orgs")
    for row, values in enumerate([["Organisation Name", "Email"], ["Delta Drones", "hello@delta.example"]]):
        for col, value in enumerate(values):
            sheet.write(row, col, value)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def xlsb_bytes() -> bytes:
    """A binary workbook (BIFF12 records in a zip), written by pyxlsbwriter: openpyxl, xlsxwriter and
    LibreOffice write no .xlsb."""
    try:
        from pyxlsbwriter import XlsbWriter
    except ImportError:
        unavailable("pyxlsbwriter is not installed (pip install -e '.[test]')")
    buffer = io.BytesIO()
    with XlsbWriter(buffer) as writer:
        writer.add_sheet("Orgs")
        writer.write_sheet([["Organisation Name", "Email"], ["Kappa Kites", "fly@kappa.example"]])
    return buffer.getvalue()


def panicking_xlsx() -> bytes:
    """A date cell far before year 1: calamine's date conversion panics in Rust (pyo3's PanicException,
    a BaseException that no `except Exception` catches) - the crash nobody foresaw."""
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Orgs"
    sheet.append(["Organisation Name", "Founded"])
    sheet.append(["Theta Air", -1e20])
    sheet["B2"].number_format = "yyyy-mm-dd"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


HOSTILE_NAME = '=HYPERLINK("evil.example","x").csv'
LONG_ADDRESS = "Hangar " + "x" * 1_000_000


def good_bundle_with_extras(path) -> None:
    """A valid bundle plus everything that used to be dropped or to abort the workbook write."""
    with zipfile.ZipFile(path) as zf:
        members = [(i.filename, zf.read(i)) for i in zf.infolist() if not i.is_dir()]
    members += [
        ("extra/orgs.ods", ods_bytes()),
        ("extra/orgs.xls", xls_bytes()),
        ("extra/orgs.xlsb", xlsb_bytes()),
        ("README.txt", "captured by hand"),
        ("~$orgs.xlsx", b"lock"),
        (HOSTILE_NAME, "Organisation Name,Email\nEpsilon Air,=cmd|' /C calc'!A0\n+Zeta Aero,@SUM(1)\n"),
        ("long.csv", f"Organisation Name,Address\nEta Aviation,{LONG_ADDRESS}\n"),
    ]
    write_zip(path, members)


@pytest.fixture
def hostile(tmp_path):
    root = tmp_path / "archives"
    make_archives(root, days=5)
    workflow = Workflow(tmp_path, root)
    cases = {}
    path, bundle = archive_path(workflow, 0, "v1")
    zipcrypto_zip(path, tmp_path)
    cases[bundle] = ("orgs.csv", "password-protected")
    path, bundle = archive_path(workflow, 0, "v2")
    aes_zip(path)
    cases[bundle] = ("orgs.csv", "password-protected")
    path, bundle = archive_path(workflow, 1, "v1")
    write_zip(path, [("a" * 300 + ".csv", ORGS)])
    cases[bundle] = ("aaaa", "name part of 304 bytes")
    path, bundle = archive_path(workflow, 1, "v2")
    write_zip(path, [("/".join(["d" * 200] * 25) + "/orgs.csv", ORGS)])
    cases[bundle] = ("dddd", "path over the file system's 4096 bytes")
    path, bundle = archive_path(workflow, 2, "v1")
    write_zip(path, [("data", "a file"), ("data/orgs.csv", ORGS)])  # a folder where a file was restored
    cases[bundle] = ("data/orgs.csv", "could not be restored: File exists")
    path, bundle = archive_path(workflow, 2, "v2")
    write_zip(path, [("orgs.csv", ORGS), ("other.csv", ORGS), ("orgs.csv", ORGS.replace("Acme", "Omega"))])
    cases[bundle] = ("orgs.csv", "stored twice under the same name")
    good_bundle_with_extras(archive_path(workflow, 3, "v1")[0])
    path, bundle = archive_path(workflow, 4, "v1")
    write_zip(path, [("orgs.xlsx", panicking_xlsx()), ("notes.txt", "by hand")])
    cases[bundle] = ("orgs.xlsx", "PanicException")
    return workflow, cases


def archive_members(workflow: Workflow, bundle: str) -> list[str]:
    date, version = bundle.split("--")
    with zipfile.ZipFile(workflow.archives / date / f"hotpass-inputs-{version}.zip") as zf:
        return sorted(i.filename for i in zf.infolist() if not i.is_dir())


def test_hostile_archives_fail_alone_with_a_record_and_everything_else_is_built(hostile, tmp_path):
    workflow, cases = hostile
    done = workflow.run(check=False, profile="generic")
    assert done.returncode != 0
    for bundle, (member, cause) in cases.items():
        status = workflow.status(bundle)
        assert status["status"] == "failed_processing", (bundle, status)
        error = status["error"]
        assert bundle in error and member in error and cause in error, (bundle, error)
        assert "\n" not in error and len(error) <= 600
        assert f"{bundle}" in done.stderr  # the gate's summary names every failed bundle
        # Every member accounted for, skipped with a reason; the one breaking a rule says which rule.
        members = status["members"]
        assert sorted(m["name"] for m in members) == archive_members(workflow, bundle)
        assert all(m["status"] == "skipped" and m["reason"] for m in members), members
        if "File exists" not in cause and "Panic" not in cause:  # a rule the listing itself shows
            assert any(cause in m["reason"] for m in members), members
    theta = {m["name"]: m["reason"] for m in workflow.status("2025-10-03--v1")["members"]}  # restored, then failed
    assert (
        theta["orgs.xlsx"] == "not read: the bundle failed at refine (see its error)"
        and "not a spreadsheet" in theta["notes.txt"]
    )
    # its restored copy is dropped (Snakemake's own timestamp file aside)
    assert {p.name for p in (workflow.restore / "2025-10-03--v1").iterdir()} <= {".snakemake_timestamp"}
    log = (workflow.restore / "logs" / "bundle" / "2025-10-03--v1.log").read_text()
    assert "PanicException" in log and "Traceback" in log  # enough to report the bug upstream
    good = [b for b in (p.name for p in (workflow.restore / "outputs").iterdir()) if "--" in b and b not in cases]
    assert len(good) == 3 and all(workflow.status(b)["status"] == "ok" for b in good)
    assert (workflow.restore / "data-docs" / "index.html").exists()
    for bundle in cases:
        page = (workflow.restore / "data-docs" / "bundles" / f"{bundle}.html").read_text()
        assert "failed to process" in page
        table = page.split('<table id="members">', 1)[1].split("</table>", 1)[0]
        for member in workflow.status(bundle)["members"]:
            row = f'<tr data-member-status="skipped"><td>{escape(member["name"])}</td>'
            assert row in table and escape(member["reason"]) in table, (bundle, member)
    record = json.loads(next((workflow.restore / "outputs" / "runs").glob("*.json")).read_text())
    assert record["ok"] is False and all(record["bundles"][b] == "failed_processing" for b in cases)
    outside = [
        p
        for p in tmp_path.rglob("*")
        if not any(
            p.is_relative_to(a) for a in (workflow.restore, workflow.archives, workflow.workdir, tmp_path / "plain")
        )
    ]
    assert outside == []

    # A rerun of the failed run still exits non-zero and keeps the record (the gate reruns alone).
    again = workflow.run(check=False, profile="generic")
    assert again.returncode != 0 and "rule bundle" not in again.stdout + again.stderr
    assert json.loads(next((workflow.restore / "outputs" / "runs").glob("*.json")).read_text())["ok"] is False


def test_every_member_is_accounted_for_and_other_formats_are_read(hostile):
    workflow, _ = hostile
    window = {"profile": "generic", "since": "2025-10-02", "until": "2025-10-02", "versions": ["v1"]}
    workflow.run(**window)
    bundle = "2025-10-02--v1"
    status = workflow.status(bundle)
    assert status["status"] == "ok"
    members = {m["name"]: m for m in status["members"]}
    with zipfile.ZipFile(archive_path(workflow, 3, "v1")[0]) as zf:
        assert set(members) == {i.filename for i in zf.infolist() if not i.is_dir()}
    assert {members[f"extra/orgs.{kind}"]["status"] for kind in ("ods", "xls", "xlsb")} == {"read"}
    assert members["README.txt"]["status"] == "skipped" and "not a spreadsheet" in members["README.txt"]["reason"]
    assert "Office lock file" in members["~$orgs.xlsx"]["reason"]
    records = pd.read_parquet(workflow.outputs(bundle) / "refined.parquet")
    names = set(records["organization_name"])
    assert {"Gamma Gliders", "Delta Drones", "Kappa Kites"} <= names
    page = (workflow.restore / "data-docs" / "bundles" / f"{bundle}.html").read_text()
    assert "README.txt" in page and "not a spreadsheet" in page and "orgs.ods" in page
    assert all(m["status"] == "read" for n, m in members.items() if n.endswith((".csv", ".ods", ".xls", ".xlsb")))

    # A cell over Excel's limit: cut in the workbook with a flag on the record, whole in parquet.
    long = records[records["organization_name"] == "Eta Aviation"].iloc[0]
    assert long["address"] == LONG_ADDRESS and "truncated_in_xlsx" in long["flags"]
    sheet = pd.read_excel(workflow.outputs(bundle) / "refined.xlsx", sheet_name="Data", engine="calamine")
    cell = sheet.loc[sheet["organization_name"] == "Eta Aviation", "address"].iloc[0]
    assert len(cell) == 32_767 and LONG_ADDRESS.startswith(cell)

    # Formula-safe CSV: no field of rejected.csv starts a formula, the hostile member name included.
    with open(workflow.outputs(bundle) / "rejected.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    fields = [field for row in rows for field in row]
    assert fields and not [f for f in fields if f[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert "'" + HOSTILE_NAME in fields  # neutralised, still readable
