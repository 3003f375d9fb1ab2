"""What a bundle job tells the orchestrator about itself: stage timings and task metadata.

Standard library only and a few microseconds a job: the job writes this into provenance.json ("job"),
and the gate or the logger plugin's sink turns it into spans with these timestamps.
"""

from __future__ import annotations

import os
import time

STAGES = ("restore", "read", "normalise", "resolve", "write", "validate")


class StageClock:
    """Wall-clock start and end (epoch seconds) of each stage of one bundle job."""

    def __init__(self) -> None:
        self.started = time.time()
        self.stages: dict[str, list[float]] = {}

    def stage(self, name: str) -> _Stage:
        """`with clock.stage("write"): ...` times the block, also when it raises."""
        return _Stage(self.stages, name)

    def sequence(self, start: float, durations: dict) -> None:
        """Stages that ran back to back from `start`, given as {name: seconds} (the refine timings)."""
        for name, seconds in durations.items():
            self.stages[name] = [start, start + seconds]
            start += seconds

    def record(self) -> dict:
        return {
            "run_id": os.environ.get("SHEETFILL_RUN_ID"),
            "traceparent": os.environ.get("TRACEPARENT"),
            "started": self.started,
            "finished": time.time(),
            "stages": {name: [round(t, 6) for t in span] for name, span in self.stages.items()},
            "task": task_metadata(),
        }


class _Stage:
    __slots__ = ("stages", "name", "start")  # a plain class: contextlib alone costs a job ~1 ms to import

    def __init__(self, stages: dict, name: str) -> None:
        self.stages, self.name = stages, name

    def __enter__(self) -> None:
        self.start = time.time()

    def __exit__(self, *exc) -> None:
        self.stages[self.name] = [self.start, time.time()]


def memory_asked_mb() -> int | None:
    """The memory the job asked for: its Snakemake `mem_mb` resource, which the bundle rule hands over as
    SHEETFILL_MEMORY_MB (on SLURM the allocation is a whole group's), else SLURM's allocation."""
    for given in (os.environ.get("SHEETFILL_MEMORY_MB"), os.environ.get("SLURM_MEM_PER_NODE")):
        if given and given.isdigit():
            return int(given)
    per_cpu, cpus = os.environ.get("SLURM_MEM_PER_CPU"), os.environ.get("SLURM_CPUS_ON_NODE", "1")
    if per_cpu and per_cpu.isdigit() and cpus.isdigit():
        return int(per_cpu) * int(cpus)
    return None


def task_metadata() -> dict:
    threads = os.environ.get("SHEETFILL_PROCESSES", "1")
    return {
        "threads": int(threads) if threads.isdigit() else None,
        "memory_mb": memory_asked_mb(),
        "host": os.uname().nodename,  # socket.gethostname() without importing socket
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "mode": os.environ.get("SHEETFILL_JOB_MODE", "in-process"),
    }
