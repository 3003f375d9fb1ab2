"""`sheetfill serve`: the run service on uvicorn, and `sheetfill runs`: the same ledger from the shell."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8080


def add_location_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--directory", "-d", help="the workflow directory (default: the current one)")
    parser.add_argument("--configfile", help="config file (default: config/config.yaml of the workflow directory)")


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--token-file", help="file holding the API token (else SHEETFILL_TOKEN)")
    parser.add_argument("--cores", type=int, default=2, help="--cores of each run's Snakemake")
    parser.add_argument("--heartbeat-timeout", type=float, default=30.0, help="seconds without a heartbeat -> failed")
    add_location_options(parser)


def add_runs_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="runs, newest first")
    listing.add_argument("--limit", type=int, default=20)
    show = actions.add_parser("show", help="one run with its bundles")
    cancel = actions.add_parser("cancel", help="cancel a queued or running run")
    cancel.add_argument("--now", action="store_true", help="stop running jobs (default: let them finish)")
    retry = actions.add_parser("retry", help="run again exactly the bundles that failed in a run")
    retry.add_argument("--queue", action="store_true", help="leave it queued for `sheetfill serve` to run")
    retry.add_argument("--cores", type=int, default=2)
    for sub in (listing, show, cancel, retry):
        add_location_options(sub)
    for sub in (show, cancel, retry):
        sub.add_argument("run_id")


def cmd_serve(args) -> int:
    import uvicorn

    from sheetfill.service.app import create_app
    from sheetfill.service.settings import check_binding, load_service_settings, read_token

    token = read_token(args.token_file)
    check_binding(args.host, token)
    settings = load_service_settings(
        args.directory, args.configfile, token, cores=args.cores, heartbeat_timeout_s=args.heartbeat_timeout
    )
    print(f"sheetfill serve: http://{args.host}:{args.port}/ (API docs at /docs), ledger of {settings.restore_root}")
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")
    return 0


def cmd_runs(args) -> int:
    from sheetfill.runs.ledger import Ledger
    from sheetfill.runs.recorder import mark_stale_runs
    from sheetfill.service import control
    from sheetfill.service.settings import load_service_settings

    settings = load_service_settings(args.directory, args.configfile, cores=getattr(args, "cores", 2))
    ledger = Ledger.for_root(settings.restore_root)
    mark_stale_runs(ledger, settings.heartbeat_timeout_s)  # a dead run never shows as running
    try:
        return {"list": _list, "show": _show, "cancel": _cancel, "retry": _retry}[args.action](args, settings, ledger)
    except (control.RunNotFound, control.RunConflict) as error:
        print(f"sheetfill: {error}", file=sys.stderr)
        return 2
    finally:
        ledger.close()


def _list(args, settings, ledger) -> int:
    from sheetfill.service.routes import run_view

    print(f"{'run':<26} {'status':<24} {'kind':<10} {'origin':<10} {'window':<24} bundles")
    for run in ledger.runs(limit=args.limit):
        view = run_view(ledger, run)
        window = f"{run['since'] or 'cursor'}..{run['until'] or 'newest'}"
        failed = f", {view['failed']} failed" if view["failed"] else ""
        print(
            f"{run['id']:<26} {run['status']:<24} {run['kind'] or '-':<10} {run['origin'] or '-':<10} {window:<24} "
            f"{view['done']}/{view['total'] or 0}{failed}"
        )
    return 0


def _show(args, settings, ledger) -> int:
    from sheetfill.service import control

    run = control.get_run(ledger, args.run_id)
    print(f"run {run['id']}: {run['status']} ({run['kind']}, from {run['origin']})")
    print(f"  window {run['since'] or 'cursor'}..{run['until'] or 'newest'}, versions {run['versions'] or 'all'}")
    if run["error"]:
        print(f"  error: {run['error']}")
    for slot in ledger.slots(run["id"]):
        duration = f"{slot['duration_s']:.1f}s" if slot["duration_s"] else "-"
        detail = slot["error"] or slot["reason"] or ""
        print(f"  {slot['bundle']:<26} {slot['status']:<18} {duration:>8}  {detail}".rstrip())
    return 0


def _cancel(args, settings, ledger) -> int:
    from sheetfill.service import control

    run = control.cancel(ledger, args.run_id, "now" if args.now else "drain")
    print(f"run {run['id']}: {run['status']}")
    return 0


def _retry(args, settings, ledger) -> int:
    """Queue the retry; unless --queue, run it here, in the foreground, like `sheetfill backfill`."""
    from sheetfill.service import control
    from sheetfill.service.runner import finish, spawn

    run = control.retry(settings, ledger, args.run_id, origin="cli", queue=args.queue)
    print(f"run {run['id']}: retry of {args.run_id}: {', '.join(run['request']['forced'])}")
    if args.queue:
        return 0
    now = time.time()
    if not ledger.set_status(run["id"], "running", only_from=("queued",), started=now, heartbeat=now):
        print(f"run {run['id']} was taken up by `sheetfill serve`; follow it with `sheetfill runs show {run['id']}`")
        return 0
    child = spawn(settings, run, die_with_parent=False)
    ledger.update_run(run["id"], pid=child.process.pid)
    try:
        returncode = child.process.wait()
    except KeyboardInterrupt:  # Snakemake has its own process group: hand the Ctrl-C on, let it stop its jobs
        os.killpg(child.process.pid, signal.SIGINT)
        returncode = child.process.wait()
    final = finish(ledger, run["id"], returncode, child.log)
    print(f"run {final['id']}: {final['status']} (log: {child.log})")
    return 0 if final["status"] == "succeeded" else 1
