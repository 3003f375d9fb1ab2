"""Share CPU-bound per-value work (parsing distinct values) across the cores of one bundle job.

Only large inputs are split: forking costs tens of milliseconds, which a default-size bundle (a few
thousand distinct values) would not win back. Children are forked, so the function and the tasks
are inherited rather than pickled; only results travel back.
Set SHEETFILL_PROCESSES=1 to keep everything in one process (and one reading thread); a workflow
bundle job sets it to the threads Snakemake gave the job.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence

PARALLEL_MIN_COST = 200_000  # ~ estimated microseconds of work below which one process is faster
# A forked child shares the parent's pages, but copies every page whose objects it touches (reference
# counts) and counts all of them in its own RSS, so the process tree's peak RSS nearly doubles. On a
# million-row bundle (parent ~1 GB) that cost 600 MB of peak RSS for ~0.8 s of normalise time; above
# this parent size the work stays in one process.
PARALLEL_MAX_PARENT_RSS = 512 * 2**20
_WORK: tuple[Callable, Sequence] | None = None  # inherited by forked children


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


def run_tasks(func: Callable, tasks: Sequence, costs: Sequence[float]) -> list:
    """[func(t) for t in tasks], spread over forked processes when the total cost is worth it."""
    processes = min(usable_processes(), len(tasks))
    if (
        processes < 2
        or sum(costs) < PARALLEL_MIN_COST
        or "fork" not in multiprocessing.get_all_start_methods()
        or parent_rss() > PARALLEL_MAX_PARENT_RSS
    ):
        return [func(task) for task in tasks]
    global _WORK
    _WORK = (func, tasks)
    bins = balance(costs, processes)
    results: list = [None] * len(tasks)
    try:
        with multiprocessing.get_context("fork").Pool(processes - 1) as pool:
            pending = [pool.apply_async(_run_tasks, (indices,)) for indices in bins[1:]]
            own = _run_tasks(bins[0])  # this process takes a share too
            for indices, outputs in [(bins[0], own)] + [(b, p.get()) for b, p in zip(bins[1:], pending)]:
                for index, output in zip(indices, outputs):
                    results[index] = output
    finally:
        _WORK = None
    return results
