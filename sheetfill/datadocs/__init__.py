"""Static data docs for a window: index.html, one page per bundle, charts as PNG files.

Self-contained: relative links only, no JavaScript, no CDN, so the folder opens from file:// and
can be zipped or published as it is. Every value that came from a spreadsheet or a bundle file goes
through Jinja2's autoescape. matplotlib and pandas are imported only when charts / diffs are made,
so importing this package stays cheap.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from collections import defaultdict
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

STATUS_LABEL = {
    "ok": "ok",
    "failed_validation": "failed validation",
    "failed_processing": "failed to process",
    "failed_enrichment": "failed enrichment",
}
OUTPUT_FILES = ("refined.xlsx", "refined.parquet", "rejected.csv", "validation.json", "provenance.json")
OUTPUT_FILES += ("enriched.parquet", "enrichment.json")  # present when the bundle was enriched
OWNED = ("index.html", "style.css", "bundles", "charts")  # what a rebuild may replace in docs_dir


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
        "problems": problems,
    }


def _version_key(version: str):
    """v2 before v10: numbers in a version compare as numbers."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", version) if part]


def _bundle_key(bundle: dict):
    return bundle.get("date") or "", _version_key(bundle.get("version") or "")


def version_diffs(bundles: list[dict]) -> dict[str, dict]:
    """For each date with several versions: each version's diff against the version before it."""
    by_date = defaultdict(list)
    for bundle in bundles:
        if (bundle["folder"] / "refined.parquet").exists():
            by_date[bundle.get("date")].append(bundle)
    pairs = [(a, b) for versions in by_date.values() for a, b in zip(versions, versions[1:])]
    if not pairs:
        return {}
    from sheetfill.bundle.diff import diff_records, read_for_diff

    return {
        after["bundle"]: {
            "against": before["bundle"],
            "against_page": before["page"],
            **diff_records(
                read_for_diff(before["folder"] / "refined.parquet"), read_for_diff(after["folder"] / "refined.parquet")
            ),
        }
        for before, after in pairs
    }


# --- charts --------------------------------------------------------------------------------------


def _as_date(text):
    try:
        return dt.date.fromisoformat(str(text))
    except ValueError:
        return None


def _records(b: dict):
    return (b.get("counts") or {}).get("records_out")


def _quality(b: dict):
    return (b.get("quality") or {}).get("mean_score")


def _line_chart(axes, bundles: list[dict], versions: list[str], value) -> None:
    for version in versions:
        points = [
            (_as_date(b["date"]), value(b))
            for b in bundles
            if b.get("version") == version and value(b) is not None and _as_date(b.get("date"))
        ]
        if points:
            axes.plot(*zip(*points), marker="o", label=version)


def _failure_chart(axes, bundles: list[dict], versions: list[str]) -> None:
    """Grouped bars per date: failed expectations per version; hatched red where processing failed."""
    width = 0.8 / max(len(versions), 1)
    for i, version in enumerate(versions):
        mine = [b for b in bundles if b.get("version") == version and _as_date(b.get("date"))]
        offset = dt.timedelta(days=(i - (len(versions) - 1) / 2) * width)
        validation = [
            (_as_date(b["date"]) + offset, (b.get("validation") or {}).get("failed", 0))
            for b in mine
            if b["status"] != "failed_processing"
        ]
        if validation:
            axes.bar(*zip(*validation), width=width, label=f"{version}: failed expectations")
        broken = [_as_date(b["date"]) + offset for b in mine if b["status"] == "failed_processing"]
        if broken:
            axes.bar(
                broken,
                [1] * len(broken),
                width=width,
                color="none",
                edgecolor="#b42318",
                hatch="//",
                label=f"{version}: failed to process",
            )
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.set_ylim(0, max(1.0, axes.get_ylim()[1]))  # a clean window shows 0..1, not -0.05..0.05


def _date_axis(axes, bundles: list[dict]) -> None:
    """Whole days on the x axis: one tick per date for short windows, calendar ticks for long ones."""
    import matplotlib.dates as mdates

    dates = [d for d in (_as_date(b.get("date")) for b in bundles) if d]
    short = dates and (max(dates) - min(dates)).days < 10
    locator = mdates.DayLocator() if short else mdates.AutoDateLocator(minticks=3, maxticks=8)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


CHARTS = [
    ("records.png", "Records out by date and version", lambda axes, b, v: _line_chart(axes, b, v, _records)),
    ("quality.png", "Mean quality score by date and version", lambda axes, b, v: _line_chart(axes, b, v, _quality)),
    ("failures.png", "Failures by date and version", _failure_chart),
]


def draw_charts(bundles: list[dict], out: Path) -> list[dict]:
    """The window's charts as PNG files in out; returns [{"file", "title"}] with paths relative to the docs."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never a display, never a GUI toolkit
    import matplotlib.pyplot as plt

    versions = sorted({b.get("version") or "" for b in bundles}, key=_version_key)
    charts = []
    for name, title, draw in CHARTS:
        figure, axes = plt.subplots(figsize=(8, 2.8), dpi=100)
        draw(axes, bundles, versions)
        axes.set_title(title, fontsize=10)
        _date_axis(axes, bundles)
        axes.tick_params(labelsize=8)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
        figure.tight_layout()
        figure.savefig(out / name, metadata={"Software": None})  # no version stamp: same data, same file
        plt.close(figure)
        charts.append({"file": f"charts/{name}", "title": title})
    return charts


# --- pages ---------------------------------------------------------------------------------------


def _clear(docs_dir: Path) -> None:
    """Remove what a previous build wrote, and only that: docs_dir may be shared with other files."""
    for name in OWNED:
        path = docs_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _output_links(bundle: dict, pages_dir: Path) -> list[dict]:
    """Relative links from a bundle page to the bundle's output files (they work from file://)."""
    return [
        {"name": name, "href": Path(os.path.relpath(bundle["folder"] / name, pages_dir)).as_posix()}
        for name in OUTPUT_FILES
        if (bundle["folder"] / name).exists()
    ]


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
        "versions": sorted({b.get("version") for b in bundles if b.get("version")}, key=_version_key),
        "requested_versions": (window or {}).get("versions"),
    }


def build_data_docs(bundle_out_dirs, docs_dir, window: dict) -> Path:
    """Write docs_dir/index.html, docs_dir/bundles/<bundle>.html and charts/; return the index path."""
    bundles = sorted((load_bundle(Path(d)) for d in bundle_out_dirs), key=_bundle_key)
    docs_dir = Path(docs_dir)
    docs_dir.mkdir(parents=True, exist_ok=True)
    _clear(docs_dir)
    (docs_dir / "bundles").mkdir()
    (docs_dir / "charts").mkdir()
    shutil.copyfile(Path(__file__).parent / "templates" / "style.css", docs_dir / "style.css")
    diffs = version_diffs(bundles)
    charts = draw_charts(bundles, docs_dir / "charts") if bundles else []
    env = _environment()
    window = window or {}
    index = env.get_template("index.html.j2").render(
        bundles=bundles,
        window=window,
        charts=charts,
        diffs=diffs,
        overview=_overview(bundles, window),
        failed=[b for b in bundles if b["failed"]],
    )
    (docs_dir / "index.html").write_text(index, encoding="utf-8")
    page = env.get_template("bundle.html.j2")
    for bundle in bundles:
        html = page.render(
            b=bundle,
            window=window,
            version_diff=diffs.get(bundle["bundle"]),
            outputs=_output_links(bundle, docs_dir / "bundles"),
        )
        (docs_dir / "bundles" / bundle["page"]).write_text(html, encoding="utf-8")
    return docs_dir / "index.html"
