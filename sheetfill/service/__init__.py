"""`sheetfill serve`: the run service (REST API under /api/v1, the web UI) over the run ledger."""
