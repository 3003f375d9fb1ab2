"""Network enrichment (issue 17) against a real provider: an HTTP server in its own process on a free
127.0.0.1 port that enforces its own rate limit and answers 429 beyond it, driven by real
`snakemake --cores 2` backfills of 20 bundles that share their organisations.

The 20 bundles are built once per module with the network off; each test runs on its own copy of
that tree (restore root and Snakemake working directory), so only the enrich jobs, the data docs and
the gate run in the tests themselves. The retry, backoff and cache-TTL tests run one enrich job in
this process on a three-record bundle against the same real provider.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, Workflow, make_archives, unavailable

from sheetfill.bundle.profiles import load_profile
from sheetfill.enrich.spec import enrich_spec
from sheetfill.errors import ProfileError

pytestmark = pytest.mark.slow

SECRET = "s3cret-registry-key-7f1c"  # must reach the provider, and nothing else
BURST, PER_SECOND = 3, 8.0
# Time between a client's permit and its request's arrival at the provider (loopback, a CPU shared by
# many processes): windows are measured where the provider sees them, so they get this much slack,
# and the provider's own bucket holds the same PER_SECOND x SLACK_SECONDS extra requests.
SLACK_SECONDS = 0.25
WINDOW = {"since": "2025-09-29", "until": "2025-10-08"}  # 10 dates x v1, v2 = 20 bundles
PROVIDER = Path(__file__).with_name("enrich_provider.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Provider:
    """tests/enrich_provider.py in its own process; stop() ends it."""

    def __init__(self, port: int, *args: str):
        env = {**os.environ, "PROVIDER_API_KEY": SECRET}
        self.process = subprocess.Popen(
            [sys.executable, str(PROVIDER), "--port", str(port), "--burst", str(BURST), "--per-second", str(PER_SECOND)]
            + ["--tolerance", str(PER_SECOND * SLACK_SECONDS), *args],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert int(self.process.stdout.readline()) == port
        self.port = port

    def requests(self) -> list[dict]:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_stats", timeout=10) as answer:
            return json.load(answer)["requests"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def enrich_block(port: int, **extra) -> dict:
    return {
        "providers": [
            {
                "name": "registry",
                "url": f"http://127.0.0.1:{port}/orgs/{{record_id}}",
                "headers": {"X-Api-Key": "SHEETFILL_TEST_REGISTRY_KEY"},
                "timeout_seconds": 5,
                "fields": {"registry_number": "registry.number", "registry_status": "status", "website": "website"},
                "rate_limit": {"burst": BURST, "per_second": PER_SECOND},
                "retry": {"max_attempts": 3, "backoff_seconds": 0.1, "max_backoff_seconds": 2},
                "circuit_breaker": {"failures": 3},
            }
        ],
        **extra,
    }


def write_profile(path: Path, port: int, **extra) -> Path:
    data = yaml.safe_load((REPO / "config" / "profiles" / "aviation.yaml").read_text())
    data["enrich"] = enrich_block(port, **extra)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """20 bundles built once, network off; the profile points at a port the tests' providers use."""
    root = tmp_path_factory.mktemp("enrich-base")
    make_archives(root / "archives", days=10, scale=0.05)
    port = free_port()
    profile = write_profile(root / "enrich-profile.yaml", port)
    flow = Workflow(root, root / "archives")
    done = flow.run(profile=str(profile), **WINDOW)
    assert "enrichment skipped: the network is off" in done.stderr
    assert not (flow.restore / "enriched").exists()
    return root, port, profile


@pytest.fixture
def tree(base, tmp_path, monkeypatch):
    """A private copy of the built tree, with the provider's key in the environment."""
    monkeypatch.setenv("SHEETFILL_TEST_REGISTRY_KEY", SECRET)
    return copy_tree(base, tmp_path / "a")


