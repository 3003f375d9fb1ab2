"""Shared helpers: generated archives and real Snakemake runs in isolated working directories."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
START = dt.date(2025, 9, 29)
SMALL = 0.05  # sample scale for workflow tests: every sheet, a few rows each


def make_archives(
    root: Path,
    days: int = 3,
    versions=("v1", "v2"),
    start: dt.date = START,
    pattern: str = "{date}/hotpass-inputs-{version}.zip",
    scale: float = SMALL,
    seed: int = 0,
):
    from sheetfill.sample import generate_archives

    return generate_archives(root, start=start, days=days, versions=versions, pattern=pattern, scale=scale, seed=seed)


class Workflow:
    """Runs the repository's Snakefile with its own working directory and restore_root."""

    def __init__(self, base: Path, archives: Path):
        self.workdir = base / "work"
        self.workdir.mkdir(parents=True, exist_ok=True)
        link = self.workdir / "config"
        if not link.exists():
            link.symlink_to(REPO / "config")
        self.archives = archives
        self.restore = base / "restore"

    def config(self, **extra) -> dict:
        return {"archive_root": str(self.archives), "restore_root": str(self.restore), **extra}

    def command(self, *args, **config) -> list[str]:
        items = [f"{k}={json.dumps(v) if isinstance(v, list) else v}" for k, v in self.config(**config).items()]
        return [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "--directory",
            str(self.workdir),
            "--cores",
            "2",
            *args,
            "--config",
            *items,
        ]

    def run(self, *args, check: bool | None = True, **config) -> subprocess.CompletedProcess:
        done = subprocess.run(self.command(*args, **config), capture_output=True, text=True, timeout=600)
        if check is not None and (done.returncode == 0) != check:
            raise AssertionError(f"snakemake exit {done.returncode}\n{done.stdout}\n{done.stderr}")
        return done

    def planned_bundles(self, **config) -> list[str]:
        """Bundle ids a dry run would (re)build."""
        done = self.run("-n", **config)
        found = re.findall(r"date=(\d{4}-\d{2}-\d{2}), version=([^\s,]+)", done.stdout + done.stderr)
        return sorted({f"{date}--{version}" for date, version in found})

    def outputs(self, bundle: str) -> Path:
        return self.restore / "outputs" / bundle

    def status(self, bundle: str) -> dict:
        return json.loads((self.outputs(bundle) / "bundle.json").read_text())


def unavailable(reason: str) -> None:
    """Skip a test whose system tool is missing, except under CI=true: CI must run it, so it fails."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: this test must run in CI, so a missing tool fails it)")
    pytest.skip(reason)


@pytest.fixture
def archives(tmp_path):
    root = tmp_path / "archives"
    make_archives(root)
    return root


@pytest.fixture
def workflow(tmp_path, archives):
    return Workflow(tmp_path, archives)


@pytest.fixture(autouse=True, scope="session")
def _importable_repo():
    os.environ["PYTHONPATH"] = str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")


@pytest.fixture(autouse=True)
def _no_inherited_run_id(monkeypatch):
    """Each test's runs get their own run ids, whatever an earlier in-process run left behind."""
    monkeypatch.delenv("SHEETFILL_RUN_ID", raising=False)
