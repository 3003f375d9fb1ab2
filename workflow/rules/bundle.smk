# One job per bundle: restore, refine, validate. Restore and refine share a job because
# Snakemake's planning cost grows with the job count (docs/architecture.md has the numbers).


rule bundle:
    input:
        archive=ARCHIVE_INPUT,
        profile=PLAN.profile_path,
    output:
        restored=directory(f"{RESTORE_ROOT}/{{date}}--{{version}}"),
        refined=report(
            directory(f"{RESTORE_ROOT}/outputs/{{date}}--{{version}}"),
            patterns=["{name}.xlsx", "{name}.json"],
            caption="../report/refined.rst",
            category="Refined outputs",
            subcategory="{date}--{version}",
        ),
    log:
        f"{RESTORE_ROOT}/logs/bundle/{{date}}--{{version}}.log",
    conda:
        "../../envs/sheetfill.yaml"
    # one core per bundle; `--set-threads bundle=N` lets one big bundle read and normalise on N
    threads: 1
    # the memory a bundle job asks (sized in docs/hpc.md; `--set-resources bundle:mem_mb=N`), declared here
    # because the command hands it to the job as task metadata and Snakemake cannot format an absent one
    resources:
        mem_mb=1000,
    shell:
        f"SHEETFILL_PROCESSES={{threads}} SHEETFILL_MEMORY_MB={{resources.mem_mb}} "
        f"{JOB} bundle --archive {{input.archive:q}} --bundle {{wildcards.date}}--{{wildcards.version:q}} "
        f"--restored {{output.restored:q}} --outputs {{output.refined:q}} --profile {{input.profile:q}} "
        f"--history {HISTORY} > {{log:q}} 2>&1"


rule archive_bundle:
    input:
        f"{RESTORE_ROOT}/outputs/{{date}}--{{version}}",
    output:
        f"{RESTORE_ROOT}/outputs/{{date}}--{{version}}.zip",
    log:
        f"{RESTORE_ROOT}/logs/archive/{{date}}--{{version}}.log",
    localrule: True
    conda:
        "../../envs/sheetfill.yaml"
    shell:
        f"{JOB} pack --outputs {{input:q}} --zip {{output:q}} > {{log:q}} 2>&1"
