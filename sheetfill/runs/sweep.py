"""Leftovers of killed or failed jobs under a restore_root, removed when the next run starts.

Only called with the restore_root's run lock held (sheetfill.runs.lock), so no other run can be
writing these: a staging folder `.<name>.partial-<pid>` and the temporary files of atomic writes
`.<name>.<pid>` (history, run records) are all stale by then.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

STAGING = re.compile(r"^\..+\.partial-\d+$")
TEMPORARY = re.compile(r"^\..+\.\d+$")


def sweep_staging(restore_root: Path) -> list[Path]:
    """Remove stale staging folders and temporary files; return what was removed."""
    root = Path(restore_root)
    removed = []
    for folder in (root, root / "outputs", root / "outputs" / "runs", root / ".sheetfill" / "history"):
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            if STAGING.match(entry.name) and entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
            elif TEMPORARY.match(entry.name) and entry.is_file():
                entry.unlink(missing_ok=True)
                removed.append(entry)
    return removed
