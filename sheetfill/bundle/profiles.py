"""Data profiles: YAML files that tell the refine engine how to read and merge a bundle.

"Profile" here always means a *data* profile (config/profiles/*.yaml), never a Snakemake
execution profile (workflow/profiles/). The format is documented in docs/profiles.md and
enforced by workflow/schemas/profile.schema.yaml plus the cross-reference checks below.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from sheetfill.errors import ProfileError
from sheetfill.runs.config import load_yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
PROFILES_DIR = REPO_ROOT / "config" / "profiles"
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "profile.schema.yaml"

# Output columns the engine derives itself rather than reading from a declared field.
DERIVED_COLUMNS = {"emails": "email", "phones": "phone"}
CHECKS = ("not_null", "unique", "regex", "in_set", "between", "row_count")  # see sheetfill.bundle.validation


@dataclass(frozen=True)
class Profile:
    name: str
    path: Path
    sha256: str
    data: dict
    expectations: list = field(default_factory=list)
    pii_fields: list = field(default_factory=list)

    @property
    def fields(self) -> dict:
        return self.data["fields"]

    @property
    def sources(self) -> list:
        return self.data["sources"]

    @property
    def phone_region(self) -> str:
        return self.data.get("normalisation", {}).get("phone_region", "ZA")

    @property
    def output_columns(self) -> list[str]:
        """Canonical output columns; default: every declared field that is not a helper."""
        declared = self.data.get("output", {}).get("columns")
        if declared:
            return list(declared)
        helpers = {"key", "date"}
        return [
            name for name, spec in self.fields.items() if spec["type"] not in helpers and "combine_into" not in spec
        ]


def resolve_profile_path(name_or_path: str | Path) -> Path:
    """A bare name means config/profiles/<name>.yaml; anything with a suffix or slash is a path."""
    text = str(name_or_path)
    if "/" in text or "\\" in text or text.endswith((".yaml", ".yml")):
        return Path(text).expanduser().resolve()
    return PROFILES_DIR / f"{text}.yaml"


def load_profile(name_or_path: str | Path) -> Profile:
    """Read, validate and return a data profile; every problem is a ProfileError with the fix."""
    path = resolve_profile_path(name_or_path)
    if not path.is_file():
        known = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))
        raise ProfileError(
            f"data profile {name_or_path!r} not found at {path}; give a name from "
            f"{PROFILES_DIR} ({', '.join(known) or 'none there'}) or a path to a YAML file"
        )
    raw = path.read_bytes()
    data = _parse_yaml(raw, path)
    _check_schema(data, path)
    _check_references(data, path)
    _check_expectations(data, path)
    return Profile(
        name=data["name"],
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
        data=data,
        expectations=list(data.get("expectations", [])),
        pii_fields=list(data.get("pii_fields", [])),
    )


def _parse_yaml(raw: bytes, path: Path) -> dict:
    try:
        data = load_yaml(raw)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML ({exc}); fix the syntax at the position shown") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: a data profile must be a YAML mapping with name, sources and fields")
    return data


@lru_cache(maxsize=1)
def _validator():
    # jsonschema is imported here so that importing sheetfill.bundle.profiles stays cheap.
    import jsonschema

    schema = load_yaml(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def _error_key(error) -> str:
    """Dotted location of a schema error, e.g. sources[1].priority."""
    parts = []
    for item in error.absolute_path:
        parts.append(f"[{item}]" if isinstance(item, int) else f".{item}" if parts else str(item))
    return "".join(parts) or "(top level)"


def _schema_fix(error) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        return f"remove or rename it; allowed keys here: {', '.join(allowed)}" if allowed else "remove it"
    if error.validator == "enum":
        return f"use one of: {', '.join(map(str, error.validator_value))}"
    if error.validator == "required":
        return "add the missing key"
    description = " ".join(str(schema.get("description", "")).split())
    return description or f"see docs/profiles.md ({error.validator} {error.validator_value!r})"


def _check_schema(data: dict, path: Path) -> None:
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = [f"  {_error_key(e)}: {e.message}; fix: {_schema_fix(e)}" for e in errors[:10]]
        raise ProfileError(f"data profile {path} is invalid:\n" + "\n".join(lines))


def _check_references(data: dict, path: Path) -> None:
    """Names used in one part of the profile must be declared in another."""
    fields = set(data["fields"])
    columns = fields | set(DERIVED_COLUMNS)
    problems = []

    def expect_field(key: str, value: str, allowed: set[str] = fields) -> None:
        if value not in allowed:
            problems.append(
                f"  {key}: {value!r} is not a declared field; fix: add it under "
                f"`fields:` or use one of {', '.join(sorted(allowed))}"
            )

    for name, spec in data["fields"].items():
        for option in ("role_field", "combine_into"):
            if option in spec:
                expect_field(f"fields.{name}.{option}", spec[option])
    for i, source in enumerate(data["sources"]):
        for header, target in (source.get("columns") or {}).items():
            if target is not None:
                expect_field(f"sources[{i}].columns.{header}", target)
        for j, item in enumerate(source.get("required", [])):
            expect_field(f"sources[{i}].required[{j}]", item)
    for i, item in enumerate(data.get("required", [])):
        expect_field(f"required[{i}]", item)
    resolution = data.get("resolution", {})
    for key in ("blocking_key", "recency_field"):
        if key in resolution:
            expect_field(f"resolution.{key}", resolution[key])
    for key in ("link_keys", "link_fields", "contact_fields"):
        for i, item in enumerate(resolution.get(key, [])):
            expect_field(f"resolution.{key}[{i}]", item)
    for i, item in enumerate(data.get("output", {}).get("columns", [])):
        expect_field(f"output.columns[{i}]", item, columns)
    for i, item in enumerate(data.get("quality", {}).get("fields", [])):
        expect_field(f"quality.fields[{i}]", item, columns)
    problems += _duplicate_names("sources", [s["name"] for s in data["sources"]])
    expectations = data.get("expectations", [])
    problems += _duplicate_names("expectations", [e["name"] for e in expectations])
    source_names = {s["name"] for s in data["sources"]} | {"records"}
    for i, item in enumerate(expectations):
        if item.get("source", "records") not in source_names:
            problems.append(
                f"  expectations[{i}].source: {item['source']!r} is not a source; fix: use "
                f"one of {', '.join(sorted(source_names))}"
            )
    if data.get("enrich"):
        from sheetfill.enrich.spec import spec_problems

        problems += spec_problems(data, set(data.get("output", {}).get("columns") or fields))
    if problems:
        raise ProfileError(f"data profile {path} is invalid:\n" + "\n".join(problems))


def _duplicate_names(key: str, names: list[str]) -> list[str]:
    seen, problems = set(), []
    for i, name in enumerate(names):
        if name in seen:
            problems.append(f"  {key}[{i}].name: {name!r} is used twice; fix: give each a unique name")
        seen.add(name)
    return problems


def expectation_problems(expectations: list[dict]) -> list[str]:
    """Mistakes a schema cannot see (unknown check, missing option, bad regex), as 'key: fix' lines."""
    problems = []
    for i, spec in enumerate(expectations):
        where, check = f"expectations[{i}] ({spec.get('name')})", spec.get("check")
        if check not in CHECKS:
            problems.append(f"{where}.check: {check!r} is unknown; fix: use one of {', '.join(CHECKS)}")
        elif check != "row_count" and not spec.get("column"):
            problems.append(f"{where}.column: missing; fix: name the column to check")
        elif check == "regex" and not spec.get("pattern"):
            problems.append(f"{where}.pattern: missing; fix: give the regular expression values must match")
        elif check == "regex":
            try:
                re.compile(spec["pattern"])
            except re.error as exc:
                problems.append(f"{where}.pattern: not a valid regular expression ({exc}); fix the pattern")
        elif check == "in_set" and not spec.get("values"):
            problems.append(f"{where}.values: missing; fix: list the allowed values")
        elif check in ("between", "row_count") and "min" not in spec and "max" not in spec:
            problems.append(f"{where}: {check} needs min and/or max")
    return problems


def _check_expectations(data: dict, path: Path) -> None:
    """Reject, at load time (so before any job runs), expectations the schema cannot judge."""
    problems = expectation_problems(data.get("expectations", []))
    if problems:
        raise ProfileError(f"data profile {path} has invalid expectations:\n  " + "\n  ".join(problems))
