"""`sheetfill serve` for real: uvicorn on a free 127.0.0.1 port driving real Snakemake runs on generated archives."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import httpx
import pytest
from conftest import REPO, Workflow, make_archives
from ui_server import Service, free_port

pytestmark = pytest.mark.slow
FINAL = ("cancelled", "succeeded", "completed_with_failures", "failed")
RUN_TIMEOUT = 300  # seconds a test waits for a run (2 shared CPUs: a small bundle takes 1-5 s)


@pytest.fixture
def serve(tmp_path):
    """serve(archives, **Service options) -> a started Service; every one is stopped at the end."""
    started = []

    def start(archives, **options) -> Service:
        service = Service(tmp_path / f"service{len(started)}", archives, **options)
        started.append(service)
        service.start()
        return service

    yield start
    for service in started:
        service.stop()


def client(service: Service, token: str | None = None) -> httpx.Client:
    token = token if token is not None else service.token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=service.url(""), headers=headers, timeout=60)


def wait_for(check, what: str, timeout: float = RUN_TIMEOUT, step: float = 0.25):
    """check() until it returns something truthy; bounded in time and in tries."""
    deadline, last = time.monotonic() + timeout, None
    for _ in range(int(timeout / step) + 1):
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            break
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}; last: {last}")


def run_of(api: httpx.Client, run_id: str) -> dict:
    answer = api.get(f"/api/v1/runs/{run_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def wait_final(api: httpx.Client, run_id: str) -> dict:
    return wait_for(lambda: (r := run_of(api, run_id))["status"] in FINAL and r, f"run {run_id} to end")


def slots(run: dict) -> dict[str, str]:
    return {b["bundle"]: b["status"] for b in run["bundles"]}


def sse(api: httpx.Client, run_id: str, last_event_id: int | None = None) -> list[dict]:
    """Every event of the run's stream until the server ends it (it does once the run is over)."""
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    events, current = [], {}
    with api.stream("GET", f"/api/v1/runs/{run_id}/events", headers=headers, timeout=RUN_TIMEOUT) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if not line:
                if "data" in current:
                    events.append({"id": int(current["id"]), "event": current["event"], **json.loads(current["data"])})
                current = {}
                continue
            key, _, value = line.partition(": ")
            current[key] = value
    return events


def slow_service(serve, tmp_path, days: int, *args: str) -> Service:
    """Bundles big enough (and one core) that a test can act while a run is under way."""
    archives = tmp_path / "big"
    make_archives(archives, days=days, scale=0.3)
    return serve(archives, args=("--cores", "1", *args))


def start_running(api: httpx.Client, window: dict) -> tuple[str, list[str]]:
    """Start a run and wait for a bundle job to be running: (run id, running bundles)."""
    run_id = api.post("/api/v1/runs", json=window).json()["run_id"]
    running = wait_for(
        lambda: [b["bundle"] for b in run_of(api, run_id)["bundles"] if b["status"] == "running"], "a running job"
    )
    return run_id, running


