"""Field normalisation of whole columns: every row's raw text → canonical values, valid-value lists,
invalid flags and the organisation match key.

``normalise_column`` runs a one-value normaliser (values.py, contact_values.py) over a whole column,
once per *unique* value, because captures repeat values a lot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import pandas as pd

from sheetfill.refine.arrays import join_nonempty, object_frame, present
from sheetfill.refine.contact_values import (
    email_cache_key,
    normalise_email,
    normalise_phone,
    normalise_website,
    phone_cache_key,
    website_cache_key,
)
from sheetfill.refine.values import (
    DEFAULT_LEGAL_SUFFIXES,
    Normalised,
    build_province_lookup,
    clean_text,
    name_match_key,
    normalise_date,
    normalise_key,
    normalise_list,
    normalise_org_name,
    normalise_person_name,
    normalise_province,
    normalise_text,
    placeholder_token,
    split_role,
)


def normaliser_for(field_type: str, profile_data: dict) -> Callable[[str], Normalised]:
    """The one-value normaliser for a profile field type, bound to the profile's settings."""
    settings = profile_data.get("normalisation", {})
    if field_type == "phone":
        region = settings.get("phone_region", "ZA")
        return lambda text: normalise_phone(text, region)
    if field_type == "province":
        lookup = build_province_lookup(settings.get("provinces", {}))
        return lambda text: normalise_province(text, lookup)
    if field_type == "match_key":
        suffixes = frozenset(settings.get("legal_suffixes", DEFAULT_LEGAL_SUFFIXES))
        return lambda text: Normalised(name_match_key(text, suffixes) or None)
    return {
        "org_name": normalise_org_name,
        "person_name": normalise_person_name,
        "text": normalise_text,
        "email": normalise_email,
        "website": normalise_website,
        "key": normalise_key,
        "date": normalise_date,
        "list": normalise_list,
    }[field_type]


# Cheap canonicalisation applied before the library call, so that spelling variants of one value
# ("INFO@X.CO.ZA " / "info@x.co.za") cost one library call, not one each.
CACHE_KEYS = {"email": email_cache_key, "website": website_cache_key, "phone": phone_cache_key}


# Rough microseconds per distinct value, used to share the work out evenly over processes.
COST_PER_VALUE = {"email": 20, "phone": 20, "website": 8, "org_name": 4, "match_key": 4}


CHUNK = 50_000
MULTI_VALUE_TYPES = ("email", "phone")  # fields whose every valid value is kept (emails, phones)
# Fields where an 'n/a'-like token is a stand-in for a missing contact, flagged like 'unknown+3@example.com'
TOKEN_PLACEHOLDER_TYPES = ("email", "phone", "website")


def normalise_values(values: Sequence, field_type: str, profile_data: dict) -> tuple[list, list, list, list]:
    """clean_text → cache key → library normaliser, one library call per distinct key.

    Returns four parallel lists (canonical value, '; '-joined valid values, invalid flag,
    placeholder flag: a stand-in value, or an 'n/a'-like token in a contact field): plain lists
    travel back from worker processes much faster than a list of tuples. The joined values are
    only built for e-mail and phone fields (MULTI_VALUE_TYPES), None elsewhere.
    """
    if field_type == "text":  # the cleaned text is the value: no normaliser, cache or tuples (5x faster)
        canonical = [clean_text(value) for value in values]
        nothing = [False] * len(canonical)
        return canonical, [None] * len(canonical), nothing, nothing
    normaliser = normaliser_for(field_type, profile_data)
    cache_key = CACHE_KEYS.get(field_type)
    multi = field_type in MULTI_VALUE_TYPES
    cache: dict[str, tuple] = {}
    empty = (None, None, False, False)
    flags_tokens = field_type in TOKEN_PLACEHOLDER_TYPES
    stand_in = (None, None, False, True)
    outputs = []
    append = outputs.append
    for value in values:  # distinct values of the column (normalise_columns factorises it)
        text = clean_text(value)
        if text is None:
            append(stand_in if flags_tokens and placeholder_token(value) else empty)
            continue
        key = cache_key(text) if cache_key else text
        output = cache.get(key)
        if output is None:
            result = normaliser(key)
            joined = ("; ".join(result.all_values) or None) if multi else None
            output = cache[key] = (result.value, joined, result.invalid, result.placeholder)
        append(output)
    if not outputs:
        return [], [], [], []
    canonical, joined, invalid, placeholder = zip(*outputs)
    return list(canonical), list(joined), list(invalid), list(placeholder)


