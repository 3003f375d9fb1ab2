"""Static data docs for a window: index.html, one page per bundle, charts as PNG files.

Self-contained: relative links only, no JavaScript, no CDN, so the folder opens from file:// and
can be zipped or published as it is. Every value that came from a spreadsheet or a bundle file goes
through Jinja2's autoescape. matplotlib and pandas are imported only when charts / diffs are made,
so importing this package stays cheap.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import defaultdict
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape

from sheetfill.datadocs.charts import draw_calendar, draw_trends, version_key
from sheetfill.datadocs.history import DiffCache, PageCache, history_folders, window_names

STATUS_LABEL = {
    "ok": "ok",
    "failed_validation": "failed validation",
    "failed_processing": "failed to process",
    "failed_enrichment": "failed enrichment",
}
OUTPUT_FILES = ("refined.xlsx", "refined.parquet", "rejected.csv", "validation.json", "provenance.json")
OUTPUT_FILES += ("enriched.parquet", "enrichment.json")  # present when the bundle was enriched
# what a rebuild may replace in docs_dir
OWNED = ("index.html", "window.html", "failures.html", "style.css", "bundles", "charts", "months", "files")
COUNTS_ORDER = ("rows_in", "records_out", "duplicates_merged", "flagged", "rejected")  # index and bundle pages
FAILURES_ON_INDEX = 50  # newest first; the rest on failures.html
TEMPLATES = Path(__file__).parent / "templates"


# --- reading the bundle folders ------------------------------------------------------------------


def _read_json(path: Path, problems: list[str]):
    """A bundle file's content, or None with the reason added to problems (never raises)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"{path.name} is missing")
    except (OSError, ValueError) as exc:
        problems.append(f"{path.name} is unreadable: {exc}")
    return None


def _split_name(name: str) -> tuple[str, str]:
    date, _, version = name.partition("--")
    return date, version


def load_bundle(folder: Path) -> dict:
    """Everything the docs show about one bundle; missing files become visible problems."""
    folder = Path(folder)
    problems: list[str] = []
    summary = _read_json(folder / "bundle.json", problems)
    if not isinstance(summary, dict):
        date, version = _split_name(folder.name)
        summary = {
            "bundle": folder.name,
            "date": date,
            "version": version,
            "status": "failed_processing",
            "error": "; ".join(problems) or "bundle.json is not an object",
        }
    for key, value in zip(("date", "version"), _split_name(folder.name)):
        summary.setdefault(key, value)
    summary.setdefault("bundle", folder.name)
    validation = _read_json(folder / "validation.json", []) or {}  # absent on failed_processing: normal
    provenance = _read_json(folder / "provenance.json", problems if summary["status"] != "failed_processing" else [])
    status = summary.get("status", "unknown")
    return {
        **summary,
        "page": f"{folder.name}.html",  # from the folder name: a bundle.json cannot choose a path
        "folder": folder,
        "status": status,
        "label": STATUS_LABEL.get(status, f"unknown status {status!r}"),
        "failed": status != "ok",
        "checks": validation.get("results", []) if isinstance(validation, dict) else [],
        "provenance": provenance if isinstance(provenance, dict) else {},
        "members_by_name": {m.get("name"): m for m in summary.get("members") or [] if isinstance(m, dict)},
        "problems": problems,
    }


def _bundle_key(bundle: dict):
    return bundle.get("date") or "", version_key(bundle.get("version") or "")


def version_diffs(bundles: list[dict], cache: DiffCache | None = None) -> dict[str, dict]:
    """For each date with several versions: each version's diff against the version before it."""
    by_date = defaultdict(list)
    for bundle in bundles:
        if (bundle["folder"] / "refined.parquet").exists():
            by_date[bundle.get("date")].append(bundle)
    pairs = [(a, b) for versions in by_date.values() for a, b in zip(versions, versions[1:])]
    cache = cache or DiffCache(None)
    diffs = {}
    for before, after in pairs:
        key = cache.key(before["folder"] / "refined.parquet", after["folder"] / "refined.parquet")
        found = cache.get(after["bundle"], key)
        if found is None:
            from sheetfill.bundle.diff import diff_records, read_for_diff

            found = diff_records(read_for_diff(Path(key[0])), read_for_diff(Path(key[3])))
            cache.put(after["bundle"], key, found)
        diffs[after["bundle"]] = {"against": before["bundle"], "against_page": before["page"], **found}
    cache.save()
    return diffs


# --- pages ---------------------------------------------------------------------------------------