def copy_tree(base, target: Path):
    root, port, profile = base
    shutil.copytree(root / "restore", target / "restore", symlinks=True)
    shutil.copytree(root / "work", target / "work", symlinks=True)
    flow = Workflow(target, root / "archives")
    flow.port, flow.profile = port, profile
    flow.rate_store = str(target.parent / "rate-limits.sqlite")  # shared by the copies of one test
    return flow


def enrich_config(flow, **extra) -> dict:
    return {"profile": str(flow.profile), "network": "true", "rate_limit_store": flow.rate_store, **WINDOW, **extra}


def enriched(flow, bundle: str) -> dict:
    return json.loads((flow.restore / "enriched" / bundle / "bundle.json").read_text())


def bundles(flow) -> list[str]:
    return sorted(p.name for p in (flow.restore / "outputs").iterdir() if p.is_dir() and "--" in p.name)


def worst_excess(times: list[float]) -> float:
    """Largest count above burst + per_second x (t + slack) over every window [t_i, t_j] of arrivals."""
    times = sorted(times)
    worst = float("-inf")
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            worst = max(worst, (j - i + 1) - (BURST + PER_SECOND * (times[j] - start + SLACK_SECONDS)))
    return worst


def assert_polite(requests: list[dict]) -> None:
    assert requests, "the provider was never called"
    assert [r for r in requests if r["status"] == 429] == []
    assert worst_excess([r["t"] for r in requests]) <= 0


