"""The warm worker runs job commands in forked children that write to the caller's own stdout/stderr."""

import subprocess
import sys
import zipfile

CLIENT = (
    "import sys; from sheetfill.jobs.worker import run_via_worker; code = run_via_worker(sys.argv[1:]); "
    "print('fallback' if code is None else f'code={code}'); sys.exit(0)"
)


def via_worker(*argv, env=None):
    return subprocess.run([sys.executable, "-c", CLIENT, *argv], capture_output=True, text=True, env=env, timeout=60)


def test_job_runs_in_worker_and_exit_codes_and_stderr_come_back(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.txt").write_text("hello")
    done = via_worker("pack", "--outputs", str(tmp_path / "out"), "--zip", str(tmp_path / "o.zip"))
    assert done.stdout.strip() == "code=0"
    assert zipfile.ZipFile(tmp_path / "o.zip").read("a.txt") == b"hello"
    failed = via_worker("pack", "--outputs", str(tmp_path / "out"), "--zip", str(tmp_path / "no" / "o.zip"))
    assert failed.stdout.strip() == "code=1"
    assert "FileNotFoundError" in failed.stderr  # the child's traceback lands in the job's own log


def test_worker_off_and_cluster_jobs_run_in_process(tmp_path):
    import os

    for extra in ({"SHEETFILL_WORKER": "off"}, {"SLURM_JOB_ID": "42"}):
        done = via_worker(
            "pack", "--outputs", str(tmp_path), "--zip", str(tmp_path / "o.zip"), env={**os.environ, **extra}
        )
        assert done.stdout.strip() == "fallback"


def worker_processes() -> set[int]:
    import psutil

    return {
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if p.info["cmdline"] and "sheetfill.jobs.worker" in p.info["cmdline"]
    }


def test_workers_serve_job_after_job_in_each_callers_folder_and_log(tmp_path):
    folders = [tmp_path / name for name in ("a", "b", "c")]
    for folder in folders:
        (folder / "out").mkdir(parents=True)
        (folder / "out" / "name.txt").write_text(folder.name)
    pack = ["pack", "--outputs", "out", "--zip", "o.zip"]  # relative: each job must run in its caller's folder
    failed = subprocess.run(
        [sys.executable, "-c", CLIENT, "pack", "--outputs", "missing", "--zip", "x/o.zip"],
        cwd=folders[0],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "code=1" in failed.stdout and "Error" in failed.stderr
    pool = worker_processes()
    for folder in folders:
        done = subprocess.run(
            [sys.executable, "-c", CLIENT, *pack], cwd=folder, capture_output=True, text=True, timeout=60
        )
        assert done.stdout.strip() == "code=0" and done.stderr == ""  # nothing of the failed job's log
        assert zipfile.ZipFile(folder / "o.zip").read("name.txt") == folder.name.encode()
    assert worker_processes() == pool  # the same warm processes did all three jobs: no start-up, no fork


def serving_worker(folder):
    import psutil

    serving = []
    for pid in worker_processes():
        try:
            if psutil.Process(pid).cwd() == str(folder):
                serving.append(psutil.Process(pid))
        except psutil.NoSuchProcess:  # a worker that exited meanwhile serves nobody
            pass
    assert len(serving) == 1, serving
    return serving[0]


def test_a_killed_client_stops_its_job_and_the_next_job_still_runs(tmp_path):
    import datetime as dt
    import json
    import time

    from sheetfill.runs.config import Limits
    from sheetfill.sample import generate_bundle

    archive = tmp_path / "big.zip"
    generate_bundle(archive, dt.date(2025, 1, 1), "v1", scale=3)
    limits = json.dumps(Limits(10**9, 1000, 10**5).__dict__)
    argv = [
        "bundle",
        "--archive",
        str(archive),
        "--bundle",
        "2025-01-01--v1",
        "--restored",
        str(tmp_path / "r"),
        "--outputs",
        str(tmp_path / "out"),
        "--profile",
        "aviation",
        "--limits",
        limits,
    ]
    via_worker("pack", "--outputs", str(archive.parent), "--zip", str(tmp_path / "warm.zip"))  # server up
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, *argv], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob(".*partial*")) and time.monotonic() < deadline:
        time.sleep(0.01)  # until the job is under way: its staging folder exists
    assert list(tmp_path.glob(".*partial*")), "the job never started"
    serving = serving_worker(tmp_path)  # a worker runs its job in the client's folder
    client.kill()
    client.wait()
    # The worker itself must die: one that went on with the job, however slowly, would still be alive
    # (and one that finished it would be back waiting for the next job).
    serving.wait(timeout=30)
    assert not (tmp_path / "out").exists(), "the job went on after its client was killed"
    done = via_worker(*argv)
    assert done.stdout.strip().endswith("code=0"), done.stderr
    assert (tmp_path / "out" / "refined.parquet").exists()
