# Run-level steps: data docs for the window, then the gate (summary, exit code, cursor).


rule data_docs:
    input:
        docs_inputs,
    output:
        report(
            directory(f"{RESTORE_ROOT}/data-docs"),
            htmlindex="index.html",
            caption="../report/data_docs.rst",
            category="Data docs",
        ),
    log:
        f"{RESTORE_ROOT}/logs/data_docs.log",
    localrule: True
    conda:
        "../../envs/sheetfill.yaml"
    params:
        window=PLAN.window(),
    script:
        "../../scripts/data_docs.py"


rule gate:
    input:
        # The bundles are reached through the docs (a param, not 10,000 more DAG edges: faster -n).
        docs=f"{RESTORE_ROOT}/data-docs",
    output:
        gate_passed(),
    log:
        f"{RESTORE_ROOT}/logs/gate.log",
    localrule: True
    conda:
        "../../envs/sheetfill.yaml"
    params:
        bundles=bundle_outputs(),
        window=PLAN.window(),
        cursor_file=str(SETTINGS.cursor_file),
        record=run_record(),
        history=f"{RESTORE_ROOT}/.sheetfill/history",
    script:
        "../../scripts/gate.py"
