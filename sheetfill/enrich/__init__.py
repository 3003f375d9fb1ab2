"""Network enrichment of refined records (issue 17): HTTP JSON lookups declared in the data profile.

spec: the profile's `enrich:` block; settings: whether a run enriches; ratelimit: the limit shared by
jobs, processes and nodes; fetch: cache, retries, backoff; breaker: stop calling a failing provider;
apply: templates, mapping, provenance; job: one bundle (`python -m sheetfill.enrich.job`).
Nothing here imports snakemake.
"""
