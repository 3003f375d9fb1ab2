"""The refine engine: bundle folder + data profile → one record per organisation.

    result = refine_bundle(bundle_dir, profile)   # read → normalise → resolve
    write_outputs(result, out_dir)                # refined.xlsx, refined.parquet, rejected.csv

Stages live in read.py, normalise.py (values.py, contact_values.py), resolve.py (cluster.py,
choose.py, records.py) and write.py; heavy libraries (calamine,
phonenumbers, email-validator, rapidfuzz, pyarrow, xlsxwriter) are imported where they are used.
"""

from __future__ import annotations

import gc
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["RefineResult", "preload", "refine_bundle", "write_outputs"]

BIG_BUNDLE_ROWS = 100_000  # above this, freed memory is handed back to the OS between stages


@dataclass
class RefineResult:
    records: pd.DataFrame  # one row per organisation, str column "record_id"  # noqa: F821
    rejected: pd.DataFrame  # rejected / flagged source rows, "reasons" column  # noqa: F821
    counts: dict  # rows_in, records_out, duplicates_merged, flagged, rejected
    quality: dict  # mean_score, records_flagged, flag_counts
    sources: list  # {"file", "sheet", "rows", "source", "note"} per sheet seen
    frames: dict = field(default_factory=dict)  # source name → its normalised rows, for sources
    # that profile expectations check (`source:`)
    profile_name: str = ""
    profile_sha256: str = ""
    bundle: str = ""
    timings: dict = field(default_factory=dict)  # seconds per stage


def source_frames(rows, profile) -> dict:
    """{source name: its normalised rows} for the sources that expectations check with `source:`.

    Columns: _file, _sheet, _row and the canonical fields. Only those sources are kept, so the rest
    of a big bundle's rows can be freed before the outputs are written.
    """
    from sheetfill.refine.normalise import output_fields

    wanted = sorted({e["source"] for e in profile.expectations if e.get("source", "records") != "records"})
    visible = ["_file", "_sheet", "_row", *output_fields(profile.data["fields"])]
    source = rows["_source"].to_numpy(dtype=object)
    return {name: rows.loc[source == name, visible].reset_index(drop=True) for name in wanted}


@contextmanager
def cyclic_gc_paused():
    """Pause the cyclic garbage collector (reference counting still frees memory).

    The stages build millions of small tuples and lists; each generation-2 pass rescans all of them,
    which cost a third of the normalise stage on a million rows. The stages create no reference
    cycles worth collecting, and the collector's previous state is restored afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def release_free_memory() -> None:
    """Hand freed heap pages back to the OS (glibc keeps them otherwise: ~250 MB after reading a
    million-row bundle, whose cell objects were mostly transient). No-op elsewhere."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def refine_bundle(bundle_dir, profile) -> RefineResult:
    """Read every spreadsheet in bundle_dir through the data profile and resolve organisations.

    Raises sheetfill.errors.BundleError when the bundle has no spreadsheets, a workbook cannot be
    read, or a sheet lacks a required field.
    """
    with cyclic_gc_paused():
        return _refine_bundle(bundle_dir, profile)


def _refine_bundle(bundle_dir, profile) -> RefineResult:
    from sheetfill.refine.compact import compact_text
    from sheetfill.refine.normalise import normalise_rows
    from sheetfill.refine.parallel import early_workers
    from sheetfill.refine.read import read_bundle, spreadsheet_bytes
    from sheetfill.refine.resolve import resolve

    bundle_dir = Path(bundle_dir)
    timings = {}
    started = time.perf_counter()
    with early_workers(spreadsheet_bytes(bundle_dir)):  # normalise's workers, forked while we are small
        raw, sheets = read_bundle(bundle_dir, profile.data)
        if len(raw) > BIG_BUNDLE_ROWS:
            release_free_memory()
        timings["read"] = time.perf_counter() - started

        started = time.perf_counter()
        rows = normalise_rows(raw, profile.data, consume=True)
    del raw  # the raw text is not needed again: free it before resolving
    codes = compact_text(rows)
    if len(rows) > BIG_BUNDLE_ROWS:
        release_free_memory()
    timings["normalise"] = time.perf_counter() - started

    started = time.perf_counter()
    resolution = resolve(rows, profile.data, profile.output_columns, codes)
    timings["resolve"] = time.perf_counter() - started

    frames = source_frames(rows, profile)
    big = len(rows) > BIG_BUNDLE_ROWS
    del rows
    if big:
        release_free_memory()
    return RefineResult(
        records=resolution.records,
        rejected=resolution.rejected,
        counts=resolution.counts,
        quality=resolution.quality,
        sources=[s.as_dict() for s in sheets],
        frames=frames,
        profile_name=profile.name,
        profile_sha256=profile.sha256,
        bundle=bundle_dir.name,
        timings=timings,
    )


def write_outputs(result: RefineResult, out_dir, *, xlsx: bool = True) -> list[Path]:
    """Write refined.xlsx, refined.parquet and rejected.csv into out_dir; return their paths."""
    from sheetfill.refine.write import write_all

    with cyclic_gc_paused():
        return write_all(result, Path(out_dir), xlsx=xlsx)


def preload(profile=None) -> None:
    """Import the refine libraries and warm their lazy tables (phone metadata, IDNA data).

    For long-lived processes (sheetfill.jobs.worker) so that forked jobs start warm; a plain one-off
    refine does not need it.
    """
    import pyarrow.parquet  # noqa: F401
    import python_calamine  # noqa: F401
    import rapidfuzz.process  # noqa: F401

    from sheetfill.refine import read, resolve, write  # noqa: F401
    from sheetfill.refine.normalise import normalise_email, normalise_phone, normalise_website

    region = profile.phone_region if profile is not None else "ZA"
    normalise_phone("011 555 1234", region)
    normalise_email("warm@example.org")
    normalise_website("www.example.org")
    if write.rust_writer_available():
        import rustpy_xlsxwriter  # noqa: F401
