"""Data docs built from bundle output folders laid out as docs/architecture.md describes."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from sheetfill.bundle.diff import diff_records
from sheetfill.bundle.profiles import Profile
from sheetfill.bundle.validation import validate
from sheetfill.datadocs import build_data_docs

SCRIPT = "<script>window.__pwned=1</script>"
WINDOW = {"since": "2025-09-29", "until": "2025-09-30", "versions": None, "backfill": True, "cursor": None}
PROFILE = Profile(
    name="test",
    path=Path("test.yaml"),
    sha256="ab" * 32,
    data={},
    pii_fields=["contact_email"],
    expectations=[
        {"name": "has_records", "check": "row_count", "min": 1},
        {"name": "named", "column": "organization_name", "check": "regex", "pattern": "^[A-Z][A-Za-z ]+$"},
        {
            "name": "email_well_formed",
            "column": "contact_email",
            "check": "regex",
            "pattern": r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$",
            "mostly": 0.9,
        },
    ],
)


def records(names: list[str], emails: list[str | None] | None = None) -> pd.DataFrame:
    emails = emails or [f"info{i}@school{i}.co.za" for i in range(len(names))]
    return pd.DataFrame(
        {
            "record_id": [f"sf-{n.lower()[:12]}" for n in names],
            "organization_name": names,
            "contact_email": emails,
            "quality_score": [0.8] * len(names),
        }
    )


def write_bundle(
    root: Path, name: str, frame: pd.DataFrame | None = None, error: str | None = None, diff: dict | None = None
) -> Path:
    """One output folder: bundle.json, provenance.json, and for processed bundles validation + parquet."""
    folder = root / "outputs" / name
    folder.mkdir(parents=True)
    date, version = name.split("--")
    summary = {
        "bundle": name,
        "date": date,
        "version": version,
        "status": "failed_processing",
        "error": error,
        "counts": {},
        "quality": {},
        "validation": None,
        "diff": diff,
    }
    provenance = {
        "bundle": name,
        "archive": {"path": f"/archives/{date}/{version}.zip", "size": 1234, "sha256": "0f" * 32},
        "members": [{"name": "Contact Database.xlsx", "size": 999, "sha256": "1e" * 32}],
        "profile": {"name": "test", "path": "test.yaml", "sha256": PROFILE.sha256},
        "started": "2026-11-25T04:00:00+00:00",
        "finished": "2026-11-25T04:00:01+00:00",
    }
    if frame is not None:
        report = validate(frame, PROFILE)
        frame.to_parquet(folder / "refined.parquet")
        (folder / "validation.json").write_text(json.dumps(report))
        summary.update(
            status="ok" if report["success"] else "failed_validation",
            counts={
                "rows_in": 3 * len(frame),
                "records_out": len(frame),
                "duplicates_merged": 2 * len(frame),
                "flagged": 1,
                "rejected": 0,
            },
            quality={"mean_score": 0.8},
            validation={k: report[k] for k in ("success", "evaluated", "failed")},
        )
    (folder / "bundle.json").write_text(json.dumps(summary))
    (folder / "provenance.json").write_text(json.dumps(provenance))
    return folder


def make_window(root: Path) -> list[Path]:
    """Four bundles: ok, failed validation (with a <script> cell), failed to process, ok with a diff."""
    first = records(["Acme Aviation", "Blue Sky", "Cape Wings"])
    second = records(
        ["Acme Aviation", "Blue Sky", SCRIPT, "Delta Air"],
        ["info0@school0.co.za", "not-an-email", "jane.doe@evil", "info3@school3.co.za"],
    )
    rebuilt = records(["Blue Sky", "Cape Wings", "Echo Flight"])
    return [
        write_bundle(root, "2025-09-29--v1", first),
        write_bundle(root, "2025-09-29--v2", second),
        write_bundle(root, "2025-09-30--v1", error="corrupt zip: <b>bad</b> central directory"),
        write_bundle(root, "2025-09-30--v2", rebuilt, diff=diff_records(first, rebuilt)),
    ]


class Page(HTMLParser):
    """The text, images, links and table rows (with their data-status) of a page."""

    def __init__(self, path: Path):
        super().__init__()
        self.text, self.images, self.links, self.rows, self.tags = [], [], [], {}, []
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag in ("a", "link"):
            self.links.append(attrs["href"])
        if tag == "tr" and "data-bundle" in attrs:
            self.rows[attrs["data-bundle"]] = attrs["data-status"]

    def handle_data(self, data):
        self.text.append(data)

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


@pytest.fixture
def docs(tmp_path):
    index = build_data_docs(make_window(tmp_path), tmp_path / "data-docs", WINDOW)
    return index


def test_index_lists_every_bundle_with_its_status(docs):
    assert Page(docs).rows == {"2025-09-29--v2": "failed_validation", "2025-09-30--v1": "failed_processing"}
    text = Page(docs).all_text
    assert "2 of 4 bundles failed" in text
    page = Page(docs.parent / "window.html")  # the window's full table, linked from the index
    assert page.rows == {
        "2025-09-29--v1": "ok",
        "2025-09-29--v2": "failed_validation",
        "2025-09-30--v1": "failed_processing",
        "2025-09-30--v2": "ok",
    }
    text = page.all_text
    assert "corrupt zip: <b>bad</b> central directory" in text  # the error, shown as text
    assert "2025-09-29 … 2025-09-30" in Page(docs).all_text and "v1, v2" in Page(docs).all_text
    assert "+2 added, −1 removed, ~1 changed, 1 unchanged" in text  # v2 against v1, same date
    assert "+1 added, −1 removed, ~2 changed" in text  # bundle.json's diff against the previous build


def test_script_cells_are_text_never_markup(docs):
    pages = [docs, *sorted((docs.parent / "bundles").glob("*.html"))]
    for path in pages:
        assert "script" not in Page(path).tags, path
        assert "<script>" not in path.read_text().replace("&lt;script&gt;", "")
    # the failing <script> organisation name is an unexpected example, visible as text
    assert SCRIPT in Page(docs.parent / "bundles" / "2025-09-29--v2.html").all_text


def test_bundle_page_shows_expectations_with_masked_examples(docs):
    text = Page(docs.parent / "bundles" / "2025-09-29--v2.html").all_text
    assert "failed validation" in text and "2 of 3 expectations failed" in text
    assert "email_well_formed" in text and "n***" in text and "j***@***" in text
    assert "jane.doe" not in text and "not-an-email" not in text
    assert "0f" * 32 in text and "1e" * 32 in text and PROFILE.sha256 in text  # provenance
    assert "Contact Database.xlsx" in text


def test_failed_processing_page_shows_the_error(docs):
    text = Page(docs.parent / "bundles" / "2025-09-30--v1.html").all_text
    assert "failed to process" in text and "corrupt zip: <b>bad</b> central directory" in text
    assert "No expectations were evaluated" in text


def test_charts_and_links_are_local_files(docs):
    root = docs.parent
    for path in [docs, root / "window.html", *(root / "months").glob("*.html"), *(root / "bundles").glob("*.html")]:
        page = Page(path)
        for ref in page.images + page.links:
            assert "://" not in ref and not ref.startswith("//"), ref
            assert (path.parent / ref).exists(), ref
    images = Page(docs).images
    assert len(images) == 4  # the status calendar, records, quality and (some bundles failed) failures
    for image in images:
        assert (root / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rebuild_replaces_its_own_files_only(tmp_path):
    docs_dir = tmp_path / "data-docs"
    docs_dir.mkdir()
    (docs_dir / "keep.txt").write_text("not ours")
    folders = make_window(tmp_path)
    build_data_docs(folders, docs_dir, WINDOW)
    build_data_docs(folders[:1], docs_dir, WINDOW)
    assert (docs_dir / "keep.txt").read_text() == "not ours"
    assert sorted(p.name for p in (docs_dir / "bundles").iterdir()) == ["2025-09-29--v1.html"]


def test_missing_or_broken_bundle_json_is_a_visible_failure(tmp_path):
    broken = tmp_path / "outputs" / "2025-10-01--v1"
    broken.mkdir(parents=True)
    (broken / "bundle.json").write_text("{not json")
    empty = tmp_path / "outputs" / "2025-10-02--v1"
    empty.mkdir()
    index = build_data_docs([broken, empty], tmp_path / "docs", {})
    page = Page(index)
    assert page.rows == {"2025-10-01--v1": "failed_processing", "2025-10-02--v1": "failed_processing"}
    assert "bundle.json is unreadable" in page.all_text and "bundle.json is missing" in page.all_text


def test_empty_window(tmp_path):
    index = build_data_docs([], tmp_path / "docs", WINDOW)
    assert "No bundles in this window" in Page(index).all_text
