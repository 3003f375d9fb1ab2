"""Read every spreadsheet of a restored bundle into one frame of raw field text.

Each workbook is opened once with python-calamine and every sheet a profile source asks for is read
in one pass; only the columns the profile maps are kept, so a million-row bundle stays small in memory.
Every row keeps its file (relative to the bundle), sheet and 1-based row number as in Excel.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from itertools import chain, islice
from operator import itemgetter
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree

import numpy as np
import pandas as pd

from sheetfill.errors import BundleError
from sheetfill.refine.arrays import join_nonempty, object_frame, repeated
from sheetfill.refine.parallel import early_workers_running, share_with_early_workers, usable_processes
from sheetfill.refine.sources import find_source, header_key

# calamine reads every one of these workbook formats the same way
SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods", ".csv")
HEADER_SCAN_ROWS = 10  # title rows above the header are common in hand-kept sheets
READ_BLOCK_ROWS = 65_536
READ_THREADS = 2  # more only adds memory: the GIL-bound conversion is the other half
META_COLUMNS = ["_file", "_sheet", "_row", "_source", "_priority"]
SPREADSHEET_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELATIONSHIP_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


@dataclass
class SheetInfo:
    """What happened to one sheet; becomes one entry of RefineResult.sources."""

    file: str
    sheet: str
    rows: int = 0
    source: str | None = None
    note: str = "read"
    matched_by: str = ""  # "file name" or "header row" (sources.find_source); "" when skipped
    position: int = 0  # the sheet's place in its workbook, for putting parts read apart back in order

    def as_dict(self) -> dict:
        return {
            "file": self.file,
            "sheet": self.sheet,
            "rows": self.rows,
            "source": self.source,
            "matched_by": self.matched_by,
            "note": self.note,
        }


def skip_reason(relative: PurePosixPath) -> str | None:
    """Why a bundle file is not read as a spreadsheet, or None when it is one."""
    if "__MACOSX" in relative.parts or relative.name.startswith("._"):
        return "macOS resource fork, not a spreadsheet"
    if relative.name.startswith("~$"):
        return "Office lock file, not a spreadsheet"
    if relative.suffix.lower() not in SPREADSHEET_SUFFIXES:
        return f"not a spreadsheet (read: {', '.join(SPREADSHEET_SUFFIXES)})"
    return None


def find_spreadsheets(bundle_dir: Path) -> list[Path]:
    """Every spreadsheet under the bundle, nested folders included, in a stable order.

    Office lock files (~$x.xlsx) and macOS resource forks (__MACOSX/, ._x.xlsx) are not spreadsheets.
    """
    found = []
    for path in bundle_dir.rglob("*"):
        if path.is_file() and skip_reason(PurePosixPath(path.relative_to(bundle_dir).as_posix())) is None:
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(bundle_dir).as_posix())


def spreadsheet_bytes(bundle_dir: Path) -> int:
    """Size on disk of the bundle's spreadsheets (0 when it is not a folder): how big the work will be."""
    return sum(path.stat().st_size for path in find_spreadsheets(bundle_dir)) if bundle_dir.is_dir() else 0


class ColumnMapper:
    """Header → canonical field lookup for one profile source (overrides before synonyms)."""

    def __init__(self, profile_data: dict, source: dict):
        lookup = {}
        for field, spec in profile_data["fields"].items():
            for synonym in [field, *spec.get("synonyms", [])]:
                lookup.setdefault(header_key(synonym), field)
        for header, field in (source.get("columns") or {}).items():
            lookup[header_key(header)] = field  # None: ignore this column in this source
        self.lookup = lookup
        self.required = source.get("required", profile_data.get("required", []))

    def field_of(self, header) -> str | None:
        return self.lookup.get(header_key(header)) if header not in (None, "") else None

    def find_header(self, first_rows: list[list]) -> int | None:
        """Index of the row (among the first few) that names the most known fields."""
        best_index, best_hits = None, 0
        for index, row in enumerate(first_rows):
            hits = len({self.field_of(cell) for cell in row} - {None})
            if hits > best_hits:
                best_index, best_hits = index, hits
        return best_index

    def columns_by_field(self, header_row: list) -> dict[str, list[int]]:
        positions: dict[str, list[int]] = {}
        for index, cell in enumerate(header_row):
            field = self.field_of(cell)
            if field:
                positions.setdefault(field, []).append(index)
        return positions


