"""Entry point of the per-bundle jobs: `python -m sheetfill.jobs.job bundle|enrich|pack ...`.

Rules call this through `shell:` rather than `script:` because per-job start-up decides backfill
speed: it imports nothing heavy itself, and hands the work to a warm worker when one is available
(see sheetfill.jobs.worker).
"""

from __future__ import annotations

# Imports stay inside functions: this module starts every bundle job, under `python -S`.
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["bundle"], ["enrich"]):  # only these need the heavy imports a warm worker saves
        from sheetfill.jobs.worker import run_via_worker

        code = run_via_worker(argv)
        if code is not None:
            return code
    from sheetfill.jobs.commands import run_in_process

    return run_in_process(argv)


if __name__ == "__main__":
    sys.exit(main())
