"""The plan of a window with a reason per bundle (the same plan as `snakemake -n`), run in a child process.

The plan comes from sheetfill.dryrun, which asks Snakemake's own DAG. It runs in a subprocess so
Snakemake's process-wide state (working directory, logging, signal handlers) never touches the
server. `python -m sheetfill.service.planning INPUT.json` prints the plan as JSON; with
`--record RUN_ID` it also records it in the ledger as that (dry) run's bundle slots.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from sheetfill.errors import SheetfillError

PLAN_TIMEOUT_S = 600


class PlanError(Exception):
    """The planner failed for a reason other than bad input."""


def plan_window(settings, since=None, until=None, versions=None, forced=(), bundles=None) -> dict:
    """{bundles: [{bundle, reason, detail}], up_to_date, run_jobs, note}; bad input raises ConfigError."""
    from sheetfill.errors import ConfigError

    payload = {
        "config": settings.run_config(since, until, versions, bundles),
        "workdir": str(settings.workdir),
        "snakefile": str(settings.snakefile),
        "forcerun": list(forced),
    }
    done = subprocess.run(
        [sys.executable, "-m", "sheetfill.service.planning", "-"],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=PLAN_TIMEOUT_S,
        cwd=settings.workdir,
    )
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise PlanError(f"the planner failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}") from None
    if "error" in answer:
        raise ConfigError(answer["error"])
    return answer


def compute(payload: dict) -> dict:
    from sheetfill.dryrun import dry_run

    plan = dry_run(
        payload["config"],
        forcerun=tuple(payload.get("forcerun") or ()),
        snakefile=Path(payload["snakefile"]),
        workdir=Path(payload["workdir"]),
    )
    return plan.as_dict()


def record(run_id: str, plan: dict, restore_root) -> None:
    """The plan as a dry run's slots: planned (with why) or skipped as up to date."""
    from sheetfill.runs.ledger import Ledger

    ledger = Ledger.for_root(restore_root)
    try:
        with ledger.transaction():
            for item in plan["bundles"]:
                reason = f"{item['reason']}: {item['detail']}" if item.get("detail") else item["reason"]
                ledger.update_slot(run_id, item["bundle"], status="planned", reason=reason)
            ledger.add_slots(run_id, plan.get("window_bundles") or [], status="skipped", reason="up to date")
            ledger.set_status(run_id, "succeeded", finished=time.time())
            ledger.add_event(run_id, "run_finished", {"status": "succeeded", "planned": len(plan["bundles"])})
    finally:
        ledger.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sheetfill.service.planning")
    parser.add_argument("input", help="JSON file with config, workdir, snakefile, forcerun ('-': stdin)")
    parser.add_argument("--record", metavar="RUN_ID", help="record the plan as this dry run's bundle slots")
    args = parser.parse_args(argv)
    payload = json.loads(sys.stdin.read() if args.input == "-" else Path(args.input).read_text())
    try:
        plan = compute(payload)
    except SheetfillError as error:
        print(json.dumps({"error": str(error)}))
        return 2
    if args.record:
        from sheetfill.runs.plan import make_plan

        plan["window_bundles"] = make_plan(payload["config"]).bundles
        record(args.record, plan, payload["config"]["restore_root"])
    print(json.dumps(plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
