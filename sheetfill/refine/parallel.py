"""Share CPU-bound per-value work (parsing distinct values) across the cores of one bundle job.

Only large inputs are split: forking costs tens of milliseconds, which a default-size bundle (a few
thousand distinct values) would not win back. Children forked for the work inherit the function
and the tasks; only results travel back. A big bundle's workers are forked before reading instead
(early_workers), while the process is small, and get their tasks pickled.
Set SHEETFILL_PROCESSES=1 to keep everything in one process (and one reading thread); a workflow
bundle job sets it to the threads Snakemake gave the job.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

PARALLEL_MIN_COST = 200_000  # ~ estimated microseconds of work below which one process is faster
# A forked child shares the parent's pages, but copies every page whose objects it touches (reference
# counts) and counts all of them in its own RSS, so the process tree's peak RSS nearly doubles. On a
# million-row bundle (parent ~1 GB) that cost 600 MB of peak RSS for ~0.8 s of normalise time; above
# this parent size the work stays in one process.
PARALLEL_MAX_PARENT_RSS = 512 * 2**20
_WORK: tuple[Callable, Sequence] | None = None  # inherited by forked children
# Spreadsheet bytes of a bundle above which the workers are forked before reading (early_workers)
EARLY_WORKERS_MIN_BYTES = 4 * 2**20
_EARLY_POOL = None  # workers forked by early_workers, while this process was still small


def usable_processes() -> int:
    configured = os.environ.get("SHEETFILL_PROCESSES")
    if configured:
        return max(1, int(configured))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def balance(costs: Sequence[float], bins: int) -> list[list[int]]:
    """Task indices per bin, largest first onto the least-loaded bin (greedy, good enough here)."""
    loads = [0.0] * bins
    assigned: list[list[int]] = [[] for _ in range(bins)]
    for index in sorted(range(len(costs)), key=lambda i: -costs[i]):
        target = loads.index(min(loads))
        assigned[target].append(index)
        loads[target] += costs[index]
    return assigned


def _run_tasks(indices: list[int]) -> list:
    func, tasks = _WORK
    return [func(tasks[i]) for i in indices]


def parent_rss() -> int:
    """Resident bytes of this process (0 when unknown)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _share_with_workers(pool: ProcessPoolExecutor, func: Callable, tasks: Sequence, costs) -> list:
    """[func(t) for t in tasks]: this process does the biggest task, the workers the others from the
    big end, and this process then takes back, from the small end, whatever no worker has started.

    Its own tasks' results are not pickled, and the last tasks left are small, so nobody waits long
    at the end (a fixed share per process left this one waiting ~2.6 s for the worker's on a
    million rows: pickling makes the worker's values dearer than the cost estimate). A task is
    pickled only when a worker is about to start it, so a worker's RSS stays small.
    """
    results: list = [None] * len(tasks)
    biggest_first = sorted(range(len(tasks)), key=lambda i: -costs[i])
    futures = {index: pool.submit(func, tasks[index]) for index in biggest_first[1:]}
    try:
        results[biggest_first[0]] = func(tasks[biggest_first[0]])
        for index in reversed(biggest_first[1:]):
            if futures[index].cancel():  # not started by a worker: done here
                results[index] = func(tasks[index])
    except BaseException:
        for future in futures.values():  # the work has failed: nobody need start the rest
            future.cancel()
        raise
    for index, future in futures.items():
        if not future.cancelled():
            results[index] = future.result()
    return results


@contextmanager
def early_workers(spreadsheet_bytes: int) -> Iterator[None]:
    """Fork run_tasks' worker processes now, for a big bundle, while this process is still small.

    Forked when the work comes, after reading, a worker would count the parent's whole heap (~1 GB
    on a million-row bundle) in its RSS, so big bundles used to normalise in one process. Workers
    forked first cost only the imports' pages; their tasks and results travel pickled. They are
    stopped by stop_early_workers once their last work is done, or else when the block ends. A
    worker that dies (killed for memory) fails the work with BrokenProcessPool instead of leaving it
    waiting.
    """
    global _EARLY_POOL
    processes = usable_processes()
    if spreadsheet_bytes < EARLY_WORKERS_MIN_BYTES or processes < 2 or not can_fork():
        yield
        return
    fork = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        processes - 1, mp_context=fork, initializer=_exit_with_parent, initargs=(os.getpid(),)
    ) as pool:
        pool.submit(int).result()  # with fork, the first task starts every worker: now
        _EARLY_POOL = pool
        try:
            yield
        finally:
            _EARLY_POOL = None


def _exit_with_parent(parent: int) -> None:
    """In a worker: exit once the parent is gone. A job killed mid-normalise (its client gone, kill -9)
    would otherwise leave its workers waiting forever on a queue nobody writes to any more."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def stop_early_workers() -> None:
    """Stop early_workers' processes now, once their last task is done: their memory (the workbooks
    they read, ~330 MB on a million rows) is freed before this process builds its biggest columns."""
    global _EARLY_POOL
    if _EARLY_POOL is not None:
        _EARLY_POOL.shutdown(wait=True)
        _EARLY_POOL = None


def early_workers_running() -> bool:
    return _EARLY_POOL is not None


def share_with_early_workers(func: Callable, tasks: Sequence, costs: Sequence[float]) -> list | None:
    """[func(t) for t in tasks] shared with early_workers' processes; None when none are running.

    For work that is worth a worker whatever its estimated cost (reading a big bundle's workbooks).
    """
    if _EARLY_POOL is None or len(tasks) < 2:
        return None
    return _share_with_workers(_EARLY_POOL, func, tasks, costs)


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def run_tasks(func: Callable, tasks: Sequence, costs: Sequence[float]) -> list:
    """[func(t) for t in tasks], spread over processes when the total cost is worth it.

    With early_workers running, func must pickle (a module-level function or a partial of one).
    """
    processes = min(usable_processes(), len(tasks))
    if processes < 2 or sum(costs) < PARALLEL_MIN_COST:
        return [func(task) for task in tasks]
    if _EARLY_POOL is not None:
        return _share_with_workers(_EARLY_POOL, func, tasks, costs)
    if not can_fork() or parent_rss() > PARALLEL_MAX_PARENT_RSS:
        return [func(task) for task in tasks]
    global _WORK
    _WORK = (func, tasks)
    bins = balance(costs, processes)
    results: list = [None] * len(tasks)
    try:
        with multiprocessing.get_context("fork").Pool(processes - 1, _exit_with_parent, (os.getpid(),)) as pool:
            pending = [pool.apply_async(_run_tasks, (indices,)) for indices in bins[1:]]
            own = _run_tasks(bins[0])  # this process takes a share too
            for indices, outputs in [(bins[0], own)] + [(b, p.get()) for b, p in zip(bins[1:], pending)]:
                for index, output in zip(indices, outputs):
                    results[index] = output
    finally:
        _WORK = None
    return results
