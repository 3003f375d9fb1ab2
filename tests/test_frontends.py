"""The CLI and the Python API drive the same workflow and report per-bundle results."""

import subprocess

import pytest

import sheetfill
from sheetfill.errors import ConfigError

pytestmark = pytest.mark.slow


def test_python_api_runs_the_window_and_reports_each_bundle(archives, tmp_path):
    restore = tmp_path / "restore"
    planned = sheetfill.run(
        since="2025-09-30",
        until="2025-10-01",
        versions=["v1"],
        dry_run=True,
        archive_root=archives,
        restore_root=restore,
    )
    assert [(b.bundle, b.status) for b in planned.bundles] == [
        ("2025-09-30--v1", "planned"),
        ("2025-10-01--v1", "planned"),
    ]
    assert not restore.exists()
    result = sheetfill.run(
        since="2025-09-30", until="2025-10-01", versions=["v1"], cores=2, archive_root=archives, restore_root=restore
    )
    assert result.ok and [b.status for b in result.bundles] == ["ok", "ok"]
    assert all((b.outputs / "refined.parquet").exists() for b in result.bundles)


def test_python_api_reports_failed_bundles_and_bad_input(archives, tmp_path):
    (archives / "2025-09-29" / "hotpass-inputs-v2.zip").write_bytes(b"garbage")
    result = sheetfill.run(until="2025-09-29", archive_root=archives, restore_root=tmp_path / "r", cores=2)
    assert not result.ok
    assert [(b.bundle, b.status) for b in result.failed] == [("2025-09-29--v2", "failed_processing")]
    assert "not a readable zip" in result.failed[0].error
    with pytest.raises(ConfigError, match="is after until"):
        sheetfill.run(since="2025-10-01", until="2025-09-01", archive_root=archives, restore_root=tmp_path / "r")


def cli(*args):
    return subprocess.run(["sheetfill", *args], capture_output=True, text=True, timeout=600)


def test_cli_backfill_exit_codes(archives, tmp_path):
    common = ["--archive-root", str(archives), "--restore-root", str(tmp_path / "r")]
    done = cli("backfill", "--start-date", "2025-09-29", "--end-date", "2025-09-29", "--version", "v2", *common)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].split() == ["2025-09-29--v2", "ok"]
    assert done.stdout.splitlines()[-1] == f"data docs: {tmp_path / 'r' / 'data-docs' / 'index.html'}"
    assert "Select jobs to execute" not in done.stderr  # no job chatter: one progress line instead
    assert "sheetfill: 4/4 jobs · 1 bundles done" in done.stderr
    dry = cli("backfill", "--start-date", "2025-09-30", "--end-date", "2025-10-01", "--dry-run", *common)
    assert [line.split()[0] for line in dry.stdout.splitlines()[:-1]] == [
        "2025-09-30--v1",
        "2025-09-30--v2",
        "2025-10-01--v1",
        "2025-10-01--v2",
    ]
    bad = cli("backfill", "--start-date", "2025-02-30", *common)
    assert bad.returncode == 2 and "since='2025-02-30' is not a valid date" in bad.stderr
    (archives / "2025-10-01" / "hotpass-inputs-v1.zip").write_bytes(b"")
    failed = cli("backfill", "--start-date", "2025-10-01", *common)
    assert failed.returncode == 1 and "2025-10-01--v1" in failed.stdout and "failed_processing" in failed.stdout
    shown = cli("cursor", "show", *common)
    assert shown.returncode == 0 and "no cursor yet" in shown.stdout  # backfills never set it


def test_cli_backfill_with_a_failing_bundle_prints_one_summary_failures_first_then_the_docs(archives, tmp_path):
    (archives / "2025-09-30" / "hotpass-inputs-v1.zip").write_bytes(b"garbage")
    restore = tmp_path / "r"
    common = ["--archive-root", str(archives), "--restore-root", str(restore)]
    done = cli("backfill", "--start-date", "2025-09-29", "--end-date", "2025-09-30", *common)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    listed = [line.split()[:2] for line in lines if line.startswith("2025-")]
    assert listed == [
        ["2025-09-30--v1", "failed_processing"],
        ["2025-09-29--v1", "ok"],
        ["2025-09-29--v2", "ok"],
        ["2025-09-30--v2", "ok"],
    ]  # each bundle once: one summary, the failure first
    assert lines[-3] == "1 of 4 bundles failed." and lines[-2].startswith("run ")  # the ledger's run id
    assert lines[-1] == f"data docs: {restore / 'data-docs' / 'index.html'}"
    assert "run summary" not in done.stdout + done.stderr  # the gate's copy is not printed as well
    progress = [line for line in done.stderr.splitlines() if line.startswith("sheetfill: ") and " jobs · " in line]
    assert progress[-1].startswith("sheetfill: 6/7 jobs · 3 bundles done · 1 failed")  # the failed bundle is no "done"


def test_a_plain_snakemake_run_ends_with_the_data_docs_path_failed_or_not(workflow):
    docs_line = f"data docs: {workflow.restore / 'data-docs' / 'index.html'}"
    done = workflow.run()
    assert done.stderr.splitlines()[-1] == docs_line, done.stderr[-2000:]
    (workflow.archives / "2025-10-01" / "hotpass-inputs-v2.zip").write_bytes(b"garbage")
    failed = workflow.run(check=False, since="2025-10-01")
    assert failed.returncode == 1
    assert "At least one job did not complete successfully" in failed.stderr  # Snakemake's last words come first
    assert failed.stderr.splitlines()[-1] == docs_line, failed.stderr[-2000:]


def test_cli_sample_writes_archives_and_ground_truth(tmp_path):
    done = cli(
        "sample",
        "--out",
        str(tmp_path),
        "--days",
        "2",
        "--versions",
        "v1",
        "--scale",
        "0.02",
        "--pattern",
        "inputs-{date:%Y%m%d}-v{version}.zip",
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.glob("*.zip")) == ["inputs-20250929-vv1.zip", "inputs-20250930-vv1.zip"]
    assert any((tmp_path / "ground_truth").iterdir())
