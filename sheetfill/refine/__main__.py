"""Refine one restored bundle folder from the command line (also what the bench times as a whole process).

    python -m sheetfill.refine BUNDLE_DIR OUT_DIR [--profile aviation] [--no-xlsx]

Prints the counts and seconds per stage as JSON; exit code 2 on a bundle or profile problem.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sheetfill.refine")
    parser.add_argument("bundle_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--profile", default="aviation", help="data profile name or path (default: aviation)")
    parser.add_argument("--no-xlsx", action="store_true", help="write parquet and rejected.csv only")
    args = parser.parse_args(argv)

    from sheetfill.bundle.profiles import load_profile
    from sheetfill.errors import SheetfillError
    from sheetfill.refine import refine_bundle, write_outputs

    try:
        result = refine_bundle(args.bundle_dir, load_profile(args.profile))
        started = time.perf_counter()
        write_outputs(result, args.out_dir, xlsx=not args.no_xlsx)
        result.timings["write"] = time.perf_counter() - started
    except SheetfillError as exc:
        print(f"sheetfill: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"counts": result.counts, "seconds": {k: round(v, 4) for k, v in result.timings.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
