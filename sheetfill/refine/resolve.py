"""Entity resolution: group source rows into one record per organisation and pick each value.

Rows are joined when their organisation names match exactly after normalisation, when they share
an ID within one file (profile ``link_keys``) or an exact value such as a website (``link_fields``),
or when their names are similar (rapidfuzz) among sorted neighbours (sorted-neighbourhood blocking,
so the cost is rows x window, not rows squared). Each output value is chosen by source priority,
then row completeness, then recency, and carries its provenance and the alternatives it beat.

Everything here works on whole numpy columns; Python loops run once per record at most.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sheetfill.refine.normalise import join_nonempty, name_field_of, object_frame, output_fields

DERIVED_TYPES = {"emails": "email", "phones": "phone"}
DIGITS_TABLE = str.maketrans("", "", "abcdefghijklmnopqrstuvwxyz ")


@dataclass
class Resolution:
    records: pd.DataFrame
    rejected: pd.DataFrame
    counts: dict
    quality: dict


def column(rows: pd.DataFrame, name: str) -> np.ndarray:
    return rows[name].to_numpy(dtype=object)


def present(values: np.ndarray) -> np.ndarray:
    return ~pd.isna(values)


# --------------------------------------------------------------------------- clustering

def connected_components(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Component label (0..k-1, in order of first row) per node for undirected edges (u, v)."""
    label = np.arange(n)
    while len(u):
        lu, lv = label[u], label[v]
        if np.array_equal(lu, lv):
            break
        low = np.minimum(lu, lv)
        np.minimum.at(label, lu, low)       # hook each root under the smaller root
        np.minimum.at(label, lv, low)
        while True:                         # pointer jumping until every node points at its root
            jumped = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped
    return pd.factorize(label)[0]


