"""What a run will process: settings + discovered archives + cursor → the bundles of the window.

Computed when the Snakefile is parsed, so every bad input is reported before any job runs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from sheetfill.bundle.profiles import load_profile
from sheetfill.errors import ConfigError
from sheetfill.runs.config import Settings, load_settings
from sheetfill.runs.cursor import read_cursor
from sheetfill.runs.discovery import Archive, describe_window, explain_empty, scan, select


@dataclass(frozen=True)
class Plan:
    settings: Settings
    since: dt.date | None  # effective first date: `since`, or the day after the cursor
    until: dt.date | None
    cursor: dt.date | None
    profile_path: Path
    archives: list[Archive] = field(default_factory=list)
    note: str = ""  # why the plan is empty, for scheduled runs with nothing new
    history: list[Archive] = field(default_factory=list)  # every archive found, of any date and version

    @property
    def bundles(self) -> list[str]:
        return [a.bundle for a in self.archives]

    def unreadable(self) -> dict[str, str]:
        """Bundles whose archive this user cannot read: {bundle: archive path}. Snakemake checksums
        small inputs itself and would abort the run on them, so their jobs get a stand-in input."""
        return {a.bundle: str(a.path) for a in self.archives if not os.access(a.path, os.R_OK)}

    @property
    def window_key(self) -> str:
        """Names the run record of this window; a different window is a different record."""
        versions = "+".join(self.settings.versions) if self.settings.versions else "all"
        key = f"{self.since or 'first'}_{self.until or 'newest'}_{versions}"
        if self.settings.bundles:  # a chosen few of the window: its own record, named by which
            key += "_" + hashlib.sha256(",".join(self.settings.bundles).encode()).hexdigest()[:10]
        return key

    def archive_input_pattern(self) -> str | None:
        """The archive path as a Snakemake pattern over {date} and {version}, when dates are ISO."""
        pattern = self.settings.archive_pattern
        if "{date}" not in pattern:
            return None  # a strftime format: the rule looks the path up instead
        return str(self.settings.archive_root / pattern)

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


def check_versions_exist(versions: tuple[str, ...] | None, archives: list[Archive]) -> None:
    """A version that no archive has is a typo, in a scheduled run as in a backfill."""
    known = {a.version for a in archives}
    unknown = sorted(set(versions or ()) - known)
    if unknown and archives:
        raise ConfigError(
            f"versions {', '.join(unknown)} not found in any archive; versions that exist: "
            f"{', '.join(sorted(known))}. Fix --config versions=[...] or omit it for all."
        )


def _cursor(settings: Settings) -> dt.date | None:
    """The cursor; a backfill never uses it, so a corrupt one does not block a backfill."""
    if not settings.backfill:
        return read_cursor(settings.cursor_file)
    try:
        return read_cursor(settings.cursor_file)
    except ConfigError:
        return None


def make_plan(config: dict) -> Plan:
    settings = load_settings(config)
    profile_path = load_profile(settings.profile).path  # a broken data profile fails here, before any job
    cursor = _cursor(settings)
    since = settings.since
    if not settings.backfill and cursor is not None:
        since = cursor + dt.timedelta(days=1)
    archives = scan(settings.archive_root, settings.archive_pattern)
    plan = Plan(
        settings=settings, since=since, until=settings.until, cursor=cursor, profile_path=profile_path, history=archives
    )
    check_versions_exist(settings.versions, archives)
    in_window = select(archives, since, settings.until, None)
    if not in_window and not settings.backfill and cursor is not None:
        note = f"Nothing new: no archive after the cursor ({cursor}) in {describe_window(since, settings.until)}."
        return replace(plan, note=note)
    if not in_window:
        raise ConfigError(
            explain_empty(settings.archive_root, settings.archive_pattern, archives, since, settings.until)
        )
    chosen = select(in_window, since, settings.until, settings.versions)
    return replace(plan, archives=pick_bundles(chosen, settings.bundles, describe_window(since, settings.until)))


def pick_bundles(archives: list[Archive], wanted: tuple[str, ...] | None, window: str) -> list[Archive]:
    """The archives of the named bundles (all when none are named); a name not in the window is an error."""
    if not wanted:
        return archives
    known = {a.bundle for a in archives}
    unknown = [name for name in wanted if name not in known]
    if unknown:
        example = f" (e.g. {archives[0].bundle})" if archives else ""
        raise ConfigError(
            f"bundles {', '.join(unknown)} have no archive in {window}{example}. Name bundles that exist "
            "in the window as DATE--VERSION, widen since/until, or omit bundles for the whole window."
        )
    return [a for a in archives if a.bundle in wanted]
