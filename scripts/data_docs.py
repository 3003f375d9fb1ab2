"""Snakemake `script:` adapter: build the static data docs for the window's bundles."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821 - injected by Snakemake

from sheetfill.datadocs import build_data_docs  # noqa: E402

index = build_data_docs(
    [Path(p) for p in snakemake.input],  # noqa: F821
    Path(snakemake.output[0]),  # noqa: F821
    snakemake.params.window,  # noqa: F821
)
Path(snakemake.log[0]).write_text(f"data docs: {index}\n")  # noqa: F821