def cell_text(value) -> str:
    """Calamine cell → text. Whole floats lose '.0' (phone numbers typed as numbers)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return "" if value is None else str(value)


def column_text(values: tuple) -> np.ndarray:
    """Convert one column of cells to text, once per unique cell value."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    # most cells are text already: only the others go through cell_text
    texts = np.array([v if type(v) is str else cell_text(v) for v in uniques.tolist()] + [""], dtype=object)
    return texts[codes]


def picked_cells(rows, pick, width: int) -> list[tuple]:
    """The mapped cells of the next READ_BLOCK_ROWS rows, one tuple per row.

    Each row is dropped as soon as its cells are picked: holding a block of whole rows first cost
    twice the time (the unmapped cells of 65,536 rows are fresh objects that never get reused memory).
    """
    return [pick(row) if len(row) >= width else pick(list(row) + [""] * width) for row in islice(rows, READ_BLOCK_ROWS)]


def rows_to_frame(rows, header_index: int, positions: dict[str, list[int]]) -> pd.DataFrame:
    """Keep only mapped columns of the rows below the header; drop rows with nothing in them.

    Rows are taken in blocks so that only one block of Python cell tuples exists at a time.
    """
    flat = [index for cols in positions.values() for index in cols]
    pick = itemgetter(*flat) if len(flat) > 1 else (lambda row: (row[flat[0]],))
    width = max(flat) + 1
    blocks: dict[int, list[np.ndarray]] = {index: [] for index in flat}
    rows = iter(rows)
    while picked := picked_cells(rows, pick, width):
        for index, column in zip(flat, zip(*picked)):
            blocks[index].append(column_text(column))
    if not blocks[flat[0]]:
        return pd.DataFrame(columns=["_row", *positions])
    texts = {index: np.concatenate(parts) for index, parts in blocks.items()}
    # several columns feeding one field (Phone + WhatsApp) become one '; '-separated cell
    data = {field: join_nonempty([texts[i] for i in cols], " ; ") for field, cols in positions.items()}
    count = len(texts[flat[0]])
    has_value = np.zeros(count, dtype=bool)
    for column in data.values():
        has_value |= column != ""
    first_data_row = header_index + 2  # Excel numbering: header row is header_index + 1
    numbers = np.arange(first_data_row, first_data_row + count, dtype=np.int64)
    return object_frame({"_row": numbers[has_value], **{f: c[has_value] for f, c in data.items()}})


def read_table(head: list, rows_iter, mapper: ColumnMapper, where: str) -> tuple[pd.DataFrame | None, str]:
    """Find the header in the first rows (head), map it, read the rest of the rows under it."""
    header_index = mapper.find_header(head)
    if header_index is None:
        list(rows_iter)  # drain the iterator so the workbook is released promptly
        return None, "skipped: no header the profile knows"
    positions = mapper.columns_by_field(head[header_index])
    missing = [field for field in mapper.required if field not in positions]
    if missing:
        headers = ", ".join(repr(str(h)) for h in head[header_index] if h not in (None, ""))
        raise BundleError(
            f"{where}: no column for required field(s) {', '.join(missing)} (headers: {headers}); "
            f"add the header to that field's synonyms in the data profile"
        )
    rows = chain(head[header_index + 1 :], rows_iter)
    return rows_to_frame(rows, header_index, positions), "read"


