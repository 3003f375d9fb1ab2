"""Write a RefineResult: refined.parquet, refined.xlsx (Data + Summary) and rejected.csv.

Deterministic on purpose: the same result gives byte-identical parquet (explicit Arrow schema, no
pandas metadata) and an xlsx with fixed workbook metadata. Every text cell is written as a string,
so a value starting with '=', '+', '-' or '@' never becomes a formula.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd

EXCEL_MAX_ROWS = 1_048_576            # including the header row
FIXED_CREATED = dt.datetime(2000, 1, 1)   # workbook metadata must not depend on the clock
INT_COLUMNS = {"source_count"}
FLOAT_COLUMNS = {"quality_score"}


def arrow_table(records: pd.DataFrame):
    import pyarrow as pa

    arrays, fields = [], []
    for column in records.columns:
        values = records[column]
        if column in INT_COLUMNS:
            kind, data = pa.int64(), values.to_numpy(dtype=np.int64)
        elif column in FLOAT_COLUMNS:
            kind, data = pa.float64(), values.to_numpy(dtype=np.float64)
        else:
            kind = pa.string()
            data = values.astype(object).where(values.notna(), None).to_numpy(dtype=object)
        arrays.append(pa.array(data, type=kind))
        fields.append(pa.field(column, kind))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def write_parquet(records: pd.DataFrame, path: Path) -> Path:
    import pyarrow.parquet as pq

    pq.write_table(arrow_table(records), path, compression="zstd")
    return path


def write_rejected(rejected: pd.DataFrame, path: Path) -> Path:
    rejected.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
    return path


def cell_rows(records: pd.DataFrame) -> list[list]:
    """Records as lists of plain Python values (None for missing), column order kept."""
    columns = []
    for column in records.columns:
        values = records[column]
        if column in INT_COLUMNS or column in FLOAT_COLUMNS:
            columns.append(values.tolist())
        else:
            columns.append(values.astype(object).where(values.notna(), None).tolist())
    return [list(row) for row in zip(*columns)]


def column_widths(records: pd.DataFrame) -> list[float]:
    """Width per column from the header and a sample of values, capped so JSON columns stay narrow."""
    sample = records.head(200)
    widths = []
    for column in records.columns:
        lengths = sample[column].dropna().astype(str).str.len()
        longest = int(lengths.max()) if len(lengths) else 0
        widths.append(float(min(max(len(column), longest) + 2, 60)))
    return widths


def summary_rows(result) -> list[tuple]:
    rows = [("bundle", result.bundle), ("profile", result.profile_name),
            ("profile sha256", result.profile_sha256)]
    rows += [(f"count: {key}", value) for key, value in result.counts.items()]
    rows += [(f"quality: {key}", value if not isinstance(value, dict) else json.dumps(value, sort_keys=True))
             for key, value in result.quality.items()]
    if len(result.records) > EXCEL_MAX_ROWS - 1:
        rows.append(("note", f"Data sheet holds the first {EXCEL_MAX_ROWS - 1} of {len(result.records)} "
                             "records (Excel's row limit); refined.parquet holds them all"))
    return rows


def write_xlsx(result, path: Path) -> Path:
    """Data sheet (frozen, bold, filtered header) and Summary sheet, with xlsxwriter.

    Writer choice is measured in bench/refine_bench.py (see the WRITERS note there).
    """
    import xlsxwriter

    records = result.records.head(EXCEL_MAX_ROWS - 1)
    options = {"constant_memory": True, "strings_to_formulas": False, "strings_to_numbers": False,
               "strings_to_urls": False}
    workbook = xlsxwriter.Workbook(str(path), options)
    workbook.set_properties({"title": "sheetfill refined records", "author": "sheetfill",
                             "created": FIXED_CREATED})
    header = workbook.add_format({"bold": True, "bg_color": "#DDEBF7", "bottom": 1, "text_wrap": True,
                                  "valign": "top"})
    data = workbook.add_worksheet("Data")
    data.freeze_panes(1, 0)
    for index, width in enumerate(column_widths(records)):
        data.set_column(index, index, width)
    data.write_row(0, 0, list(records.columns), header)
    for number, values in enumerate(cell_rows(records), start=1):
        data.write_row(number, 0, values)
    data.autofilter(0, 0, max(len(records), 1), max(len(records.columns) - 1, 0))

    summary = workbook.add_worksheet("Summary")
    summary.set_column(0, 0, 28)
    summary.set_column(1, 4, 40)
    summary.write_row(0, 0, ["item", "value"], header)
    row = 1
    for row, (item, value) in enumerate(summary_rows(result), start=1):
        summary.write_row(row, 0, [item, value])
    row += 2
    summary.write_row(row, 0, ["file", "sheet", "source", "rows", "note"], header)
    for offset, source in enumerate(result.sources, start=1):
        summary.write_row(row + offset, 0, [source["file"], source["sheet"], source["source"] or "",
                                            source["rows"], source["note"]])
    workbook.close()
    return path


def write_all(result, out_dir: Path, *, xlsx: bool = True) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [write_parquet(result.records, out_dir / "refined.parquet"),
               write_rejected(result.rejected, out_dir / "rejected.csv")]
    if xlsx:
        written.insert(0, write_xlsx(result, out_dir / "refined.xlsx"))
    return written