def _clear(docs_dir: Path) -> None:
    """Remove what a previous build wrote, and only that: docs_dir may be shared with other files."""
    for name in OWNED:
        path = docs_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _link_outputs(bundle: dict, files_dir: Path) -> list[dict]:
    """The bundle's output files, hard-linked (or copied) into the docs: links work when zipped alone."""
    links = []
    for name in OUTPUT_FILES:
        source = bundle["folder"] / name
        if not source.exists():
            continue
        flat = f"{bundle['bundle']}.{name}"  # one flat folder: ten thousand subfolders cost seconds to replace
        try:
            os.link(source, files_dir / flat)  # no bytes copied: same file, same filesystem
        except OSError:
            shutil.copyfile(source, files_dir / flat)
        links.append({"name": name, "href": f"../files/{quote(flat)}"})
    return links


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("sheetfill.datadocs"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _overview(bundles: list[dict], window: dict) -> dict:
    statuses = defaultdict(int)
    for bundle in bundles:
        statuses[bundle["label"]] += 1
    return {
        "statuses": dict(statuses),
        "dates": sorted({b.get("date") for b in bundles if b.get("date")}),
        "versions": sorted({b.get("version") for b in bundles if b.get("version")}, key=version_key),
        "requested_versions": (window or {}).get("versions"),
    }


def _months(bundles: list[dict]) -> list[dict]:
    """The history grouped by month, newest first, with each month's tally."""
    groups = defaultdict(list)
    for bundle in bundles:
        groups[(bundle.get("date") or "unknown")[:7]].append(bundle)
    return [
        {
            "month": month,
            "page": f"months/{month}.html",
            "bundles": members,
            "failed": sum(b["failed"] for b in members),
            "in_window": sum(b["in_window"] for b in members),
        }
        for month, members in sorted(groups.items(), reverse=True)
    ]


def _write(path: Path, html: str) -> None:
    path.write_text(html, encoding="utf-8")


def build_data_docs(bundle_out_dirs, docs_dir, window: dict, restore_root: Path | None = None) -> Path:
    """Write the data docs for the window's bundles and, given restore_root, every bundle built there.

    docs_dir gets index.html (failures first, status calendar, trends, months), window.html (the
    window's bundles), months/<YYYY-MM>.html, bundles/<bundle>.html, charts/ and files/<bundle>/.
    """
    window_dirs = [Path(d) for d in bundle_out_dirs]
    folders = history_folders(restore_root, window_dirs) if restore_root else window_dirs
    in_window = window_names(window_dirs)
    bundles = sorted((load_bundle(folder) for folder in folders), key=_bundle_key)
    for bundle in bundles:
        bundle["in_window"] = bundle["bundle"] in in_window
    docs_dir = Path(docs_dir)
    docs_dir.mkdir(parents=True, exist_ok=True)
    _clear(docs_dir)
    for folder in ("bundles", "charts", "months", "files"):
        (docs_dir / folder).mkdir()
    shutil.copyfile(Path(__file__).parent / "templates" / "style.css", docs_dir / "style.css")
    cache = DiffCache(Path(restore_root) / ".sheetfill" / "docs-version-diffs.json" if restore_root else None)
    diffs = version_diffs(bundles, cache)
    charts = draw_trends(bundles, in_window, docs_dir / "charts") if bundles else []
    calendar = draw_calendar(bundles, in_window, docs_dir / "charts") if bundles else None
    window = window or {}
    mine = [b for b in bundles if b["in_window"]]
    env = _environment()
    common = {"window": window, "diffs": diffs, "counts_order": COUNTS_ORDER}
    failed = sorted((b for b in bundles if b["failed"]), key=_bundle_key, reverse=True)
    months = _months(bundles)
    _write(
        docs_dir / "index.html",
        env.get_template("index.html.j2").render(
            **common,
            bundles=bundles,
            mine=mine,
            window_failed=[b for b in mine if b["failed"]],
            failed=failed[:FAILURES_ON_INDEX],
            failed_total=len(failed),
            charts=charts,
            calendar=calendar,
            months=months,
            overview=_overview(mine, window),
        ),
    )
    listing = env.get_template("listing.html.j2")
    _write(docs_dir / "window.html", listing.render(**common, root="", title="The last run's window", rows=mine))
    _write(docs_dir / "failures.html", listing.render(**common, root="", title="Failed bundles", rows=failed))
    for month in months:
        html = listing.render(**common, root="../", title=f"Bundles of {month['month']}", rows=month["bundles"])
        _write(docs_dir / month["page"], html)
    _bundle_pages(env, bundles, diffs, docs_dir, restore_root)
    return docs_dir / "index.html"


def _bundle_pages(env, bundles: list[dict], diffs: dict, docs_dir: Path, restore_root: Path | None) -> None:
    """One page per bundle; with restore_root, unchanged pages come from the previous builds' cache."""
    page = env.get_template("bundle.html.j2")
    cache = PageCache(Path(restore_root) / ".sheetfill" / "docs-pages" if restore_root else None, TEMPLATES)
    keys = set()
    for bundle in bundles:
        outputs = _link_outputs(bundle, docs_dir / "files")
        diff = diffs.get(bundle["bundle"])
        key = cache.key(bundle, [diff, outputs])
        keys.add(key)

        def render(bundle=bundle, diff=diff, outputs=outputs):
            return page.render(b=bundle, version_diff=diff, outputs=outputs, counts_order=COUNTS_ORDER)

        cache.place(key, docs_dir / "bundles" / bundle["page"], render)
    cache.prune(keys)
