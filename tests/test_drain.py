"""A drain signal that lands while Snakemake's main thread holds its scheduler lock.

Snakemake's own SIGTERM handler (JobScheduler.exit_gracefully) takes that non-reentrant lock on
the main thread, so it hangs for ever there; the workflow's onstart swaps in
sheetfill.runs.drain, which hands the same real method to a thread. The lock and semaphore are
the two attributes exit_gracefully touches, built as JobScheduler builds them.
"""

from __future__ import annotations

import signal
import threading
import time
from types import SimpleNamespace

from snakemake.scheduling.job_scheduler import JobScheduler

from sheetfill.runs.drain import drain_without_deadlock


def scheduler_state():
    state = SimpleNamespace(_lock=threading.Lock(), _open_jobs=threading.Semaphore(0), _user_kill=None)
    state.exit_gracefully = lambda *args: JobScheduler.exit_gracefully(state, *args)
    return state


def test_sigterm_while_the_main_thread_holds_the_scheduler_lock_drains_once_it_lets_go():
    scheduler = scheduler_state()
    previous = signal.getsignal(signal.SIGTERM)
    try:
        drain_without_deadlock(scheduler)
        with scheduler._lock:  # where the main thread is while it selects or finishes jobs
            signal.raise_signal(signal.SIGTERM)  # with Snakemake's handler this line never returns
            assert scheduler._user_kill is None  # the drain waits for the lock, as it must
        assert scheduler._open_jobs.acquire(timeout=10)  # the scheduler loop is woken...
        assert scheduler._user_kill == "graceful"  # ...to start no new job
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_snakemakes_own_handler_needs_the_lock_the_main_thread_holds():
    """Why the swap exists: exit_gracefully blocks on the held lock (checked on a thread, bounded)."""
    scheduler = scheduler_state()
    with scheduler._lock:
        caller = threading.Thread(target=scheduler.exit_gracefully, daemon=True)
        caller.start()
        time.sleep(0.2)
        assert caller.is_alive() and scheduler._user_kill is None
    caller.join(timeout=10)
    assert not caller.is_alive() and scheduler._user_kill == "graceful"
