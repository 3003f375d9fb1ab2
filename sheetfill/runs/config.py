"""Workflow configuration: schema validation with defaults, date parsing, clear errors.

Shared by the Snakefile (workflow/rules/common.smk), the CLI and the Python API so that every
front end rejects bad input the same way, before any job runs.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from sheetfill.errors import ConfigError

# libyaml's parser when PyYAML was built with it: ~10x faster than the pure-Python one, per job.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text):
    """yaml.safe_load, through libyaml when available."""
    return yaml.load(text, Loader=_YAML_LOADER)


REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Limits:
    max_uncompressed_bytes: int
    max_compression_ratio: float
    max_members: int


@dataclass(frozen=True)
class Settings:
    archive_root: Path
    archive_pattern: str
    restore_root: Path
    since: dt.date | None
    until: dt.date | None
    versions: tuple[str, ...] | None
    profile: str
    archive: bool
    cursor_file: Path
    limits: Limits
    worker: str
    telemetry: str = "auto"  # auto | off (sheetfill.telemetry)
    bundles: tuple[str, ...] | None = None  # exactly these bundles of the window (a retry)

    @property
    def backfill(self) -> bool:
        """A run with `since` (or named bundles) replays history and never moves the cursor."""
        return self.since is not None or self.bundles is not None


def load_schema() -> dict:
    return load_yaml(SCHEMA_PATH.read_text())


def parse_date(key: str, value) -> dt.date | None:
    """Accept date objects (YAML) and 'YYYY-MM-DD' strings (--config arrives as text)."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    hint = f"Use YYYY-MM-DD, e.g. --config {key}=2025-09-29."
    if not ISO_DATE.match(text):
        raise ConfigError(f"{key}={text!r} is not a date. {hint}")
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"{key}={text!r} is not a valid date ({exc}). {hint}") from None


def _names(value) -> tuple[str, ...] | None:
    """A list, or a comma-separated string as `--config key=a,b` gives it; empty means not given."""
    if value is None or value == "" or value == []:
        return None
    items = value.split(",") if isinstance(value, str) else value
    return tuple(str(item).strip() for item in items if str(item).strip()) or None


def parse_versions(value) -> tuple[str, ...] | None:
    versions = _names(value)
    bad = [v for v in versions or () if "/" in v or "--" in v]
    if bad:
        raise ConfigError(f"versions {bad} may not contain '/' or '--' (they name folders).")
    return versions


def parse_bundles(value) -> tuple[str, ...] | None:
    bundles = _names(value)
    bad = [b for b in bundles or () if "/" in b or not all(b.partition("--"))]
    if bad:
        raise ConfigError(
            f"bundles {bad} are not bundle names: name each as DATE--VERSION, e.g. 2025-09-29--v1 "
            "(the folder names under outputs/)."
        )
    return tuple(sorted(set(bundles))) if bundles else None


def fill_defaults(schema: dict, config: dict) -> dict:
    """Return a copy of config with the schema's defaults filled in (one level of nesting)."""
    filled = copy.deepcopy(config)
    for key, spec in schema.get("properties", {}).items():
        if key not in filled and "default" in spec:
            filled[key] = copy.deepcopy(spec["default"])
        if spec.get("type") == "object" and isinstance(filled.get(key), dict):
            filled[key] = fill_defaults(spec, filled[key])
    return filled


def _dates_as_text(config: dict) -> dict:
    """YAML turns 2025-09-29 into a date; the schema (and --config) speak strings."""
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in config.items()}


BOOLEAN_WORDS = {"true": True, "yes": True, "false": False, "no": False}


def _booleans_from_text(config: dict, schema: dict) -> dict:
    """`--config archive=true` arrives as the text 'true': read the words YAML users write."""
    fixed = dict(config)
    for key, spec in schema.get("properties", {}).items():
        value = fixed.get(key)
        if spec.get("type") == "boolean" and isinstance(value, str):
            word = value.strip().lower()
            if word not in BOOLEAN_WORDS:
                raise ConfigError(f"{key}={value!r} is not a boolean. Use true/false (or yes/no), e.g. {key}=true.")
            fixed[key] = BOOLEAN_WORDS[word]
    return fixed


def check_schema(config: dict, schema: dict) -> None:
    import jsonschema

    known = sorted(schema["properties"])
    for key in config:
        if key not in schema["properties"]:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"Unknown config key {key!r}.{hint} Known keys: {', '.join(known)}.")
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(config))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "config"
        raise ConfigError(f"Invalid config value for {where}: {error.message}. See config/README.md.")


def load_settings(config: dict, check_paths: bool = True) -> Settings:
    """Validate a raw config mapping and return typed settings, or raise ConfigError."""
    schema = load_schema()
    raw = _booleans_from_text(_dates_as_text(dict(config)), schema)
    check_schema(raw, schema)
    raw = fill_defaults(schema, raw)
    since, until = parse_date("since", raw["since"]), parse_date("until", raw["until"])
    if since and until and since > until:
        raise ConfigError(f"since ({since}) is after until ({until}); the window is inclusive, swap them.")
    restore_root = Path(raw["restore_root"])
    archive_root = Path(raw["archive_root"])
    if check_paths and not archive_root.is_dir():
        raise ConfigError(
            f"archive_root {str(archive_root)!r} is not a folder (resolved: {archive_root.resolve()}). "
            "Set archive_root in config/config.yaml or pass --config archive_root=/path/to/archives."
        )
    check_pattern(raw["archive_pattern"])
    limits = raw["limits"]
    return Settings(
        archive_root=archive_root,
        archive_pattern=raw["archive_pattern"],
        restore_root=restore_root,
        since=since,
        until=until,
        versions=parse_versions(raw["versions"]),
        profile=raw["profile"],
        archive=raw["archive"],
        cursor_file=Path(raw["cursor_file"] or restore_root / ".sheetfill" / "cursor.json"),
        limits=Limits(
            max_uncompressed_bytes=int(limits["max_uncompressed_mb"] * 1024 * 1024),
            max_compression_ratio=float(limits["max_compression_ratio"]),
            max_members=int(limits["max_members"]),
        ),
        worker=raw["worker"],
        telemetry="off" if raw["telemetry"] is False else raw["telemetry"],
        bundles=parse_bundles(raw["bundles"]),
    )


def check_pattern(pattern: str) -> None:
    from sheetfill.runs.discovery import compile_pattern

    compile_pattern(pattern)