def equal_value_edges(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges from every row to the first row with the same (non-missing) value."""
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    rows = np.flatnonzero(codes >= 0)
    if not len(rows):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    first_row_of_code = np.full(codes.max() + 1, -1, dtype=np.int64)
    first_row_of_code[codes[rows][::-1]] = rows[::-1]       # the last write wins: the first row
    return rows, first_row_of_code[codes[rows]]


def blocking_orders(keys: np.ndarray) -> list[np.ndarray]:
    """Two sort orders of the unique name keys: by sorted tokens, and by the same text reversed.

    The reversed order catches typos in the first letters that the plain order would scatter.
    """
    token_sorted = [" ".join(sorted(k.split())) for k in keys]
    reversed_keys = [k[::-1] for k in token_sorted]
    # fixed-width unicode arrays sort in C; object arrays would compare in Python
    return [np.argsort(np.array(token_sorted, dtype=str), kind="stable"),
            np.argsort(np.array(reversed_keys, dtype=str), kind="stable")]


def similar_name_pairs(keys: np.ndarray, threshold: float, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs of keys whose token-sort similarity reaches the threshold among sorted neighbours.

    Names whose digits differ ('Hangar 7' vs 'Hangar 8') are never paired.
    """
    from rapidfuzz import fuzz, process

    digits = np.array([k.translate(DIGITS_TABLE) for k in keys], dtype=object)
    left_parts, right_parts = [], []
    for order in blocking_orders(keys):
        ordered = keys[order].tolist()
        for offset in range(1, min(window, len(keys) - 1) + 1):
            scores = process.cpdist(ordered[:-offset], ordered[offset:], scorer=fuzz.token_sort_ratio,
                                    score_cutoff=threshold, workers=-1)
            hit = np.flatnonzero(scores >= threshold)
            left, right = order[hit], order[hit + offset]
            same_digits = digits[left] == digits[right]
            left_parts.append(left[same_digits])
            right_parts.append(right[same_digits])
    if not left_parts:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(left_parts), np.concatenate(right_parts)


def cluster_rows(rows: pd.DataFrame, profile_data: dict) -> np.ndarray:
    settings = profile_data.get("resolution", {})
    name_keys = column(rows, "_name_key")
    edge_sets = [equal_value_edges(np.where(name_keys == "", None, name_keys))]
    files = column(rows, "_file")
    for key in settings.get("link_keys", []):
        values = column(rows, key)
        scoped = np.where(present(values), files + "\x1f" + values.astype(str), None)   # IDs are per file
        edge_sets.append(equal_value_edges(scoped))
    generic = {f"https://{host}" for host in profile_data.get("normalisation", {}).get("generic_websites", [])}
    for field in settings.get("link_fields", []):
        values = column(rows, field)
        edge_sets.append(equal_value_edges(np.where(pd.Series(values).isin(generic), None, values)))
    codes, unique_keys = pd.factorize(name_keys)
    unique_keys = np.asarray(unique_keys, dtype=object)
    usable = np.flatnonzero(unique_keys != "")
    if len(usable) > 1:
        first_row = np.empty(len(unique_keys), dtype=np.int64)
        first_row[codes[::-1]] = np.arange(len(codes))[::-1]
        left, right = similar_name_pairs(unique_keys[usable], float(settings.get("threshold", 90)),
                                         int(settings.get("window", 6)))
        edge_sets.append((first_row[usable[left]], first_row[usable[right]]))
    u = np.concatenate([e[0] for e in edge_sets])
    v = np.concatenate([e[1] for e in edge_sets])
    return connected_components(len(rows), u, v)


# --------------------------------------------------------------------------- choosing values

def json_text(values: np.ndarray) -> np.ndarray:
    """JSON string literal of each value, computed once per unique value."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    encoded = np.array([json.dumps(u, ensure_ascii=False) for u in uniques] + ["null"], dtype=object)
    return encoded[codes]


def join_by_group(groups: np.ndarray, texts: np.ndarray, separator: str, n_groups: int) -> np.ndarray:
    """Per group 0..n_groups-1, its texts joined in their current order ('' for a group with none).

    One stable sort and one str.join per group: much faster than groupby().agg(str.join).
    """
    joined = np.full(n_groups, "", dtype=object)
    if not len(groups):
        return joined
    order = np.argsort(groups, kind="stable")
    groups, texts = groups[order], texts[order].tolist()
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    ends = np.r_[starts[1:], len(groups)]
    joined[groups[starts]] = [separator.join(texts[a:b]) for a, b in zip(starts.tolist(), ends.tolist())]
    return joined


def first_per_group(groups: np.ndarray, positions: np.ndarray, n_groups: int) -> np.ndarray:
    """For each group, the first of the given (already preference-ordered) positions; -1 if none."""
    best = np.full(n_groups, -1, dtype=np.int64)
    best[groups[::-1]] = positions[::-1]        # the last write wins: the first position
    return best


class Preference:
    """Row order within each cluster: priority, then completeness, then recency, then source order."""

    def __init__(self, rows: pd.DataFrame, cluster: np.ndarray, recency_field: str | None):
        self.cluster = cluster
        self.priority = rows["_priority"].to_numpy(dtype=np.int64)
        if recency_field:
            dates = column(rows, recency_field)
            self.recency = pd.Series(dates).rank(method="dense", ascending=False, na_option="bottom").to_numpy()
        else:
            self.recency = np.zeros(len(rows))

    def order(self, score: np.ndarray) -> np.ndarray:
        n = len(self.cluster)
        return np.lexsort((np.arange(n), self.recency, -score, -self.priority, self.cluster))


def chosen_rows(rows: pd.DataFrame, fields: list[str], contact_fields: list[str], cluster: np.ndarray,
                n_clusters: int, preference: Preference) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per field, the row each cluster takes its value from (-1: none); and the preference order."""
    values = {f: column(rows, f) for f in fields}
    has = {f: present(values[f]) for f in fields}
    order = preference.order(sum(has[f].astype(np.int64) for f in fields))
    source = {}
    for field in fields:
        if field in contact_fields:
            continue
        picked = order[has[field][order]]
        source[field] = first_per_group(cluster[picked], picked, n_clusters)
    if contact_fields:
        # The primary contact is one person: all contact fields come from the best contact row.
        contact_score = sum(has[f].astype(np.int64) for f in contact_fields)
        by_contact = preference.order(contact_score)
        picked = by_contact[contact_score[by_contact] > 0]
        best = first_per_group(cluster[picked], picked, n_clusters)
        for field in contact_fields:
            source[field] = np.where((best >= 0) & has[field][np.maximum(best, 0)], best, -1)
    return source, order


def take(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """values[positions] with None where the position is -1."""
    return np.where(positions >= 0, values[np.maximum(positions, 0)], None)


def alternatives(values: np.ndarray, chosen: np.ndarray, cluster: np.ndarray, order: np.ndarray,
                 n_clusters: int) -> np.ndarray:
    """Per cluster, a JSON list of the other distinct values offered for a field, best first ('' if none)."""
    ordered = order[present(values[order])]
    codes = pd.factorize(values[ordered])[0].astype(np.int64)
    pair = cluster[ordered].astype(np.int64) * (codes.max() + 1 if len(codes) else 1) + codes
    _, first = np.unique(pair, return_index=True)
    distinct = ordered[np.sort(first)]                  # first offer of each value, preference order kept
    other = distinct[values[distinct] != chosen[cluster[distinct]]]
    joined = join_by_group(cluster[other], json_text(values[other]), ",", n_clusters)
    return np.where(joined == "", "", ',"alternatives":[' + joined + "]")


def position_in_cluster(cluster: np.ndarray) -> np.ndarray:
    """Index of each row within its cluster's source_rows list (rows keep their file/sheet/row order)."""
    order = np.argsort(cluster, kind="stable")
    sorted_clusters = cluster[order]
    starts = np.flatnonzero(np.r_[True, sorted_clusters[1:] != sorted_clusters[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    result = np.empty(len(cluster), dtype=np.int64)
    result[order] = np.arange(len(order)) - group_start
    return result


def row_refs(rows: pd.DataFrame) -> np.ndarray:
    """'["file","sheet",row]' per row: the address of a source row."""
    places = pd.Series(column(rows, "_file")) + "\x1f" + column(rows, "_sheet")
    codes, uniques = pd.factorize(places)
    prefixes = np.array(["[" + ",".join(json.dumps(p, ensure_ascii=False) for p in u.split("\x1f")) + ","
                         for u in uniques], dtype=object)
    return prefixes[codes] + rows["_row"].to_numpy().astype(str).astype(object) + "]"


def render_provenance(names: list[str], rows: list[int], alternatives_text: list[str]) -> str:
    parts = [f'"{name}":{{"row":{row}{alt}}}' for name, row, alt in zip(names, rows, alternatives_text) if row >= 0]
    return "{" + ",".join(parts) + "}"


def provenance_json(source: dict[str, np.ndarray], rows_position: np.ndarray,
                    alternatives_by_field: dict[str, np.ndarray], n_clusters: int) -> np.ndarray:
    """Per record: {"field": {"row": i, "alternatives": [...]}} where i indexes source_rows.

    Records without alternatives share a handful of shapes (which row gave which field), so those
    strings are built once per shape; only records with alternatives are rendered one by one.
    """
    names = list(source)
    result = np.full(n_clusters, "{}", dtype=object)
    if not names or not n_clusters:
        return result
    index = np.column_stack([np.where(source[f] >= 0, rows_position[np.maximum(source[f], 0)], -1)
                             for f in names])
    has_alternatives = np.zeros(n_clusters, dtype=bool)
    for name in names:
        has_alternatives |= alternatives_by_field[name] != ""
    plain = np.flatnonzero(~has_alternatives)
    if len(plain):
        shapes, inverse = np.unique(index[plain], axis=0, return_inverse=True)
        no_alternatives = [""] * len(names)
        texts = [render_provenance(names, shape.tolist(), no_alternatives) for shape in shapes]
        result[plain] = np.array(texts, dtype=object)[inverse.ravel()]
    mixed = np.flatnonzero(has_alternatives)
    if len(mixed):
        alternative_rows = zip(*(alternatives_by_field[name][mixed].tolist() for name in names))
        result[mixed] = [render_provenance(names, rows, list(alts))
                         for rows, alts in zip(index[mixed].tolist(), alternative_rows)]
    return result


def collect_all(rows: pd.DataFrame, columns: list[str], cluster: np.ndarray, order: np.ndarray,
                n_clusters: int) -> np.ndarray:
    """Per cluster, every distinct valid value of the given '; '-joined columns, best rows first."""
    found_clusters, found_values = [], []
    for name in columns:
        values = column(rows, name)[order]
        keep = present(values)
        found_clusters.append(cluster[order][keep])
        found_values.append(values[keep])
    if not found_clusters:
        return np.full(n_clusters, None, dtype=object)
    frame = pd.DataFrame({"c": np.concatenate(found_clusters),
                          "v": pd.Series(np.concatenate(found_values), dtype=object).str.split("; ")})
    exploded = frame.explode("v").drop_duplicates()
    joined = join_by_group(exploded["c"].to_numpy(), exploded["v"].to_numpy(dtype=object), "; ", n_clusters)
    return np.where(joined == "", None, joined)


def record_ids(chosen_keys: np.ndarray, first_refs: np.ndarray) -> np.ndarray:
    """Stable id: hash of the organisation's match key (of its first row's address when unnamed)."""
    basis = np.where(chosen_keys == "", first_refs, "name:" + chosen_keys)
    ids = np.array(["sf-" + hashlib.sha256(b.encode()).hexdigest()[:16] for b in basis], dtype=object)
    duplicated = pd.Series(ids).duplicated(keep=False).to_numpy()
    if duplicated.any():   # unmerged clusters sharing a key (resolution off): the row address decides
        suffix = np.array([hashlib.sha256(r.encode()).hexdigest()[:6] for r in first_refs], dtype=object)
        ids = np.where(duplicated, ids + "-" + suffix, ids)
    return ids


def quality_flags(records: pd.DataFrame, rows: pd.DataFrame, cluster: np.ndarray, n_clusters: int,
                  quality_fields: list[str]) -> dict[str, np.ndarray]:
    """Flag name → which records carry it: missing_<field> for quality fields, invalid_<field>
    when any of the record's source rows held an invalid value for that field."""
    flags = {}
    for field in quality_fields:
        flags[f"missing_{field}"] = ~present(records[field].to_numpy(dtype=object))
    for name in [c for c in rows.columns if c.endswith("__invalid")]:
        weights = rows[name].to_numpy(dtype=np.float64)
        flags[f"invalid_{name[:-len('__invalid')]}"] = np.bincount(cluster, weights, n_clusters) > 0
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
    texts = ["; ".join(name for position, name in enumerate(names) if combo >> position & 1)
             for combo in combinations.tolist()]
    return np.array(texts, dtype=object)[inverse]


def build_records(rows: pd.DataFrame, cluster: np.ndarray, profile_data: dict,
                  output_columns: list[str]) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    fields_spec = profile_data["fields"]
    settings = profile_data.get("resolution", {})
    fields = output_fields(fields_spec)
    contact_fields = [f for f in settings.get("contact_fields", []) if f in fields]
    n_clusters = int(cluster.max()) + 1 if len(cluster) else 0
    preference = Preference(rows, cluster, settings.get("recency_field"))
    source, order = chosen_rows(rows, fields, contact_fields, cluster, n_clusters, preference)
    chosen = {f: take(column(rows, f), source[f]) for f in fields}

    refs = row_refs(rows)
    first_row = first_per_group(cluster, np.arange(len(cluster)), n_clusters)
    name_field = name_field_of(profile_data)
    if settings.get("enabled", True) and name_field:
        chosen_keys = take(column(rows, "_name_key"), source[name_field])
        chosen_keys = np.where(present(chosen_keys), chosen_keys, "")
    else:
        chosen_keys = np.full(n_clusters, "", dtype=object)
    records = {"record_id": record_ids(chosen_keys, refs[first_row])}
    for name in output_columns:
        if name in DERIVED_TYPES:
            sources = [f"{f}__all" for f, s in fields_spec.items() if s["type"] == DERIVED_TYPES[name]]
            records[name] = collect_all(rows, sources, cluster, order, n_clusters)
        else:
            records[name] = chosen[name]
    records["source_count"] = np.bincount(cluster, minlength=n_clusters).astype(np.int64)
    records["source_rows"] = "[" + join_by_group(cluster, refs, ",", n_clusters) + "]"
    explained = {f: source[f] for f in output_columns if f in source}
    alternatives_by_field = {f: alternatives(column(rows, f), chosen[f], cluster, order, n_clusters)
                             for f in explained}
    records["provenance"] = provenance_json(explained, position_in_cluster(cluster), alternatives_by_field,
                                            n_clusters)
    frame = object_frame(records)
    quality_fields = profile_data.get("quality", {}).get("fields", [])
    flags = quality_flags(frame, rows, cluster, n_clusters, quality_fields)
    missing = sum((flags[f"missing_{f}"] for f in quality_fields), np.zeros(n_clusters))
    frame["quality_score"] = np.round(1 - missing / len(quality_fields), 4) if quality_fields else 1.0
    frame["flags"] = flags_text(flags, n_clusters)
    return frame, flags


# --------------------------------------------------------------------------- rejection and counts

def required_missing(records: pd.DataFrame, required: list[str]) -> np.ndarray:
    """Per record, the '; '-joined reasons it cannot be kept ('' when it can)."""
    reasons = [np.where(present(records[f].to_numpy(dtype=object)), "", f"missing {f}") for f in required]
    return join_nonempty(reasons, "; ") if reasons else np.full(len(records), "", dtype=object)


def rejected_rows(rows: pd.DataFrame, cluster: np.ndarray, record_reasons: np.ndarray,
                  record_id: np.ndarray) -> pd.DataFrame:
    """Source rows that were rejected (their record failed a requirement) or flagged (invalid values)."""
    rejected_reason = record_reasons[cluster]
    flag_reason = column(rows, "_reasons")
    status = np.where(rejected_reason != "", "rejected", np.where(flag_reason != "", "flagged", ""))
    keep = np.flatnonzero(status != "")
    return object_frame({
        "source_file": column(rows, "_file")[keep],
        "source_sheet": column(rows, "_sheet")[keep],
        "source_row": rows["_row"].to_numpy(dtype=np.int64)[keep],
        "source": column(rows, "_source")[keep],
        "status": status[keep],
        "reasons": join_nonempty([rejected_reason[keep], flag_reason[keep]], "; "),
        "record_id": np.where(status[keep] == "rejected", None, record_id[cluster[keep]]),
    })


def quality_summary(records: pd.DataFrame, flags: dict[str, np.ndarray]) -> dict:
    counts = {name: int(marks.sum()) for name, marks in sorted(flags.items()) if marks.any()}
    return {
        "mean_score": round(float(records["quality_score"].mean()), 4) if len(records) else 0.0,
        "records_flagged": int((records["flags"] != "").sum()),
        "flag_counts": counts,
    }


def resolve(rows: pd.DataFrame, profile_data: dict, output_columns: list[str]) -> Resolution:
    """Normalised source rows → records, rejected/flagged rows, counts and quality summary."""
    rows = rows.reset_index(drop=True)
    if profile_data.get("resolution", {}).get("enabled", True) and name_field_of(profile_data):
        cluster = cluster_rows(rows, profile_data)
    else:
        cluster = np.arange(len(rows))
    records, flags = build_records(rows, cluster, profile_data, output_columns)
    reasons = required_missing(records, profile_data.get("required", []))
    rejected = rejected_rows(rows, cluster, reasons, records["record_id"].to_numpy(dtype=object))
    keep = reasons == ""
    kept = records[keep]
    kept_flags = {name: marks[keep] for name, marks in flags.items()}
    # Records sorted by name (unnamed last), then id: a stable, readable order.
    sort_key = kept[output_columns[0]] if output_columns else kept["record_id"]
    sort_key = pd.Series(sort_key.to_numpy(dtype=object), index=kept.index).str.casefold()
    kept = (kept.assign(_sort=sort_key).sort_values(["_sort", "record_id"], kind="stable", na_position="last")
            .drop(columns="_sort").reset_index(drop=True))
    status = rejected["status"].to_numpy(dtype=object)
    rejected_count = int((status == "rejected").sum())
    counts = {"rows_in": int(len(rows)), "records_out": int(len(kept)),
              "duplicates_merged": int(len(rows) - rejected_count - len(kept)),
              "flagged": int((status == "flagged").sum()), "rejected": rejected_count}
    return Resolution(kept, rejected, counts, quality_summary(kept, kept_flags))
