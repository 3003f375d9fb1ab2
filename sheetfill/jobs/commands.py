"""The job commands themselves (`bundle`, `pack`), run in this process: by the job entry when no
warm worker is used, and by a worker for its clients. Imports stay inside functions (see job.py)."""

from __future__ import annotations

import os
import sys


def enable_site() -> None:
    """Job clients start with `python -S` (site costs ~30 ms a job); heavy work needs site-packages."""
    if sys.flags.no_site:
        import site

        site.main()


def _parser():
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m sheetfill.jobs.job")
    sub = parser.add_subparsers(dest="command", required=True)
    bundle = sub.add_parser("bundle", help="restore, refine and validate one bundle")
    bundle.add_argument("--archive", type=Path, required=True)
    bundle.add_argument("--bundle", required=True)
    bundle.add_argument("--restored", type=Path, required=True)
    bundle.add_argument("--outputs", type=Path, required=True)
    bundle.add_argument("--profile", required=True)
    bundle.add_argument(
        "--limits",
        default=os.environ.get("SHEETFILL_LIMITS"),
        required="SHEETFILL_LIMITS" not in os.environ,
        help="JSON of sheetfill.runs.config.Limits (default: $SHEETFILL_LIMITS)",
    )
    bundle.add_argument(
        "--window",
        default=os.environ.get("SHEETFILL_WINDOW", "{}"),
        help="JSON describing the run's window, for provenance (default: $SHEETFILL_WINDOW)",
    )
    bundle.add_argument("--history", type=Path, default=None)
    pack = sub.add_parser("pack", help="zip one bundle's outputs with SHA256SUMS")
    pack.add_argument("--outputs", type=Path, required=True)
    pack.add_argument("--zip", type=Path, required=True)
    return parser


def run_bundle(args) -> int:
    """Process one bundle. Exit 0 whenever bundle.json records the outcome, failed or not, so that
    Snakemake keeps it and the data docs and the gate run; 1 only when not even that could be written."""
    try:
        summary = _process(args)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # the job boundary, outside process_bundle's own guard (a Rust panic too)
        from sheetfill.bundle.failure import failed_members, failure_message, record_failure

        error = failure_message(args.bundle, "job", exc)
        print(error, file=sys.stderr)
        try:
            members = failed_members(args.archive, args.restored, _max_members(args), None, "job")
            record_failure(args.outputs, args.restored, args.bundle, error, members)
        except OSError as again:
            print(f"{args.bundle}: could not record the failure either: {again}", file=sys.stderr)
            return 1
        return 0
    print(f"{summary['bundle']}: {summary['status']}" + (f" — {summary['error']}" if summary["error"] else ""))
    return 0


def _max_members(args) -> int:
    """How many members a failure record lists: limits.max_members, or the default when the limits
    themselves are what failed."""
    import json

    try:
        return int(json.loads(args.limits)["max_members"])
    except (TypeError, ValueError, KeyError):
        return 10_000


def _process(args) -> dict:
    import json

    from sheetfill.bundle.process import BundleJob, process_bundle
    from sheetfill.runs.config import Limits

    job = BundleJob(
        archive=args.archive,
        bundle=args.bundle,
        restored=args.restored,
        outputs=args.outputs,
        profile=args.profile,
        limits=Limits(**json.loads(args.limits)),
        window=json.loads(args.window),
        history=args.history,
    )
    return process_bundle(job)


def run_pack(args) -> int:
    from sheetfill.bundle.packing import pack_outputs

    pack_outputs(args.outputs, args.zip)
    return 0


def run_in_process(argv: list[str]) -> int:
    enable_site()
    if argv[:1] == ["enrich"]:  # network enrichment parses its own options
        from sheetfill.enrich.job import main

        return main(argv[1:])
    args = _parser().parse_args(argv)
    return {"bundle": run_bundle, "pack": run_pack}[args.command](args)
