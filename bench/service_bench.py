"""The run service and its logger plugin, measured in one run.

    python bench/service_bench.py

Prints:
  S1  POST /api/v1/runs -> 202 latency, p50/p95 over 100 requests                  goal p95 <= 100 ms
  S2  GET /api/v1/bundles with 10,000 bundles in the ledger, p50/p95               goal <= 200 ms
  S3  job finished (in Snakemake) -> its event delivered over SSE, mean/max         goal <= 1 s
  S4  the plugin's cost on `snakemake -n` over 10,000 bundles (best of 3 each)      goal <= 5 %
      and on a no-op run over 200 finished bundles
The API figures run the real app on uvicorn on 127.0.0.1 (S1, S2 without a runner: nothing executes);
S3 runs `sheetfill serve` and a real backfill. Archives are cached under $SHEETFILL_BENCH_DIR.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))

import httpx  # noqa: E402
from backfill_bench import BENCH, PATTERN, START, archives  # noqa: E402


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings_for(root: Path, restore: Path, **options):
    from sheetfill.service.settings import load_service_settings

    work = BENCH / "service-work"
    (work / "config").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / "config" / "config.yaml", work / "config" / "config.yaml")
    configfile = work / f"config-{restore.name}.json"
    configfile.write_text(json.dumps({"archive_root": str(root), "restore_root": str(restore)}))
    return load_service_settings(work, configfile, **options)


class InProcessServer:
    """uvicorn in a thread of this process, serving create_app(settings, run_jobs=False)."""

    def __init__(self, settings):
        import uvicorn

        from sheetfill.service.app import create_app

        self.port = free_port()
        config = uvicorn.Config(
            create_app(settings, run_jobs=False), host="127.0.0.1", port=self.port, log_level="error"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> httpx.Client:
        self.thread.start()
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        for _ in range(200):
            try:
                if self.client.get("/api/v1/health").status_code == 200:
                    return self.client
            except httpx.TransportError:
                time.sleep(0.05)
        raise SystemExit("the in-process server did not start")

    def __exit__(self, *exc):
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def s1_post_latency(requests: int = 100) -> dict:
    root = archives("small", 60, 0.05)
    restore = fresh("post")
    samples = []
    with InProcessServer(settings_for(root, restore)) as api:
        for i in range(requests):
            day = (START + dt.timedelta(days=i % 30)).isoformat()
            began = time.perf_counter()
            answer = api.post("/api/v1/runs", json={"since": day, "until": day})
            samples.append(time.perf_counter() - began)
            assert answer.status_code == 202, answer.text
            api.post(f"/api/v1/runs/{answer.json()['run_id']}/cancel")  # queued -> cancelled: the next one gets in
    p50, p95 = percentiles(samples)
    print(
        f"S1 POST /api/v1/runs -> 202: p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms over {requests}"
        " (goal p95 <= 100 ms)"
    )
    return {"S1_post_p50_ms": p50 * 1000, "S1_post_p95_ms": p95 * 1000}


def s2_bundles_latency(bundles: int = 10_000, requests: int = 30) -> dict:
    from sheetfill.runs.ledger import Ledger

    root = archives("small", 2, 0.05)
    restore = fresh("bundles")
    ledger = Ledger.for_root(restore)
    names = [f"{(START + dt.timedelta(days=i // 2)).isoformat()}--v{i % 2 + 1}" for i in range(bundles)]
    for run in range(3):  # three runs over the same bundles: "latest" has to choose
        ledger.create_run(f"run-{run}", status="succeeded", bundles=names)
        ledger.set_slots_where(f"run-{run}", "pending", "ok" if run != 1 else "skipped", None)
    ledger.close()
    figures = {}
    with InProcessServer(settings_for(root, restore)) as api:
        for label, params in (
            ("page", {}),
            ("filtered", {"version": "v2", "status": "ok"}),
            ("all", {"limit": bundles}),
        ):
            samples = []
            for _ in range(requests):
                began = time.perf_counter()
                answer = api.get("/api/v1/bundles", params=params)
                samples.append(time.perf_counter() - began)
                assert answer.status_code == 200 and answer.json()["total"] >= bundles // 2
            p50, p95 = percentiles(samples)
            figures[f"S2_{label}_p95_ms"] = p95 * 1000
            print(
                f"S2 GET /api/v1/bundles ({label}, {bundles} bundles x 3 runs): "
                f"p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms (goal <= 200 ms)"
            )
    return figures


def s3_event_delay() -> dict:
    root = archives("small", 6, 0.05)
    restore = fresh("events")
    settings = settings_for(root, restore)
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "sheetfill.cli",
        "serve",
        "--port",
        str(port),
        "--configfile",
        str(settings.configfile),
    ]
    server = subprocess.Popen(command, cwd=settings.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    delays = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as api:
            for _ in range(300):
                try:
                    if api.get("/api/v1/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            run_id = api.post("/api/v1/runs", json={"since": START.isoformat()}).json()["run_id"]
            with api.stream("GET", f"/api/v1/runs/{run_id}/events") as stream:
                for line in stream.iter_lines():
                    if line.startswith("data: "):
                        event = json.loads(line[6:])
                        if event["kind"] == "job_finished":
                            delays.append(time.time() - event["time"])
    finally:
        server.terminate()
        server.wait(timeout=60)
    print(
        f"S3 job finished -> event delivered: mean {statistics.mean(delays) * 1000:.0f} ms, "
        f"max {max(delays) * 1000:.0f} ms over {len(delays)} jobs (goal <= 1 s)"
    )
    return {"S3_event_mean_ms": statistics.mean(delays) * 1000, "S3_event_max_ms": max(delays) * 1000}


def snakemake_time(root: Path, restore: Path, *args: str) -> tuple[float, float]:
    """(wall, CPU) seconds of one run; the default profile is off so the plugin is the only difference."""
    command = [sys.executable, "-m", "snakemake", "--cores", "2", "--workflow-profile", "none", "--scheduler", "greedy"]
    command += ["--rerun-incomplete", "--keep-going", "--quiet", *args]
    command += ["--config", f"archive_root={root}", f"restore_root={restore}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"snakemake failed: {done.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def with_and_without(root: Path, restore: Path, *args: str, repeat: int = 3) -> dict[bool, tuple[float, float]]:
    """Best (wall, CPU) without and with the plugin, runs interleaved so that load drifts hit both."""
    samples = {False: [], True: []}
    for _ in range(repeat):
        for plugin in (False, True):
            samples[plugin].append(snakemake_time(root, restore, *args, *(["--logger", "sheetfill"] if plugin else [])))
    return {plugin: (min(w for w, _ in runs), min(c for _, c in runs)) for plugin, runs in samples.items()}


def dry_archives(bundles: int) -> Path:
    """-n never opens the archives: one small zip, hard-linked for every bundle."""
    template = next(archives("small", 2, 0.05).rglob("*.zip"))
    root = BENCH / f"dry-{bundles}"
    if not (root / ".complete").exists():
        for i in range(bundles // 2):
            for version in ("v1", "v2"):
                target = root / PATTERN.format(date=(START + dt.timedelta(days=i)).isoformat(), version=version)
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists():
                    os.link(template, target)
        (root / ".complete").touch()
    return root


def s4_plugin_cost(bundles: int = 10_000, finished: int = 200) -> dict:
    root, restore = dry_archives(bundles), fresh("dry")
    dry = with_and_without(root, restore, "-n")
    small, done = archives("small", finished, 0.05), BENCH / "runs" / f"noop-service-{finished}"
    snakemake_time(small, done)  # builds what is missing (the first time only)
    noop = with_and_without(small, done)
    figures = {}
    for name, label, result in (
        ("dry", f"-n over {bundles} bundles", dry),
        ("noop", f"a no-op run over {finished} finished bundles", noop),
    ):
        (wall, cpu), (wall_plugin, cpu_plugin) = result[False], result[True]
        figures[f"S4_{name}_wall_cost"], figures[f"S4_{name}_cpu_cost"] = wall_plugin / wall - 1, cpu_plugin / cpu - 1
        print(
            f"S4 plugin cost on {label}: wall {wall:.2f} -> {wall_plugin:.2f} s ({wall_plugin / wall - 1:+.1%}), "
            f"CPU {cpu:.2f} -> {cpu_plugin:.2f} s ({cpu_plugin / cpu - 1:+.1%}) (goal <= 5 %)"
        )
    return figures


def fresh(name: str) -> Path:
    path = BENCH / "service-runs" / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def main() -> None:
    figures = {}
    for figure in (s1_post_latency, s2_bundles_latency, s3_event_delay, s4_plugin_cost):
        figures.update(figure())
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
