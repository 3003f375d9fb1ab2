"""Pack one bundle's outputs into a zip with a SHA256SUMS manifest (config `archive: true`)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from sheetfill.bundle.restore import sha256_file

FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member times: same outputs give the same zip bytes


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def pack_outputs(outputs: Path, zip_path: Path) -> list[str]:
    """Write zip_path holding the refined files of outputs plus SHA256SUMS; return the member names.

    Hidden files are not outputs (Snakemake marks finished output folders with .snakemake_timestamp).
    """
    files = sorted(p for p in Path(outputs).rglob("*") if p.is_file() and not _hidden(p.relative_to(outputs)))
    sums = "".join(f"{sha256_file(p)}  {p.relative_to(outputs).as_posix()}\n" for p in files)
    temp = zip_path.with_name(f".{zip_path.name}.{os.getpid()}")
    with zipfile.ZipFile(temp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(outputs).as_posix(), FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
        zf.writestr(zipfile.ZipInfo("SHA256SUMS", FIXED_TIME), sums)
    os.replace(temp, zip_path)
    return [p.relative_to(outputs).as_posix() for p in files] + ["SHA256SUMS"]
