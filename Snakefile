# sheetfill: replay archived spreadsheet bundles over a date window.
#   snakemake --cores 2 --config since=2025-09-29 until=2025-10-01 versions=[v1,v2]
# This file only wires things together; see workflow/rules/ and docs/architecture.md.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/bundle.smk"
include: "workflow/rules/enrich.smk"
include: "workflow/rules/docs.smk"


rule all:
    default_target: True
    input:
        all_targets,
