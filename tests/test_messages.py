"""Messages that tell the truth, and output archives that hold only outputs (real Snakemake runs)."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from sheetfill.errors import ConfigError
from sheetfill.runs.config import load_settings

pytestmark = pytest.mark.slow

NOTHING_NEW = "Nothing new"


@pytest.fixture
def caught_up(workflow):
    """A scheduled run has processed every archive: the cursor is at the newest date."""
    workflow.run()
    return workflow


def test_a_scheduled_rerun_says_nothing_new_and_runs_no_job(caught_up):
    done = caught_up.run()
    out = done.stdout + done.stderr
    assert NOTHING_NEW in out and "Nothing to be done" in out
    assert "rule all" not in out  # not even the `all` job runs
    planned = caught_up.run("-n")
    assert "Nothing to be done" in planned.stdout + planned.stderr


def test_nothing_new_only_when_the_scheduled_run_targets_nothing(caught_up):
    target = str(caught_up.outputs("2025-09-29--v1"))
    for args in (["-n", target], ["--unlock"], ["--report", str(caught_up.restore / "r.zip")]):
        done = caught_up.run(*args)
        assert NOTHING_NEW not in done.stdout + done.stderr, args


def test_an_unknown_version_is_an_error_in_scheduled_runs_too(caught_up):
    done = caught_up.run(check=False, versions=["v3"])
    assert done.returncode != 0
    assert "versions v3 not found in any archive; versions that exist: v1, v2" in done.stderr
    assert NOTHING_NEW not in done.stderr


@pytest.mark.parametrize(("text", "value"), [("true", True), ("yes", True), ("False", False), ("no", False)])
def test_boolean_keys_accept_the_words_yaml_users_write(tmp_path, text, value):
    settings = load_settings({"archive_root": str(tmp_path), "archive": text})
    assert settings.archive is value


def test_a_non_boolean_word_names_the_key_and_the_fix(tmp_path):
    with pytest.raises(ConfigError, match=r"archive='maybe' is not a boolean. Use true/false \(or yes/no\)"):
        load_settings({"archive_root": str(tmp_path), "archive": "maybe"})


def test_archive_true_on_the_command_line_packs_only_refined_files(workflow):
    workflow.run(since="2025-09-29", until="2025-09-29", versions=["v1"], archive="true")
    outputs = workflow.outputs("2025-09-29--v1")
    refined = sorted(p.name for p in outputs.iterdir() if not p.name.startswith("."))
    assert (outputs / ".snakemake_timestamp").exists()  # Snakemake's marker is there, but not packed
    with zipfile.ZipFile(workflow.restore / "outputs" / "2025-09-29--v1.zip") as zf:
        assert sorted(zf.namelist()) == sorted([*refined, "SHA256SUMS"])
        sums = dict(reversed(line.split("  ", 1)) for line in zf.read("SHA256SUMS").decode().splitlines())
        assert sorted(sums) == refined
        assert all(hashlib.sha256(zf.read(name)).hexdigest() == digest for name, digest in sums.items())


def test_sample_says_where_it_wrote_and_the_exact_backfill_command(tmp_path, capsys):
    import shlex

    from sheetfill.sample import main

    out = tmp_path / "my-archives"
    assert main(["--out", str(out), "--days", "2", "--versions", "v1", "--scale", "0.02"]) == 0
    first, _, command = capsys.readouterr().out.strip().splitlines()
    assert first == f"wrote 2 archives (2 dates x 1 versions) under {out}"
    args = shlex.split(command)
    assert args[:2] == ["sheetfill", "backfill"] and args[args.index("--archive-root") + 1] == str(out)
    assert (args[args.index("--start-date") + 1], args[args.index("--end-date") + 1]) == ("2025-09-29", "2025-09-30")
