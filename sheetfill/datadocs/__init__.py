"""Static data docs for a window: index.html, one page per bundle, charts as PNG files.

Self-contained: relative links only, no scripts, no CDN, so the folder opens from file:// and can
be zipped or published as it is. Every value from a spreadsheet goes through Jinja2's autoescape.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

STATUS_LABEL = {"ok": "ok", "failed_validation": "failed validation", "failed_processing": "failed to process"}


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def load_bundle(folder: Path) -> dict:
    summary = _read_json(folder / "bundle.json") or {"bundle": folder.name, "status": "failed_processing",
                                                       "error": "bundle.json missing", "counts": {}}
    return {**summary, "folder": folder, "label": STATUS_LABEL.get(summary["status"], summary["status"]),
            "failed": summary["status"] != "ok", "checks": (_read_json(folder / "validation.json") or {}).get("results", []),
            "provenance": _read_json(folder / "provenance.json") or {}}


def version_diffs(bundles: list[dict]) -> dict[str, dict]:
    """For each date with several versions: the diff of each version against the one before it."""
    import pandas as pd

    from sheetfill.diff import diff_records

    by_date = defaultdict(list)
    for bundle in bundles:
        if (bundle["folder"] / "refined.parquet").exists():
            by_date[bundle["date"]].append(bundle)
    diffs = {}
    for versions in by_date.values():
        versions.sort(key=lambda b: b["version"])
        for before, after in zip(versions, versions[1:]):
            diff = diff_records(pd.read_parquet(before["folder"] / "refined.parquet"),
                                pd.read_parquet(after["folder"] / "refined.parquet"))
            diffs[after["bundle"]] = {"against": before["bundle"], **diff}
    return diffs


def draw_charts(bundles: list[dict], out: Path) -> list[dict]:
    """Records, mean quality and failures by date (one line per version), as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [("records.png", "Records out", lambda b: (b.get("counts") or {}).get("records_out")),
              ("quality.png", "Mean quality score", lambda b: (b.get("quality") or {}).get("mean_score")),
              ("failures.png", "Failed expectations (−1: failed to process)",
               lambda b: -1 if b["status"] == "failed_processing" else (b.get("validation") or {}).get("failed", 0))]
    charts = []
    for name, title, value in series:
        figure, axes = plt.subplots(figsize=(7, 2.6), dpi=100)
        for version in sorted({b["version"] for b in bundles}):
            points = [(b["date"], value(b)) for b in bundles if b["version"] == version and value(b) is not None]
            if points:
                axes.plot(*zip(*points), marker="o", label=version)
        axes.set_title(title, fontsize=10)
        axes.tick_params(axis="x", labelrotation=30, labelsize=8)
        axes.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(out / name, metadata={"Software": None})
        plt.close(figure)
        charts.append({"file": f"charts/{name}", "title": title})
    return charts


def build_data_docs(bundle_out_dirs: list[Path], docs_dir: Path, window: dict) -> Path:
    """Write docs_dir/index.html and docs_dir/bundles/<bundle>.html; return the index path."""
    bundles = sorted((load_bundle(Path(d)) for d in bundle_out_dirs), key=lambda b: b["bundle"])
    diffs = version_diffs(bundles)
    docs_dir = Path(docs_dir)
    shutil.rmtree(docs_dir, ignore_errors=True)
    (docs_dir / "bundles").mkdir(parents=True)
    (docs_dir / "charts").mkdir()
    charts = draw_charts(bundles, docs_dir / "charts") if bundles else []
    env = Environment(loader=PackageLoader("sheetfill.datadocs"), autoescape=select_autoescape(default=True))
    shutil.copyfile(Path(__file__).parent / "templates" / "style.css", docs_dir / "style.css")
    failed = [b for b in bundles if b["failed"]]
    index = env.get_template("index.html.j2").render(bundles=bundles, window=window, charts=charts,
                                                      diffs=diffs, failed=failed)
    (docs_dir / "index.html").write_text(index)
    page = env.get_template("bundle.html.j2")
    for bundle in bundles:
        html = page.render(b=bundle, window=window, version_diff=diffs.get(bundle["bundle"]))
        (docs_dir / "bundles" / f"{bundle['bundle']}.html").write_text(html)
    return docs_dir / "index.html"
