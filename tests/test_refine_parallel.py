"""Early workers (parallel.early_workers): a big bundle's distinct values are normalised partly in
worker processes forked before reading; the outputs are the same bytes as in one process."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from sheetfill.bundle.profiles import load_profile
from sheetfill.errors import BundleError
from sheetfill.refine import parallel, read, refine_bundle, write_outputs
from sheetfill.sample import generate_bundle


@pytest.fixture(scope="module")
def sample_bundle(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sample")
    generate_bundle(folder / "b.zip", dt.date(2025, 9, 29), "v1", scale=1.0, seed=0)
    with zipfile.ZipFile(folder / "b.zip") as archive:
        archive.extractall(folder / "bundle")
    return folder / "bundle"


def outputs(bundle: Path, out: Path) -> dict[str, bytes]:
    written = write_outputs(refine_bundle(bundle, load_profile("aviation")), out, xlsx=False)
    return {path.name: path.read_bytes() for path in written}


class CountedPool(ProcessPoolExecutor):
    """A ProcessPoolExecutor that records what it is given."""

    started: list[int] = []
    submitted: list[str] = []

    def __init__(self, workers, **options):
        CountedPool.started.append(workers)
        super().__init__(workers, **options)

    def submit(self, fn, /, *args, **kwargs):
        CountedPool.submitted.append(getattr(fn, "func", fn).__name__)
        return super().submit(fn, *args, **kwargs)


@pytest.fixture
def counted_pool(monkeypatch):
    CountedPool.started, CountedPool.submitted = [], []
    monkeypatch.setattr(parallel, "ProcessPoolExecutor", CountedPool)
    monkeypatch.setenv("SHEETFILL_PROCESSES", "2")
    return CountedPool


def test_early_workers_give_the_same_bytes_as_one_process(sample_bundle, tmp_path, monkeypatch, counted_pool):
    monkeypatch.setenv("SHEETFILL_PROCESSES", "1")
    alone = outputs(sample_bundle, tmp_path / "one")
    monkeypatch.setenv("SHEETFILL_PROCESSES", "2")
    monkeypatch.setattr(parallel, "EARLY_WORKERS_MIN_BYTES", 0)  # the default bundle counts as big
    monkeypatch.setattr(parallel, "PARALLEL_MIN_COST", 0)
    shared = outputs(sample_bundle, tmp_path / "shared")
    assert counted_pool.started == [1]  # one worker besides this process, started once
    assert counted_pool.submitted.count("normalise_task") >= 1  # it normalised a share of the values
    assert counted_pool.submitted.count("read_part") >= 1  # and read some workbooks or sheets
    assert shared == alone


def test_a_workbook_read_in_parts_gives_its_sheets_in_workbook_order(sample_bundle):
    profile = load_profile("aviation").data
    workbook = sample_bundle / "Contact Database.xlsx"
    tasks = read.read_tasks([workbook])
    assert [part[1] for _, part, _ in tasks] == [True, False]  # its biggest sheet, then all the others
    whole = read.read_file(workbook, sample_bundle, profile)
    parts = [result for task in reversed(tasks) for result in read.read_part(task, sample_bundle, profile)]
    in_order = sorted(parts, key=lambda result: result[0].position)
    assert [info.sheet for info, _ in in_order] == [info.sheet for info, _ in whole]
    for (info, frame), (whole_info, whole_frame) in zip(in_order, whole):
        assert info == whole_info and (frame is None) == (whole_frame is None)
        if frame is not None:
            assert frame.equals(whole_frame)


def test_an_unreadable_workbook_read_by_a_worker_names_the_file(sample_bundle, tmp_path, monkeypatch, counted_pool):
    bundle = tmp_path / "bundle"
    shutil.copytree(sample_bundle, bundle)
    (bundle / "broken.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    monkeypatch.setattr(parallel, "EARLY_WORKERS_MIN_BYTES", 0)
    with pytest.raises(BundleError, match="broken.xlsx"):
        refine_bundle(bundle, load_profile("aviation"))
    assert "read_part" in counted_pool.submitted


def test_a_small_bundle_starts_no_early_workers(sample_bundle, counted_pool):
    refine_bundle(sample_bundle, load_profile("aviation"))  # a default bundle is far below the threshold
    assert counted_pool.started == []


HOLD_EARLY_WORKERS = """
import os, sys, time
from sheetfill.refine import parallel
with parallel.early_workers(parallel.EARLY_WORKERS_MIN_BYTES):
    print(*parallel._EARLY_POOL._processes, flush=True)
    time.sleep(120)
"""


def test_early_workers_exit_when_their_parent_is_killed(tmp_path):
    """A bundle job killed mid-normalise (its client gone, a worker's os._exit, kill -9) must not leave
    its early workers waiting forever for work nobody will send."""
    env = {**os.environ, "SHEETFILL_PROCESSES": "2"}
    parent = subprocess.Popen([sys.executable, "-c", HOLD_EARLY_WORKERS], stdout=subprocess.PIPE, text=True, env=env)
    workers: list[int] = []
    try:
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(workers) == 1 and all(alive(pid) for pid in workers)
        parent.kill()
        parent.wait(timeout=10)
        deadline = time.monotonic() + 15
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in workers), f"early workers {workers} outlived their parent"
    finally:
        parent.kill()
        for pid in filter(alive, workers):
            os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    """Running, not a zombie (an orphan's zombie is reaped by init, but may linger a moment)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_forked_pool_returns_every_result_in_task_order_and_shares_the_work(monkeypatch):
    monkeypatch.setenv("SHEETFILL_PROCESSES", "2")
    results = parallel.run_tasks(lambda task: (task, os.getpid()), list(range(20)), [10**6] * 20)
    assert [task for task, _ in results] == list(range(20))
    assert len({pid for _, pid in results}) == 2  # this process and one forked worker


def task_and_pid(task: int) -> tuple[int, int]:
    time.sleep(0.02)  # long enough that the worker is free to take some
    return task, os.getpid()


def test_early_workers_share_tasks_and_return_every_result_in_task_order(monkeypatch):
    monkeypatch.setenv("SHEETFILL_PROCESSES", "2")
    with parallel.early_workers(parallel.EARLY_WORKERS_MIN_BYTES):
        results = parallel.share_with_early_workers(task_and_pid, list(range(30)), [30 - i for i in range(30)])
    assert [task for task, _ in results] == list(range(30))
    assert len({pid for _, pid in results}) == 2  # this process and the early worker
    assert results[0][1] == os.getpid()  # this process took the biggest task itself
    assert parallel.share_with_early_workers(task_and_pid, [1, 2], [1, 1]) is None  # none running now


def test_stop_early_workers_ends_their_processes_before_the_block_ends(monkeypatch):
    """Normalise stops them after its last shared task, so their memory is gone before resolve's peak."""
    monkeypatch.setenv("SHEETFILL_PROCESSES", "2")
    with parallel.early_workers(parallel.EARLY_WORKERS_MIN_BYTES):
        workers = list(parallel._EARLY_POOL._processes)
        parallel.stop_early_workers()
        assert not parallel.early_workers_running()
        assert not any(alive(pid) for pid in workers)
        assert parallel.run_tasks(abs, [-1, -2], [1, 1]) == [1, 2]  # work after it stays in this process
