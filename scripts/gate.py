"""Snakemake `script:` adapter for the gate: print the per-bundle summary, fail the run on any failure."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821 - injected by Snakemake

from sheetfill.jobs.logged import errors_logged  # noqa: E402
from sheetfill.runs.close import close_run  # noqa: E402
from sheetfill.telemetry.outcomes import report_from_gate  # noqa: E402

with errors_logged(snakemake.log[0]):  # noqa: F821
    text, ok = close_run(
        bundle_dirs=[Path(p) for p in snakemake.params.bundles],  # noqa: F821
        window=snakemake.params.window,  # noqa: F821
        record=Path(snakemake.params.record),  # noqa: F821 - not an output: it must survive a failed run
        history=Path(snakemake.params.history),  # noqa: F821
        cursor_file=Path(snakemake.params.cursor_file),  # noqa: F821
        run_id=os.environ.get("SHEETFILL_RUN_ID"),  # declared in envvars: the same id as the ledger's
    )
text += f"\ndata docs: {Path(snakemake.input.docs).resolve() / 'index.html'}"  # noqa: F821 - the run's last word
Path(snakemake.log[0]).write_text(text + "\n")  # noqa: F821
if os.environ.get("SHEETFILL_GATE_PRINT", "1") != "0":  # the CLI and API print their own summary instead
    print(text, file=sys.stderr)
report_from_gate(snakemake.params.bundles, ok)  # noqa: F821 - before any exit: failed runs are reported too
if not ok:
    sys.exit("sheetfill: some bundles failed (see the per-bundle summary and the data docs); exiting non-zero.")
Path(snakemake.output[0]).write_text("passed\n")  # noqa: F821