def read_workbook(
    path: Path, relative: str, profile_data: dict, part: tuple[str, bool] | None = None
) -> list[tuple[SheetInfo, pd.DataFrame | None]]:
    """Every sheet of the workbook; part (name, True) reads only that sheet, (name, False) all others."""
    from python_calamine import CalamineError, CalamineWorkbook

    results = []
    try:
        workbook = CalamineWorkbook.from_path(str(path))
        with workbook:
            for position, sheet_name in enumerate(workbook.sheet_names):
                if part and (sheet_name == part[0]) != part[1]:
                    continue
                rows = iter(workbook.get_sheet_by_name(sheet_name).iter_rows())
                info = SheetInfo(relative, sheet_name, position=position)
                where = f"{relative} sheet {sheet_name!r}"
                results.append(read_sheet(rows, info, path.name, profile_data, where))
    except CalamineError as exc:
        raise BundleError(f"{relative}: unreadable workbook ({exc}); re-export it as .xlsx") from None
    return results


def decode_csv(path: Path, relative: str) -> str:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise BundleError(f"{relative}: CSV is neither UTF-8 nor Windows-1252 text; re-save it as UTF-8")


def read_csv_file(path: Path, relative: str, profile_data: dict) -> list[tuple[SheetInfo, pd.DataFrame | None]]:
    text = decode_csv(path, relative)
    sheet_name = path.stem  # a CSV is one sheet; its name is the file stem
    csv.field_size_limit(len(text) + 1)  # the default 128 KiB would fail a bundle over one long cell
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = csv.reader(io.StringIO(text), dialect)
    return [read_sheet(rows, SheetInfo(relative, sheet_name), path.name, profile_data, relative, csv_file=True)]


def read_sheet(rows, info: SheetInfo, file_name: str, profile_data: dict, where: str, csv_file: bool = False):
    """(info, tagged frame or None) for one sheet: its source found by name or header row, then read."""
    head = list(islice(rows, HEADER_SCAN_ROWS))
    source, info.matched_by = find_source(profile_data, file_name, None if csv_file else info.sheet, head)
    if source is None:
        info.note = "skipped: no profile source"
        return info, None
    info.source = source["name"]
    frame, info.note = read_table(head, rows, ColumnMapper(profile_data, source), where)
    return info, _tag(frame, info, source)


def _tag(frame: pd.DataFrame | None, info: SheetInfo, source: dict) -> pd.DataFrame | None:
    """Stamp every row with where it came from.

    Each text column repeats one shared str object (normalise.repeated): np.full would make one per
    row, about 180 MB for the three text columns of a million rows.
    """
    if frame is None:
        return None
    info.rows = len(frame)
    stamps = {"_file": info.file, "_sheet": info.sheet, "_source": source["name"]}
    columns = {name: repeated(text, len(frame)) for name, text in stamps.items()}
    columns["_priority"] = np.full(len(frame), int(source.get("priority", 0)), dtype=np.int64)
    return object_frame({**columns, **{name: frame[name].to_numpy() for name in frame.columns}})


def biggest_sheet(path: Path) -> tuple[str, float] | None:
    """(name, share of the sheet data) of an .xlsx/.xlsm workbook's biggest sheet, by uncompressed
    XML size; None for other formats, one-sheet workbooks, or parts that cannot be mapped."""
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            sizes = {info.filename: info.file_size for info in archive.infolist()}
            if max(sizes.get("xl/workbook.xml", 0), sizes.get("xl/_rels/workbook.xml.rels", 0)) > 2**20:
                return None  # not a workbook's index: do not parse it
            workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
            relations = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError, OSError, ValueError):
        return None
    targets = {rel.get("Id"): rel.get("Target", "") for rel in relations}
    parts = {}
    for sheet in workbook.iter(f"{{{SPREADSHEET_NS}}}sheet"):
        target = targets.get(sheet.get(f"{{{RELATIONSHIP_NS}}}id"), "")
        parts[sheet.get("name")] = sizes.get(target[1:] if target.startswith("/") else f"xl/{target}", 0)
    total = sum(parts.values())
    if len(parts) < 2 or not total:
        return None
    name = max(parts, key=parts.get)
    return name, parts[name] / total


def read_tasks(files: list[Path]) -> list[tuple[Path, tuple[str, bool] | None, float]]:
    """(file, part, cost) to share over processes: a workbook whose biggest sheet holds most of it
    is read in two parts (that sheet, the others), so that no process waits on one whole file."""
    tasks = []
    for path in files:
        size = path.stat().st_size
        biggest = biggest_sheet(path)
        if biggest is None:
            tasks.append((path, None, size))
        else:
            name, share = biggest
            tasks += [(path, (name, True), size * share), (path, (name, False), size * (1 - share))]
    return tasks


