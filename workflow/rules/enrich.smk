# Network enrichment (issue 17, docs/profiles.md "Enrichment"): one job per bundle after `bundle`,
# only when the data profile declares providers and the config allows the network; otherwise the run
# says it skipped it and the data docs and gate read the bundle outputs exactly as before.
from sheetfill.bundle.profiles import load_profile
from sheetfill.enrich.settings import ENV as ENRICH_ENV
from sheetfill.enrich.settings import plan_enrichment
from sheetfill.runs.events import current_run_id

try:
    ENRICH = plan_enrichment(config, load_profile(PLAN.profile_path).data, SETTINGS.restore_root, current_run_id())
except SheetfillError as error:
    raise WorkflowError(f"sheetfill: {error}") from None

# Run context, as environment rather than params (see common.smk). Jobs that parse the Snakefile again
# (cluster jobs) keep the main process's, whose refresh time is the run's start.
if workflow.is_main_process or ENRICH_ENV not in os.environ:
    os.environ[ENRICH_ENV] = ENRICH.settings.to_env()
if ENRICH.note:
    print(f"sheetfill: {ENRICH.note}", file=sys.stderr)

if ENRICH.active:
    BUNDLE_STAGE = "enriched"  # the data docs and the gate read the enriched copies
    # `--resources enrich_slots=N` caps concurrent enrich jobs; without it, the config's enrich_slots
    workflow.resource_settings.resources.setdefault("enrich_slots", ENRICH.slots)

    envvars:
        ENRICH_ENV,
        *(ENRICH.secret_variables if ENRICH.settings.network else []),

    rule enrich:
        input:
            refined=f"{RESTORE_ROOT}/outputs/{{date}}--{{version}}",
            profile=PLAN.profile_path,
        output:
            directory(f"{RESTORE_ROOT}/enriched/{{date}}--{{version}}"),
        log:
            f"{RESTORE_ROOT}/logs/enrich/{{date}}--{{version}}.log",
        conda:
            "../../envs/sheetfill.yaml"
        resources:
            enrich_slots=1,
        shell:
            f"{JOB} enrich --outputs {{input.refined:q}} "
            f"--enriched {{output:q}} --profile {{input.profile:q}} > {{log:q}} 2>&1"
