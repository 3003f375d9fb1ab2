"""One bundle, end to end: restore → refine → validate → provenance → bundle.json.

Whatever fails inside (bad content, a full disk, a bug) is recorded as status failed_processing so
that the rest of the run, the data docs and the gate still happen (sheetfill.bundle.failure).
Outputs are staged in a hidden sibling folder and renamed into place at the end, so a killed
job never leaves a folder that looks finished.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from sheetfill import __version__
from sheetfill.bundle import reserve
from sheetfill.bundle.failure import account_members, failed_members, failure_message
from sheetfill.bundle.restore import fresh_staging, restore_archive, sha256_file
from sheetfill.errors import BundleError
from sheetfill.runs.config import Limits
from sheetfill.telemetry.stages import StageClock


@dataclass(frozen=True)
class BundleJob:
    archive: Path
    bundle: str
    restored: Path
    outputs: Path
    profile: str
    limits: Limits
    window: dict
    history: Path | None = None  # where the previous build's records are kept for diffs


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def write_json(path: Path, payload) -> None:
    Path(path).write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def package_versions() -> dict:
    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {"sheetfill": __version__, "snakemake": version("snakemake"), "pandas": version("pandas")}


def process_bundle(job: BundleJob) -> dict:
    """Build job.outputs for one bundle; return the bundle.json summary.

    Any exception inside becomes a failed_processing record (sheetfill.bundle.failure); the staged
    outputs and the restored copy of a failed bundle are dropped before its record is written, so
    that a full disk has room for the record, the log and the other bundles.
    """
    started = now()
    clock = StageClock()  # stage timings and task metadata, for telemetry and the ledger (provenance "job")
    staging = fresh_staging(job.outputs)
    provenance = {"bundle": job.bundle, "window": job.window, "versions": package_versions(), "started": started}
    summary = {
        "bundle": job.bundle,
        "date": job.bundle.split("--")[0],
        "version": job.bundle.split("--", 1)[1],
        "status": "ok",
        "error": None,
        "counts": {},
        "quality": {},
        "validation": None,
        "diff": None,
    }
    step = ["restore"]  # the stage running now, named in the error
    try:
        make_staging(staging, job.outputs.parent.parent)
        provenance["archive"] = _archive_facts(job.archive, job.bundle)
        with clock.stage("restore"):
            provenance["members"] = restore_archive(job.archive, job.restored, job.limits)
        summary.update(_refine_and_validate(job, staging, provenance, clock, step))
        summary["members"] = account_members(provenance["members"], provenance.get("sources", []))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # the job boundary: every failure becomes a record, a Rust panic too
        summary.update(status="failed_processing", error=failure_message(job.bundle, step[0], exc))
        summary.update(
            failed_members(job.archive, job.restored, job.limits.max_members, provenance.get("sources"), step[0])
        )
        _empty_staging(staging)
        shutil.rmtree(job.restored, ignore_errors=True)  # a copy of the archive: room for other bundles
        job.restored.mkdir(parents=True, exist_ok=True)  # the declared output exists, empty
    provenance["finished"] = now()
    provenance["job"] = clock.record()
    try:
        write_json(staging / "provenance.json", provenance)
    except OSError as exc:  # a full disk: the record still fits in the room reserved for it
        summary.update(status="failed_processing", error=failure_message(job.bundle, "write", exc))
        _empty_staging(staging)
    try:
        write_reserved(staging / "bundle.json", summary)
    except OSError:  # a full disk, and the members list outgrew the room reserved: the verdict still fits
        write_reserved(
            staging / "bundle.json",
            {**summary, "members": None, "members_not_listed": len(summary.get("members") or [])},
        )
    shutil.rmtree(job.outputs, ignore_errors=True)
    staging.rename(job.outputs)
    return summary


def make_staging(staging: Path, restore_root: Path) -> None:
    """The staging folder, with room for bundle.json allocated from the start so that a full disk
    cannot stop the record; on a disk already full, a folder of the run's reserve pool instead."""
    try:
        staging.mkdir(parents=True)
        if reserve.allocate(staging / "bundle.json"):
            return
        (staging / "bundle.json").unlink()
        staging.rmdir()
    except OSError:
        pass
    if not reserve.take(restore_root, "record", staging):
        staging.mkdir(parents=True, exist_ok=True)  # no slot left: the record may still fit


def write_reserved(path: Path, payload) -> None:
    """Write into the reserved file without truncating first (that would give the room back)."""
    data = (json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n").encode()
    with open(path, "r+b" if path.exists() else "wb") as handle:
        handle.write(data)
        handle.truncate(len(data))


def _empty_staging(staging: Path) -> None:
    """Drop a failed bundle's partial outputs (room for its record and log); keep the reservation."""
    staging.mkdir(parents=True, exist_ok=True)
    for entry in staging.iterdir():
        if entry.name != "bundle.json":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def _archive_facts(archive: Path, bundle: str) -> dict:
    if archive.is_dir():  # the workflow's stand-in for an archive this user cannot read
        archive = Path(json.loads(os.environ.get("SHEETFILL_UNREADABLE") or "{}").get(bundle, archive))
    try:
        return {"path": str(archive.resolve()), "size": archive.stat().st_size, "sha256": sha256_file(archive)}
    except OSError as exc:
        reason = "permission denied" if isinstance(exc, PermissionError) else exc.strerror or str(exc)
        raise BundleError(f"archive {archive} cannot be read: {reason}; fix its permissions or re-capture it") from None


def _refine_and_validate(job: BundleJob, staging: Path, provenance: dict, clock: StageClock, step: list) -> dict:
    from sheetfill.bundle.profiles import load_profile
    from sheetfill.bundle.validation import validate
    from sheetfill.refine import refine_bundle, write_outputs

    step[0] = "refine"
    profile = load_profile(job.profile)
    provenance["profile"] = {"name": profile.name, "path": str(profile.path), "sha256": profile.sha256}
    refine_started = time.time()
    result = refine_bundle(job.restored, profile)
    clock.sequence(refine_started, result.timings)  # read, normalise, resolve
    provenance["sources"] = result.sources
    step[0] = "write"
    with clock.stage("write"):
        write_outputs(result, staging)
    step[0] = "validate"
    with clock.stage("validate"):
        report = validate(result.records, profile, sources=result.frames)
    write_json(staging / "validation.json", report)
    failed = [r for r in report.get("results", []) if not r.get("success")]
    return {
        "status": "ok" if report["success"] else "failed_validation",
        "counts": result.counts,
        "quality": result.quality,
        "validation": {
            "success": report["success"],
            "evaluated": len(report.get("results", [])),
            "failed": len(failed),
        },
        "diff": _diff_with_previous_build(job, staging / "refined.parquet"),
    }


def _previous_build(job: BundleJob) -> Path | None:
    return job.history / f"{job.bundle}.parquet" if job.history else None


def _diff_with_previous_build(job: BundleJob, refined: Path) -> dict | None:
    """Records added / removed / changed since the last complete build of this bundle."""
    previous = _previous_build(job)
    if previous is None or not previous.exists():
        return None
    from sheetfill.bundle.diff import diff_records, read_for_diff

    return diff_records(read_for_diff(previous), read_for_diff(refined))
