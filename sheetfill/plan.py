"""What a run will process: settings + discovered archives + cursor → the bundles of the window.

Computed when the Snakefile is parsed, so every bad input is reported before any job runs.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from sheetfill.config import REPO_ROOT, Settings, load_settings
from sheetfill.cursor import read_cursor
from sheetfill.discovery import Archive, describe_window, explain_empty, scan, select
from sheetfill.errors import ConfigError

PROFILE_DIR = REPO_ROOT / "config" / "profiles"


@dataclass(frozen=True)
class Plan:
    settings: Settings
    since: dt.date | None  # effective first date: `since`, or the day after the cursor
    until: dt.date | None
    cursor: dt.date | None
    profile_path: Path
    archives: list[Archive] = field(default_factory=list)
    note: str = ""  # why the plan is empty, for scheduled runs with nothing new

    @property
    def bundles(self) -> list[str]:
        return [a.bundle for a in self.archives]

    @property
    def window_key(self) -> str:
        """Names the run record of this window; a different window is a different record."""
        versions = "+".join(self.settings.versions) if self.settings.versions else "all"
        return f"{self.since or 'first'}_{self.until or 'newest'}_{versions}"

    def window(self) -> dict:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "versions": list(self.settings.versions) if self.settings.versions else None,
            "backfill": self.settings.backfill,
            "cursor": self.cursor.isoformat() if self.cursor else None,
        }

    def window_json(self) -> str:
        return json.dumps(self.window(), sort_keys=True)


def resolve_profile(ref: str) -> Path:
    """A data profile name (config/profiles/<name>.yaml) or a path to a YAML file."""
    looks_like_path = ref.endswith((".yaml", ".yml")) or "/" in ref
    path = Path(ref) if looks_like_path else PROFILE_DIR / f"{ref}.yaml"
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))) or "none"
        raise ConfigError(
            f"Data profile {ref!r} not found (looked for {path}). Use a name from config/profiles/ "
            f"({names}) or a path to a YAML file: --config profile=path/to/profile.yaml."
        )
    return path


def make_plan(config: dict) -> Plan:
    settings = load_settings(config)
    profile_path = resolve_profile(settings.profile)
    cursor = read_cursor(settings.cursor_file)
    since = settings.since
    if not settings.backfill and cursor is not None:
        since = cursor + dt.timedelta(days=1)
    plan = Plan(settings=settings, since=since, until=settings.until, cursor=cursor, profile_path=profile_path)
    archives = scan(settings.archive_root, settings.archive_pattern)
    in_window = select(archives, since, settings.until, None)
    if not in_window and not settings.backfill and cursor is not None:
        note = f"Nothing new: no archive after the cursor ({cursor}) in {describe_window(since, settings.until)}."
        return replace(plan, note=note)
    if not in_window:
        raise ConfigError(explain_empty(settings.archive_root, settings.archive_pattern, archives,
                                        since, settings.until))
    return replace(plan, archives=select(in_window, since, settings.until, settings.versions))
