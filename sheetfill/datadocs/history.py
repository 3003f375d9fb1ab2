"""Which bundles the data docs cover: every bundle built under restore_root, the window's marked.

The data docs are rebuilt for each run, but they show the whole history: a scheduled run's window is
one day, and the question "what has failed lately, and since when" spans years. Version diffs need
two parquet files each, so those of bundles outside the window are kept in a small cache next to
the cursor (the docs folder itself is replaced on every build).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

BUNDLE_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}--[^/]+$")
STAGES = ("enriched", "outputs")  # the enriched copy of a bundle, when there is one, is what the gate read


def history_folders(restore_root: Path, window_folders: list[Path]) -> list[Path]:
    """Every built bundle folder under restore_root (one per bundle), with the window's own folders."""
    chosen = {Path(folder).name: Path(folder) for folder in window_folders}
    window = set(chosen)
    for stage in reversed(STAGES):  # outputs first, then enriched replaces it
        root = Path(restore_root) / stage
        if not root.is_dir():
            continue
        with os.scandir(root) as entries:
            for entry in entries:
                if entry.is_dir() and BUNDLE_NAME.match(entry.name) and entry.name not in window:
                    if os.path.exists(os.path.join(entry.path, "bundle.json")):
                        chosen[entry.name] = Path(entry.path)
    return list(chosen.values())


def window_names(window_folders: list[Path]) -> set[str]:
    return {Path(folder).name for folder in window_folders}


def _stamp(path: Path) -> list:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return [None]
    return [stat.st_mtime_ns, stat.st_size]


class DiffCache:
    """Version diffs by bundle, valid while both parquet files keep their size and mtime."""

    def __init__(self, path: Path | None):
        self.path = Path(path) if path else None
        self.entries: dict = {}
        if self.path and self.path.exists():
            try:
                self.entries = json.loads(self.path.read_text())
            except ValueError:
                self.entries = {}  # a torn cache is only a slower build

    def key(self, before: Path, after: Path) -> list:
        return [str(before), *_stamp(before), str(after), *_stamp(after)]

    def get(self, bundle: str, key: list):
        entry = self.entries.get(bundle)
        return entry["diff"] if entry and entry["key"] == key else None

    def put(self, bundle: str, key: list, diff: dict) -> None:
        self.entries[bundle] = {"key": key, "diff": diff}

    def save(self) -> None:
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            temp.write_text(json.dumps(self.entries, sort_keys=True))
            os.replace(temp, self.path)


class PageCache:
    """Rendered bundle pages kept between builds, valid while the bundle's files and the templates stay.

    The docs folder is replaced on every build (Snakemake removes a directory output first), yet most
    of a long history has not changed: its pages are linked back in instead of rendered again.
    """

    FILES = ("bundle.json", "validation.json", "provenance.json")

    def __init__(self, folder: Path | None, templates: Path):
        self.folder = Path(folder) if folder else None
        self.templates = hashlib.sha256(
            b"".join(p.read_bytes() for p in sorted(Path(templates).glob("*.j2")))
        ).hexdigest()[:16]

    def key(self, bundle: dict, extra) -> str:
        stamps = [_stamp(Path(bundle["folder"]) / name) for name in self.FILES]
        text = json.dumps([str(bundle["folder"]), stamps, extra, self.templates], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def place(self, key: str, target: Path, render) -> None:
        """Write target from the cached page for key, rendering (and caching) it when there is none."""
        if self.folder is None:
            target.write_text(render(), encoding="utf-8")
            return
        cached = self.folder / f"{key}.html"
        if not cached.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            temp = cached.with_name(f".{cached.name}.{os.getpid()}")
            temp.write_text(render(), encoding="utf-8")
            os.replace(temp, cached)
        try:
            os.link(cached, target)
        except OSError:
            shutil.copyfile(cached, target)

    def prune(self, keep: set[str]) -> None:
        """Forget pages no bundle uses any more (rebuilt bundles leave their old page behind)."""
        if self.folder and self.folder.is_dir():
            for path in self.folder.glob("*.html"):
                if path.stem not in keep:
                    path.unlink(missing_ok=True)