def test_run_succeeds_with_every_bundle_listed_and_its_events_streamed(serve, archives):
    service = serve(archives)
    with client(service) as api:
        bad = api.post("/api/v1/runs", json={"since": "2025-10-01", "until": "2025-09-29"})
        assert bad.status_code == 422 and "is after until" in bad.json()["detail"]
        unknown = api.post("/api/v1/runs", json={"since": "2025-09-29", "archive_root": "/etc"})
        assert unknown.status_code == 422 and "archive_root" in unknown.text
        started = api.post("/api/v1/runs", json={"since": "2025-09-29", "until": "2025-09-30", "versions": ["v1"]})
        assert started.status_code == 202, started.text
        body = started.json()
        assert body["status"] == "queued" and body["bundles_planned"] == 2
        run_id = body["run_id"]
        second = api.post("/api/v1/runs", json={"since": "2025-10-01", "until": "2025-10-01"})
        assert second.status_code == 409 and second.json()["detail"]["run_id"] == run_id
        assert run_id in second.json()["detail"]["message"]
        events = sse(api, run_id)  # opened while the run goes: live events, then the end of the stream
        run = wait_final(api, run_id)
        assert run["status"] == "succeeded" and run["origin"] == "service"
        assert slots(run) == {"2025-09-29--v1": "ok", "2025-09-30--v1": "ok"}
        assert all(b["duration_s"] > 0 and b["reason"] and b["error"] is None for b in run["bundles"])
        ids = [e["id"] for e in events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        finished = {e["bundle"] for e in events if e["event"] == "job_finished" and e.get("rule") == "bundle"}
        assert finished == {"2025-09-29--v1", "2025-09-30--v1"}
        assert events[-1]["event"] == "run_finished" and events[-1]["status"] == "succeeded"
        progress = [(e["done"], e["total"]) for e in events if e["event"] == "progress"]  # the plugin's, per job
        jobs = len([e for e in events if e["event"] == "job_finished"])
        assert progress == [(done, jobs) for done in range(1, jobs + 1)]
        assert run["jobs_done"] == run["jobs_total"] == jobs
        middle = ids[len(ids) // 2]
        assert [e["id"] for e in sse(api, run_id, last_event_id=middle)] == [i for i in ids if i > middle]
        # the gate's run record carries the same run id
        record = json.loads((service.restore / "outputs" / "runs" / "2025-09-29_2025-09-30_v1.json").read_text())
        assert record["run_id"] == run_id
        listed = api.get("/api/v1/runs", params={"limit": 1}).json()
        assert listed["total"] == 1 and listed["runs"][0]["run_id"] == run_id
        latest = api.get("/api/v1/bundles", params={"version": "v1", "limit": 1}).json()
        assert latest["total"] == 2 and [b["bundle"] for b in latest["bundles"]] == ["2025-09-29--v1"]
        plan = api.get("/api/v1/plan", params={"since": "2025-09-29", "until": "2025-09-30"}).json()
        assert [b["bundle"] for b in plan["bundles"]] == ["2025-09-29--v2", "2025-09-30--v2"]
        assert plan["up_to_date"] == 2 and all(b["reason"] == "new archive" for b in plan["bundles"])
        assert api.get("/api/v1/plan", params={"since": "2025-09-31"}).status_code == 422
        assert api.get("/api/v1/cursor").json() == {"cursor": None}
        assert api.delete("/api/v1/cursor").json()["reset"] is False
        assert api.get("/api/v1/health").json()["status"] == "ok"
        assert api.get("/docs").status_code == 200 and "/api/v1/runs" in api.get("/openapi.json").text
        huge = api.post(
            "/api/v1/runs", content=b"{" + b" " * 100_000 + b"}", headers={"content-type": "application/json"}
        )
        assert huge.status_code == 413


def test_failed_bundle_then_retry_of_exactly_the_failed_ones_from_the_cli_and_the_api(serve, archives):
    broken = [archives / "2025-09-29" / "hotpass-inputs-v1.zip", archives / "2025-09-30" / "hotpass-inputs-v2.zip"]
    failed = {"2025-09-29--v1", "2025-09-30--v2"}  # their dates x versions span two bundles that did not fail
    intact = {path: path.read_bytes() for path in broken}
    for path in broken:
        path.write_bytes(b"garbage")
    service = serve(archives)
    with client(service) as api:
        # Interlace's body: models null means every version
        run_id = api.post(
            "/api/v1/runs", json={"since": "2025-09-29", "until": "2025-09-30", "force": False, "models": None}
        ).json()["run_id"]
        run = wait_final(api, run_id)
        assert run["status"] == "completed_with_failures" and run["failed"] == 2
        assert {b for b, s in slots(run).items() if s == "failed_processing"} == failed
        assert list(slots(run).values()).count("ok") == 2
        assert "not a readable zip" in next(b["error"] for b in run["bundles"] if b["bundle"] == "2025-09-30--v2")
        outputs = service.restore / "outputs"
        good = {b: (outputs / b / "bundle.json").stat().st_mtime_ns for b in slots(run) if b not in failed}

        cli = [sys.executable, "-m", "sheetfill.cli", "runs"]
        where = ["--configfile", str(service.configfile)]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        shown = subprocess.run(
            [*cli, "show", run_id, *where], cwd=service.workdir, env=env, capture_output=True, text=True, timeout=60
        )
        assert shown.returncode == 0 and "2025-09-30--v2" in shown.stdout and "failed_processing" in shown.stdout
        retried = subprocess.run(
            [*cli, "retry", run_id, *where],
            cwd=service.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
        assert retried.returncode == 1, retried.stdout + retried.stderr  # the archive is still broken
        cli_retry = api.get("/api/v1/runs", params={"limit": 1}).json()["runs"][0]
        assert cli_retry["origin"] == "cli" and cli_retry["retry_of"] == run_id
        cli_run = run_of(api, cli_retry["run_id"])
        assert slots(cli_run) == dict.fromkeys(failed, "failed_processing")  # just the failed bundles

        listed = subprocess.run(
            [*cli, "list", *where], cwd=service.workdir, env=env, capture_output=True, text=True, timeout=60
        )
        assert run_id in listed.stdout and cli_retry["run_id"] in listed.stdout

        for path, content in intact.items():  # fixed upstream
            path.write_bytes(content)
        stale = archives / "2025-09-30" / "hotpass-inputs-v1.zip"  # not failed: a retry leaves it alone
        shutil.copyfile(archives / "2025-10-01" / "hotpass-inputs-v1.zip", stale)
        again = api.post(f"/api/v1/runs/{cli_retry['run_id']}/retry")
        assert again.status_code == 202 and again.json()["bundles"] == sorted(failed)
        retry_run = wait_final(api, again.json()["run_id"])
        assert retry_run["status"] == "succeeded" and slots(retry_run) == dict.fromkeys(failed, "ok")
        assert retry_run["retry_of"] == cli_retry["run_id"]
        assert {b: (service.restore / "outputs" / b / "bundle.json").stat().st_mtime_ns for b in good} == good
        assert api.post(f"/api/v1/runs/{retry_run['run_id']}/retry").status_code == 409  # nothing failed


def test_cancel_now_keeps_finished_bundles_and_the_next_run_does_the_rest(serve, tmp_path):
    service = slow_service(serve, tmp_path, 4)
    with client(service) as api:
        window = {"since": "2025-09-29", "until": "2025-10-02"}
        run_id = api.post("/api/v1/runs", json=window).json()["run_id"]
        wait_for(lambda: run_of(api, run_id)["counts"].get("ok"), "a first finished bundle")
        cancel = api.post(f"/api/v1/runs/{run_id}/cancel", json={"mode": "now"})
        assert cancel.status_code == 202 and cancel.json()["status"] in ("cancelling", "cancelled")
        run = wait_final(api, run_id)
        assert run["status"] == "cancelled", run
        finished = [b for b, status in slots(run).items() if status == "ok"]
        unfinished = [b for b, status in slots(run).items() if status != "ok"]
        assert finished and unfinished and set(slots(run).values()) <= {"ok", "not_run"}
        for bundle in finished:
            assert json.loads((service.restore / "outputs" / bundle / "bundle.json").read_text())["status"] == "ok"
        assert api.post(f"/api/v1/runs/{run_id}/cancel", json={"mode": "now"}).status_code == 409
        resumed = wait_final(api, api.post("/api/v1/runs", json=window).json()["run_id"])
        assert resumed["status"] == "succeeded"
        assert {b for b, s in slots(resumed).items() if s == "ok"} == set(unfinished)
        assert {b for b, s in slots(resumed).items() if s == "skipped"} == set(finished)


def test_server_killed_mid_run_fails_the_run_on_restart_and_keeps_the_queue(serve, tmp_path):
    service = slow_service(serve, tmp_path, 3, "--heartbeat-timeout", "3")
    with client(service) as api:
        first, _ = start_running(api, {"since": "2025-09-29"})
        queued = api.post("/api/v1/runs", params={"queue": "true"}, json={"since": "2025-09-30"}).json()["run_id"]
    service.restart()  # SIGKILL to the server alone; its Snakemake dies with it
    with client(service) as api:
        dead = wait_final(api, first)
        assert dead["status"] == "failed" and "heartbeat timeout" in dead["error"]
        assert "running" not in slots(dead).values()
        later = wait_final(api, queued)
        assert later["status"] == "succeeded" and set(slots(later).values()) <= {"ok", "skipped"}
        assert any(status == "ok" for status in slots(later).values())


def test_a_token_is_required_off_loopback(serve, archives, tmp_path):
    refused = subprocess.run(
        [sys.executable, "-m", "sheetfill.cli", "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k != "SHEETFILL_TOKEN"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "needs a token" in refused.stderr and "--token-file" in refused.stderr
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    service = serve(archives, args=("--token-file", str(token_file)))
    service.token = "s3cret-token"
    with client(service, token="") as anonymous, client(service, token="wrong") as wrong, client(service) as api:
        assert anonymous.get("/api/v1/runs").status_code == 401
        assert wrong.post("/api/v1/runs", json={"since": "2025-09-29"}).status_code == 401
        assert anonymous.get("/api/v1/health").status_code == 200
        assert api.get("/api/v1/runs").status_code == 200


def test_a_plain_snakemake_run_shows_up_in_the_api(serve, archives, tmp_path):
    service = serve(archives)
    plain = Workflow(tmp_path / "plain", archives)
    plain.restore = service.restore  # the same restore_root, so the same ledger
    plain.run(since="2025-10-01", until="2025-10-01")
    with client(service) as api:
        [run] = api.get("/api/v1/runs").json()["runs"]
        assert run["origin"] == "snakemake" and run["status"] == "succeeded"
        assert slots(run_of(api, run["run_id"])) == {"2025-10-01--v1": "ok", "2025-10-01--v2": "ok"}


def test_sigterm_settles_the_active_run(serve, tmp_path):
    service = slow_service(serve, tmp_path, 2)
    with client(service) as api:
        run_id, _ = start_running(api, {"since": "2025-09-29"})
    service.process.send_signal(signal.SIGTERM)
    service.process.wait(timeout=60)
    service.start()
    with client(service) as api:
        run = run_of(api, run_id)
        assert run["status"] == "failed" and "shut down" in run["error"], run
        assert "running" not in slots(run).values()


def test_cancel_drain_lets_the_running_job_finish_and_starts_no_other(serve, tmp_path):
    """Cancelled from the CLI: `sheetfill runs cancel` acts on a run the server started, through the ledger."""
    service = slow_service(serve, tmp_path, 3)
    with client(service) as api:
        run_id, running = start_running(api, {"since": "2025-09-29"})
        cancelled = subprocess.run(
            [sys.executable, "-m", "sheetfill.cli", "runs", "cancel", run_id, "--configfile", str(service.configfile)],
            cwd=service.workdir,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cancelled.returncode == 0 and f"run {run_id}: cancelling" in cancelled.stdout, cancelled.stderr
        run = wait_final(api, run_id)
        assert run["status"] == "cancelled" and run["cancel_mode"] == "drain"
        assert all(slots(run)[bundle] == "ok" for bundle in running)  # drained, not killed
        assert "not_run" in slots(run).values() and set(slots(run).values()) <= {"ok", "not_run"}


def test_reprocess_modes_and_dry_run_on_the_workflow_directorys_own_config(serve, archives):
    """`sheetfill serve` without --configfile reads config/config.yaml of its directory, like snakemake."""
    (archives / "2025-09-29" / "hotpass-inputs-v1.zip").write_bytes(b"garbage")
    service = serve(archives, own_config=True)
    day = {"since": "2025-09-29", "until": "2025-09-29"}
    report = service.restore / "outputs" / "2025-09-29--v2" / "bundle.json"

    def run(**body) -> dict[str, str]:
        answer = api.post("/api/v1/runs", json={**day, **body})
        assert answer.status_code == 202, answer.text
        return slots(wait_final(api, answer.json()["run_id"]))

    with client(service) as api:
        assert run(dry_run=True) == {"2025-09-29--v1": "planned", "2025-09-29--v2": "planned"}
        assert not (service.restore / "outputs").exists()  # a dry run builds nothing
        assert run() == {"2025-09-29--v1": "failed_processing", "2025-09-29--v2": "ok"}
        built = report.stat().st_mtime_ns
        assert run(reprocess="missing") == {"2025-09-29--v1": "skipped", "2025-09-29--v2": "skipped"}
        assert run(reprocess="failed") == {"2025-09-29--v1": "failed_processing", "2025-09-29--v2": "skipped"}
        assert report.stat().st_mtime_ns == built
        assert run(reprocess="all") == {"2025-09-29--v1": "failed_processing", "2025-09-29--v2": "ok"}
        assert report.stat().st_mtime_ns != built
