"""sheetfill: backfill refined datasets from archived spreadsheet bundles.

Heavy modules (pandas, snakemake) are imported lazily so that `import sheetfill`
stays cheap on the per-job path.
"""

__version__ = "0.1.0"


def run(**kwargs):
    """Run the workflow over a window; see :func:`sheetfill.api.run`."""
    from sheetfill.api import run as _run

    return _run(**kwargs)
