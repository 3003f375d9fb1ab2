"""The per-bundle job entry (`python -m sheetfill.jobs.job`) and its warm worker pool."""