def read_file(
    path: Path, bundle_dir: Path, profile_data: dict, part: tuple[str, bool] | None = None
) -> list[tuple[SheetInfo, pd.DataFrame | None]]:
    """read_workbook / read_csv_file of one file (or part of its sheets); whatever else a hostile
    file triggers, a Rust panic in calamine too, becomes a BundleError that names the file."""
    relative = path.relative_to(bundle_dir).as_posix()
    try:
        if path.suffix.lower() == ".csv":
            return read_csv_file(path, relative, profile_data)
        return read_workbook(path, relative, profile_data, part)
    except (BundleError, KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        raise BundleError(f"member {relative!r} could not be read ({type(exc).__name__}: {exc})") from exc


def read_part(task: tuple[Path, tuple[str, bool] | None, float], bundle_dir: Path, profile_data: dict) -> list:
    return read_file(task[0], bundle_dir, profile_data, task[1])


def read_files(bundle_dir: Path, files: list[Path], profile_data: dict) -> list:
    """read_file per file, in file order, several files at once.

    A big bundle's early workers (parallel.early_workers) share the reading with this process, by
    workbook or by part of one (read_tasks): each process parses and converts on its own core.
    Otherwise files are read on threads: calamine parses a sheet without holding the GIL, so one
    workbook's parsing overlaps another's Python-side conversion (a million-row bundle of three
    workbooks reads in ~70 % of the time). Threads count as cores: SHEETFILL_PROCESSES=1 (a
    workflow job's share) reads one file at a time.
    """
    tasks = read_tasks(files) if early_workers_running() else []
    shared = share_with_early_workers(
        partial(read_part, bundle_dir=bundle_dir, profile_data=profile_data), tasks, [t[2] for t in tasks]
    )
    if shared is not None:
        by_file: dict[Path, list] = {path: [] for path in files}
        for (path, _, _), results in zip(tasks, shared):
            by_file[path] += results
        return [sorted(by_file[path], key=lambda result: result[0].position) for path in files]
    read_one = partial(read_file, bundle_dir=bundle_dir, profile_data=profile_data)
    threads = min(len(files), READ_THREADS, usable_processes())
    if threads < 2:
        return [read_one(path) for path in files]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        # biggest first, so that the last file to finish is a small one
        futures = {path: pool.submit(read_one, path) for path in sorted(files, key=lambda p: -p.stat().st_size)}
        return [futures[path].result() for path in files]


def read_bundle(bundle_dir: Path, profile_data: dict) -> tuple[pd.DataFrame, list[SheetInfo]]:
    """All mapped rows of all sheets of all spreadsheets in the bundle, in file/sheet/row order."""
    bundle_dir = Path(bundle_dir)
    if not bundle_dir.is_dir():
        raise BundleError(f"{bundle_dir}: not a folder (expected a restored bundle)")
    files = find_spreadsheets(bundle_dir)
    if not files:
        raise BundleError(f"{bundle_dir}: no spreadsheets ({', '.join(SPREADSHEET_SUFFIXES)}) in the bundle")
    sheets, frames = [], []
    for results in read_files(bundle_dir, files, profile_data):
        for info, frame in results:
            sheets.append(info)
            if frame is not None and len(frame):
                frames.append(frame)
    if not frames:
        read = [f"{s.file}:{s.sheet} ({s.note})" for s in sheets]
        raise BundleError(f"{bundle_dir}: no sheet has rows the data profile can map; sheets seen: " + "; ".join(read))
    fields = list(profile_data["fields"])
    empty = np.array([""], dtype=object)
    columns = {}
    for name in META_COLUMNS + fields:
        parts = [f[name].to_numpy() if name in f else np.repeat(empty, len(f)) for f in frames]
        columns[name] = np.concatenate(parts)
    return object_frame(columns), sheets
