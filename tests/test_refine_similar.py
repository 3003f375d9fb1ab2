"""Similar names found ahead in a child process (similar.similar_names_ahead): the same pairs as
found here, whatever happens to the child."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from test_refine_parallel import alive

from sheetfill.bundle.profiles import load_profile
from sheetfill.refine import refine_bundle, similar, write_outputs
from sheetfill.sample import generate_bundle

WORDS = ["lowveld", "condor", "highveld", "horizon", "karoo", "aero", "sky", "blue", "falcon", "flight", "club", "7"]


def typo_names(count: int, seed: int = 0) -> np.ndarray:
    """Distinct three-word names, a third of them again with one letter changed or a space moved."""
    rng = np.random.default_rng(seed)
    names = {" ".join(rng.choice(WORDS, 3)) + f" {n}" for n in range(count)}
    variants = set()
    for name in sorted(names)[: count // 3]:
        at = int(rng.integers(1, len(name) - 1))
        variants.add(name[:at] + "x" + name[at + 1 :] if rng.random() < 0.5 else name.replace(" ", "", 1) + " ")
    return np.array(sorted(names | {v.strip() for v in variants}), dtype=object)


def same_pairs(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.fixture
def ahead_always(monkeypatch):
    monkeypatch.setattr(similar, "AHEAD_MIN_KEYS", 0)
    monkeypatch.setenv("SHEETFILL_PROCESSES", "2")


def test_a_child_process_finds_the_same_pairs_as_this_one(ahead_always):
    keys = typo_names(3000)
    here = similar.similar_name_pairs(keys, 80.0, 4)
    assert len(here[0]) > 100  # the typos are found
    with similar.similar_names_ahead(keys, 80.0, 4) as pairs:
        child = pairs.__self__.process
        assert same_pairs(pairs(), here)
        assert child.returncode == 0  # it ran to the end, in its own process
    assert child.poll() is not None


def test_a_killed_child_leaves_the_pairs_to_this_process(ahead_always):
    keys = typo_names(2000, seed=1)
    with similar.similar_names_ahead(keys, 80.0, 4) as pairs:
        child = pairs.__self__.process
        child.kill()
        assert same_pairs(pairs(), similar.similar_name_pairs(keys, 80.0, 4))
    assert child.returncode != 0


def test_the_child_is_stopped_when_the_block_fails(ahead_always):
    with pytest.raises(RuntimeError), similar.similar_names_ahead(typo_names(2000), 80.0, 4) as pairs:
        child = pairs.__self__.process
        raise RuntimeError("clustering failed")
    assert child.poll() is not None


def test_few_keys_or_one_process_start_no_child(monkeypatch):
    monkeypatch.setattr(similar.subprocess, "Popen", None)  # any child would fail the test
    keys = typo_names(500)
    with similar.similar_names_ahead(keys, 80.0, 4) as pairs:
        assert same_pairs(pairs(), similar.similar_name_pairs(keys, 80.0, 4))
    monkeypatch.setattr(similar, "AHEAD_MIN_KEYS", 0)
    monkeypatch.setenv("SHEETFILL_PROCESSES", "1")
    with similar.similar_names_ahead(keys, 80.0, 4) as pairs:
        assert len(pairs()[0])
    monkeypatch.setenv("SHEETFILL_PROCESSES", "2")
    odd = np.append(keys, ["two\nlines"])  # would not travel as one line each
    with similar.similar_names_ahead(odd, 80.0, 4) as pairs:
        assert same_pairs(pairs(), similar.similar_name_pairs(odd, 80.0, 4))


def test_a_bundle_refined_with_the_pairs_found_ahead_gives_the_same_bytes(tmp_path, monkeypatch):
    generate_bundle(tmp_path / "b.zip", dt.date(2025, 9, 29), "v1", scale=1.0, seed=3)
    with zipfile.ZipFile(tmp_path / "b.zip") as archive:
        archive.extractall(tmp_path / "bundle")
    started = []
    monkeypatch.setattr(similar.PairsProcess, "__init__", recording(similar.PairsProcess.__init__, started))
    written = {}
    for label, minimum in (("here", 10**9), ("ahead", 0)):
        monkeypatch.setattr(similar, "AHEAD_MIN_KEYS", minimum)
        monkeypatch.setenv("SHEETFILL_PROCESSES", "2")
        result = refine_bundle(tmp_path / "bundle", load_profile("aviation"))
        paths = write_outputs(result, tmp_path / label, xlsx=False)
        written[label] = {path.name: path.read_bytes() for path in paths}
    assert len(started) == 1  # only the second run found its pairs in a child
    assert written["ahead"] == written["here"]


def recording(init, calls: list):
    def wrapped(self, *args, **kwargs):
        calls.append(args)
        init(self, *args, **kwargs)

    return wrapped


HOLD_CHILD = """
import sys, time
import numpy as np
from sheetfill.refine import similar
similar.AHEAD_MIN_KEYS = 0
letters = lambda n: "".join(chr(97 + n // 26**p % 26) for p in range(4))
# neighbours one letter apart: ~300,000 pairs, more than a pipe holds, so the child waits to write them
keys = np.array([f"sky {letters(n)} aviation" for n in range(60000)], dtype=object)
with similar.similar_names_ahead(keys, 80.0, 4) as pairs:
    print(pairs.__self__.process.pid, flush=True)
    time.sleep(120)
"""


def test_the_child_exits_when_its_job_is_killed():
    """A bundle job killed while the child works (kill -9: no finally runs) must not leave it behind."""
    env = {**os.environ, "SHEETFILL_PROCESSES": "2"}
    job = subprocess.Popen(
        [sys.executable, "-c", HOLD_CHILD], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True
    )
    child = 0
    try:
        child = int(job.stdout.readline())
        time.sleep(1)
        assert alive(child)  # still at work, or waiting to hand its pairs over
        job.kill()
        job.wait(timeout=10)
        deadline = time.monotonic() + 60
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(child), "the similar-names child outlived its job"
    finally:
        job.kill()
        if child and alive(child):
            os.kill(child, signal.SIGKILL)
