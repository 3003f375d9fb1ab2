# Config validation and small input functions. The logic lives in the sheetfill package
# (sheetfill.runs.plan) so the CLI, the Python API and this workflow reject bad input identically.
import gc
import json
import os
import shlex
import sys
from dataclasses import asdict

# Building the DAG of a long backfill creates millions of objects and no garbage cycles worth
# collecting; Python's default cyclic-GC thresholds made it re-scan that growing heap over and over
# (a third of `snakemake -n` over 10,000 bundles: 7.7 -> 5.2 s, same peak memory).
gc.freeze()
gc.set_threshold(50_000, 20, 20)

sys.path.insert(0, workflow.basedir)  # always the sheetfill that ships with this Snakefile

from sheetfill.errors import SheetfillError
from sheetfill.runs.drain import drain_without_deadlock
from sheetfill.runs.events import current_run_id
from sheetfill.runs.plan import make_plan
from sheetfill.runs.recorder import announce_run

try:
    # Validates config against workflow/schemas/config.schema.yaml (defaults filled in),
    # discovers the archives and resolves the window, before any job is scheduled.
    PLAN = make_plan(config)
except SheetfillError as error:
    raise WorkflowError(f"sheetfill: {error}") from None

SETTINGS = PLAN.settings
RESTORE_ROOT = str(SETTINGS.restore_root).rstrip("/")
ARCHIVES = {archive.bundle: str(archive.path) for archive in PLAN.history}


def shell_constant(text):
    """A value fixed at parse time, quoted for the shell and escaped for Snakemake's formatting."""
    return shlex.quote(str(text)).replace("{", "{{").replace("}", "}}")


# The job command's constant parts go into the shell string when the Snakefile is parsed, not into
# params: Snakemake evaluates params for every job, ~0.2 s per 10,000 bundles of planning.
# The interpreter running Snakemake (skips e.g. pyenv's 50 ms shim); conda envs bring their own.
PYTHON = "python" if "conda" in str(workflow.deployment_settings.deployment_method) else sys.executable
JOB = f"{shell_constant(PYTHON)} -S -m sheetfill.jobs.job"
HISTORY = shell_constant(f"{RESTORE_ROOT}/.sheetfill/history")

# Run context for the jobs, passed as environment (declared below, so cluster jobs get it too)
# rather than as params: a bundle built in another window must not count as out of date.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [workflow.basedir, os.environ.get("PYTHONPATH")]))
os.environ["SHEETFILL_WINDOW"] = PLAN.window_json()
os.environ["SHEETFILL_WORKER"] = SETTINGS.worker
os.environ["SHEETFILL_LIMITS"] = json.dumps(asdict(SETTINGS.limits), sort_keys=True)
os.environ["SHEETFILL_UNREADABLE"] = json.dumps(PLAN.unreadable())  # see archive_of
# The run's trace context and telemetry settings (sheetfill.telemetry.context): standard library only.
from sheetfill.telemetry import wanted as telemetry_wanted
from sheetfill.telemetry.context import prepare_run as prepare_telemetry

prepare_telemetry(
    telemetry_wanted(SETTINGS.telemetry),
    kind="backfill" if SETTINGS.backfill else "scheduled",
    profile=PLAN.profile_path.stem,
    restore_root=RESTORE_ROOT,
)
# The run id: the front end's (CLI, API, service) or a new one; the logger plugin records the run under it.
RUN_ID = current_run_id()
announce_run(RUN_ID, PLAN)


envvars:
    "PYTHONPATH",
    "SHEETFILL_WINDOW",
    "SHEETFILL_WORKER",
    "SHEETFILL_LIMITS",
    "SHEETFILL_RUN_ID",
    "SHEETFILL_TELEMETRY",
    "TRACEPARENT",
    "SHEETFILL_UNREADABLE",


wildcard_constraints:
    date=r"\d{4}-\d{2}-\d{2}",
    version=r"[^/]+",


# Archives this user cannot read: their job gets the archive's folder as a stand-in input (Snakemake
# would abort the whole run trying to checksum them) and records the bundle as failed_processing.
UNREADABLE = PLAN.unreadable()


def archive_of(wildcards):
    """The zip behind a bundle (date--version), of any date: --report also reaches older bundles."""
    bundle = f"{wildcards.date}--{wildcards.version}"
    return os.path.dirname(ARCHIVES[bundle]) if bundle in UNREADABLE else ARCHIVES[bundle]


