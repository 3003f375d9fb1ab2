"""The refine engine: bundle folder + data profile → one record per organisation.

    result = refine_bundle(bundle_dir, profile)   # read → normalise → resolve
    write_outputs(result, out_dir)                # refined.xlsx, refined.parquet, rejected.csv

Stages live in read.py, normalise.py, resolve.py and write.py; heavy libraries (calamine,
phonenumbers, email-validator, rapidfuzz, pyarrow, xlsxwriter) are imported where they are used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["RefineResult", "refine_bundle", "write_outputs"]


@dataclass
class RefineResult:
    records: "pd.DataFrame"            # one row per organisation, str column "record_id"  # noqa: F821
    rejected: "pd.DataFrame"           # rejected / flagged source rows, "reasons" column  # noqa: F821
    counts: dict                        # rows_in, records_out, duplicates_merged, flagged, rejected
    quality: dict                       # mean_score, records_flagged, flag_counts
    sources: list                       # {"file", "sheet", "rows", "source", "note"} per sheet seen
    frames: dict = field(default_factory=dict)    # source name → its normalised rows (for validation)
    profile_name: str = ""
    profile_sha256: str = ""
    bundle: str = ""
    timings: dict = field(default_factory=dict)   # seconds per stage


def refine_bundle(bundle_dir, profile) -> RefineResult:
    """Read every spreadsheet in bundle_dir through the data profile and resolve organisations.

    Raises sheetfill.errors.BundleError when the bundle has no spreadsheets, a workbook cannot be
    read, or a sheet lacks a required field.
    """
    from sheetfill.refine.normalise import normalise_rows, output_fields
    from sheetfill.refine.read import read_bundle
    from sheetfill.refine.resolve import resolve

    bundle_dir = Path(bundle_dir)
    timings = {}
    started = time.perf_counter()
    raw, sheets = read_bundle(bundle_dir, profile.data)
    timings["read"] = time.perf_counter() - started

    started = time.perf_counter()
    rows = normalise_rows(raw, profile.data)
    timings["normalise"] = time.perf_counter() - started

    started = time.perf_counter()
    resolution = resolve(rows, profile.data, profile.output_columns)
    timings["resolve"] = time.perf_counter() - started

    visible = ["_file", "_sheet", "_row", *output_fields(profile.data["fields"])]
    frames = {name: group[visible].reset_index(drop=True)
              for name, group in rows.groupby("_source", sort=True)}
    return RefineResult(
        records=resolution.records, rejected=resolution.rejected, counts=resolution.counts,
        quality=resolution.quality, sources=[s.as_dict() for s in sheets], frames=frames,
        profile_name=profile.name, profile_sha256=profile.sha256, bundle=bundle_dir.name, timings=timings,
    )


def write_outputs(result: RefineResult, out_dir, *, xlsx: bool = True) -> list[Path]:
    """Write refined.xlsx, refined.parquet and rejected.csv into out_dir; return their paths."""
    from sheetfill.refine.write import write_all

    return write_all(result, Path(out_dir), xlsx=xlsx)
