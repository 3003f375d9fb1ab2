"""Safe restore of one archived bundle into its own folder.

Every member is checked before anything is written (no absolute paths, no '..', no symlinks,
size and compression-ratio caps); extraction goes to a temporary sibling folder that is renamed
into place only when complete, so a failed or killed restore never leaves a half-filled folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from sheetfill.errors import BundleError
from sheetfill.runs.config import Limits

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _unsafe_reason(info: zipfile.ZipInfo) -> str | None:
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "climbs out of the bundle folder with '..'"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    return None


def check_members(archive: Path, zf: zipfile.ZipFile, limits: Limits) -> list[zipfile.ZipInfo]:
    """The archive's file members, or BundleError naming the first member that breaks a rule."""
    infos = zf.infolist()
    files = [i for i in infos if not i.is_dir()]
    if not files:
        raise BundleError(f"{archive} is an empty zip (no files); re-capture the bundle or remove it.")
    if len(infos) > limits.max_members:
        raise BundleError(f"{archive} has {len(infos)} members, over limits.max_members={limits.max_members}.")
    for info in infos:
        reason = _unsafe_reason(info)
        if reason:
            raise BundleError(f"{archive}: member {info.filename!r} {reason}; refusing to restore this bundle.")
    total = sum(i.file_size for i in files)
    packed = max(1, sum(i.compress_size for i in files))
    if total > limits.max_uncompressed_bytes:
        raise BundleError(
            f"{archive} would unpack to {total / 2**20:.1f} MiB, over limits.max_uncompressed_mb "
            f"({limits.max_uncompressed_bytes / 2**20:.0f}); raise the limit if the bundle is genuine."
        )
    if total / packed > limits.max_compression_ratio:
        raise BundleError(
            f"{archive} has compression ratio {total / packed:.0f}:1, over limits.max_compression_ratio "
            f"({limits.max_compression_ratio:.0f}); it looks like a zip bomb."
        )
    return files


def _extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, budget: list[int]) -> str:
    """Stream one member to disk, counting real bytes (headers can lie) and hashing as we go."""
    target = dest / info.filename.replace("\\", "/")
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with zf.open(info) as source, open(target, "wb") as sink:
        for block in iter(lambda: source.read(CHUNK), b""):
            budget[0] -= len(block)
            if budget[0] < 0:
                raise BundleError(f"member {info.filename!r} unpacks larger than its header says; refusing.")
            digest.update(block)
            sink.write(block)
    return digest.hexdigest()


def fresh_staging(dest: Path) -> Path:
    """A hidden sibling of dest to build into, after sweeping leftovers of killed attempts."""
    for stale in dest.parent.glob(f".{dest.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    return dest.with_name(f".{dest.name}.partial-{os.getpid()}")


def restore_archive(archive: Path, dest: Path, limits: Limits) -> list[dict]:
    """Extract archive into dest (replacing it); return members with sizes and sha256."""
    dest = Path(dest)
    staging = fresh_staging(dest)
    try:
        with zipfile.ZipFile(archive) as zf:
            files = check_members(archive, zf, limits)
            staging.mkdir(parents=True)
            budget = [limits.max_uncompressed_bytes]
            members = [
                {"name": i.filename, "size": i.file_size, "sha256": _extract_member(zf, i, staging, budget)}
                for i in files
            ]
    except zipfile.BadZipFile as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise BundleError(f"{archive} is not a readable zip archive ({exc}); re-capture it or remove it.") from None
    except (EOFError, zlib.error, NotImplementedError) as exc:
        # Truncated or corrupt member data, or a compression method zipfile cannot read.
        shutil.rmtree(staging, ignore_errors=True)
        raise BundleError(f"{archive} could not be extracted: {exc}; re-capture it or remove it.") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)
    return members