def secret_holders(*roots: Path, texts=()) -> list[str]:
    found = [str(p) for root in roots for p in root.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    return found + [f"text {i}" for i, text in enumerate(texts) if SECRET in text]


def read_records(flow, bundle: str) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(flow.restore / "enriched" / bundle / "enriched.parquet").to_pylist()


def test_backfill_keeps_the_limit_then_replays_from_the_cache_without_a_request(tree):
    provider = Provider(tree.port)
    try:
        cold = tree.run(**enrich_config(tree))
        first = provider.requests()
        assert_polite(first)
        assert "enriching with registry over the network" in cold.stderr
        names = bundles(tree)
        assert len(names) == 20 and all(enriched(tree, b)["status"] == "ok" for b in names)
        records = [r for b in names for r in read_records(tree, b)]
        assert len({r["record_id"] for r in records}) < len(records)  # the bundles share organisations
        filled = [r for r in records if r["registry_number"]]
        assert filled and all(r["registry_number"].startswith("REG-") for r in filled)
        notes = json.loads(filled[0]["enrichment"])["registry_number"]
        assert notes["provider"] == "registry" and notes["cache"] in ("hit", "miss") and notes["fetched_at"]
        assert notes["url"] == f"http://127.0.0.1:{tree.port}/orgs/{filled[0]['record_id']}"
        # a source website is never replaced; an empty one is filled and says where from
        pairs = [pair for b in names for pair in zip(_refined(tree, b), read_records(tree, b))]
        assert all(enr["website"] == src["website"] for src, enr in pairs if src["website"])
        filled_in = [enr for src, enr in pairs if not src["website"] and enr["website"]]
        assert filled_in and all(json.loads(r["enrichment"])["website"]["provider"] == "registry" for r in filled_in)
        index = (tree.restore / "data-docs" / "index.html").read_text()
        assert "bundles enriched" in index and "0 records flagged enrichment_unavailable" in index

        # A warm replay makes no request; an offline replay (only_if_cached, network off) neither, and
        # both write the same bytes.
        snapshots = []
        for extra in ({}, {"network": "false", "enrich_only_if_cached": "true"}):
            replay = tree.run("--forcerun", "enrich", **enrich_config(tree, **extra))
            folder = tree.restore / "enriched"
            snapshots.append({str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()})
        assert "from the cache only" in replay.stderr
        assert len(provider.requests()) == len(first)
        assert snapshots[0] == snapshots[1]
        assert all(enriched(tree, b)["enrichment"]["records_unavailable"] == 0 for b in names)

        tree.run("--forcerun", "enrich", **enrich_config(tree, enrich_refresh="true"))
        refreshed = provider.requests()[len(first) :]
        assert_polite(refreshed)
        assert len({r["path"] for r in refreshed}) == len({r["path"] for r in first})  # each asked again once+
        assert secret_holders(tree.restore, tree.workdir, texts=[cold.stdout, cold.stderr]) == []
    finally:
        provider.stop()


def _refined(flow, bundle):
    import pyarrow.parquet as pq

    return pq.read_table(flow.restore / "outputs" / bundle / "refined.parquet").to_pylist()


def start_together(flows, **extra) -> list[subprocess.CompletedProcess]:
    running = [
        subprocess.Popen(
            f.command(**enrich_config(f, **extra)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for f in flows
    ]
    results = []
    for process in running:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return results


def run_two_backfills(base, tmp_path, store: str | None = None):
    """Two snakemake processes at once, each with its own tree and cold cache, one provider."""
    flows = [copy_tree(base, tmp_path / name) for name in ("a", "b")]
    for flow in flows:
        flow.rate_store = store or flow.rate_store
    provider = Provider(flows[0].port)
    try:
        start_together(flows)
        requests = provider.requests()
    finally:
        provider.stop()
    assert_polite(requests)
    assert all(enriched(f, b)["status"] == "ok" for f in flows for b in bundles(f))
    return flows, requests


def test_two_snakemake_processes_on_one_machine_share_the_limit(base, tmp_path, monkeypatch):
    monkeypatch.setenv("SHEETFILL_TEST_REGISTRY_KEY", SECRET)
    flows, requests = run_two_backfills(base, tmp_path)
    made = [[enriched(f, b)["enrichment"]["requests"] for b in bundles(f)] for f in flows]
    assert all(sum(m) > 0 for m in made) and sum(map(sum, made)) == len(requests)  # both called, each cold


@pytest.fixture
def redis_url():
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(server):
        unavailable("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(port=port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", client
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_two_processes_sharing_redis_share_the_limit(base, tmp_path, monkeypatch, redis_url):
    url, client = redis_url
    monkeypatch.setenv("SHEETFILL_TEST_REGISTRY_KEY", SECRET)
    flows, _ = run_two_backfills(base, tmp_path, store=url)
    assert client.exists(f"sheetfill:rate:registry@http://127.0.0.1:{flows[0].port}")  # the log lived there
    assert not (tmp_path / "rate-limits.sqlite").exists()  # and not in the machine-local file


SMALL_WINDOW = {"since": "2025-09-29", "until": "2025-09-30"}  # 4 bundles


def test_429_with_retry_after_is_waited_out_and_the_lookup_succeeds(tree):
    provider = Provider(tree.port, "--fail-first", "2")
    try:  # one bundle: one enrich job, so a path asked again was asked again by the same job
        tree.run(**{**enrich_config(tree), "since": "2025-09-29", "until": "2025-09-29", "versions": "v1"})
        requests = provider.requests()
    finally:
        provider.stop()
    refused = requests[:2]
    assert [r["status"] for r in refused] == [429, 429]
    for miss in refused:  # asked again, no sooner than Retry-After: 1 said, and answered
        again = [r for r in requests if r["path"] == miss["path"] and r["t"] > miss["t"] and r["status"] != 429]
        assert again and again[0]["t"] - miss["t"] >= 1.0 and again[0]["status"] in (200, 404)
    assert enriched(tree, "2025-09-29--v1")["enrichment"]["records_unavailable"] == 0


def small_bundle(root: Path, ids: list[str]) -> Path:
    """A bundle's outputs folder as the bundle stage leaves it, with one refined record per id."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    outputs = root / "outputs" / "2025-09-29--v1"
    outputs.mkdir(parents=True)
    (outputs / "bundle.json").write_text(json.dumps({"bundle": outputs.name, "status": "ok"}))
    columns = {
        "record_id": ids,
        "organization_name": [f"Org {i}" for i in ids],
        "website": pa.array([None] * len(ids), pa.string()),
    }
    pq.write_table(pa.table({**columns, "flags": [""] * len(ids)}), outputs / "refined.parquet")
    return outputs


def enrich_in_process(root: Path, profile: Path, run_id: str = "run") -> tuple[dict, dict]:
    """One enrich job on root's small bundle, in this process: (bundle.json, the registry's report)."""
    from sheetfill.enrich.job import enrich_bundle
    from sheetfill.enrich.settings import RunSettings

    state = root / ".sheetfill" / "enrich"
    settings = RunSettings(
        network=True,
        rate_limit_store=str(root / "rate-limits.sqlite"),
        cache=str(state / "cache.sqlite"),
        breaker=str(state / "breaker.sqlite"),
        run_id=run_id,
    )
    summary = enrich_bundle(root / "outputs" / "2025-09-29--v1", root / "enriched", str(profile), settings)
    report = json.loads((root / "enriched" / "enrichment.json").read_text())["providers"]["registry"]
    return summary, report


def gaps(requests: list[dict]) -> list[float]:
    return [later["t"] - earlier["t"] for earlier, later in zip(requests, requests[1:])]


@pytest.mark.parametrize("retry_after", ["1", "date+2"], ids=["seconds", "http-date"])
def test_503_with_retry_after_is_waited_out_and_the_lookup_succeeds(tmp_path, monkeypatch, retry_after):
    monkeypatch.setenv("SHEETFILL_TEST_REGISTRY_KEY", SECRET)
    port = free_port()
    profile = write_profile(tmp_path / "profile.yaml", port)  # backoff 0.1 s: only Retry-After waits 1 s
    small_bundle(tmp_path, ["org-1"])
    provider = Provider(port, "--fail-first", "2", "--fail-status", "503", "--retry-after", retry_after)
    try:
        summary, report = enrich_in_process(tmp_path, profile)
        requests = provider.requests()
    finally:
        provider.stop()
    assert [r["status"] for r in requests] == [503, 503, 200]
    assert all(gap >= 1.0 for gap in gaps(requests))  # "1", or a date 1-2 s ahead: waited, not backed off
    assert (report["retries"], report["rate_limited"], report["found"]) == (2, 2, 1)
    assert summary["enrichment"]["records_unavailable"] == 0
    assert read_enriched(tmp_path)[0]["registry_number"].startswith("REG-")


def test_transient_500s_back_off_under_the_cap_and_the_lookup_succeeds(tmp_path, monkeypatch):
    monkeypatch.setenv("SHEETFILL_TEST_REGISTRY_KEY", SECRET)
    port = free_port()
    profile = write_profile(tmp_path / "profile.yaml", port)
    data = yaml.safe_load(profile.read_text())  # uncapped, 4 s x 2^n would wait up to 4 s, then 8 s
    data["enrich"]["providers"][0]["retry"] = {"max_attempts": 3, "backoff_seconds": 4, "max_backoff_seconds": 0.25}
    profile.write_text(yaml.safe_dump(data, sort_keys=False))
    small_bundle(tmp_path, ["org-1"])
    provider = Provider(port, "--fail-first", "2", "--fail-status", "500", "--retry-after", "none")
    try:
        summary, report = enrich_in_process(tmp_path, profile)
        requests = provider.requests()
    finally:
        provider.stop()
    assert [r["status"] for r in requests] == [500, 500, 200]
    assert all(gap <= 0.25 + 1.0 for gap in gaps(requests))  # the cap, plus a loaded machine's slack
    assert (report["retries"], report["rate_limited"], report["found"]) == (2, 0, 1)
    assert summary["enrichment"]["records_unavailable"] == 0


def test_backoff_grows_exponentially_with_full_jitter_up_to_the_cap():
    from sheetfill.enrich.fetch import pause_seconds
    from sheetfill.enrich.spec import Retry

    retry = Retry(max_attempts=6, backoff_seconds=0.1, max_backoff_seconds=0.5)
    ceilings = [0.1, 0.2, 0.4, 0.5, 0.5]  # 0.1 x 2^(attempt-1), capped at 0.5
    draws = [[pause_seconds(retry, attempt, None) for _ in range(500)] for attempt in range(1, 6)]
    for ceiling, waits in zip(ceilings, draws):
        assert all(0 <= w <= ceiling for w in waits) and max(waits) > 0.9 * ceiling  # full jitter over [0, ceiling]
        assert len(set(waits)) > 400  # jitter: callers that failed together do not retry together
    means = [sum(waits) / len(waits) for waits in draws]
    assert means[0] < means[1] < means[2]  # grows while under the cap
    # Retry-After is waited out as asked, up to the cap, with a little jitter on top
    assert all(0.2 <= pause_seconds(retry, 1, 0.2) <= 0.3 for _ in range(100))
    assert all(0.5 <= pause_seconds(retry, 1, 30.0) <= 0.6 for _ in range(100))


def read_enriched(root: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(root / "enriched" / "enriched.parquet").to_pylist()


def test_cache_ttl_replays_until_it_expires_then_fetches_again(tmp_path, monkeypatch):
    monkeypatch.setenv("SHEETFILL_TEST_REGISTRY_KEY", SECRET)
    ttl = 4
    port = free_port()
    profile = write_profile(tmp_path / "profile.yaml", port)
    data = yaml.safe_load(profile.read_text())
    data["enrich"]["providers"][0]["cache_ttl_seconds"] = ttl
    profile.write_text(yaml.safe_dump(data, sort_keys=False))
    assert enrich_spec(load_profile(profile).data).providers[0].cache_ttl_seconds == ttl
    ids = ["org-1", "org-2", "org-3"]  # within the burst: fetched at once, well inside the TTL
    small_bundle(tmp_path, ids)
    provider = Provider(port)
    try:
        cold, _ = enrich_in_process(tmp_path, profile)
        fetched = time.time()
        warm, _ = enrich_in_process(tmp_path, profile)
        warm_cache = {json.loads(r["enrichment"])["registry_status"]["cache"] for r in read_enriched(tmp_path)}
        assert time.time() - fetched < ttl, "the machine stalled past the TTL; the warm replay proves nothing"
        assert len(provider.requests()) == len(ids)
        time.sleep(max(0.0, fetched + ttl + 0.5 - time.time()))
        expired, _ = enrich_in_process(tmp_path, profile)
        requests = provider.requests()
    finally:
        provider.stop()
    assert (cold["enrichment"]["requests"], warm["enrichment"]["requests"], expired["enrichment"]["requests"]) == (
        len(ids),
        0,
        len(ids),
    )
    assert warm_cache == {"hit"} and warm["enrichment"]["cache_hits"] == len(ids)
    assert sorted(r["path"] for r in requests) == sorted(2 * [f"/orgs/{i}" for i in ids])
    assert {json.loads(r["enrichment"])["registry_status"]["cache"] for r in read_enriched(tmp_path)} == {"miss"}


def test_provider_down_leaves_bundles_ok_with_flags_and_the_count_in_the_docs(tree):
    done = tree.run(**{**enrich_config(tree), **SMALL_WINDOW})  # nothing listens on the provider's port
    names = [b for b in bundles(tree) if b <= "2025-09-30--v2"]
    summaries = [enriched(tree, b) for b in names]
    assert [s["status"] for s in summaries] == ["ok"] * 4
    flagged = sum(s["enrichment"]["records_unavailable"] for s in summaries)
    assert flagged == sum(s["enrichment"]["records"] for s in summaries) > 0
    records = [r for b in names for r in read_records(tree, b)]
    assert all("enrichment_unavailable" in r["flags"] for r in records)
    assert json.loads(records[0]["enrichment"])["registry_number"]["status"] == "enrichment_unavailable"
    reports = [json.loads((tree.restore / "enriched" / b / "enrichment.json").read_text()) for b in names]
    assert any(r["providers"]["registry"]["circuit_open"] for r in reports)  # stopped calling it
    assert (
        f"{flagged} records flagged enrichment_unavailable" in (tree.restore / "data-docs" / "index.html").read_text()
    )
    assert secret_holders(tree.restore, tree.workdir, texts=[done.stdout, done.stderr]) == []


def test_on_error_fail_makes_the_bundle_fail_and_the_run_exit_non_zero(tree, tmp_path):
    strict = write_profile(tmp_path / "strict.yaml", tree.port, on_error="fail")
    done = tree.run(check=False, **{**enrich_config(tree), **SMALL_WINDOW, "profile": str(strict)})
    assert done.returncode != 0 and "FAILED enrichment" in done.stderr
    assert enriched(tree, "2025-09-29--v1")["status"] == "failed_enrichment"


def test_profile_errors_name_the_key_and_the_fix(tmp_path):
    def load(**provider):
        data = yaml.safe_load((REPO / "config" / "profiles" / "generic.yaml").read_text())
        data["enrich"] = {
            "providers": [
                {"name": "p", "url": "https://h.example/{organization_name}", "fields": {"x": "y"}, **provider}
            ]
        }
        path = tmp_path / "p.yaml"
        path.write_text(yaml.safe_dump(data))
        return load_profile(path)

    with pytest.raises(ProfileError, match=r"enrich.providers\[0\].url: placeholder \{nope\}.*fix: use one of"):
        load(url="https://h.example/{nope}")
    with pytest.raises(ProfileError, match="credentials in the URL"):
        load(url="https://user:pw@h.example/{organization_name}")
    with pytest.raises(ProfileError, match="rate_limit and research_rate_limit both given"):
        load(rate_limit={"per_second": 1}, research_rate_limit={"min_interval_seconds": 1})
    with pytest.raises(ProfileError, match=r"rate_limit.*per_second"):
        load(rate_limit={"burst": 2})
    hotpass = enrich_spec(load(research_rate_limit={"min_interval_seconds": 0.25, "burst": 4}).data).providers[0]
    assert (hotpass.rate_limit.burst, hotpass.rate_limit.per_second) == (4, 4.0)


def test_missing_secret_stops_the_run_before_any_job(base, tmp_path, monkeypatch):
    monkeypatch.delenv("SHEETFILL_TEST_REGISTRY_KEY", raising=False)
    flow = copy_tree(base, tmp_path / "a")
    done = flow.run(check=False, **enrich_config(flow))
    assert done.returncode != 0 and "SHEETFILL_TEST_REGISTRY_KEY" in done.stderr
    assert not (flow.restore / "enriched").exists()


def most_enrich_jobs_at_once(restore: Path) -> int:
    """The peak number of enrich jobs running together, replayed from the ledger's job events."""
    with sqlite3.connect(restore / ".sheetfill" / "ledger.sqlite") as db:
        rows = db.execute("SELECT kind, data FROM events ORDER BY seq").fetchall()
    running, peak = set(), 0
    for kind, data in rows:
        job = json.loads(data or "{}")
        if job.get("rule") != "enrich":
            continue
        if kind == "job_started":
            running.add(job["jobid"])
            peak = max(peak, len(running))
        elif kind in ("job_finished", "job_error"):
            running.discard(job["jobid"])
    return peak


def test_enrich_slots_caps_the_enrich_jobs_running_at_once(tree):
    provider = Provider(tree.port)
    try:  # the bundles are built: with --cores 2 only the cap keeps two enrich jobs from overlapping
        tree.run(**{**enrich_config(tree), **SMALL_WINDOW, "enrich_slots": "1"})
    finally:
        provider.stop()
    assert [enriched(tree, b)["status"] for b in bundles(tree) if b <= "2025-09-30--v2"] == ["ok"] * 4
    assert most_enrich_jobs_at_once(tree.restore) == 1
