"""A plan you can trust: ask Snakemake's own DAG which bundles a run would (re)build, and why.

This is what `snakemake -n` computes (same Snakefile, same default execution profile settings:
rerun-incomplete, every rerun trigger), read from the DAG's job reasons instead of its printout.
A front end (CLI, Python API, service) calls `dry_run(config)`; the workflow is parsed in this
process, so bad input raises sheetfill.errors.SheetfillError before Snakemake is asked anything.

>>> from sheetfill.dryrun import dry_run
>>> plan = dry_run({"since": "2025-09-29", "until": "2025-09-30"})
>>> plan.as_dict()  # {"bundles": [{"bundle", "reason", "detail"}], "up_to_date": n, ...}
"""

from __future__ import annotations

from pathlib import Path

from sheetfill.runs.reasons import DryRun, JobFacts, PlannedBundle, bundle_reason

BUNDLE_RULES = ("bundle", "enrich", "archive_bundle")  # per-bundle jobs; the others are run-level


def dry_run(
    config: dict | None = None,
    forcerun: tuple[str, ...] = (),
    *,
    targets: tuple[str, ...] = (),
    snakefile: Path | None = None,
    workdir: Path | None = None,
) -> DryRun:
    """Plan the run the config describes (overrides of config/config.yaml, paths absolute).

    snakefile and workdir default to the repository's, as for every front end; Snakemake keeps its
    records of past builds in <workdir>/.snakemake, so they must be those of the runs being planned.
    """
    from sheetfill.api import REPO_ROOT, SNAKEFILE, _run_id, plan_for

    config = dict(config or {})
    plan = plan_for(config)  # bad input raises here, with sheetfill's message
    profile_path = str(Path(plan.profile_path).resolve())

    def read(dag) -> DryRun:
        return _read_dag(dag, plan.bundles, profile_path, plan.note, workdir)

    workdir = Path(workdir or REPO_ROOT).resolve()
    with _run_id(None):  # parsing the Snakefile sets a run id: it must not outlive this plan in the process
        return _with_dry_run_dag(config, forcerun, targets, Path(snakefile or SNAKEFILE), workdir, read)


def _with_dry_run_dag(config, forcerun, targets, snakefile: Path, workdir: Path, read):
    """read(dag) on Snakemake's DAG after a silent dry run, inside Snakemake's working directory."""
    from snakemake.settings.enums import Quietness
    from snakemake.settings.types import ExecutionSettings, OutputSettings, SchedulingSettings

    from sheetfill.api import workflow_dag

    output = OutputSettings(quiet={Quietness.ALL})
    dag_settings = dict(forcerun=forcerun, targets=targets, snakefile=snakefile, workdir=workdir)
    with workflow_dag(output, config, **dag_settings) as (_, workflow_api, dag_api):
        dag_api.execute_workflow(
            executor="local",
            pseudo_executor="dryrun",
            execution_settings=ExecutionSettings(keep_going=True),
            scheduling_settings=SchedulingSettings(scheduler="greedy"),
        )
        return read(workflow_api._workflow.dag)  # the API has no getter; this is the DAG -n prints


def _facts(dag, job, workdir: Path) -> JobFacts:
    def absolute(files) -> list[str]:  # Snakemake's paths are relative to its working directory
        return sorted(str((workdir / str(f)).resolve()) for f in files)

    reason = dag.reason(job)
    persistence = dag.workflow.persistence
    outputs = list(job.output)
    recorded = [persistence.metadata(f) for f in outputs]
    previous = next((m.input for m in recorded if m is not None and m.input), []) or []
    # rerun-incomplete turns a killed run's marked outputs into forced files: name them incomplete
    incomplete = list(reason.incomplete_output)
    if reason.forced and job.rule not in dag.forcerules:
        incomplete += dag.workflow.async_run(persistence.incomplete(job))
    return JobFacts(
        rule=job.rule.name,
        forced=bool(reason.forced) and (job.rule in dag.forcerules or not incomplete),
        missing=absolute(reason.missing_output),
        incomplete=sorted(set(absolute(incomplete))),
        updated_inputs=absolute(reason.updated_input),
        input_set_changed=bool(reason.input_changed),
        previous_inputs=absolute(previous),
        code_changed=bool(reason.code_changed or reason.params_changed or reason.software_stack_changed),
        ever_built=any(m is not None for m in recorded) or any(Path(f).exists() for f in absolute(outputs)),
    )


def _read_dag(dag, bundles: list[str], profile_path: str, note: str, workdir: Path) -> DryRun:
    per_bundle: dict[str, list[JobFacts]] = {}
    run_jobs = []
    for job in dag.needrun_jobs(exclude_finished=False):
        if job.rule.name in BUNDLE_RULES:
            bundle = f"{job.wildcards.date}--{job.wildcards.version}"
            per_bundle.setdefault(bundle, []).append(_facts(dag, job, workdir))
        elif job.rule.name != "all":
            run_jobs.append(job.rule.name)
    would_build = [
        PlannedBundle(bundle, *bundle_reason(jobs, profile_path)) for bundle, jobs in sorted(per_bundle.items())
    ]
    up_to_date = len([b for b in bundles if b not in per_bundle])
    return DryRun(would_build=would_build, up_to_date=up_to_date, run_jobs=sorted(set(run_jobs)), note=note)
