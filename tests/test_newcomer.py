"""What a newcomer hits first: importing sheetfill from the folder that holds the clone."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO


def test_the_folder_holding_the_clone_imports_the_installed_package_not_the_clone(tmp_path):
    (tmp_path / "sheetfill").symlink_to(REPO)  # a clone named like the package, in the current folder
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = "import sheetfill; print(sheetfill.__file__); print(callable(sheetfill.run))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    module_file, has_run = done.stdout.split()
    assert module_file.endswith(os.path.join("sheetfill", "__init__.py")) and has_run == "True"
