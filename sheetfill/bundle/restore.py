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


NAME_MAX = 255  # bytes per path component on Linux file systems (ext4, xfs, tmpfs)
PATH_MAX = 4096  # bytes per whole path


def _unsafe_reason(info: zipfile.ZipInfo, dest: Path) -> str | None:
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "climbs out of the bundle folder with '..'"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    if info.flag_bits & 0x1:  # ZipCrypto and AES alike set the 'encrypted' bit
        return "is password-protected (encrypted); re-capture the bundle without a password"
    longest = max((len(part.encode()) for part in PurePosixPath(name).parts), default=0)
    if longest > NAME_MAX:
        return f"has a name part of {longest} bytes, over the file system's {NAME_MAX}; rename it in the archive"
    if len(os.fsencode(dest.resolve() / name)) >= PATH_MAX:
        return f"would be restored at a path over the file system's {PATH_MAX} bytes; shorten its folders"
    return None


def _short(name: str, limit: int = 80) -> str:
    """A member name for a one-line message: long names shortened in the middle."""
    return name if len(name) <= limit else f"{name[: limit // 2]}…{name[-limit // 2 :]}"


def _restored_name(info: zipfile.ZipInfo) -> str:
    """The name a member gets on disk: '\\' → '/', './' and repeated '/' dropped."""
    return PurePosixPath(info.filename.replace("\\", "/")).as_posix()


def _duplicates(infos: list[zipfile.ZipInfo]) -> list[str]:
    """Names that occur more than once, as restored."""
    seen: dict[str, int] = {}
    for info in infos:
        key = _restored_name(info)
        seen[key] = seen.get(key, 0) + 1
    return sorted(name for name, count in seen.items() if count > 1)


def list_members(archive: Path, dest: Path, limit: int) -> tuple[list[dict], int] | None:
    """A failed bundle's file members (the first `limit`), each with the rule it breaks if any, and how
    many more there are; None when the archive cannot even be listed (not a zip, unreadable)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            files = [i for i in zf.infolist() if not i.is_dir()]
    except (OSError, zipfile.BadZipFile, EOFError, ValueError):
        return None
    twice = set(_duplicates(files))
    listed = [
        {
            "name": i.filename,
            "size": i.file_size,
            "problem": _unsafe_reason(i, dest)
            or ("is stored twice under the same name" if _restored_name(i) in twice else None),
        }
        for i in files[:limit]
    ]
    return listed, len(files) - len(listed)


def check_members(archive: Path, zf: zipfile.ZipFile, limits: Limits, dest: Path) -> list[zipfile.ZipInfo]:
    """The archive's file members, or BundleError naming the first member that breaks a rule."""
    infos = zf.infolist()
    files = [i for i in infos if not i.is_dir()]
    if not files:
        raise BundleError(f"{archive} is an empty zip (no files); re-capture the bundle or remove it.")
    if len(infos) > limits.max_members:
        raise BundleError(f"{archive} has {len(infos)} members, over limits.max_members={limits.max_members}.")
    for info in infos:
        reason = _unsafe_reason(info, dest)
        if reason:
            raise BundleError(f"{archive}: member {_short(info.filename)!r} {reason}; refusing to restore this bundle.")
    duplicates = _duplicates(files)
    if duplicates:
        raise BundleError(
            f"{archive}: members stored twice under the same name: {', '.join(map(repr, duplicates))}; "
            "the second would overwrite the first. Re-capture the bundle with unique names."
        )
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
    digest = hashlib.sha256()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(info) as source, open(target, "wb") as sink:
            for block in iter(lambda: source.read(CHUNK), b""):
                budget[0] -= len(block)
                if budget[0] < 0:
                    raise BundleError(
                        f"member {_short(info.filename)!r} unpacks larger than its header says; refusing."
                    )
                digest.update(block)
                sink.write(block)
    except OSError as exc:  # a name the file system refuses, a full disk, a member clashing with a folder
        raise BundleError(f"member {_short(info.filename)!r} could not be restored: {exc.strerror or exc}") from None
    except RuntimeError as exc:  # zipfile's "encrypted, password required" and friends
        raise BundleError(f"member {_short(info.filename)!r} could not be extracted: {exc}") from None
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
            files = check_members(archive, zf, limits, staging)
            staging.mkdir(parents=True)
            budget = [limits.max_uncompressed_bytes]
            members = [
                {"name": i.filename, "size": i.file_size, "sha256": _extract_member(zf, i, staging, budget)}
                for i in files
            ]
    except PermissionError:
        shutil.rmtree(staging, ignore_errors=True)
        raise BundleError(f"{archive}: permission denied; make the archive readable for this user.") from None
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
