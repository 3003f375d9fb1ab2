"""Whether a run enriches, and the run-level settings its enrich jobs receive.

Decided when the Snakefile is parsed (workflow/rules/enrich.smk), from the config keys `network`,
`enrich_refresh`, `enrich_only_if_cached`, `rate_limit_store`, `enrich_slots` (config/README.md)
and the data profile's `enrich:` block. The jobs get the result as JSON in SHEETFILL_ENRICH: an
environment variable, not a rule param, so changing e.g. the rate-limit store never makes an
enriched bundle look out of date.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sheetfill.enrich.spec import EnrichSpec, enrich_spec
from sheetfill.errors import ConfigError

ENV = "SHEETFILL_ENRICH"
TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0", "", "none", "null")


def parse_bool(key: str, value) -> bool:
    """--config values arrive as text ('true'/'false'); YAML gives booleans."""
    if isinstance(value, bool) or value is None:
        return bool(value)
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ConfigError(f"{key}={value!r} is not true or false; fix: --config {key}=true (or false)")


@dataclass(frozen=True)
class RunSettings:
    """What every enrich job of a run shares (SHEETFILL_ENRICH)."""

    network: bool = False
    only_if_cached: bool = False
    refresh_before: float | None = None
    rate_limit_store: str | None = None
    cache: str = ".sheetfill/enrich/cache.sqlite"
    breaker: str = ".sheetfill/enrich/breaker.sqlite"
    run_id: str = "run"

    def to_env(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_env(cls, text: str | None = None) -> RunSettings:
        return cls(**json.loads(text if text is not None else os.environ.get(ENV, "{}")))


@dataclass(frozen=True)
class EnrichPlan:
    active: bool
    note: str
    settings: RunSettings
    slots: int = 2
    spec: EnrichSpec | None = None
    secret_variables: list[str] = field(default_factory=list)


def _store(value) -> str | None:
    if value in (None, ""):
        return None
    text = str(value)
    if "://" in text and not text.startswith(("redis://", "rediss://", "unix://", "sqlite://")):
        raise ConfigError(
            f"rate_limit_store={text!r} is not supported; fix: use redis://host:port/db for several nodes, "
            "or a SQLite file path for one machine"
        )
    return text


def plan_enrichment(config: dict, profile_data: dict, restore_root: Path, run_id: str) -> EnrichPlan:
    """Active only when the profile declares providers and `network` (or only_if_cached) allows it."""
    spec = enrich_spec(profile_data)
    network = parse_bool("network", config.get("network", False))
    only_if_cached = parse_bool("enrich_only_if_cached", config.get("enrich_only_if_cached", False))
    refresh = parse_bool("enrich_refresh", config.get("enrich_refresh", False))
    root = Path(restore_root).absolute()
    settings = RunSettings(
        network=network and not only_if_cached,
        only_if_cached=only_if_cached,
        refresh_before=time.time() if refresh else None,
        rate_limit_store=_store(config.get("rate_limit_store")),
        cache=str(root / ".sheetfill" / "enrich" / "cache.sqlite"),
        breaker=str(root / ".sheetfill" / "enrich" / "breaker.sqlite"),
        run_id=run_id,
    )
    slots = int(config.get("enrich_slots") or 2)
    if spec is None:
        return EnrichPlan(False, "", settings, slots)
    names = ", ".join(p.name for p in spec.providers)
    if not (network or only_if_cached):
        note = (
            f"enrichment skipped: the network is off (data profile providers: {names}); "
            "--config network=true enables it, enrich_only_if_cached=true replays the cache"
        )
        return EnrichPlan(False, note, settings, slots, spec)
    missing = [var for var in spec.secret_variables if not os.environ.get(var)]
    if missing and settings.network:
        raise ConfigError(
            f"enrichment needs the environment variable(s) {', '.join(missing)} (provider headers); "
            "fix: export them before the run, or --config network=false to skip enrichment"
        )
    mode = "from the cache only (enrich_only_if_cached)" if only_if_cached else "over the network"
    if refresh and not only_if_cached:
        mode += ", bypassing cached answers from before this run (enrich_refresh)"
    note = f"enriching with {names} {mode}"
    return EnrichPlan(True, note, settings, slots, spec, spec.secret_variables)
