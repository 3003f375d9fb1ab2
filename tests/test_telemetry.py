"""Telemetry end to end: real Snakemake runs on the sample archives export to a real OTLP/HTTP receiver."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import yaml
from conftest import REPO, Workflow
from otlp_receiver import Receiver, attributes

from sheetfill.telemetry.outcomes import read_summary

pytestmark = pytest.mark.slow
PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"  # a caller's trace context
BROKEN = "2025-09-30--v1"


@pytest.fixture
def sample(tmp_path):
    """The sample archives, copied: tests may break one."""
    root = tmp_path / "archives"
    shutil.copytree(REPO / "sample" / "archives", root)
    return Workflow(tmp_path, root)


def run(workflow: Workflow, receiver_endpoint: str | None, *args, extra_env=None, **config):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SHEETFILL_", "TRACEPARENT"))}
    if receiver_endpoint:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver_endpoint
    env.update(extra_env or {})
    command = workflow.command(*args, **{"since": "2025-09-29", **config})
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)


def summaries(workflow: Workflow) -> dict[str, dict]:
    folders = sorted(p for p in (workflow.restore / "outputs").iterdir() if (p / "bundle.json").exists())
    return {p.name: read_summary(p) for p in folders}  # bundle.json + the job record of provenance.json


def total(points, **wanted) -> int:
    """Sum of counter values (or histogram counts) over the data points with these attributes."""
    keep = [p for p in points if all(attributes(p).get(f"sheetfill.{k}") == v for k, v in wanted.items())]
    return sum(p.count if hasattr(p, "bucket_counts") else p.as_int for p in keep)


def assert_counters_match(metrics: dict, built: dict[str, dict]) -> None:
    for status in ("ok", "failed_validation", "failed_processing"):
        expected = sum(s["status"] == status for s in built.values())
        assert total(metrics["sheetfill.bundles"], status=status) == expected, status
    for name, read in [
        ("sheetfill.rows.in", lambda s: (s["counts"] or {}).get("rows_in", 0)),
        ("sheetfill.records.out", lambda s: (s["counts"] or {}).get("records_out", 0)),
        ("sheetfill.expectations.failed", lambda s: (s["validation"] or {}).get("failed", 0)),
    ]:
        for version in {b.split("--")[1] for b in built}:
            expected = sum(read(s) for b, s in built.items() if b.endswith(f"--{version}"))
            assert total(metrics[name], version=version) == expected, (name, version)


def test_run_exports_metrics_and_one_trace_with_the_failing_bundle_in_error(sample):
    (sample.archives / "2025-09-30" / "hotpass-inputs-v1.zip").write_bytes(b"not a zip at all")
    with Receiver() as receiver:
        done = run(sample, receiver.endpoint, extra_env={"TRACEPARENT": PARENT, "OTEL_SERVICE_NAME": "sheetfill-test"})
    assert done.returncode == 1, done.stderr  # the broken bundle fails the run, telemetry or not
    built = summaries(sample)
    assert built[BROKEN]["status"] == "failed_processing" and len(built) == 6
    metrics = receiver.metrics()
    assert total(metrics["sheetfill.bundle.duration"]) == len(built)
    assert total(metrics["sheetfill.run.duration"], status="failed", kind="backfill", profile="aviation") == 1
    assert_counters_match(metrics, built)
    assert {a for p in metrics["sheetfill.bundles"] for a in attributes(p)} == {
        "sheetfill.kind",
        "sheetfill.profile",
        "sheetfill.version",
        "sheetfill.status",
    }
    assert {r["service.name"] for r in receiver.resources()} == {"sheetfill-test"}  # OTEL_SERVICE_NAME
    assert {r["service.instance.id"] for r in receiver.resources()} == {socket.gethostname()}

    spans = receiver.spans()
    assert len({s.trace_id for s in spans}) == 1 and spans[0].trace_id.hex() == PARENT.split("-")[1]
    (root,) = [s for s in spans if s.name == "sheetfill.run"]
    assert root.parent_span_id.hex() == PARENT.split("-")[2]
    assert attributes(root)["sheetfill.window.since"] == "2025-09-29" and attributes(root)["sheetfill.run_id"]
    bundles = {attributes(s)["sheetfill.bundle"]: s for s in spans if s.name == "sheetfill.bundle"}
    assert set(bundles) == set(built)
    assert all(s.parent_span_id == root.span_id for s in bundles.values())
    broken = bundles[BROKEN]
    assert broken.status.code == broken.status.STATUS_CODE_ERROR and "not a readable zip" in broken.status.message
    assert [e.name for e in broken.events] == ["sheetfill.failure"]
    assert root.status.code == root.status.STATUS_CODE_ERROR
    healthy = bundles["2025-09-29--v1"]
    assert healthy.status.code != healthy.status.STATUS_CODE_ERROR
    stages = [s for s in spans if s.parent_span_id == healthy.span_id]
    assert sorted(s.name for s in stages) == sorted(["restore", "read", "normalise", "resolve", "write", "validate"])
    assert all(healthy.start_time_unix_nano <= s.start_time_unix_nano <= s.end_time_unix_nano for s in stages)
    task = attributes(healthy)
    assert task["host.name"] == socket.gethostname() and task["sheetfill.task.threads"] == 1
    assert task["sheetfill.task.mode"] in ("worker", "in-process") and "slurm.job_id" not in task
    # the jobs ran under the run span's trace context (TRACEPARENT reached them)
    run_context = f"00-{root.trace_id.hex()}-{root.span_id.hex()}-01"
    assert {s["job"]["traceparent"] for s in built.values()} == {run_context}


def test_bundles_of_an_earlier_run_count_as_skipped(sample):
    assert run(sample, None).returncode == 0  # telemetry unset: nothing exported, nothing needed
    with Receiver() as receiver:
        done = run(sample, receiver.endpoint, "--forcerun", "gate")
    assert done.returncode == 0, done.stderr
    metrics = receiver.metrics()
    assert total(metrics["sheetfill.bundles"], status="skipped") == len(summaries(sample)) == 6
    assert "sheetfill.bundle.duration" not in metrics and total(metrics["sheetfill.run.duration"], status="ok") == 1
    assert [s.name for s in receiver.spans()] == ["sheetfill.run"]


def profile_with(tmp_path, *expectations: dict) -> str:
    """The aviation profile plus these expectations, in a file named strict.yaml (profile label `strict`)."""
    from sheetfill.bundle.profiles import resolve_profile_path

    profile = yaml.safe_load(resolve_profile_path("aviation").read_text())
    profile["expectations"].extend(expectations)
    path = tmp_path / "strict.yaml"
    path.write_text(yaml.safe_dump(profile))
    return str(path)


def strict_profile(tmp_path, built: dict[str, dict]):
    """The aviation profile plus an expectation that only the bigger half of the bundles meet."""
    records = sorted(s["counts"]["records_out"] for s in built.values())
    return profile_with(tmp_path, {"name": "enough_records", "check": "row_count", "min": records[3]})


def test_validation_failing_run_still_flushes_metrics_with_its_exit_code(sample, tmp_path):
    assert run(sample, None).returncode == 0
    profile = strict_profile(tmp_path, summaries(sample))
    with Receiver() as receiver:
        off = run(sample, receiver.endpoint, profile=profile, telemetry="off")
        assert receiver.requests == {"/v1/metrics": [], "/v1/traces": []}  # `telemetry: off` wins over OTEL_*
        shutil.rmtree(sample.restore)
        on = run(sample, receiver.endpoint, profile=profile)
    assert off.returncode == on.returncode == 1 and "FAILED validation" in on.stderr
    built = summaries(sample)
    assert {s["status"] for s in built.values()} == {"ok", "failed_validation"}
    metrics = receiver.metrics()
    assert_counters_match(metrics, built)
    assert total(metrics["sheetfill.expectations.failed"]) == sum(s["validation"]["failed"] for s in built.values())
    assert total(metrics["sheetfill.run.duration"], status="failed") == 1
    failing = [s for s in receiver.spans() if attributes(s).get("sheetfill.status") == "failed_validation"]
    assert failing and all("expectations failed" in s.status.message for s in failing)


@pytest.fixture(params=["silent", "refused"])
def unreachable_collector(request):
    """An OTLP endpoint on 127.0.0.1 that never answers: a socket that accepts connections (into its
    backlog) and stays silent, or a free port with nothing listening, where connections are refused."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    endpoint = f"http://127.0.0.1:{server.getsockname()[1]}"
    if request.param == "silent":
        server.listen(16)
    else:
        server.close()
    yield endpoint
    server.close()


