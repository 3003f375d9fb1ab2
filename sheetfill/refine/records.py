"""Building the records: chosen values, ids, provenance JSON, quality scores and flags."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

from sheetfill.refine.arrays import (
    ColumnCodes,
    column,
    first_per_group,
    join_by_group,
    object_frame,
    present,
    repeated,
    row_codes,
    take,
    text_ranks,
)
from sheetfill.refine.choose import (
    Preference,
    alternatives,
    chosen_rows,
    collect_all,
    consensus_keys,
    position_in_cluster,
)
from sheetfill.refine.normalise import name_field_of, output_fields

DERIVED_TYPES = {"emails": "email", "phones": "phone"}
PROVENANCE_BLOCK = 20_000  # records with alternatives rendered at a time


def newest_rows(dates: np.ndarray, cluster: np.ndarray, n_clusters: int) -> np.ndarray:
    """Per cluster, the first row holding its latest ISO date (-1 when it has none)."""
    has = np.flatnonzero(present(dates))
    if not len(has):
        return np.full(n_clusters, -1, dtype=np.int64)
    # ISO dates sort as text: only the distinct dates (a few thousand) are sorted
    codes, distinct = pd.factorize(dates[has])
    ranks = text_ranks(distinct)[codes]
    latest_first = has[np.lexsort((has, -ranks))]
    return first_per_group(cluster[latest_first], latest_first, n_clusters)


def row_refs(rows: pd.DataFrame) -> np.ndarray:
    """'["file","sheet",row]' per row: the address of a source row."""
    places = pd.Series(column(rows, "_file")) + "\x1f" + column(rows, "_sheet")
    codes, uniques = pd.factorize(places)
    prefixes = np.array(
        ["[" + ",".join(json.dumps(p, ensure_ascii=False) for p in u.split("\x1f")) + "," for u in uniques],
        dtype=object,
    )
    numbers = rows["_row"].to_numpy().tolist()
    return np.array([f"{prefix}{number}]" for prefix, number in zip(prefixes[codes].tolist(), numbers)], dtype=object)


def render_provenance(names: list[str], rows: list[int], alternatives_text: list[str]) -> str:
    parts = [f'"{name}":{{"row":{row}{alt}}}' for name, row, alt in zip(names, rows, alternatives_text) if row >= 0]
    return "{" + ",".join(parts) + "}"


def provenance_json(
    source: dict[str, np.ndarray],
    rows_position: np.ndarray,
    alternatives_by_field: dict[str, np.ndarray],
    n_clusters: int,
) -> np.ndarray:
    """Per record: {"field": {"row": i, "alternatives": [...]}} where i indexes source_rows.

    Records without alternatives share a handful of shapes (which row gave which field), so those
    strings are built once per shape; only records with alternatives are rendered one by one.
    """
    names = list(source)
    result = repeated("{}", n_clusters)
    if not names or not n_clusters:
        return result
    index = np.empty((n_clusters, len(names)), dtype=np.int32)  # half the bytes of int64, one copy
    for position, field in enumerate(names):
        index[:, position] = np.where(source[field] >= 0, rows_position[np.maximum(source[field], 0)], -1)
    has_alternatives = np.zeros(n_clusters, dtype=bool)
    for name in names:
        has_alternatives |= alternatives_by_field[name] != ""
    plain = np.flatnonzero(~has_alternatives)
    if len(plain):
        shape_of = row_codes(index[plain])
        shapes = index[plain][first_per_group(shape_of, np.arange(len(plain)), int(shape_of.max()) + 1)]
        no_alternatives = [""] * len(names)
        texts = [render_provenance(names, shape.tolist(), no_alternatives) for shape in shapes]
        result[plain] = np.array(texts, dtype=object)[shape_of]
    mixed = np.flatnonzero(has_alternatives)
    # in blocks: the Python ints and lists of a block are freed before the next (~190 MB of peak
    # RSS on a million-row bundle when built at once)
    for start in range(0, len(mixed), PROVENANCE_BLOCK):
        block = mixed[start : start + PROVENANCE_BLOCK]
        alternative_rows = zip(*(alternatives_by_field[name][block].tolist() for name in names))
        result[block] = [
            render_provenance(names, rows, list(alts)) for rows, alts in zip(index[block].tolist(), alternative_rows)
        ]
    return result


def record_ids(chosen_keys: np.ndarray, first_refs: np.ndarray, identities: np.ndarray) -> np.ndarray:
    """Stable id: hash of the organisation's match key (of its first row's address when unnamed).

    Two organisations can share a name; their ids then get a suffix hashed from an identity value
    (website, e-mail or phone — whatever the record has), so each keeps its id across bundles.
    """
    basis = np.where(chosen_keys == "", first_refs, "name:" + chosen_keys)
    ids = np.array(["sf-" + hashlib.sha256(b.encode()).hexdigest()[:16] for b in basis.tolist()], dtype=object)
    shared = np.flatnonzero(pd.Series(ids).duplicated(keep=False).to_numpy())
    if len(shared):  # only these few get a suffix: the loop runs over them alone
        tiebreak = np.where(present(identities[shared]), identities[shared], first_refs[shared])
        suffix = [hashlib.sha256(str(t).encode()).hexdigest()[:6] for t in tiebreak.tolist()]
        ids[shared] = ids[shared] + "-" + np.array(suffix, dtype=object)
    return ids


def quality_flags(
    records: pd.DataFrame, rows: pd.DataFrame, cluster: np.ndarray, n_clusters: int, quality_fields: list[str]
) -> dict[str, np.ndarray]:
    """Flag name → which records carry it: missing_<field> for quality fields, invalid_<field> /
    placeholder_<field> when any of the record's source rows held an invalid / stand-in value for it."""
    flags = {}
    for field in quality_fields:
        flags[f"missing_{field}"] = ~present(records[field].to_numpy(dtype=object))
    for kind in ("invalid", "placeholder"):
        for name in [c for c in rows.columns if c.endswith(f"__{kind}")]:
            weights = rows[name].to_numpy(dtype=np.float64)
            flags[f"{kind}_{name[: -len(kind) - 2]}"] = np.bincount(cluster, weights, n_clusters) > 0
    return flags


