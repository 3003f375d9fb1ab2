import random
import stat
import zipfile

import pytest

from sheetfill.bundle.restore import restore_archive, sha256_file
from sheetfill.errors import BundleError
from sheetfill.runs.config import Limits

LIMITS = Limits(max_uncompressed_bytes=50 * 2**20, max_compression_ratio=200, max_members=100)


def make_zip(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            if isinstance(name, zipfile.ZipInfo):
                zf.writestr(name, data)
            else:
                zf.writestr(name, data)
    return path


def files_under(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def test_restores_nested_members_with_hashes(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"inputs/Reachout Database.xlsx": b"x" * 10, "top.csv": b"a,b\n1,2\n"})
    members = restore_archive(archive, tmp_path / "out" / "2025-09-29--v1", LIMITS)
    dest = tmp_path / "out" / "2025-09-29--v1"
    assert (dest / "inputs" / "Reachout Database.xlsx").read_bytes() == b"x" * 10
    assert {m["name"] for m in members} == {"inputs/Reachout Database.xlsx", "top.csv"}
    assert all(m["sha256"] == sha256_file(dest / m["name"]) for m in members)


def symlink_info():
    info = zipfile.ZipInfo("link.xlsx")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    "members, reason",
    [
        ({"../evil.csv": b"x", "ok.csv": b"y"}, "'..'"),
        ({"/etc/evil.csv": b"x"}, "absolute path"),
        ({"sub/../../evil.csv": b"x"}, "'..'"),
        ({symlink_info(): b"/etc/passwd"}, "symbolic link"),
    ],
)
def test_unsafe_members_fail_the_bundle_and_write_nothing(tmp_path, members, reason):
    archive = make_zip(tmp_path / "bad.zip", members)
    out = tmp_path / "restore" / "b"
    before = files_under(tmp_path)
    with pytest.raises(BundleError, match=reason):
        restore_archive(archive, out, LIMITS)
    assert files_under(tmp_path) == before  # nothing inside or outside the bundle folder


def test_zip_bomb_ratio_is_refused(tmp_path):
    archive = make_zip(tmp_path / "bomb.zip", {"big.csv": b"0" * (20 * 2**20)})
    with pytest.raises(BundleError, match="compression ratio .* zip bomb"):
        restore_archive(archive, tmp_path / "out", LIMITS)
    assert not (tmp_path / "out").exists()


def test_total_size_cap_is_configurable(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"a.csv": random.Random(1).randbytes(256 * 8000)})
    small = Limits(max_uncompressed_bytes=1000, max_compression_ratio=1e9, max_members=10)
    with pytest.raises(BundleError, match="max_uncompressed_mb"):
        restore_archive(archive, tmp_path / "out", small)
    restore_archive(archive, tmp_path / "out", LIMITS)
    assert (tmp_path / "out" / "a.csv").stat().st_size == 256 * 8000


@pytest.mark.parametrize(
    "content, message",
    [(b"this is not a zip", "not a readable zip"), (None, "empty zip")],
)
def test_corrupt_or_empty_archives_fail_clearly(tmp_path, content, message):
    archive = tmp_path / "x.zip"
    if content is None:
        zipfile.ZipFile(archive, "w").close()
    else:
        archive.write_bytes(content)
    with pytest.raises(BundleError, match=message):
        restore_archive(archive, tmp_path / "out", LIMITS)
    assert not (tmp_path / "out").exists()


def test_truncated_archive_fails_without_partial_folder(tmp_path):
    good = make_zip(tmp_path / "good.zip", {f"f{i}.csv": bytes(range(256)) * 500 for i in range(5)})
    data = good.read_bytes()
    truncated = tmp_path / "cut.zip"
    truncated.write_bytes(data[: len(data) // 2] + data[-200:])
    with pytest.raises(BundleError):
        restore_archive(truncated, tmp_path / "out", LIMITS)
    assert files_under(tmp_path) == ["cut.zip", "good.zip"]


def test_restore_replaces_a_stale_folder(tmp_path):
    out = tmp_path / "out"
    (out / "old").mkdir(parents=True)
    restore_archive(make_zip(tmp_path / "a.zip", {"new.csv": b"1"}), out, LIMITS)
    assert files_under(out) == ["new.csv"]


def test_leftovers_of_a_killed_restore_are_swept(tmp_path):
    out = tmp_path / "restore" / "b"
    stale = tmp_path / "restore" / ".b.partial-99999"
    (stale / "half").mkdir(parents=True)
    restore_archive(make_zip(tmp_path / "a.zip", {"x.csv": b"1"}), out, LIMITS)
    assert files_under(tmp_path / "restore") == ["b", "b/x.csv"]
