"""Command line: `sheetfill backfill|cursor|sample`. A thin layer over sheetfill.api.

Exit codes: 0 every bundle ok, 1 some bundle failed, 2 bad input (nothing was run).
"""

from __future__ import annotations

import argparse
import sys

from sheetfill.errors import SheetfillError


def _add_location_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--archive-root", help="folder holding the archived bundles")
    parser.add_argument("--restore-root", help="where bundles are restored and outputs written")
    parser.add_argument("--cursor-file", help="where the scheduled-run cursor is stored")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sheetfill", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    backfill = sub.add_parser("backfill", help="replay a window of archives (without --start-date: scheduled run)")
    backfill.add_argument("--start-date", help="first date, YYYY-MM-DD, inclusive; makes the run a backfill")
    backfill.add_argument("--end-date", help="last date, YYYY-MM-DD, inclusive")
    backfill.add_argument("--version", action="append", dest="versions", help="a version to process (repeatable)")
    backfill.add_argument("--archive-pattern", help="e.g. '{date}/hotpass-inputs-{version}.zip'")
    backfill.add_argument("--profile", help="data profile name (config/profiles/) or YAML path")
    backfill.add_argument("--cores", type=int, default=2)
    backfill.add_argument("--dry-run", action="store_true", help="list the bundles that would run")
    backfill.add_argument("--archive", action="store_true", default=None, help="also zip each bundle's outputs")
    backfill.add_argument("--force", action="store_true", help="redo every bundle of the window")
    _add_location_options(backfill)

    cursor = sub.add_parser("cursor", help="show or reset the scheduled-run cursor")
    cursor.add_argument("action", choices=["show", "reset"])
    _add_location_options(cursor)

    sub.add_parser("sample", help="generate Hotpass-shaped sample archives (sheetfill sample -h)", add_help=False)

    from sheetfill.service.serve import add_runs_arguments, add_serve_arguments

    add_serve_arguments(sub.add_parser("serve", help="the run service: REST API and web UI (docs/service.md)"))
    add_runs_arguments(sub.add_parser("runs", help="list, show, cancel or retry runs of the run ledger"))
    return parser


def cmd_backfill(args: argparse.Namespace) -> int:
    import os

    from sheetfill.api import run

    os.environ.setdefault("SHEETFILL_ORIGIN", "cli")  # recorded in the run ledger

    result = run(
        since=args.start_date,
        until=args.end_date,
        versions=args.versions,
        cores=args.cores,
        dry_run=args.dry_run,
        archive_root=args.archive_root,
        restore_root=args.restore_root,
        archive_pattern=args.archive_pattern,
        profile=args.profile,
        archive=args.archive,
        cursor_file=args.cursor_file,
        forcerun=("bundle",) if args.force else (),
    )
    if result.note and not args.dry_run:
        print(result.note)
    if result.bundles:
        print(result.summary())  # once: failures first, ending with the data docs' path
    if args.dry_run:
        print(result.note)
    return 0 if result.ok else 1


def cmd_cursor(args: argparse.Namespace) -> int:
    from sheetfill.api import base_config, build_config
    from sheetfill.runs.config import load_settings
    from sheetfill.runs.cursor import read_cursor, reset_cursor

    overrides = build_config(
        archive_root=args.archive_root, restore_root=args.restore_root, cursor_file=args.cursor_file
    )
    path = load_settings({**base_config(), **overrides}, check_paths=False).cursor_file
    if args.action == "reset":
        print(f"cursor reset ({path})" if reset_cursor(path) else f"no cursor to reset ({path})")
    else:
        cursor = read_cursor(path)
        none_yet = f"no cursor yet ({path}): the next run processes every archive"
        print(f"{cursor.isoformat()} ({path})" if cursor else none_yet)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["sample"]:  # its own parser: argparse's REMAINDER would not pass on leading options
        from sheetfill.sample import main as sample_main

        return sample_main(argv[1:]) or 0
    args = _parser().parse_args(argv)
    try:
        if args.command in ("serve", "runs"):
            from sheetfill.service.serve import cmd_runs, cmd_serve

            return {"serve": cmd_serve, "runs": cmd_runs}[args.command](args)
        return {"backfill": cmd_backfill, "cursor": cmd_cursor}[args.command](args)
    except SheetfillError as error:
        print(f"sheetfill: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