def flags_text(flags: dict[str, np.ndarray], n: int) -> np.ndarray:
    """'; '-joined flag names per record, built once per distinct combination of flags."""
    if not flags:
        return np.full(n, "", dtype=object)
    names = list(flags)
    bits = np.zeros(n, dtype=np.int64)
    for position, name in enumerate(names):
        bits |= flags[name].astype(np.int64) << position
    combinations, inverse = np.unique(bits, return_inverse=True)
    texts = [
        "; ".join(name for position, name in enumerate(names) if combo >> position & 1)
        for combo in combinations.tolist()
    ]
    return np.array(texts, dtype=object)[inverse]


def record_provenance(
    rows: pd.DataFrame,
    codes: ColumnCodes,
    source: dict,
    cluster: np.ndarray,
    order: np.ndarray,
    n_clusters: int,
    list_fields: set,
) -> np.ndarray:
    """provenance_json of the fields in source (the row each record took them from), with the
    alternatives each chosen value beat; those texts are freed when it returns. The codes are
    released as they are used: nothing after needs them, and this is the refine's memory peak."""
    codes.release(keep=source)
    alternatives_by_field = {}
    for field in source:
        if field in list_fields:  # every distinct item of its rows: there is nothing it was chosen over
            alternatives_by_field[field] = repeated("", n_clusters)
        else:
            alternatives_by_field[field] = alternatives(*codes.pair(field), source[field], cluster, order, n_clusters)
        codes.release(keep=set(source) - set(alternatives_by_field))
    return provenance_json(source, position_in_cluster(cluster), alternatives_by_field, n_clusters)


def build_records(
    rows: pd.DataFrame, codes: ColumnCodes, cluster: np.ndarray, profile_data: dict, output_columns: list[str]
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    fields_spec = profile_data["fields"]
    settings = profile_data.get("resolution", {})
    fields = output_fields(fields_spec)
    contact_fields = [f for f in settings.get("contact_fields", []) if f in fields]
    n_clusters = int(cluster.max()) + 1 if len(cluster) else 0
    preference = Preference(rows, cluster, settings.get("recency_field"))
    source, order = chosen_rows(codes, fields, contact_fields, cluster, n_clusters, preference)
    recency_field = settings.get("recency_field")
    if recency_field in source:  # the last interaction: the newest date, whichever source has it
        source[recency_field] = newest_rows(column(rows, recency_field), cluster, n_clusters).astype(np.int32)
    chosen = {f: take(column(rows, f), source[f]) for f in fields}

    refs = row_refs(rows)
    source_rows = "[" + join_by_group(cluster, refs, ",", n_clusters) + "]"
    first_refs = refs[first_per_group(cluster, np.arange(len(cluster)), n_clusters)]
    del refs  # a string per source row: freed before the records' memory peak
    name_field = name_field_of(profile_data)
    if settings.get("enabled", True) and name_field:
        chosen_keys = consensus_keys(*codes.named_keys(), cluster, n_clusters)
    else:
        chosen_keys = np.full(n_clusters, "", dtype=object)
    link_fields = [f for f in settings.get("link_fields", []) if f in chosen]
    identity = np.full(n_clusters, None, dtype=object)
    for field in reversed(link_fields):  # the first link field with a value wins
        identity = np.where(present(chosen[field]), chosen[field], identity)
    records = {"record_id": record_ids(chosen_keys, first_refs, identity)}
    list_fields = {f for f, s in fields_spec.items() if s["type"] == "list"}
    for name in output_columns:
        if name in DERIVED_TYPES:
            sources = [f"{f}__all" for f, s in fields_spec.items() if s["type"] == DERIVED_TYPES[name]]
            records[name] = collect_all(rows, sources, cluster, order, n_clusters)
        elif name in list_fields:
            records[name] = collect_all(rows, [name], cluster, order, n_clusters)
        else:
            records[name] = chosen[name]
    records["source_count"] = np.bincount(cluster, minlength=n_clusters).astype(np.int64)
    records["source_rows"] = source_rows
    explained = {f: source[f] for f in output_columns if f in source}
    records["provenance"] = record_provenance(rows, codes, explained, cluster, order, n_clusters, list_fields)
    frame = object_frame(records)
    quality_fields = profile_data.get("quality", {}).get("fields", [])
    flags = quality_flags(frame, rows, cluster, n_clusters, quality_fields)
    missing = sum((flags[f"missing_{f}"] for f in quality_fields), np.zeros(n_clusters))
    frame["quality_score"] = np.round(1 - missing / len(quality_fields), 4) if quality_fields else 1.0
    frame["flags"] = flags_text(flags, n_clusters)
    return frame, flags
