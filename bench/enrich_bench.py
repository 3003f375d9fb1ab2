"""Shared rate limit under load, then a warm replay: prints one line.

    python bench/enrich_bench.py [--jobs 3] [--records 80] [--burst 5] [--per-second 20]

Starts the tests' provider (tests/enrich_provider.py: its own limit, 429 beyond it) on a free
127.0.0.1 port and runs `--jobs` real enrich jobs (`python -m sheetfill.jobs.job enrich`) at once,
each over a bundle of `--records` organisations nobody else asks for, so that they compete for the
same provider limit for the whole run. Then it runs the same jobs again against the warm cache.

rate_achieved is measured where the provider sees it: requests after the first `burst`, divided by
the time from the first to the last arrival. It should be close to the limit (>= 90 %) with 429s=0,
and replay_requests=0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def write_bundle(folder: Path, name: str, count: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True)
    ids = [f"sf-{name}-{i:05d}" for i in range(count)]
    table = pa.table({"record_id": ids, "organization_name": [f"Org {i}" for i in ids], "flags": [""] * count})
    pq.write_table(table, folder / "refined.parquet")
    (folder / "bundle.json").write_text(json.dumps({"bundle": name, "status": "ok", "error": None}))


def write_profile(path: Path, port: int, burst: int, per_second: float) -> None:
    import yaml

    data = yaml.safe_load((REPO / "config" / "profiles" / "generic.yaml").read_text())
    data["enrich"] = {
        "providers": [
            {
                "name": "bench",
                "url": f"http://127.0.0.1:{port}/orgs/{{record_id}}",
                "fields": {"registry_number": "registry.number"},
                "rate_limit": {"burst": burst, "per_second": per_second},
            }
        ]
    }
    path.write_text(yaml.safe_dump(data))


def requests_seen(port: int) -> list[dict]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stats", timeout=10) as answer:
        return json.load(answer)["requests"]


def run_jobs(work: Path, jobs: int, profile: Path, env: dict) -> None:
    running = [
        subprocess.Popen(
            [sys.executable, "-m", "sheetfill.jobs.job", "enrich", "--outputs", str(work / f"out{i}")]
            + ["--enriched", str(work / f"enriched{i}"), "--profile", str(profile)],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for i in range(jobs)
    ]
    for process in running:
        if process.wait(timeout=600):
            raise SystemExit(f"an enrich job failed (exit {process.returncode})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--records", type=int, default=80)
    parser.add_argument("--burst", type=int, default=5)
    parser.add_argument("--per-second", type=float, default=20.0)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from sheetfill.enrich.settings import RunSettings

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        provider = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "enrich_provider.py"), "--burst", str(args.burst)]
            + ["--per-second", str(args.per_second), "--tolerance", "2"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            port = int(provider.stdout.readline())
            write_profile(work / "profile.yaml", port, args.burst, args.per_second)
            for i in range(args.jobs):
                write_bundle(work / f"out{i}", f"b{i}", args.records)
            settings = RunSettings(
                network=True,
                rate_limit_store=str(work / "rate.sqlite"),
                cache=str(work / "cache.sqlite"),
                breaker=str(work / "breaker.sqlite"),
                run_id="bench",
            )
            env = {**os.environ, "SHEETFILL_ENRICH": settings.to_env(), "SHEETFILL_WORKER": "off"}
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
            run_jobs(work, args.jobs, work / "profile.yaml", env)
            cold = requests_seen(port)
            run_jobs(work, args.jobs, work / "profile.yaml", env)
            replay = len(requests_seen(port)) - len(cold)
        finally:
            provider.terminate()
            provider.wait(timeout=10)
    times = sorted(r["t"] for r in cold)
    rate = (len(times) - args.burst) / (times[-1] - times[0])
    refused = sum(r["status"] == 429 for r in cold)
    print(
        f"enrich: requests={len(cold)} rate_achieved={rate:.1f}/s limit={args.per_second:g}/s "
        f"429s={refused} replay_requests={replay}"
    )


if __name__ == "__main__":
    main()
