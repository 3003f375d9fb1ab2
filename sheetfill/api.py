"""Python front end: run the Snakemake workflow through `snakemake.api` and report per bundle.

>>> import sheetfill
>>> result = sheetfill.run(since="2025-09-29", until="2025-09-30", cores=2)
>>> result.ok, [(b.bundle, b.status) for b in result.bundles]
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from sheetfill.runs.config import REPO_ROOT
from sheetfill.runs.lock import acquire
from sheetfill.runs.plan import Plan, make_plan

SNAKEFILE = REPO_ROOT / "Snakefile"
CONFIGFILE = REPO_ROOT / "config" / "config.yaml"
PATH_KEYS = ("archive_root", "restore_root", "cursor_file")


@dataclass(frozen=True)
class BundleResult:
    bundle: str
    status: str  # ok | failed_validation | failed_processing | planned
    error: str | None
    outputs: Path
    reason: str | None = None  # planned: why Snakemake would (re)build it (sheetfill.runs.reasons)


@dataclass(frozen=True)
class RunResult:
    ok: bool
    bundles: list[BundleResult] = field(default_factory=list)
    note: str = ""
    up_to_date: int = 0  # dry run: bundles of the window that need no work
    run_id: str | None = None  # the run in the ledger (`sheetfill runs show ID`)
    docs: Path | None = None  # the data docs' index, once a run built them

    @property
    def failed(self) -> list[BundleResult]:
        return [b for b in self.bundles if b.status not in ("ok", "planned")]

    def summary(self) -> str:
        """One line per bundle, failures first, then the tally and where the data docs are."""
        ordered = self.failed + [b for b in self.bundles if b not in self.failed]
        lines = [f"{b.bundle:<28} {b.status:<18} {b.reason or b.error or ''}".rstrip() for b in ordered]
        if self.failed:
            lines.append(f"{len(self.failed)} of {len(self.bundles)} bundles failed.")
        if self.run_id:
            lines.append(f"run {self.run_id} (details: sheetfill runs show {self.run_id})")
        if self.docs is not None:
            lines.append(f"data docs: {self.docs}")
        return "\n".join(lines)


def build_config(**overrides) -> dict:
    """Config overrides for the workflow: None means 'use config/config.yaml'; paths made absolute."""
    config = {}
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, dt.date):
            value = value.isoformat()
        if key in PATH_KEYS:
            value = str(Path(value).resolve())  # the workflow runs in the repository folder
        if key == "versions":
            value = [value] if isinstance(value, str) else list(value)
        config[key] = value
    return config


def run(
    since=None,
    until=None,
    versions=None,
    cores: int = 2,
    dry_run: bool = False,
    *,
    archive_root=None,
    restore_root=None,
    archive_pattern=None,
    profile=None,
    archive=None,
    cursor_file=None,
    forcerun: tuple[str, ...] = (),
    quiet: bool = True,
    run_id: str | None = None,
) -> RunResult:
    """Run (or with dry_run, plan) the window; bad input raises sheetfill.errors.SheetfillError."""
    overrides = build_config(
        since=since,
        until=until,
        versions=versions,
        archive_root=archive_root,
        restore_root=restore_root,
        archive_pattern=archive_pattern,
        profile=profile,
        archive=archive,
        cursor_file=cursor_file,
    )
    plan = plan_for(overrides)
    if not plan.bundles:
        return RunResult(ok=True, note=plan.note)
    if dry_run:
        return _dry_run(plan, overrides, forcerun)
    with _run_id(run_id) as current:
        # another run on this restore_root: RunLocked (a SheetfillError) before anything ran
        lock = acquire(REPO_ROOT / plan.settings.restore_root, plan.window())
        try:
            _execute(overrides, cores=cores, forcerun=forcerun, quiet=quiet)
        finally:
            lock.release()
    bundles = [_result(plan, b) for b in plan.bundles]
    docs = (REPO_ROOT / plan.settings.restore_root / "data-docs" / "index.html").resolve()
    docs = docs if docs.exists() else None
    return RunResult(ok=all(b.status == "ok" for b in bundles), bundles=bundles, run_id=current, docs=docs)


@contextlib.contextmanager
def _environment(**values: str):
    """These environment variables for one run in this process, restored afterwards."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _run_id(run_id: str | None):
    """SHEETFILL_RUN_ID (and the ledger's origin) for one run in this process, restored afterwards."""
    from sheetfill.runs.events import RUN_ID_VARIABLE, new_run_id

    current = run_id or new_run_id()
    with _environment(**{RUN_ID_VARIABLE: current, "SHEETFILL_ORIGIN": os.environ.get("SHEETFILL_ORIGIN", "api")}):
        yield current


