"""Write a RefineResult: refined.parquet, refined.xlsx (Data + Summary) and rejected.csv.

Deterministic on purpose: the same result gives byte-identical parquet (explicit Arrow schema, no
pandas metadata) and an xlsx with fixed workbook metadata. Every text cell is written as a string,
so a value starting with '=', '+', '-' or '@' never becomes a formula; in rejected.csv such fields
get a leading apostrophe. A cell over Excel's 32,767 characters is cut in the workbook only, and its
record flagged.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

EXCEL_MAX_ROWS = 1_048_576  # including the header row
EXCEL_MAX_CELL = 32_767  # characters in one cell: longer text is cut in the workbook, kept in parquet
TRUNCATED_FLAG = "truncated_in_xlsx"
FORMULA_START = re.compile(r"^[=+\-@\t\r]")  # what a spreadsheet app would run as a formula
FIXED_CREATED = dt.datetime(2000, 1, 1)  # workbook metadata must not depend on the clock
INT_COLUMNS = {"source_count"}
FLOAT_COLUMNS = {"quality_score"}
HEADER_COLOUR = "#DDEBF7"
W3C_DATE = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def arrow_table(records: pd.DataFrame):
    import pyarrow as pa

    arrays, fields = [], []
    for column in records.columns:
        values = records[column]
        if column in INT_COLUMNS:
            array = pa.array(values.to_numpy(dtype=np.int64), type=pa.int64())
        elif column in FLOAT_COLUMNS:
            array = pa.array(values.to_numpy(dtype=np.float64), type=pa.float64())
        else:
            # from_pandas: None, NaN and pd.NA become nulls in Arrow's own conversion (no pandas pass)
            array = pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
        arrays.append(array)
        fields.append(pa.field(column, array.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


PARQUET_BATCH_ROWS = 131_072  # converted to Arrow one batch at a time: bounded extra memory


def write_parquet(records: pd.DataFrame, path: Path, overlong: set | None = None) -> Path:
    """refined.parquet; text columns with a value over Excel's cell limit are added to `overlong`
    (measured on the Arrow arrays being written: no extra pass over the records)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Arrow's default allocator (mimalloc) keeps the pages of every batch it has freed: ~240 MB on a
    # million rows, the refine's memory peak. glibc's malloc reuses them for the next batch.
    pa.set_memory_pool(pa.system_memory_pool())
    first = arrow_table(records.iloc[:PARQUET_BATCH_ROWS])
    with pq.ParquetWriter(path, first.schema, compression="zstd") as writer:
        for start in range(0, len(records), PARQUET_BATCH_ROWS):
            table = first if start == 0 else arrow_table(records.iloc[start : start + PARQUET_BATCH_ROWS])
            if overlong is not None:
                overlong.update(overlong_columns(table))
            writer.write_table(table)
        if not len(records):
            writer.write_table(first)
    return path


def overlong_columns(table) -> list[str]:
    import pyarrow as pa
    import pyarrow.compute as pc

    found = []
    for name, column in zip(table.column_names, table.columns):
        if pa.types.is_string(column.type) and len(column):
            longest = pc.max(pc.utf8_length(column)).as_py()
            if longest is not None and longest > EXCEL_MAX_CELL:
                found.append(name)
    return found


def flag_overlong(records: pd.DataFrame, columns: set) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(records with TRUNCATED_FLAG added to "flags" where a cell is too long for Excel,
    the same records with those cells cut to EXCEL_MAX_CELL for the workbook)."""
    flagged, cut = records.copy(), records.copy()
    too_long = np.zeros(len(records), dtype=bool)
    for column in sorted(columns):
        lengths = records[column].str.len().fillna(0).to_numpy()
        too_long |= lengths > EXCEL_MAX_CELL
        cut[column] = records[column].where(lengths <= EXCEL_MAX_CELL, records[column].str.slice(0, EXCEL_MAX_CELL))
    if "flags" in records:
        old = records["flags"].fillna("").astype(str)
        added = np.where(old == "", TRUNCATED_FLAG, old + "; " + TRUNCATED_FLAG)
        flagged["flags"] = np.where(too_long, added, old).astype(object)
        cut["flags"] = flagged["flags"]
    return flagged, cut


def formula_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text fields that a spreadsheet app would run as a formula (=, +, -, @, tab, CR first) get a
    leading apostrophe, so a CSV opened in Excel shows them as text: file and sheet names too."""
    safe = frame.copy()
    for column in frame.columns:
        values = frame[column]
        if values.dtype == object:
            risky = values.str.match(FORMULA_START, na=False).to_numpy(dtype=bool)
            if risky.any():
                safe[column] = values.where(~risky, "'" + values.astype(str))
    safe.columns = [f"'{c}" if isinstance(c, str) and FORMULA_START.match(c) else c for c in frame.columns]
    return safe


def write_rejected(rejected: pd.DataFrame, path: Path) -> Path:
    formula_safe(rejected).to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
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


