"""Entity resolution: group source rows into one record per organisation and pick each value.

Rows are joined when their organisation names match exactly after normalisation, when they share
an ID within one file (profile ``link_keys``) or an exact value such as a website (``link_fields``),
or when their names are similar (rapidfuzz) among sorted neighbours (sorted-neighbourhood blocking,
so the cost is rows x window, not rows squared). Each output value is chosen by source priority,
then row completeness, then recency, and carries its provenance and the alternatives it beat.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sheetfill.refine.normalise import join_nonempty, name_field_of, output_fields

DERIVED_TYPES = {"emails": "email", "phones": "phone"}
DIGITS_TABLE = str.maketrans("", "", "abcdefghijklmnopqrstuvwxyz ")


@dataclass
class Resolution:
    records: pd.DataFrame
    rejected: pd.DataFrame
    counts: dict
    quality: dict


# --------------------------------------------------------------------------- clustering

def connected_components(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Component label per node for the undirected edges (u, v): hook roots, then pointer-jump."""
    label = np.arange(n)
    while len(u):
        lu, lv = label[u], label[v]
        if np.array_equal(lu, lv):
            break
        low = np.minimum(lu, lv)
        np.minimum.at(label, lu, low)
        np.minimum.at(label, lv, low)
        while True:
            jumped = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped
    return pd.factorize(label)[0]