def timed_run(*args, **kwargs) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = run(*args, **kwargs)
    return done, time.monotonic() - started


def test_an_unreachable_collector_neither_fails_nor_holds_up_the_run(sample, unreachable_collector):
    export_timeout = 1  # OTEL_EXPORTER_OTLP_TIMEOUT, seconds: metrics and traces are exported in parallel
    slack = 20  # a bound on behaviour (an export retrying or hanging past its timeout), not a speed target
    reference, reference_wall = timed_run(sample, None, until="2025-09-29")  # the same run, telemetry unset
    assert reference.returncode == 0, reference.stderr
    shutil.rmtree(sample.restore)
    env = {"OTEL_EXPORTER_OTLP_TIMEOUT": str(export_timeout)}
    done, wall = timed_run(sample, unreachable_collector, extra_env=env, until="2025-09-29")
    assert done.returncode == 0, done.stderr
    assert "sheetfill: telemetry: metrics NOT exported, traces NOT exported" in done.stderr
    assert {s["status"] for s in summaries(sample).values()} == {"ok"}
    assert wall <= reference_wall + export_timeout + slack, (wall, reference_wall)


def test_otel_metrics_exporter_none_and_resource_attributes(sample):
    """OTEL_METRICS_EXPORTER=none exports the traces alone; OTEL_RESOURCE_ATTRIBUTES reach both signals'
    resource and win over sheetfill's defaults (service.instance.id); OTEL_TRACES_EXPORTER=none the converse."""
    given = {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=ci,service.instance.id=ci-runner-7"}
    with Receiver() as receiver:
        only_traces = {**given, "OTEL_METRICS_EXPORTER": "none"}
        traces_only = run(sample, receiver.endpoint, extra_env=only_traces, until="2025-09-29")
        assert traces_only.returncode == 0, traces_only.stderr
        assert receiver.requests["/v1/metrics"] == [] and len(receiver.requests["/v1/traces"]) == 1
        built = summaries(sample)
        spans = receiver.spans()
        only_metrics = {**given, "OTEL_TRACES_EXPORTER": "none"}  # the gate again: the bundles count as skipped
        metrics_only = run(sample, receiver.endpoint, "--forcerun", "gate", extra_env=only_metrics, until="2025-09-29")
    assert metrics_only.returncode == 0, metrics_only.stderr
    assert "sheetfill: telemetry: traces exported" in traces_only.stderr
    assert "sheetfill: telemetry: metrics exported" in metrics_only.stderr
    assert len(receiver.requests["/v1/metrics"]) == 1 and len(receiver.requests["/v1/traces"]) == 1
    assert {attributes(s)["sheetfill.bundle"] for s in spans if s.name == "sheetfill.bundle"} == set(built)
    assert total(receiver.metrics()["sheetfill.bundles"], status="skipped") == len(built)
    resources = receiver.resources()  # one per request
    assert len(resources) == 2
    for resource in resources:
        assert resource["deployment.environment"] == "ci" and resource["service.instance.id"] == "ci-runner-7"
        assert resource["service.name"] == "sheetfill"


def test_the_bundle_span_and_ledger_row_carry_the_jobs_threads_and_memory(sample):
    """A local run: the threads and the mem_mb Snakemake gives each bundle job are its task metadata."""
    from sheetfill.runs.ledger import Ledger

    resources = ("--set-threads", "bundle=2", "--set-resources", "bundle:mem_mb=1500")
    with Receiver() as receiver:
        done = run(sample, receiver.endpoint, *resources, until="2025-09-29")
    assert done.returncode == 0, done.stderr
    spans = [s for s in receiver.spans() if s.name == "sheetfill.bundle"]
    assert {attributes(s)["sheetfill.bundle"] for s in spans} == set(summaries(sample)) and len(spans) == 2
    for span in spans:
        task = attributes(span)
        assert (task["sheetfill.task.threads"], task["sheetfill.task.memory_mb"]) == (2, 1500)
        assert task["host.name"] == socket.gethostname()
    (run_id,) = {attributes(s)["sheetfill.run_id"] for s in receiver.spans() if s.name == "sheetfill.run"}
    ledger = Ledger.for_root(sample.restore)
    try:
        slots = ledger.slots(run_id)
    finally:
        ledger.close()
    assert sorted((s["bundle"], s["threads"], s["memory_mb"]) for s in slots) == [
        (bundle, 2, 1500) for bundle in sorted(summaries(sample))
    ]


def test_telemetry_off_imports_no_opentelemetry(tmp_path):
    """The job's, the Snakefile's and the gate's telemetry code with telemetry unset, and the same code on."""
    script = f"""
import json, sys
from pathlib import Path
from sheetfill.telemetry import wanted
from sheetfill.telemetry.context import prepare_run
from sheetfill.telemetry.outcomes import report_from_gate
from sheetfill.telemetry.sink import TelemetrySink
from sheetfill.telemetry.stages import StageClock
from sheetfill.runs.events import RunEvent
prepare_run(wanted("auto"), kind="backfill", profile="aviation", restore_root={str(tmp_path)!r})
folder = Path({str(tmp_path)!r}) / "outputs" / "2025-09-29--v1"
folder.mkdir(parents=True)
(folder / "bundle.json").write_text(json.dumps({{"bundle": folder.name, "status": "ok"}}))
(folder / "provenance.json").write_text(json.dumps({{"job": StageClock().record()}}))
report_from_gate([folder], True)
sink = TelemetrySink()
sink.handle(RunEvent("run_finished", ok=False))
print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SHEETFILL_", "TRACEPARENT"))}
    off = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert off.returncode == 0 and off.stdout.strip() == "[]", off.stderr
    shutil.rmtree(tmp_path / "outputs")
    with Receiver() as receiver:
        on_env = {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        on = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=on_env, timeout=60)
        assert on.returncode == 0 and "opentelemetry.sdk.metrics" in on.stdout, on.stderr
        shutil.rmtree(tmp_path / "outputs")
        only_metrics = {**on_env, "OTEL_TRACES_EXPORTER": "none"}
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=only_metrics, timeout=60)
    assert len(receiver.requests["/v1/metrics"]) == 2  # the gate reported; the sink saw its marker
    assert len(receiver.requests["/v1/traces"]) == 1  # OTEL_TRACES_EXPORTER=none: no traces the second time


def test_metrics_endpoint_of_the_service_after_a_real_run(sample, tmp_path):
    """A run of the service whose bundles each miss two expectations: every figure of /metrics, checked
    against the ledger and the bundles' bundle.json."""
    from prometheus_client.parser import text_string_to_metric_families
    from ui_server import Service

    from sheetfill.runs.ledger import Ledger

    service = Service(tmp_path / "service", sample.archives, token="s3cret")
    unmet = [{"name": f"at_most_{n}_records", "check": "row_count", "max": n} for n in (1, 2)]
    config = {**json.loads(service.configfile.read_text()), "profile": profile_with(tmp_path, *unmet)}
    service.configfile.write_text(json.dumps(config))
    service.start()
    try:
        status, body = service.api("POST", "/api/v1/runs", {"since": "2025-09-29", "until": "2025-09-30"})
        assert status == 202, body
        for _ in range(600):  # bounded: 600 x 0.5 s
            run_status = service.api("GET", f"/api/v1/runs/{body['run_id']}")[1]["status"]
            if run_status not in ("queued", "running", "cancelling"):
                break
            time.sleep(0.5)
        assert run_status == "completed_with_failures"

        request = urllib.request.Request(service.url("/metrics"), headers={"Authorization": "Bearer s3cret"})
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
        try:
            urllib.request.urlopen(service.url("/metrics"), timeout=10)
            refused = None
        except urllib.error.HTTPError as error:
            refused = error.code
    finally:
        service.stop()
    assert refused == 401  # the token guards /metrics like the API
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append(s)
    assert [s.value for s in samples["sheetfill_runs"] if s.labels["status"] == "completed_with_failures"] == [1]
    assert [s.value for s in samples["sheetfill_queue_length"]] == [0]
    ledger = Ledger.for_root(service.restore)
    try:
        slots, ledger_run = ledger.slots(body["run_id"]), ledger.run(body["run_id"])
    finally:
        ledger.close()
    assert len(slots) == 4 and {s["status"] for s in slots} == {"failed_validation"}
    assert all(s["host"] == socket.gethostname() and s["threads"] == 1 for s in slots)
    assert sum(s.value for s in samples["sheetfill_bundles_total"] if s.labels["status"] == "failed_validation") == 4
    assert sum(s.value for s in samples["sheetfill_rows_in_total"]) == sum(s["rows_in"] for s in slots)
    outputs = service.restore / "outputs"
    unmet_counts = [read_summary(outputs / s["bundle"])["validation"]["failed"] for s in slots]
    assert unmet_counts == [2] * 4  # the two added expectations, nothing else
    assert sum(s.value for s in samples["sheetfill_expectations_failed_total"]) == sum(unmet_counts)
    counts = samples["sheetfill_bundle_duration_seconds_count"]
    assert sum(s.value for s in counts) == len(slots)
    assert {s.labels["kind"] for s in counts} == {"backfill"} and {s.labels["profile"] for s in counts} == {"strict"}
    (runs,) = samples["sheetfill_run_duration_seconds_count"]
    assert runs.value == 1 and runs.labels == {"kind": "backfill", "profile": "strict", "status": "failed"}
    (seconds,) = samples["sheetfill_run_duration_seconds_sum"]
    assert seconds.value == pytest.approx(ledger_run["finished"] - ledger_run["started"])


def test_an_interrupted_run_is_reported_by_the_logger_plugin_sink(sample):
    """The gate never runs: the plugin's TelemetrySink reports the run and the bundles that finished."""
    import signal

    with Receiver() as receiver:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SHEETFILL_", "TRACEPARENT"))}
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
        command = sample.command("--cores", "1", since="2025-09-29")
        # a shell's background job starts with SIGINT ignored, and Python then keeps ignoring it
        default_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
        proc = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=default_sigint
        )
        for _ in range(1200):  # bounded: 1200 x 0.1 s
            if any((sample.restore / "outputs").glob("*/bundle.json")) or proc.poll() is not None:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, output
    finished = summaries(sample)
    assert 0 < len(finished) < 6, "the run finished before it could be interrupted"
    metrics = receiver.metrics()
    assert total(metrics["sheetfill.run.duration"], status="failed") == 1
    assert total(metrics["sheetfill.bundles"], status="ok") == len(finished) == total(metrics["sheetfill.bundles"])
    (root,) = [s for s in receiver.spans() if s.name == "sheetfill.run"]
    assert root.status.code == root.status.STATUS_CODE_ERROR and "interrupted" in root.status.message
    bundles = {attributes(s)["sheetfill.bundle"] for s in receiver.spans() if s.name == "sheetfill.bundle"}
    assert bundles == set(finished)


