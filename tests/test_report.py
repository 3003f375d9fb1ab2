"""`snakemake --report` after the plain install: every bundle built by default, or the window asked for."""

from __future__ import annotations

import re
import tomllib
import zipfile
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow


def report_names(workflow, path: Path, **config) -> list[str]:
    workflow.run("--report", str(path), **config)
    return zipfile.ZipFile(path).namelist()


def test_the_packages_snakemake_reports_need_are_main_dependencies():
    import snakemake.report

    needed = set()
    for source in Path(snakemake.report.__file__).parent.rglob("*.py"):
        needed |= set(re.findall(r"Python package (\w+) must be installed", source.read_text()))
    assert needed  # the report still names what it needs
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~\[ ]", d, maxsplit=1)[0].lower() for d in dependencies}
    assert {n.lower() for n in needed} <= names


def test_after_scheduled_runs_the_report_holds_every_bundle_built_and_the_data_docs(workflow, tmp_path):
    workflow.run(until="2025-09-30")
    workflow.run()  # the next scheduled run: only 2025-10-01; the cursor is now at the newest date
    names = report_names(workflow, tmp_path / "report.zip")
    assert sum(n.endswith("/refined.xlsx") for n in names) == 6
    assert sum(n.endswith("/index.html") for n in names) == 1
    assert any(n.endswith("bundles/2025-09-29--v2.html") for n in names)  # the docs cover the history


def test_a_report_of_a_window_holds_only_that_window(workflow, tmp_path):
    workflow.run()
    names = report_names(workflow, tmp_path / "window.zip", since="2025-09-30", until="2025-09-30", versions=["v2"])
    assert sum(n.endswith("/refined.xlsx") for n in names) == 1
    assert any(n.endswith("/index.html") for n in names)
