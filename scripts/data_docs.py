"""Snakemake `script:` adapter: build the static data docs, the window's bundles marked in the history."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821 - injected by Snakemake

from sheetfill.datadocs import build_data_docs  # noqa: E402
from sheetfill.jobs.logged import errors_logged  # noqa: E402

with errors_logged(snakemake.log[0], [snakemake.output[0]]):  # noqa: F821
    index = build_data_docs(
        [Path(p) for p in snakemake.input],  # noqa: F821
        Path(snakemake.output[0]),  # noqa: F821
        snakemake.params.window,  # noqa: F821
        restore_root=Path(snakemake.output[0]).parent,  # noqa: F821 - the docs cover every bundle built there
    )
Path(snakemake.log[0]).write_text(f"data docs: {index}\n")  # noqa: F821