def base_config() -> dict:
    """config/config.yaml with its relative paths anchored at the repository (the workflow's workdir)."""
    base = yaml.safe_load(CONFIGFILE.read_text()) or {}
    return {k: str((REPO_ROOT / v).resolve()) if k in PATH_KEYS and v else v for k, v in base.items()}


def plan_for(overrides: dict) -> Plan:
    return make_plan({**base_config(), **overrides})


def _outputs(plan: Plan, bundle: str) -> Path:
    return (REPO_ROOT / plan.settings.restore_root / "outputs" / bundle).resolve()


def _dry_run(plan: Plan, overrides: dict, forcerun: tuple[str, ...]) -> RunResult:
    """What Snakemake's DAG says the run would do (the same plan as `snakemake -n`)."""
    from sheetfill.dryrun import dry_run

    planned = dry_run(overrides, forcerun=forcerun)
    bundles = [
        BundleResult(b.bundle, "planned", None, _outputs(plan, b.bundle), reason=f"{b.reason}: {b.detail}")
        for b in planned.would_build
    ]
    return RunResult(ok=True, bundles=bundles, note=planned.describe(), up_to_date=planned.up_to_date)


def _result(plan: Plan, bundle: str) -> BundleResult:
    outputs = _outputs(plan, bundle)
    try:
        summary = json.loads((outputs / "bundle.json").read_text())
    except FileNotFoundError:
        log = REPO_ROOT / plan.settings.restore_root / "logs" / "bundle" / f"{bundle}.log"
        return BundleResult(bundle, "failed_processing", f"the bundle job failed; see {log}", outputs)
    return BundleResult(bundle, summary["status"], summary.get("error"), outputs)


def _logger_plugin_settings(progress: bool = False):
    """The sheetfill logger plugin (the run ledger), registered even when plugin discovery cannot see it."""
    import importlib

    from snakemake_interface_logger_plugins.registry import LoggerPluginRegistry

    if str(REPO_ROOT) not in sys.path:
        sys.path.append(str(REPO_ROOT))  # an editable install hides top-level packages other than sheetfill
    plugin = importlib.import_module("snakemake_logger_plugin_sheetfill")

    LoggerPluginRegistry().register_plugin(plugin.__name__, plugin)
    if progress:  # the default sinks plus the progress line; RunResult.summary() ends with the docs' path
        sinks = [name for name in plugin.sink_names(plugin.LogHandlerSettings()) if name != "docs"]
        return plugin.LogHandlerSettings(sinks=",".join([*sinks, "progress"]))
    return plugin.LogHandlerSettings()


@contextlib.contextmanager
def workflow_dag(output, config: dict, *, cores: int = 1, forcerun=(), targets=(), snakefile=None, workdir=None):
    """(workflow, dag) of Snakemake's API for the repository's workflow, as every front end builds them."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, DAGSettings, ResourceSettings

    with SnakemakeApi(output) as api:
        workflow = api.workflow(
            resource_settings=ResourceSettings(cores=cores),
            config_settings=ConfigSettings(config=config),
            snakefile=snakefile or SNAKEFILE,
            workdir=workdir or REPO_ROOT,
        )
        dag = workflow.dag(DAGSettings(targets=frozenset(targets), forcerun=frozenset(forcerun), force_incomplete=True))
        yield api, workflow, dag


def _execute(config: dict, cores: int, forcerun: tuple[str, ...], quiet: bool) -> None:
    """Run Snakemake in this process. Failures surface through the bundles' statuses."""
    from snakemake.scheduling.greedy import SchedulerSettings as GreedySettings
    from snakemake.settings.enums import Quietness
    from snakemake.settings.types import ExecutionSettings, OutputSettings, SchedulingSettings

    # quiet: one progress line and one summary (RunResult.summary) instead of Snakemake's job chatter
    output = OutputSettings(
        quiet={Quietness.ALL} if quiet else None,
        show_failed_logs=True,
        log_handler_settings={"sheetfill": _logger_plugin_settings(progress=quiet)},
    )
    with _environment(SHEETFILL_GATE_PRINT="0" if quiet else "1"):
        with workflow_dag(output, config, cores=cores, forcerun=forcerun) as (api, _, dag):
            try:
                dag.execute_workflow(
                    executor="local",
                    execution_settings=ExecutionSettings(keep_going=True),
                    scheduling_settings=SchedulingSettings(scheduler="greedy"),
                    scheduler_settings=GreedySettings(),
                )
            except Exception as exc:  # the gate fails the workflow on purpose when a bundle failed
                api.print_exception(exc)