def test_the_telemetry_key_takes_off_also_as_yaml_reads_it():
    from sheetfill.errors import ConfigError
    from sheetfill.runs.config import load_settings, load_yaml

    base = {"archive_root": str(REPO / "sample" / "archives")}
    assert load_settings({**base, **load_yaml("telemetry: off")}).telemetry == "off"  # YAML 1.1: off is False
    assert load_settings(base).telemetry == "auto"
    with pytest.raises(ConfigError, match="telemetry"):
        load_settings({**base, "telemetry": "on"})


def test_a_bare_failure_record_next_to_an_older_build_counts_as_this_runs_failure(tmp_path, monkeypatch):
    """The job boundary's last resort writes bundle.json alone; the previous build's provenance stays."""
    from sheetfill.bundle.failure import record_failure
    from sheetfill.telemetry.context import prepare_run
    from sheetfill.telemetry.outcomes import report_from_gate
    from sheetfill.telemetry.stages import StageClock

    for name in [k for k in os.environ if k.startswith(("OTEL_", "SHEETFILL_", "TRACEPARENT"))]:
        monkeypatch.delenv(name)
    old, new, outputs = tmp_path / "outputs" / "2025-09-29--v1", tmp_path / "outputs" / "2025-09-30--v1", []
    monkeypatch.setenv("SHEETFILL_RUN_ID", "earlier-run")
    for folder in (old, new):
        folder.mkdir(parents=True)
        (folder / "bundle.json").write_text(json.dumps({"bundle": folder.name, "status": "ok"}))
        (folder / "provenance.json").write_text(json.dumps({"job": StageClock().record()}))
        outputs.append(folder)
    with Receiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("SHEETFILL_RUN_ID", "this-run")
        prepare_run(True, kind="scheduled", profile="aviation", restore_root=str(tmp_path))
        record_failure(new, tmp_path / "restored", new.name, "the job could not write its record")
        report_from_gate(outputs, False)
    bundles = receiver.metrics()["sheetfill.bundles"]
    assert total(bundles, status="failed_processing") == 1 and total(bundles, status="skipped") == 1
    (span,) = [s for s in receiver.spans() if s.name == "sheetfill.bundle"]
    assert attributes(span)["sheetfill.bundle"] == new.name and "could not write" in span.status.message
