"""Acting on runs through the ledger: queue one, cancel one, retry one. Shared by the API and `sheetfill runs`.

One active run per restore_root: the check and the insert happen in one ledger transaction, so two
requests never both get in. A cancel reaches the run's Snakemake by signal wherever it was started.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from sheetfill.errors import ConfigError
from sheetfill.runs.events import new_run_id
from sheetfill.runs.ledger import ACTIVE, FAILED_BUNDLE, FINAL, Ledger
from sheetfill.runs.lock import describe, holder
from sheetfill.runs.plan import make_plan


class RunNotFound(LookupError):
    pass


class RunConflict(Exception):
    """The request cannot be done now; run_id names the run in the way (if any)."""

    def __init__(self, message: str, run_id: str | None = None):
        super().__init__(message)
        self.run_id = run_id


def submit(
    settings,
    ledger: Ledger,
    *,
    since=None,
    until=None,
    versions=None,
    reprocess: str = "missing",
    dry_run: bool = False,
    origin: str = "api",
    queue: bool = False,
    forced: list[str] | None = None,
    retry_of: str | None = None,
    bundles: list[str] | None = None,
) -> dict:
    """Validate the window like the CLI does (ConfigError), then queue the run; RunConflict if one is active.

    `bundles` narrows the window to exactly those bundles (a retry, or cells chosen in the UI)."""
    plan = make_plan(settings.run_config(since, until, versions, bundles))
    if forced is None and reprocess == "failed":
        forced = _failed_in_window(ledger, plan.bundles)
    if plan.note and not plan.bundles:
        raise ConfigError(plan.note)
    request = {"forced": forced or [], "retry_of": retry_of, "bundles": list(plan.bundles) if bundles else None}
    run_id = new_run_id()
    with ledger.transaction():
        active = ledger.active_runs()
        if active and not queue:
            raise RunConflict(f"run {active[0]['id']} is {active[0]['status']} on this restore_root", active[0]["id"])
        locked = None if queue else holder(settings.restore_root)
        if locked is not None:  # a run the ledger does not know yet (still building its DAG) or will not
            raise RunConflict(f"another run holds the lock on this restore_root: {describe(locked)}")
        ledger.create_run(
            run_id,
            status="queued",
            kind="backfill" if plan.settings.backfill else "scheduled",
            origin=origin,
            since=since,
            until=until,
            versions=list(versions) if versions else None,
            reprocess=reprocess,
            force=reprocess == "all",
            dry_run=dry_run,
            request=request,
            bundles_planned=len(plan.bundles),
        )
        ledger.add_event(run_id, "queued", {"bundles_planned": len(plan.bundles), "retry_of": retry_of})
    return ledger.run(run_id)


def _failed_in_window(ledger: Ledger, bundles: list[str]) -> list[str]:
    wanted = set(bundles)
    latest = ledger.latest_bundles(limit=len(bundles) + 1_000_000)
    return sorted(b["bundle"] for b in latest if b["bundle"] in wanted and b["status"] in FAILED_BUNDLE)


def retry(settings, ledger: Ledger, run_id: str, origin: str = "api", queue: bool = False) -> dict:
    """A new run of exactly the bundles that failed in run_id, as the ledger recorded them, each
    forced; no other bundle of their dates runs (a backfill: the cursor never decides it)."""
    run = get_run(ledger, run_id)
    if run["status"] not in FINAL:
        raise RunConflict(f"run {run_id} is still {run['status']}; retry it once it has ended", run_id)
    failed = [s["bundle"] for s in ledger.slots(run_id) if s["status"] in FAILED_BUNDLE]
    if not failed:
        raise RunConflict(f"run {run_id} has no failed bundle to retry", run_id)
    dates = sorted(bundle.split("--", 1)[0] for bundle in failed)
    versions = sorted({bundle.split("--", 1)[1] for bundle in failed})
    return submit(
        settings,
        ledger,
        since=dates[0],
        until=dates[-1],
        versions=versions,
        reprocess="failed",
        origin=origin,
        queue=queue,
        forced=failed,
        retry_of=run_id,
        bundles=failed,
    )


def get_run(ledger: Ledger, run_id: str) -> dict:
    run = ledger.run(run_id)
    if run is None:
        raise RunNotFound(f"no run {run_id!r} in {ledger.path}")
    return run


def cancel(ledger: Ledger, run_id: str, mode: str = "drain", signal_run=None) -> dict:
    """Ask a run to stop: a queued one is cancelled at once, a running one is signalled.

    drain: SIGTERM to Snakemake (it starts no new job, lets running ones finish);
    now: SIGINT to its process group (running jobs stop; Snakemake also cancels cluster jobs).
    signal_run(run, mode) -> bool lets the service signal the processes it started itself.
    """
    run = get_run(ledger, run_id)
    if run["status"] in FINAL:
        raise RunConflict(f"run {run_id} already ended ({run['status']})", run_id)
    with ledger.transaction():
        if ledger.set_status(
            run_id, "cancelled", only_from=("queued",), cancel_mode=mode, error="cancelled before it started"
        ):
            ledger.set_slots_where(run_id, "pending", "not_run", "the run was cancelled first")
            ledger.add_event(run_id, "run_finished", {"status": "cancelled", "mode": mode})
            return ledger.run(run_id)
        ledger.set_status(run_id, "cancelling", only_from=("running", "cancelling"), cancel_mode=mode)
        ledger.add_event(run_id, "cancel_requested", {"mode": mode})
    run = ledger.run(run_id)
    if not (signal_run and signal_run(run, mode)):
        signal_snakemake(run.get("pid"), mode, group=run.get("origin") == "service")
    return ledger.run(run_id)


def signal_snakemake(pid, mode: str, group: bool = False) -> bool:
    """Send the cancel signal to a Snakemake we may not have started; False if it is gone."""
    if not pid or not is_snakemake(pid):
        return False
    try:
        if mode == "now" and group:
            os.killpg(pid, signal.SIGINT)
        else:
            os.kill(pid, signal.SIGINT if mode == "now" else signal.SIGTERM)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def is_snakemake(pid: int) -> bool:
    """Guards against a recycled pid: only a live Snakemake (or sheetfill driving it) gets our signal."""
    try:
        command = Path(f"/proc/{int(pid)}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
    return b"snakemake" in command or b"sheetfill" in command


def is_active(run: dict) -> bool:
    return run["status"] in ACTIVE
