"""A drain (SIGTERM: start no new job, let running ones finish) that cannot hang the run.

Snakemake's SIGTERM handler, JobScheduler.exit_gracefully, takes the scheduler's non-reentrant
lock. Python runs signal handlers on the main thread, between the bytecodes of whatever it was
doing, and the main thread holds that lock while it selects and finishes jobs: a SIGTERM landing
there waits for a lock its own thread holds, for ever (about 1 drain in 12 under a steady stream
of short jobs, Snakemake 9.27). The handler here hands the same call to a thread, which simply
waits until the main thread lets go of the lock.
"""

from __future__ import annotations

import signal
import threading


def drain_without_deadlock(scheduler) -> None:
    """Route SIGTERM to scheduler.exit_gracefully on a thread of its own (main thread only)."""

    def on_sigterm(signum, frame):
        threading.Thread(target=scheduler.exit_gracefully, name="sheetfill-drain", daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)
