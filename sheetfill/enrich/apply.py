"""From records to lookups and back: URL templates over record fields, response mapping, provenance.

Pure functions over plain dicts (a record is one row of refined.parquet), so they are cheap to test
and the job stays a thin loop. A looked-up value fills an empty field; it replaces a source value
only when the provider says `overwrite: true`. Every value written carries its provenance.
"""

from __future__ import annotations

import json
import string
from urllib.parse import quote, urlsplit

from sheetfill.enrich.fetch import Outcome
from sheetfill.enrich.spec import Provider

UNAVAILABLE_FLAG = "enrichment_unavailable"


class _Missing(Exception):
    """A template placeholder the record has no value for."""


def _values(record: dict) -> dict:
    values = {k: v for k, v in record.items() if v not in (None, "")}
    website = record.get("website")
    if website:
        host = (urlsplit(website if "://" in website else f"https://{website}").hostname or "").removeprefix("www.")
        if host:
            values["website_host"] = host
    return values


def _fill(template: str, values: dict, quoted: bool) -> str:
    out = []
    for literal, name, spec, _conversion in string.Formatter().parse(template):
        out.append(literal)
        if name is None:
            continue
        if name not in values:
            raise _Missing(name)
        text = format(values[name], spec or "")
        out.append(quote(text, safe="") if quoted else text)
    return "".join(out)


def build_request(provider: Provider, record: dict) -> dict | None:
    """{"url", "json"} for this record, or None when a placeholder has no value (nothing to look up)."""
    values = _values(record)
    try:
        request = {"url": _fill(provider.url, values, quoted=True)}
        if provider.body:
            request["json"] = {k: _fill(str(v), values, quoted=False) for k, v in provider.body.items()}
    except _Missing:
        return None
    return request


def request_key(request: dict) -> str:
    return json.dumps(request, sort_keys=True)


def public_url(url: str) -> str:
    """The URL as provenance shows it: no user-info, ever (headers carry the secrets)."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        parts = parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else ""))
    return parts.geturl()


def dig(data, path: str):
    """Value at a dotted path (`data.items.0.id`) of a JSON answer, or None."""
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.lstrip("-").isdigit() and -len(data) <= int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def _text(value) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def apply_outcome(record: dict, provenance: dict, provider: Provider, url: str, outcome: Outcome) -> dict:
    """Write the provider's fields into record (in place) and their provenance; returns per-field counts."""
    counts = {"fields_enriched": 0, "fields_kept_source": 0, "fields_unavailable": 0}
    for field, path in provider.fields.items():
        if outcome.status == "unavailable":
            provenance[field] = {"provider": provider.name, "status": UNAVAILABLE_FLAG, "reason": outcome.reason}
            counts["fields_unavailable"] += 1
            continue
        value = _text(dig(outcome.data, path)) if outcome.status == "found" else None
        if value is None:
            continue
        if record.get(field) not in (None, "") and not provider.overwrite:
            counts["fields_kept_source"] += 1
            continue
        record[field] = value
        provenance[field] = {
            "provider": provider.name,
            "url": public_url(url),
            "fetched_at": outcome.fetched_at,
            "cache": outcome.cache,
        }
        counts["fields_enriched"] += 1
    return counts


def add_flag(record: dict, flag: str) -> None:
    flags = [f for f in (record.get("flags") or "").split("; ") if f]
    if flag not in flags:
        record["flags"] = "; ".join([*flags, flag])