def summary_rows(result) -> list[tuple[str, object]]:
    """Item/value pairs for the Summary sheet: bundle, profile, counts, quality, sheets read."""
    rows = [("bundle", result.bundle), ("profile", result.profile_name), ("profile sha256", result.profile_sha256)]
    rows += [(f"count: {key}", value) for key, value in result.counts.items()]
    rows += [
        (f"quality: {key}", json.dumps(value, sort_keys=True) if isinstance(value, dict) else value)
        for key, value in result.quality.items()
    ]
    if len(result.records) > EXCEL_MAX_ROWS - 1:
        rows.append(
            (
                "note",
                f"Data sheet holds the first {EXCEL_MAX_ROWS - 1} of {len(result.records)} "
                "records (Excel's row limit); refined.parquet holds them all",
            )
        )
    for source in result.sources:
        rows.append(
            (
                f"sheet: {source['file']} | {source['sheet']}",
                f"{source['rows']} rows, source {source['source'] or '-'}"
                + (f" (matched by {source['matched_by']})" if source.get("matched_by") else "")
                + f", {source['note']}",
            )
        )
    return rows


def write_xlsx_xlsxwriter(records: pd.DataFrame, summary: list[tuple], path: Path) -> Path:
    """Pure-Python writer (fallback). strings_to_formulas=False keeps '=...' cells as text."""
    import xlsxwriter

    options = {
        "constant_memory": True,
        "strings_to_formulas": False,
        "strings_to_numbers": False,
        "strings_to_urls": False,
    }
    workbook = xlsxwriter.Workbook(str(path), options)
    workbook.set_properties({"created": FIXED_CREATED})
    header = workbook.add_format({"bold": True, "bg_color": HEADER_COLOUR, "bottom": 1})
    data = workbook.add_worksheet("Data")
    data.freeze_panes(1, 0)
    for index, width in enumerate(column_widths(records)):
        data.set_column(index, index, width)
    data.write_row(0, 0, list(records.columns), header)
    for number, values in enumerate(cell_rows(records), start=1):
        data.write_row(number, 0, values)
    data.autofilter(0, 0, max(len(records), 1), max(len(records.columns) - 1, 0))
    sheet = workbook.add_worksheet("Summary")
    sheet.set_column(0, 0, 50)
    sheet.set_column(1, 1, 60)
    sheet.write_row(0, 0, ["item", "value"], header)
    for number, pair in enumerate(summary, start=1):
        sheet.write_row(number, 0, list(pair))
    workbook.close()
    return path


def write_xlsx_rust(records: pd.DataFrame, summary: list[tuple], path: Path) -> Path:
    """rust_xlsxwriter via rustpy-xlsxwriter: ~6x faster; every str is written as a text cell."""
    from rustpy_xlsxwriter import FastExcel, Format

    header = Format().set_bold().set_background_color(HEADER_COLOUR).set_border_bottom("thin")
    summary_frame = pd.DataFrame(
        {
            "item": pd.Series([item for item, _ in summary], dtype=object),
            "value": pd.Series([value for _, value in summary], dtype=object),
        }
    )
    (
        FastExcel(str(path))
        .freeze(row=1, sheet="Data")
        .sheet("Data", records, column_widths=column_widths(records), header_format=header, autofilter=True)
        .sheet("Summary", summary_frame, column_widths=[50.0, 60.0], header_format=header)
        .save()
    )
    fix_workbook_dates(path)
    return path


def fix_workbook_dates(path: Path) -> None:
    """Pin docProps/core.xml's created/modified stamps (the writer has no option for it)."""
    import zipfile

    with zipfile.ZipFile(path) as source:
        members = [(info.filename, source.read(info)) for info in source.infolist()]
    stamp = FIXED_CREATED.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    temporary = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(temporary, "w") as target:
        for name, data in members:
            if name == "docProps/core.xml":
                data = W3C_DATE.sub(stamp, data)
            target.writestr(
                zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)),
                data,
                compress_type=zipfile.ZIP_DEFLATED,
                compresslevel=1,
            )
    temporary.replace(path)


def rust_writer_available() -> bool:
    from importlib.util import find_spec

    return find_spec("rustpy_xlsxwriter") is not None


def write_xlsx(result, path: Path, writer: str | None = None, records: pd.DataFrame | None = None) -> Path:
    """refined.xlsx: Data (frozen bold header, filter) + Summary. Data stops at Excel's row limit;
    `records` replaces result.records (cells cut to Excel's limit by flag_overlong)."""
    cut_cells = records is not None
    records = (result.records if records is None else records).head(EXCEL_MAX_ROWS - 1)
    writer = writer or ("rust" if rust_writer_available() else "xlsxwriter")
    write = write_xlsx_rust if writer == "rust" else write_xlsx_xlsxwriter
    summary = summary_rows(result)
    if cut_cells:
        cut = int(records["flags"].str.contains(TRUNCATED_FLAG, regex=False, na=False).sum())
        summary.append(
            (
                "note",
                f"{cut} records have cells cut to Excel's {EXCEL_MAX_CELL:,} characters (flag "
                f"{TRUNCATED_FLAG}); refined.parquet holds the full values",
            )
        )
    return write(records, summary, path)


def write_all(result, out_dir: Path, *, xlsx: bool = True) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    overlong: set[str] = set()
    written = [
        write_parquet(result.records, out_dir / "refined.parquet", overlong),
        write_rejected(result.rejected, out_dir / "rejected.csv"),
    ]
    workbook_records = None
    if overlong:  # rare: flag the records, rewrite the parquet with the flag, cut the workbook's cells
        result.records, workbook_records = flag_overlong(result.records, overlong)
        write_parquet(result.records, out_dir / "refined.parquet")
    if xlsx:
        written.insert(0, write_xlsx(result, out_dir / "refined.xlsx", records=workbook_records))
    return written
