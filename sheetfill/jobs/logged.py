"""Run-level `script:` jobs (data docs, gate) put their own error into their log.

Snakemake shows a failed script's traceback on its own stderr only, and on a full disk the log
would stay empty: so the error goes to the log, after the job's partial output is removed (which
Snakemake would delete anyway) to make room for it.
"""

from __future__ import annotations

import shutil
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path


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
        try:
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(f"sheetfill: this job failed: {type(exc).__name__}: {exc}\n{text}")
        except OSError as again:
            print(f"sheetfill: could not write the log {log}: {again}", file=sys.stderr)
        raise