# With ISO dates the archive path is a plain pattern, which Snakemake plans faster than an input
# function (~0.5 s per 10,000 bundles); other date formats need the lookup.
ARCHIVE_INPUT = (not UNREADABLE and PLAN.archive_input_pattern()) or archive_of


BUNDLE_STAGE = "outputs"  # enrich.smk switches the data docs and the gate to "enriched" when it runs


def bundle_outputs():
    return [f"{RESTORE_ROOT}/{BUNDLE_STAGE}/{bundle}" for bundle in PLAN.bundles]


def docs_inputs(wildcards):
    """The window's bundle folders; for --report only those that were built (it shows, never builds)."""
    return [o for o in bundle_outputs() if os.path.isdir(o)] if inspecting() else bundle_outputs()


def run_record():
    return f"{RESTORE_ROOT}/outputs/runs/{PLAN.window_key}.json"


def gate_passed():
    """The gate's declared output, written only when the run passed. The run record is not an
    output: Snakemake deletes a failing job's outputs, and a failed run's record must survive."""
    return f"{RESTORE_ROOT}/outputs/runs/.{PLAN.window_key}.passed"


def inspecting():
    """True when Snakemake builds the DAG to show it (--report, --summary, --dag), not to run or plan
    it (a run or -n): only those set the workflow's execution settings before building the DAG."""
    return workflow.execution_settings is None


def report_targets():
    """What --report shows: the window's bundles given since (a backfill), else every bundle built."""
    bundles = PLAN.bundles if SETTINGS.backfill else [a.bundle for a in PLAN.history]
    versions = SETTINGS.versions
    targets = [
        f"{RESTORE_ROOT}/outputs/{bundle}"
        for bundle in bundles
        if (not versions or bundle.partition("--")[2] in versions)
        and os.path.exists(f"{RESTORE_ROOT}/outputs/{bundle}/bundle.json")
    ]
    docs = f"{RESTORE_ROOT}/data-docs"
    return targets + ([docs] if os.path.exists(f"{docs}/index.html") else [])


def all_targets(wildcards):
    """Input of rule all, evaluated only when `all` is the target (not for explicit targets or --unlock)."""
    if inspecting():
        return report_targets()
    if not PLAN.bundles:
        print(f"sheetfill: {PLAN.note}", file=sys.stderr)
        return [str(SETTINGS.cursor_file)]  # exists: Snakemake says "Nothing to be done" and runs no job
    targets = [gate_passed()]
    if SETTINGS.archive:
        targets += [f"{RESTORE_ROOT}/outputs/{bundle}.zip" for bundle in PLAN.bundles]
    if BUNDLE_STAGE != "outputs":  # enrichment switched on after a run without it: its folders are due too
        targets += bundle_outputs()
    return targets


def cancel_rescheduling_timers():
    """Let the process exit as soon as the run is over.

    Snakemake's job rate limiter (--max-jobs-per-timespan, default 100/1s) re-wakes its scheduler
    with a non-daemon 1 s threading.Timer, and Python waits for it at exit: every run, even a no-op,
    ended ~1 s late. Once the scheduler has finished, the pending timers have nothing left to wake.
    """
    import threading

    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer):
            thread.cancel()


RUN_LOCK = []  # the restore_root lock this run holds, released when the run ends


def hold_restore_root():
    """One active run per restore_root (sheetfill.runs.lock), taken only when jobs will run (not
    for -n); then sweep what killed runs left there, and top up the disk room kept for jobs that
    start on a full disk (sheetfill.bundle.reserve). A held lock stops the run before any job."""
    from sheetfill.bundle.reserve import fill_pool
    from sheetfill.runs.lock import RunLocked, acquire
    from sheetfill.runs.sweep import sweep_staging

    try:
        RUN_LOCK.append(acquire(RESTORE_ROOT, PLAN.window()))  # the kernel drops it if we die
    except RunLocked as error:
        raise WorkflowError(f"sheetfill: {error}") from None
    except OSError as error:
        raise WorkflowError(f"sheetfill: cannot lock restore_root {RESTORE_ROOT}: {error}") from None
    sweep_staging(RESTORE_ROOT)
    fill_pool(RESTORE_ROOT)


def release_restore_root():
    while RUN_LOCK:
        RUN_LOCK.pop().release()


onstart:
    hold_restore_root()
    drain_without_deadlock(workflow.scheduler)


onsuccess:
    cancel_rescheduling_timers()
    release_restore_root()


onerror:
    cancel_rescheduling_timers()
    release_restore_root()