def normalise_task(task: tuple[Sequence, str], profile_data: dict) -> tuple[list, list, list, list]:
    """normalise_values of one (distinct values, field type) task; a module-level function, so that
    it can be sent to a worker process."""
    return normalise_values(task[0], task[1], profile_data)


def normalise_column(raw, field_type: str, profile_data: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One column, normalised once per unique value: see normalise_columns (placeholder flags left out)."""
    return normalise_columns({"column": (raw, field_type)}, profile_data)["column"][:3]


def normalise_columns(columns: dict[str, tuple], profile_data: dict) -> dict[str, tuple[np.ndarray, ...]]:
    """{name: (raw values, field type)} → {name: (canonical, '; '-joined valid values, invalid, placeholder)}.

    Each column is factorised, its distinct values are normalised (in chunks, spread over the CPU
    cores when there are many), and the results are mapped back onto the rows.
    """
    from sheetfill.refine.parallel import run_tasks, stop_early_workers

    factorised, by_array = {}, {}
    for name, (raw, _) in columns.items():
        if id(raw) not in by_array:  # the match key reads the name column: factorise it once
            codes, uniques = pd.factorize(np.asarray(raw, dtype=object), use_na_sentinel=True)
            by_array[id(raw)] = codes.astype(np.int32), uniques  # held for every column: half of int64
        factorised[name] = by_array[id(raw)]
    tasks, costs, owners = [], [], []
    for name, (_, field_type) in columns.items():
        uniques = list(factorised[name][1])
        for start in range(0, max(len(uniques), 1), CHUNK):
            tasks.append((uniques[start : start + CHUNK], field_type))
            costs.append(len(uniques[start : start + CHUNK]) * COST_PER_VALUE.get(field_type, 3))
            owners.append(name)
    outputs = run_tasks(partial(normalise_task, profile_data=profile_data), tasks, costs)
    stop_early_workers()  # their last task: the refine's peak memory comes after this
    per_column = {name: ([], [], [], []) for name in columns}
    for name, output in zip(owners, outputs):
        for collected, part in zip(per_column[name], output):
            collected.extend(part)
    result = {}
    for name, (canonical, joined, invalid, placeholder) in per_column.items():
        codes = factorised[name][0]
        # code -1 (missing) indexes the trailing sentinel entry; the every-value lists are only
        # kept for e-mail and phone fields: not building them for the rest saves a column per field
        multi = columns[name][1] in MULTI_VALUE_TYPES
        result[name] = (
            np.array(canonical + [None], dtype=object)[codes],
            np.array(joined + [None], dtype=object)[codes] if multi else None,
            np.array(invalid + [False], dtype=bool)[codes],
            np.array(placeholder + [False], dtype=bool)[codes],
        )
    return result


def _text_array(series: pd.Series) -> np.ndarray:
    return series.fillna("").to_numpy(dtype=object)


def _move_roles(raw: dict[str, np.ndarray], fields: dict) -> None:
    """'Jane Smith (CFI)' in a name column: the role goes to the role field if that is empty."""
    for name, spec in fields.items():
        role_field = spec.get("role_field")
        if not role_field:
            continue
        codes, uniques = pd.factorize(raw[name])
        split = [split_role(str(u)) for u in uniques]
        names = np.array([s[0] for s in split] + [""], dtype=object)[codes]
        roles = np.array([s[1] or "" for s in split] + [""], dtype=object)[codes]
        current_role = raw[role_field]
        raw[name] = names
        raw[role_field] = np.where(current_role == "", roles, current_role)


def _combine_parts(raw: dict[str, np.ndarray], fields: dict) -> None:
    """First name + surname fill the full-name field where it is empty."""
    targets: dict[str, list[str]] = {}
    for name, spec in fields.items():
        if spec.get("combine_into"):
            targets.setdefault(spec["combine_into"], []).append(name)
    for target, parts in targets.items():
        combined = join_nonempty([raw[p] for p in parts], " ")
        current = raw[target]
        raw[target] = np.where(current == "", combined, current)


def output_fields(fields: dict) -> list[str]:
    """Fields that are normalised into output values (name parts only feed their target)."""
    return [name for name, spec in fields.items() if not spec.get("combine_into")]


def normalise_rows(raw: pd.DataFrame, profile_data: dict, consume: bool = False) -> pd.DataFrame:
    """Raw field text → canonical values, every-valid-value lists, invalid flags and reasons.

    Adds per field F: F (canonical value or None), F__all ('; '-joined valid values) for e-mail
    and phone fields, F__invalid (bool), F__placeholder (bool, only when some row held a stand-in
    value); plus _reasons (why a row is flagged) and _name_key.
    """
    fields = profile_data["fields"]
    columns = {name: raw[name].to_numpy() for name in raw.columns if name.startswith("_")}
    # consume: raw's field columns are dropped as they are read (the caller is done with them),
    # so the raw text and its cleaned copy are never both held whole
    cells = {name: _text_array(raw.pop(name) if consume else raw[name]) for name in fields}
    _move_roles(cells, fields)
    _combine_parts(cells, fields)
    texts = {name: cells[name] for name in output_fields(fields)}
    jobs = {name: (texts[name], fields[name]["type"]) for name in texts}
    name_field = name_field_of(profile_data)
    if name_field:
        # the match key depends only on the cleaned text, so it is computed alongside the fields
        jobs["_name_key"] = (texts[name_field], "match_key")
    normalised = normalise_columns(jobs, profile_data)
    name_keys = normalised.pop("_name_key", None)
    reasons = []
    for name, (values, all_values, invalid, placeholder) in normalised.items():
        columns[name] = values
        if fields[name]["type"] in MULTI_VALUE_TYPES:
            columns[f"{name}__all"] = all_values
        columns[f"{name}__invalid"] = invalid
        if invalid.any():
            reasons.append(_reasons_where(invalid, name, texts[name]))
        if placeholder.any():
            columns[f"{name}__placeholder"] = placeholder
            reasons.append(_reasons_where(placeholder, name, texts[name], "placeholder"))
    nothing = np.full(len(columns["_row"]), "", dtype=object)
    columns["_reasons"] = join_nonempty(reasons, "; ") if reasons else nothing
    columns["_name_key"] = np.where(present(name_keys[0]), name_keys[0], "") if name_keys else nothing
    return object_frame(columns)


def _reasons_where(marked: np.ndarray, field: str, text: np.ndarray, kind: str = "invalid") -> np.ndarray:
    """Per row, "<kind> <field>: '<text>'" where marked, '' elsewhere; only the marked rows' text is
    looked at (factorising a million rows for a few thousand flagged ones cost ~0.25 s a field)."""
    reasons = np.full(len(text), "", dtype=object)
    reasons[marked] = _invalid_reason(field, text[marked], kind)
    return reasons


def _invalid_reason(field: str, text: np.ndarray, kind: str = "invalid") -> np.ndarray:
    codes, uniques = pd.factorize(text)
    messages = np.array([f"{kind} {field}: {str(u)[:80]!r}" for u in uniques] + [""], dtype=object)
    return messages[codes]


def name_field_of(profile_data: dict) -> str | None:
    """The field organisations are matched on: resolution.blocking_key, else the first org_name field."""
    declared = profile_data.get("resolution", {}).get("blocking_key")
    if declared:
        return declared
    return next((n for n, s in profile_data["fields"].items() if s["type"] == "org_name"), None)
