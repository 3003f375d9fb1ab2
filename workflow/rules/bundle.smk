# One job per bundle: restore, refine, validate. Restore and refine share a job because
# Snakemake's planning cost grows with the job count (docs/architecture.md has the numbers).


rule bundle:
    input:
        archive=archive_of,
        profile=PLAN.profile_path,
    output:
        restored=directory(f"{RESTORE_ROOT}/{{bundle}}"),
        refined=directory(f"{RESTORE_ROOT}/outputs/{{bundle}}"),
    log:
        f"{RESTORE_ROOT}/logs/bundle/{{bundle}}.log",
    params:
        python=PYTHON,
        limits=LIMITS_JSON,
        history=f"{RESTORE_ROOT}/.sheetfill/history",
    group:
        "bundles"
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/sheetfill.yaml"
    shell:
        "{params.python} -S -m sheetfill.job bundle --archive {input.archive:q} --bundle {wildcards.bundle} "
        "--restored {output.restored:q} --outputs {output.refined:q} --profile {input.profile:q} "
        "--limits {params.limits:q} --history {params.history:q} > {log:q} 2>&1"


rule archive_bundle:
    input:
        f"{RESTORE_ROOT}/outputs/{{bundle}}",
    output:
        f"{RESTORE_ROOT}/outputs/{{bundle}}.zip",
    log:
        f"{RESTORE_ROOT}/logs/archive/{{bundle}}.log",
    params:
        python=PYTHON,
    localrule: True
    conda:
        "../../envs/sheetfill.yaml"
    shell:
        "{params.python} -S -m sheetfill.job pack --outputs {input:q} --zip {output:q} > {log:q} 2>&1"
