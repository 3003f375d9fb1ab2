"""Run-level `script:` jobs (data docs, gate) put their own error into their log.

Snakemake shows a failed script's traceback on its own stderr only, and on a full disk the log
would stay empty: so the error goes to the log, after the job's partial output is removed (which
Snakemake would delete anyway) to make room for it; if even that leaves no room, into a log file of
the run's reserve pool (sheetfill.bundle.reserve). Logs live in <restore_root>/logs/.
"""

from __future__ import annotations

import shutil
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path

from sheetfill.bundle import reserve


@contextmanager
def errors_logged(log: str | Path, partial_outputs: list[str | Path] = ()):
    try:
        yield
    except SystemExit:
        raise
    except BaseException as exc:
        for output in partial_outputs:
            path = Path(output)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
        text = "".join(traceback.format_exception(exc))
        write_log(Path(log), f"sheetfill: this job failed: {type(exc).__name__}: {exc}\n{text}")
        raise


def write_log(log: Path, text: str) -> None:
    try:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(text)
        return
    except OSError as error:
        problem = error
    if reserve.take(log.parent.parent, "log", log):  # its room is allocated: write over it, then trim
        with open(log, "r+b") as handle:
            handle.write(text.encode()[: reserve.ROOM])
            handle.truncate()
        return
    print(f"sheetfill: could not write the log {log}: {problem}", file=sys.stderr)
