"""The `enrich:` block of a data profile as typed settings, plus the checks a schema cannot make.

The block's shape is enforced by workflow/schemas/profile.schema.yaml; this module turns it into
dataclasses with defaults filled in, and reports references it cannot see (a URL template naming a
field the records do not have) the way the profile loader reports everything else: `key: problem; fix`.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# Placeholders a URL template may use besides the output columns: derived from the record.
DERIVED_KEYS = {"website_host": "host of `website`, without www.", "record_id": "the record's stable id"}


@dataclass(frozen=True)
class RateLimit:
    burst: int
    per_second: float

    @property
    def window_ms(self) -> int:
        """`burst` requests at most in any window this long: at most burst + per_second x t in any t."""
        return max(1, math.ceil(round(self.burst * 1000 / self.per_second, 6)))


@dataclass(frozen=True)
class Retry:
    max_attempts: int = 4
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0


@dataclass(frozen=True)
class Provider:
    name: str
    url: str
    method: str = "GET"
    headers: dict = field(default_factory=dict)  # header name -> environment variable holding its value
    body: dict | None = None  # POST only: JSON body, values are templates like the URL
    timeout_seconds: float = 10.0
    fields: dict = field(default_factory=dict)  # output field -> dotted path in the JSON response
    overwrite: bool = False
    rate_limit: RateLimit = RateLimit(burst=1, per_second=1.0)
    retry: Retry = Retry()
    breaker_failures: int = 5
    cache_ttl_seconds: int = 7 * 24 * 3600

    @property
    def endpoint(self) -> str:
        """scheme://host:port: the rate limit is shared by everything that calls this endpoint."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}:{parts.port or {'http': 80, 'https': 443}.get(parts.scheme)}"

    @property
    def bucket_key(self) -> str:
        return f"{self.name}@{self.endpoint}"

    def template_keys(self) -> set[str]:
        templates = [self.url, *((self.body or {}).values())]
        return {name for text in templates for _, name, _, _ in string.Formatter().parse(str(text)) if name}


@dataclass(frozen=True)
class EnrichSpec:
    providers: tuple[Provider, ...]
    on_error: str = "flag"  # flag: bundle stays ok, records flagged; fail: the bundle fails

    @property
    def secret_variables(self) -> list[str]:
        return sorted({var for p in self.providers for var in p.headers.values()})


def rate_limit_of(raw: dict) -> RateLimit:
    """`rate_limit: {burst, per_second}` or Hotpass's `research_rate_limit: {min_interval_seconds, burst}`."""
    if "rate_limit" in raw:
        limit = raw["rate_limit"]
        return RateLimit(burst=int(limit.get("burst", 1)), per_second=float(limit["per_second"]))
    if "research_rate_limit" in raw:
        limit = raw["research_rate_limit"]
        return RateLimit(burst=int(limit.get("burst", 1)), per_second=1.0 / float(limit["min_interval_seconds"]))
    return RateLimit(burst=1, per_second=1.0)


def provider_of(raw: dict) -> Provider:
    retry = raw.get("retry", {})
    return Provider(
        name=raw["name"],
        url=raw["url"],
        method=raw.get("method", "GET").upper(),
        headers=dict(raw.get("headers", {})),
        body=raw.get("body"),
        timeout_seconds=float(raw.get("timeout_seconds", 10)),
        fields=dict(raw["fields"]),
        overwrite=bool(raw.get("overwrite", False)),
        rate_limit=rate_limit_of(raw),
        retry=Retry(**{k: retry[k] for k in ("max_attempts", "backoff_seconds", "max_backoff_seconds") if k in retry}),
        breaker_failures=int(raw.get("circuit_breaker", {}).get("failures", 5)),
        cache_ttl_seconds=int(raw.get("cache_ttl_seconds", 7 * 24 * 3600)),
    )


def enrich_spec(profile_data: dict) -> EnrichSpec | None:
    """The profile's enrichment settings, or None when it declares no provider."""
    block = profile_data.get("enrich") or {}
    providers = tuple(provider_of(raw) for raw in block.get("providers", []))
    if not providers:
        return None
    return EnrichSpec(providers=providers, on_error=block.get("on_error", "flag"))


def spec_problems(profile_data: dict, columns: set[str]) -> list[str]:
    """Cross-reference problems of the enrich block as '  key: problem; fix' lines."""
    providers = (profile_data.get("enrich") or {}).get("providers", [])
    problems, seen = [], set()
    known = columns | set(DERIVED_KEYS)
    for i, raw in enumerate(providers):
        where = f"enrich.providers[{i}]"
        if raw["name"] in seen:
            problems.append(f"  {where}.name: {raw['name']!r} is used twice; fix: give each provider a unique name")
        seen.add(raw["name"])
        if "rate_limit" in raw and "research_rate_limit" in raw:
            problems.append(f"  {where}: rate_limit and research_rate_limit both given; fix: keep one of them")
        if raw.get("body") and raw.get("method", "GET").upper() != "POST":
            problems.append(f"  {where}.body: only a POST sends a body; fix: set method: POST or remove body")
        problems += _template_problems(where, provider_of(raw), known)
    return problems


def _template_problems(where: str, provider: Provider, known: set[str]) -> list[str]:
    problems = []
    try:
        keys = provider.template_keys()
    except ValueError as exc:
        return [f"  {where}.url: not a valid template ({exc}); fix: use {{field}} placeholders, {{{{ for a brace"]
    for key in sorted(keys - known):
        problems.append(
            f"  {where}.url: placeholder {{{key}}} is not an output column; fix: use one of {', '.join(sorted(known))}"
        )
    parts = urlsplit(provider.url)
    if parts.scheme not in ("http", "https") or not parts.hostname or "{" in parts.netloc:
        problems.append(
            f"  {where}.url: {provider.url!r} is not an http(s) URL with a fixed host; fix: start it with https://host/"
        )
    if parts.username or parts.password:
        problems.append(
            f"  {where}.url: credentials in the URL would be written to provenance; fix: move them to "
            "`headers:` (header name -> environment variable)"
        )
    return problems