def equal_value_edges(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges from every row to the first row with the same (non-missing) value."""
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    present = np.flatnonzero(codes >= 0)
    if not len(present):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    present_codes = codes[present]
    _, first_position = np.unique(present_codes, return_index=True)
    first_row_of_code = np.empty(present_codes.max() + 1, dtype=np.int64)
    first_row_of_code[np.unique(present_codes)] = present[first_position]
    return present, first_row_of_code[present_codes]


def blocking_orders(keys: np.ndarray) -> list[np.ndarray]:
    """Two sort orders of the unique name keys: by sorted tokens, and by the same text reversed.

    The reversed order catches typos in the first letters that the plain order would scatter.
    """
    token_sorted = np.array([" ".join(sorted(k.split())) for k in keys], dtype=object)
    reversed_keys = np.array([k[::-1] for k in token_sorted], dtype=object)
    return [np.argsort(token_sorted, kind="stable"), np.argsort(reversed_keys, kind="stable")]


def similar_name_pairs(keys: np.ndarray, threshold: float, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs of keys whose token-sort similarity reaches the threshold among sorted neighbours.

    Names whose digits differ ('Hangar 7' vs 'Hangar 8') are never paired.
    """
    from rapidfuzz import fuzz, process

    digits = np.array([k.translate(DIGITS_TABLE) for k in keys], dtype=object)
    left_parts, right_parts = [], []
    for order in blocking_orders(keys):
        ordered = keys[order]
        for offset in range(1, min(window, len(keys) - 1) + 1):
            scores = process.cpdist(ordered[:-offset], ordered[offset:], scorer=fuzz.token_sort_ratio,
                                    score_cutoff=threshold, workers=1)
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
    name_keys = rows["_name_key"].to_numpy(dtype=object)
    edge_sets = [equal_value_edges(np.where(name_keys == "", None, name_keys))]
    for key in settings.get("link_keys", []):
        scoped = (rows["_file"] + "\x1f" + rows[key]).to_numpy(dtype=object)   # IDs mean something per file only
        edge_sets.append(equal_value_edges(scoped))
    generic_hosts = set(profile_data.get("normalisation", {}).get("generic_websites", []))
    for field in settings.get("link_fields", []):
        values = rows[field].to_numpy(dtype=object)
        if generic_hosts:
            values = np.where(pd.Series(values).isin([f"https://{h}" for h in generic_hosts]), None, values)
        edge_sets.append(equal_value_edges(values))
    codes, unique_keys = pd.factorize(name_keys)
    unique_keys = np.asarray(unique_keys, dtype=object)
    usable = np.flatnonzero(unique_keys != "")
    if len(usable) > 1:
        first_row = np.full(len(unique_keys), -1, dtype=np.int64)
        first_row[codes[::-1]] = np.arange(len(codes))[::-1]      # first row holding each key
        left, right = similar_name_pairs(unique_keys[usable], float(settings.get("threshold", 90)),
                                         int(settings.get("window", 6)))
        edge_sets.append((first_row[usable[left]], first_row[usable[right]]))
    u = np.concatenate([e[0] for e in edge_sets])
    v = np.concatenate([e[1] for e in edge_sets])
    return connected_components(len(rows), u, v)


# --------------------------------------------------------------------------- choosing values

def join_by_group(groups: np.ndarray, texts: np.ndarray, separator: str) -> pd.Series:
    """Join texts per group, keeping their order within a group; indexed by group, sorted.

    A stable sort and one str.join per group: much faster than groupby().agg(str.join).
    """
    if not len(groups):
        return pd.Series(dtype=object)
    order = np.argsort(groups, kind="stable")
    groups, texts = groups[order], texts[order].tolist()
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    ends = np.r_[starts[1:], len(groups)].tolist()
    joined = [separator.join(texts[a:b]) for a, b in zip(starts.tolist(), ends)]
    return pd.Series(joined, index=groups[starts], dtype=object)


def json_text(values: pd.Series | np.ndarray) -> np.ndarray:
    """JSON string literal of each value, computed once per unique value."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    encoded = np.array([json.dumps(u, ensure_ascii=False) for u in uniques] + ["null"], dtype=object)
    return encoded[codes]


def row_refs(rows: pd.DataFrame) -> np.ndarray:
    """'["file","sheet",row]' per row: the address of a source row."""
    return ("[" + json_text(rows["_file"]) + "," + json_text(rows["_sheet"]) + ","
            + rows["_row"].astype(str).to_numpy(dtype=object) + "]")


def preference_order(rows: pd.DataFrame, score: np.ndarray, recency_field: str | None) -> np.ndarray:
    """Row order within each cluster: priority, then completeness (score), then recency, then source order."""
    if recency_field:
        recency = pd.Series(rows[recency_field].to_numpy(dtype=object)).rank(
            method="dense", ascending=False, na_option="bottom").to_numpy()
    else:
        recency = np.zeros(len(rows))
    return np.lexsort((np.arange(len(rows)), recency, -score, -rows["_priority"].to_numpy(),
                       rows["_cluster"].to_numpy()))


def first_present(ordered: pd.DataFrame, field: str) -> pd.Series:
    """Per cluster, the position (in rows) of the first preferred row that has a value for field."""
    present = ordered.loc[ordered[field].notna(), ["_cluster"]]
    firsts = present.drop_duplicates("_cluster")
    return pd.Series(firsts.index.to_numpy(), index=firsts["_cluster"].to_numpy())


def alternatives_json(ordered: pd.DataFrame, field: str, chosen: pd.Series, clusters: np.ndarray) -> np.ndarray:
    """Per cluster, a JSON list of the other distinct values offered for field, best first."""
    offered = ordered[["_cluster", field]].dropna().drop_duplicates()
    offered = offered[offered[field].to_numpy(dtype=object)
                      != chosen.reindex(offered["_cluster"]).to_numpy(dtype=object)]
    result = pd.Series("[]", index=clusters, dtype=object)
    if len(offered):
        grouped = join_by_group(offered["_cluster"].to_numpy(), json_text(offered[field]), ",")
        result.loc[grouped.index] = "[" + grouped + "]"
    return result.to_numpy(dtype=object)


def collect_all(ordered: pd.DataFrame, columns: list[str], clusters: np.ndarray) -> np.ndarray:
    """Per cluster, every distinct valid value of the given '; '-joined columns, best rows first."""
    if not columns:
        return np.full(len(clusters), None, dtype=object)
    parts = [pd.DataFrame({"_cluster": ordered["_cluster"].to_numpy(), "value": ordered[c].to_numpy(dtype=object)})
             for c in columns]
    stacked = pd.concat(parts, ignore_index=True).dropna()
    values = stacked.assign(value=stacked["value"].str.split("; ")).explode("value").drop_duplicates()
    joined = join_by_group(values["_cluster"].to_numpy(), values["value"].to_numpy(dtype=object), "; ")
    return joined.reindex(clusters).to_numpy(dtype=object)


def choose_values(rows: pd.DataFrame, profile_data: dict) -> tuple[pd.DataFrame, dict[str, pd.Series], pd.DataFrame]:
    """Chosen values (one row per cluster), per field the row position each came from, and the
    rows in preference order."""
    fields = output_fields(profile_data["fields"])
    settings = profile_data.get("resolution", {})
    contact_fields = [f for f in settings.get("contact_fields", []) if f in fields]
    recency_field = settings.get("recency_field")
    completeness = rows[fields].notna().sum(axis=1).to_numpy()
    ordered = rows.iloc[preference_order(rows, completeness, recency_field)]
    clusters = np.unique(rows["_cluster"].to_numpy())
    chosen = pd.DataFrame(index=clusters)
    origin: dict[str, pd.Series] = {}
    for field in fields:
        if field in contact_fields:
            continue
        origin[field] = first_present(ordered, field)
    if contact_fields:
        # The primary contact is one person: all contact fields come from the best contact row.
        contact_score = rows[contact_fields].notna().sum(axis=1).to_numpy()
        by_contact = rows.iloc[preference_order(rows, contact_score, recency_field)]
        best = by_contact[contact_score[by_contact.index] > 0].drop_duplicates("_cluster")
        for field in contact_fields:
            has_value = best[field].notna().to_numpy()
            origin[field] = pd.Series(best.index[has_value], index=best["_cluster"].to_numpy()[has_value])
    for field, positions in origin.items():
        chosen[field] = pd.Series(rows[field].to_numpy(dtype=object)[positions.to_numpy()],
                                  index=positions.index).reindex(clusters).to_numpy(dtype=object)
    return chosen, origin, ordered


# --------------------------------------------------------------------------- records

def record_ids(chosen_keys: np.ndarray, first_refs: np.ndarray) -> np.ndarray:
    """Stable id: hash of the organisation's match key (of the row-address when there is no name)."""
    basis = np.where(chosen_keys == "", first_refs, "name:" + chosen_keys)
    ids = np.array(["sf-" + hashlib.sha256(b.encode()).hexdigest()[:16] for b in basis], dtype=object)
    duplicated = pd.Series(ids).duplicated(keep=False).to_numpy()
    if duplicated.any():   # two unmerged clusters with one key (resolution off): the row address decides
        suffix = np.array([hashlib.sha256(r.encode()).hexdigest()[:6] for r in first_refs], dtype=object)
        ids = np.where(duplicated, ids + "-" + suffix, ids)
    return ids


def provenance_json(rows: pd.DataFrame, ordered: pd.DataFrame, chosen: pd.DataFrame,
                    origin: dict[str, pd.Series], refs: np.ndarray) -> np.ndarray:
    """Per record: {"field": {"from": ["file","sheet",row], "source": name, "alternatives": [...]}, ...}."""
    clusters = chosen.index.to_numpy()
    source_json = json_text(rows["_source"])
    pieces = []
    for field, positions in origin.items():
        where = positions.reindex(clusters)
        has = where.notna().to_numpy()
        position = where.fillna(0).to_numpy(dtype=np.int64)
        alternatives = alternatives_json(ordered, field, chosen[field], clusters)
        piece = (f'"{field}":{{"from":' + refs[position] + ',"source":' + source_json[position]
                 + ',"alternatives":' + alternatives + "}")
        pieces.append(np.where(has, piece, ""))
    body = join_nonempty(pieces, ",") if pieces else np.full(len(clusters), "", dtype=object)
    return "{" + body + "}"


def quality_columns(records: pd.DataFrame, rows: pd.DataFrame, profile_data: dict) -> tuple[np.ndarray, np.ndarray]:
    """Score = share of the quality fields present; flags name what is missing or was invalid."""
    quality_fields = profile_data.get("quality", {}).get("fields", [])
    flags = []
    present = np.zeros(len(records))
    for field in quality_fields:
        has = records[field].notna().to_numpy()
        present += has
        flags.append(np.where(has, "", f"missing_{field}"))
    invalid_columns = [c for c in rows.columns if c.endswith("__invalid")]
    if invalid_columns:
        invalid = rows.groupby("_cluster", sort=True)[invalid_columns].any().reindex(records["_cluster"])
        for column in invalid_columns:
            flags.append(np.where(invalid[column].to_numpy(), f"invalid_{column[:-len('__invalid')]}", ""))
    score = present / len(quality_fields) if quality_fields else np.ones(len(records))
    text = join_nonempty(flags, "; ") if flags else np.full(len(records), "", dtype=object)
    return np.round(score, 4), text


def build_records(rows: pd.DataFrame, profile_data: dict, output_columns: list[str]) -> pd.DataFrame:
    fields = profile_data["fields"]
    chosen, origin, ordered = choose_values(rows, profile_data)
    clusters = chosen.index.to_numpy()
    refs = row_refs(rows)
    cluster_of_row = rows["_cluster"].to_numpy()
    records = pd.DataFrame({"_cluster": clusters})
    name_field = name_field_of(profile_data)
    key_positions = origin.get(name_field, pd.Series(dtype=np.int64)).reindex(clusters)
    chosen_keys = np.where(key_positions.notna(), rows["_name_key"].to_numpy(dtype=object)[
        key_positions.fillna(0).to_numpy(dtype=np.int64)], "")
    if not profile_data.get("resolution", {}).get("enabled", True):
        chosen_keys = np.full(len(clusters), "", dtype=object)
    first_refs = pd.Series(refs).groupby(cluster_of_row, sort=True).first().to_numpy(dtype=object)
    records["record_id"] = record_ids(chosen_keys.astype(object), first_refs)
    for column in output_columns:
        if column in DERIVED_TYPES:
            sources = [f"{f}__all" for f, s in fields.items() if s["type"] == DERIVED_TYPES[column]]
            records[column] = collect_all(ordered, sources, clusters)
        else:
            records[column] = chosen[column].to_numpy(dtype=object)
    records["source_count"] = np.bincount(cluster_of_row)[clusters].astype(np.int64)
    records["source_rows"] = ("[" + join_by_group(cluster_of_row, refs, ",") + "]").reindex(clusters).to_numpy(dtype=object)
    records["provenance"] = provenance_json(rows, ordered, chosen, origin, refs)
    records["quality_score"], records["flags"] = quality_columns(records, rows, profile_data)
    return records


def required_missing(records: pd.DataFrame, required: list[str]) -> np.ndarray:
    """Per record, the '; '-joined reasons it cannot be kept ('' when it can)."""
    reasons = [np.where(records[f].isna().to_numpy(), f"missing {f}", "") for f in required]
    return join_nonempty(reasons, "; ") if reasons else np.full(len(records), "", dtype=object)


def rejected_rows(rows: pd.DataFrame, record_reasons: pd.Series, record_of_cluster: pd.Series) -> pd.DataFrame:
    """Source rows that were rejected (their record failed a requirement) or flagged (invalid values)."""
    cluster = rows["_cluster"].to_numpy()
    rejected_reason = record_reasons.reindex(cluster).fillna("").to_numpy(dtype=object)
    flag_reason = rows["_reasons"].to_numpy(dtype=object)
    status = np.where(rejected_reason != "", "rejected", np.where(flag_reason != "", "flagged", ""))
    keep = status != ""
    record_id = record_of_cluster.reindex(cluster).to_numpy(dtype=object)
    frame = pd.DataFrame({
        "source_file": rows["_file"].to_numpy(dtype=object),
        "source_sheet": rows["_sheet"].to_numpy(dtype=object),
        "source_row": rows["_row"].to_numpy(dtype=np.int64),
        "source": rows["_source"].to_numpy(dtype=object),
        "status": status,
        "reasons": join_nonempty([rejected_reason, flag_reason], "; "),
        "record_id": np.where(status == "rejected", None, record_id),
    })
    return frame[keep].reset_index(drop=True)


def resolve(rows: pd.DataFrame, profile_data: dict, output_columns: list[str]) -> Resolution:
    settings = profile_data.get("resolution", {})
    rows = rows.reset_index(drop=True)
    if settings.get("enabled", True) and name_field_of(profile_data):
        rows["_cluster"] = cluster_rows(rows, profile_data)
    else:
        rows["_cluster"] = np.arange(len(rows))
    records = build_records(rows, profile_data, output_columns)
    reasons = required_missing(records, profile_data.get("required", []))
    keep = reasons == ""
    record_reasons = pd.Series(reasons, index=records["_cluster"].to_numpy())
    record_of_cluster = pd.Series(records["record_id"].to_numpy(), index=records["_cluster"].to_numpy())
    rejected = rejected_rows(rows, record_reasons, record_of_cluster)
    kept = records[keep].drop(columns="_cluster")
    # Records sorted by name (unnamed last), then id: a stable, readable order.
    sort_key = kept[output_columns[0]].str.casefold() if output_columns else kept["record_id"]
    kept = (kept.assign(_sort=sort_key).sort_values(["_sort", "record_id"], kind="stable", na_position="last")
            .drop(columns="_sort").reset_index(drop=True))
    rejected_count = int((rejected["status"] == "rejected").sum())
    accepted = len(rows) - rejected_count
    counts = {"rows_in": int(len(rows)), "records_out": int(len(kept)),
              "duplicates_merged": int(accepted - len(kept)),
              "flagged": int((rejected["status"] == "flagged").sum()), "rejected": rejected_count}
    quality = quality_summary(kept)
    return Resolution(kept, rejected, counts, quality)


def quality_summary(records: pd.DataFrame) -> dict:
    flags = records["flags"].str.split("; ").explode()
    flag_counts = flags[flags.notna() & (flags != "")].value_counts().sort_index()
    return {
        "mean_score": round(float(records["quality_score"].mean()), 4) if len(records) else 0.0,
        "records_flagged": int((records["flags"] != "").sum()),
        "flag_counts": {str(k): int(v) for k, v in flag_counts.items()},
    }
