"""The README's quickstart, run exactly as written, in a fresh venv on a copy of the tracked files.

The commands are read from README.md itself ("Two commands"), so the test breaks when the README
changes in a way that no longer works. The install is the base one (no extras): `snakemake --report`
must work from it too. It needs the package index; if pip cannot reach it the test skips, and under
CI=true it fails (conftest.unavailable).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, unavailable

pytestmark = pytest.mark.slow

INSTALL_TIMEOUT = 1800  # seconds: a cold pip cache downloads Snakemake, pandas, pyarrow, matplotlib, ...


def quickstart_section() -> str:
    readme = (REPO / "README.md").read_text()
    found = re.search(r"^## Two commands\n(.*?)^## ", readme, flags=re.S | re.M)
    assert found, "README.md has no '## Two commands' section"
    return found.group(1)


def quickstart_commands() -> tuple[str, str]:
    """(the quickstart's bash block, the report command the README names next to it)."""
    section = quickstart_section()
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S)
    report = re.search(r"`(snakemake --report [^`]+)`", section)
    assert block and report, "the quickstart lost its bash block or its `snakemake --report ...` command"
    commands = block.group(1)
    assert "python -m pip install -e . " in commands and "snakemake --cores" in commands  # base install, no extras
    return commands, report.group(1)


def copy_tracked_files(destination: Path) -> None:
    """The clone as a fresh checkout would have it: the tracked files only (no results/, no .venv)."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, text=True, check=True)
    for name in filter(None, listed.stdout.split("\0")):
        source = REPO / name
        if not source.is_symlink() and not source.exists():
            continue  # deleted in the working tree, not yet committed
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)


def clean_environment() -> dict[str, str]:
    """The user's shell: no test PYTHONPATH (it would import the repository instead of the install),
    no active venv, no sheetfill settings; `python3` is the interpreter running the tests (>= 3.11)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not key.startswith("SHEETFILL_")
    }
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def bash(script: str, cwd: Path, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-e", "-c", script], cwd=cwd, env=clean_environment(), capture_output=True, text=True, timeout=timeout
    )


def index_reachable(venv_python: Path, scratch: Path) -> bool:
    """Can the venv's pip, with the user's pip settings, fetch the build backend the install needs?"""
    probe = [venv_python, "-m", "pip", "download", "--no-deps", "--dest", scratch, "setuptools"]
    done = subprocess.run(probe, env=clean_environment(), capture_output=True, text=True, timeout=600)
    return done.returncode == 0


def test_the_readme_quickstart_works_in_a_fresh_venv_and_its_report_holds_outputs_and_docs(tmp_path):
    commands, report_command = quickstart_commands()
    clone = tmp_path / "clone"
    copy_tracked_files(clone)
    try:
        done = bash(commands, clone, INSTALL_TIMEOUT)
        output = done.stdout + done.stderr
        venv_python = clone / ".venv/bin/python"
        if done.returncode != 0 and venv_python.exists() and not index_reachable(venv_python, tmp_path / "probe"):
            unavailable(f"pip cannot reach the package index; the quickstart's output:\n{output[-3000:]}")
        assert done.returncode == 0, output[-6000:]
        probe = "import sys; print(sys.prefix != sys.base_prefix)"
        in_venv = subprocess.run([venv_python, "-c", probe], capture_output=True, text=True, env=clean_environment())
        assert in_venv.stdout.strip() == "True"
        docs = (clone / "results" / "data-docs" / "index.html").resolve()
        assert done.stderr.splitlines()[-1] == f"data docs: {docs}", done.stderr[-3000:]

        report = bash(f". .venv/bin/activate && {report_command}", clone, 600)
        assert report.returncode == 0, (report.stdout + report.stderr)[-6000:]
        names = zipfile.ZipFile(clone / report_command.split()[-1]).namelist()
        bundles = sorted(p.parent.name for p in (clone / "results" / "outputs").glob("*/bundle.json"))
        assert len(bundles) == 6  # the sample: 3 dates x 2 versions
        assert sum(n.endswith("/refined.xlsx") for n in names) == len(bundles)
        docs_folders = {n.removesuffix("/index.html") for n in names if n.endswith("/index.html")}
        assert any(all(f"{d}/bundles/{b}.html" in names for b in bundles) for d in docs_folders), names
    finally:
        shutil.rmtree(clone, ignore_errors=True)  # the venv alone is hundreds of MB
