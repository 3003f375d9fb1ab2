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
    if argv[:1] != ["bundle"]:
        return _run(argv)
    reserved = reserve_log(argv)
    try:
        return _run(argv)
    finally:
        if reserved:
            release_log()


def _run(argv: list[str]) -> int:
    if argv[:1] in (["bundle"], ["enrich"]):  # only these need the heavy imports a warm worker saves
        from sheetfill.jobs.worker import run_via_worker

        code = run_via_worker(argv)
        if code is not None:
            return code
    from sheetfill.jobs.commands import run_in_process

    return run_in_process(argv)


LOG_RESERVE = 16 * 1024  # room kept in the job's log for its error, even on a full disk


def reserve_log(argv: list[str]) -> bool:
    """Allocate room in the job's log (stdout, a fresh file from `> log`) before the job runs, so
    that a full disk cannot leave a failed job with an empty log; release_log trims it back."""
    import os

    try:
        if os.lseek(1, 0, os.SEEK_CUR) != 0:
            return False
    except OSError:  # not a regular file: a terminal, a pipe
        return False
    try:
        os.posix_fallocate(1, 0, LOG_RESERVE)
        return True
    except OSError:  # no room even now: another job has just filled the disk
        return log_from_pool(argv)


def log_from_pool(argv: list[str]) -> bool:
    """A log file of the run's reserve pool (sheetfill.bundle.reserve) takes the place of the job's
    log, and stdout (and stderr, when it is the same file) write into its allocated room."""
    import os

    from sheetfill.bundle import reserve

    outputs = argv[argv.index("--outputs") + 1] if "--outputs" in argv[:-1] else None
    try:
        log = os.readlink("/proc/self/fd/1")
        same = os.path.samestat(os.fstat(1), os.fstat(2))
        if outputs is None or not reserve.take(os.path.dirname(os.path.dirname(outputs)), "log", log):
            return False
        taken = os.open(log, os.O_WRONLY)
    except OSError:
        return False
    for stream in (1, 2) if same else (1,):
        os.dup2(taken, stream)
    os.close(taken)
    return True


def release_log() -> None:
    import os

    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.ftruncate(1, os.lseek(1, 0, os.SEEK_CUR))


if __name__ == "__main__":
    sys.exit(main())
