"""The warm worker runs job commands in forked children that write to the caller's own stdout/stderr."""

import subprocess
import sys
import zipfile

CLIENT = "import sys; from sheetfill.worker import run_via_worker; code = run_via_worker(sys.argv[1:]); " \
         "print('fallback' if code is None else f'code={code}'); sys.exit(0)"


def via_worker(*argv, env=None):
    return subprocess.run([sys.executable, "-c", CLIENT, *argv], capture_output=True, text=True, env=env,
                          timeout=60)


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
        done = via_worker("pack", "--outputs", str(tmp_path), "--zip", str(tmp_path / "o.zip"),
                          env={**os.environ, **extra})
        assert done.stdout.strip() == "fallback"
