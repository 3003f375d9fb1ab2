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

from sheetfill.refine.normalise import join_nonempty, name_field_of, object_frame, output_fields, present, repeated

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


# --------------------------------------------------------------------------- clustering


def connected_components(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Component label (0..k-1, in order of first row) per node for undirected edges (u, v)."""
    label = np.arange(n)
    while len(u):
        lu, lv = label[u], label[v]
        if np.array_equal(lu, lv):
            break
        low = np.minimum(lu, lv)
        np.minimum.at(label, lu, low)  # hook each root under the smaller root
        np.minimum.at(label, lv, low)
        while True:  # pointer jumping until every node points at its root
            jumped = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped
    return pd.factorize(label)[0]


class ColumnCodes:
    """Per column of the rows, a code per row that is equal for equal values (-1: missing).

    Computed once per column: factorising a million distinct strings costs ~0.2 s, and clustering
    and value choice both need the link fields' codes. `known` takes codes already computed
    (compact.compact_text returns them).
    """

    def __init__(self, rows: pd.DataFrame, known: dict[str, tuple[np.ndarray, np.ndarray]] | None = None):
        self.rows = rows
        self.factorised = known if known is not None else {}

    def release(self) -> None:
        """Free the codes (known ones included: the caller's dict is emptied too)."""
        self.factorised.clear()

    def _factorise(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in self.factorised:
            codes, uniques = pd.factorize(column(self.rows, name), use_na_sentinel=True)
            self.factorised[name] = codes.astype(np.int32), uniques  # half the memory of int64
        return self.factorised[name]

    def __getitem__(self, name: str) -> np.ndarray:
        return self._factorise(name)[0]

    def named_keys(self) -> tuple[np.ndarray, np.ndarray]:
        """Codes of the organisation match keys ("" counts as missing) and the keys they index."""
        return self.ignoring("_name_key", frozenset({""})), np.asarray(self._factorise("_name_key")[1], dtype=object)

    def ignoring(self, name: str, ignored: frozenset) -> np.ndarray:
        """The column's codes with the ignored values counted as missing."""
        codes, uniques = self._factorise(name)
        if not ignored:
            return codes
        drop = np.array([u in ignored for u in uniques.tolist()] + [True])  # [-1] indexes the extra True
        return np.where(drop[codes], -1, codes)


def equal_value_edges(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges from every row to the first row with the same code (rows with code -1 have none)."""
    rows = np.flatnonzero(codes >= 0)
    if not len(rows):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    first_row_of_code = np.full(codes.max() + 1, -1, dtype=np.int64)
    first_row_of_code[codes[rows][::-1]] = rows[::-1]  # the last write wins: the first row
    return rows, first_row_of_code[codes[rows]]


def blocking_orders(keys: np.ndarray) -> list[np.ndarray]:
    """Two sort orders of the unique name keys: by sorted tokens, and by the same text reversed.

    The reversed order catches typos in the first letters that the plain order would scatter.
    """
    token_sorted = [" ".join(sorted(k.split())) for k in keys]
    reversed_keys = [k[::-1] for k in token_sorted]
    # fixed-width unicode arrays sort in C; object arrays would compare in Python
    return [
        np.argsort(np.array(token_sorted, dtype=str), kind="stable"),
        np.argsort(np.array(reversed_keys, dtype=str), kind="stable"),
    ]


def similar_name_pairs(keys: np.ndarray, threshold: float, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs (and scores) of keys whose token-sort similarity reaches the threshold among
    sorted neighbours. Names whose digits differ ('Hangar 7' vs 'Hangar 8') are never paired."""
    from rapidfuzz import fuzz, process

    digits = np.array([k.translate(DIGITS_TABLE) for k in keys], dtype=object)
    lefts, rights, scores = [], [], []
    for order in blocking_orders(keys):
        ordered = keys[order].tolist()
        for offset in range(1, min(window, len(keys) - 1) + 1):
            score = process.cpdist(
                ordered[:-offset], ordered[offset:], scorer=fuzz.token_sort_ratio, score_cutoff=threshold, workers=-1
            )
            hit = np.flatnonzero(score >= threshold)
            left, right = order[hit], order[hit + offset]
            same_digits = digits[left] == digits[right]
            lefts.append(left[same_digits])
            rights.append(right[same_digits])
            scores.append(score[hit][same_digits])
    if not lefts:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0)
    return np.concatenate(lefts), np.concatenate(rights), np.concatenate(scores)


class Identities:
    """Union-find over strong clusters that refuses merges contradicting identity attributes.

    Each group keeps one code per link field (website, e-mail, phone, …); two groups conflict when
    both have a value for a field and the values differ. Name matches are only evidence, so a name
    match between conflicting groups is ignored.
    """

    def __init__(self, attributes: np.ndarray):
        self.parent = list(range(len(attributes)))
        self.attributes = attributes.tolist()  # one list of codes (-1: none) per group

    def find(self, group: int) -> int:
        root = group
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[group] != root:  # path compression
            self.parent[group], group = root, self.parent[group]
        return root

    def compatible(self, a: int, b: int) -> bool:
        return all(x < 0 or y < 0 or x == y for x, y in zip(self.attributes[a], self.attributes[b]))

    def merge(self, a: int, b: int) -> bool:
        """Merge the groups of a and b unless they conflict; True when they are (now) one group."""
        a, b = self.find(a), self.find(b)
        if a == b:
            return True
        if not self.compatible(a, b):
            return False
        if b < a:
            a, b = b, a
        self.parent[b] = a
        self.attributes[a] = [x if x >= 0 else y for x, y in zip(self.attributes[a], self.attributes[b])]
        return True

    def known(self, group: int) -> int:
        return sum(code >= 0 for code in self.attributes[self.find(group)])

    def labels(self) -> np.ndarray:
        return np.array([self.find(g) for g in range(len(self.parent))], dtype=np.int64)


def strong_links(codes: ColumnCodes, profile_data: dict) -> tuple[np.ndarray, np.ndarray]:
    """Groups of rows joined by exact evidence, and per group one code per link field.

    Evidence: the same link key (an ID) within one file, or the same value of a link field
    (website, e-mail, phone) anywhere. Websites listed as generic never count.
    """
    settings = profile_data.get("resolution", {})
    files = codes["_file"]
    edge_sets = []
    for key in settings.get("link_keys", []):
        ids = codes[key].astype(np.int64)
        scoped = np.where(ids >= 0, ids * (int(files.max()) + 1) + files, -1)  # IDs are per file
        edge_sets.append(equal_value_edges(scoped))
    generic = frozenset(f"https://{host}" for host in profile_data.get("normalisation", {}).get("generic_websites", []))
    field_codes = [codes.ignoring(field, generic) for field in settings.get("link_fields", [])]
    edge_sets += [equal_value_edges(codes) for codes in field_codes]
    u = np.concatenate([e[0] for e in edge_sets]) if edge_sets else np.empty(0, dtype=np.int64)
    v = np.concatenate([e[1] for e in edge_sets]) if edge_sets else np.empty(0, dtype=np.int64)
    group = connected_components(len(files), u, v)
    n_groups = int(group.max()) + 1 if len(group) else 0
    attributes = np.full((n_groups, len(field_codes)), -1, dtype=np.int64)
    for index, codes in enumerate(field_codes):
        has = np.flatnonzero(codes >= 0)
        attributes[group[has[::-1]], index] = codes[has[::-1]]  # first row with a value wins
    return group, attributes


def merge_same_names(identities: Identities, group: np.ndarray, name_codes: np.ndarray, max_groups: int) -> None:
    """Merge groups whose organisation names have the same match key, when unambiguous.

    Within one name, groups with more identity attributes go first; each group joins the single
    compatible group formed so far, stays apart when it contradicts all of them, and is left alone
    when several would fit (two different organisations can share a name). Names carried by more
    than max_groups groups say nothing about identity and are skipped.
    """
    pairs = pd.DataFrame({"name": name_codes, "group": group})
    pairs = pairs[pairs["name"] >= 0].drop_duplicates()
    sizes = pairs["name"].map(pairs["name"].value_counts())
    pairs = pairs[(sizes > 1) & (sizes <= max_groups)]
    for _, members in pairs.groupby("name", sort=True)["group"]:
        ordered = sorted(members.tolist(), key=lambda g: (-identities.known(g), g))
        buckets: list[int] = []
        for member in ordered:
            fitting = [b for b in buckets if identities.compatible(identities.find(b), identities.find(member))]
            if len(fitting) == 1:
                identities.merge(fitting[0], member)
            elif not fitting:
                buckets.append(member)


def merge_similar_names(
    identities: Identities, group: np.ndarray, name_codes: np.ndarray, unique_keys: np.ndarray, settings: dict
) -> None:
    """Merge groups whose names are similar (typos, '&' for 'and'), best scores first, when the
    name on each side belongs to one group only and nothing contradicts the merge."""
    usable = np.flatnonzero(unique_keys != "")
    if len(usable) < 2:
        return
    left, right, score = similar_name_pairs(
        unique_keys[usable], float(settings.get("threshold", 90)), int(settings.get("window", 6))
    )
    if not len(left):
        return
    present_codes = name_codes >= 0
    roots = identities.labels()[group[present_codes]]
    per_name = pd.DataFrame({"name": name_codes[present_codes], "root": roots}).drop_duplicates()
    counts = per_name["name"].value_counts()
    single = per_name[per_name["name"].map(counts) == 1].set_index("name")["root"]
    root_of_name = np.full(len(unique_keys), -1, dtype=np.int64)
    root_of_name[single.index.to_numpy()] = single.to_numpy()
    a, b = root_of_name[usable[left]], root_of_name[usable[right]]
    for i in np.lexsort((b, a, -score)).tolist():
        if a[i] >= 0 and b[i] >= 0:
            identities.merge(int(a[i]), int(b[i]))


def cluster_rows(rows: pd.DataFrame, codes: ColumnCodes, profile_data: dict) -> np.ndarray:
    """Cluster id per row: strong links first, then name evidence that contradicts nothing."""
    settings = profile_data.get("resolution", {})
    group, attributes = strong_links(codes, profile_data)
    identities = Identities(attributes)
    name_codes, unique_keys = codes.named_keys()
    merge_same_names(identities, group, name_codes, int(settings.get("max_name_groups", 10)))
    merge_similar_names(identities, group, name_codes, unique_keys, settings)
    return pd.factorize(identities.labels()[group])[0]


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
    best[groups[::-1]] = positions[::-1]  # the last write wins: the first position
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


def chosen_rows(
    codes: ColumnCodes,
    fields: list[str],
    contact_fields: list[str],
    cluster: np.ndarray,
    n_clusters: int,
    preference: Preference,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per field, the row each cluster takes its value from (-1: none); and the preference order."""
    has = {f: codes[f] >= 0 for f in fields}
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


def alternatives(
    values: np.ndarray, codes: np.ndarray, source: np.ndarray, cluster: np.ndarray, order: np.ndarray, n_clusters: int
) -> np.ndarray:
    """Per cluster, a JSON list of the other distinct values offered for a field, best first ('' if none).

    codes: the field's value codes (ColumnCodes); source: the row each cluster took its value from (-1: none).
    """
    ordered = order[codes[order] >= 0]
    pair = cluster[ordered].astype(np.int64) * (int(codes.max(initial=0)) + 1) + codes[ordered]
    distinct = ordered[~pd.Series(pair).duplicated().to_numpy()]  # first offer of each value, in order
    chosen_code = np.where(source >= 0, codes[np.maximum(source, 0)], -1)
    other = distinct[codes[distinct] != chosen_code[cluster[distinct]]]
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
    prefixes = np.array(
        ["[" + ",".join(json.dumps(p, ensure_ascii=False) for p in u.split("\x1f")) + "," for u in uniques],
        dtype=object,
    )
    return prefixes[codes] + rows["_row"].to_numpy().astype(str).astype(object) + "]"


def render_provenance(names: list[str], rows: list[int], alternatives_text: list[str]) -> str:
    parts = [f'"{name}":{{"row":{row}{alt}}}' for name, row, alt in zip(names, rows, alternatives_text) if row >= 0]
    return "{" + ",".join(parts) + "}"


def row_codes(matrix: np.ndarray) -> np.ndarray:
    """Code per row of an int matrix (values >= -1), equal for equal rows; much faster than
    np.unique(axis=0). Codes are re-compacted after each column, so they never overflow."""
    codes = np.zeros(len(matrix), dtype=np.int64)
    for values in matrix.T:
        codes = pd.factorize(codes * (values.max() + 2) + values + 1)[0]
    return codes


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
    index = np.column_stack([np.where(source[f] >= 0, rows_position[np.maximum(source[f], 0)], -1) for f in names])
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
    if len(mixed):
        alternative_rows = zip(*(alternatives_by_field[name][mixed].tolist() for name in names))
        result[mixed] = [
            render_provenance(names, rows, list(alts)) for rows, alts in zip(index[mixed].tolist(), alternative_rows)
        ]
    return result


def collect_all(
    rows: pd.DataFrame, columns: list[str], cluster: np.ndarray, order: np.ndarray, n_clusters: int
) -> np.ndarray:
    """Per cluster, every distinct valid value of the given '; '-joined columns, best rows first."""
    found_clusters, found_values = [], []
    for name in columns:
        values = column(rows, name)[order]
        keep = present(values)
        found_clusters.append(cluster[order][keep])
        found_values.append(values[keep])
    if not found_clusters:
        return np.full(n_clusters, None, dtype=object)
    frame = pd.DataFrame(
        {
            "c": np.concatenate(found_clusters),
            "v": pd.Series(np.concatenate(found_values), dtype=object).str.split("; "),
        }
    )
    exploded = frame.explode("v").drop_duplicates()
    joined = join_by_group(exploded["c"].to_numpy(), exploded["v"].to_numpy(dtype=object), "; ", n_clusters)
    return np.where(joined == "", None, joined)


def text_ranks(texts) -> np.ndarray:
    """Position of each text in sorted order (as Python compares str), for sorting by codes."""
    ranks = np.empty(len(texts), dtype=np.int64)
    ranks[sorted(range(len(texts)), key=texts.__getitem__)] = np.arange(len(texts))
    return ranks


def consensus_keys(key_codes: np.ndarray, keys: np.ndarray, cluster: np.ndarray, n_clusters: int) -> np.ndarray:
    """Per cluster, the name key most of its rows share (ties: the smallest), "" when none has one.

    key_codes index keys (-1: no key). The id rests on this rather than on the chosen display name,
    so a typo in the preferred source, or a cleaner re-capture of it, does not change the record's id.
    """
    result = np.full(n_clusters, "", dtype=object)
    has = key_codes >= 0
    if not has.any():
        return result
    width = len(keys)
    pairs, counts = np.unique(cluster[has].astype(np.int64) * width + key_codes[has], return_counts=True)
    pair_cluster, pair_key = np.divmod(pairs, width)
    best = np.lexsort((text_ranks(keys)[pair_key], -counts, pair_cluster))
    winner = first_per_group(pair_cluster[best], best, n_clusters)
    named = winner >= 0
    result[named] = keys[pair_key[winner[named]]]
    return result


def record_ids(chosen_keys: np.ndarray, first_refs: np.ndarray, identities: np.ndarray) -> np.ndarray:
    """Stable id: hash of the organisation's match key (of its first row's address when unnamed).

    Two organisations can share a name; their ids then get a suffix hashed from an identity value
    (website, e-mail or phone — whatever the record has), so each keeps its id across bundles.
    """
    basis = np.where(chosen_keys == "", first_refs, "name:" + chosen_keys)
    ids = np.array(["sf-" + hashlib.sha256(b.encode()).hexdigest()[:16] for b in basis], dtype=object)
    duplicated = pd.Series(ids).duplicated(keep=False).to_numpy()
    if duplicated.any():
        tiebreak = np.where(present(identities), identities, first_refs)
        suffix = np.array(
            [hashlib.sha256(str(t).encode()).hexdigest()[:6] if d else "" for t, d in zip(tiebreak, duplicated)],
            dtype=object,
        )
        ids = np.where(duplicated, ids + "-" + suffix, ids)
    return ids


def quality_flags(
    records: pd.DataFrame, rows: pd.DataFrame, cluster: np.ndarray, n_clusters: int, quality_fields: list[str]
) -> dict[str, np.ndarray]:
    """Flag name → which records carry it: missing_<field> for quality fields, invalid_<field>
    when any of the record's source rows held an invalid value for that field."""
    flags = {}
    for field in quality_fields:
        flags[f"missing_{field}"] = ~present(records[field].to_numpy(dtype=object))
    for name in [c for c in rows.columns if c.endswith("__invalid")]:
        weights = rows[name].to_numpy(dtype=np.float64)
        flags[f"invalid_{name[: -len('__invalid')]}"] = np.bincount(cluster, weights, n_clusters) > 0
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
    chosen = {f: take(column(rows, f), source[f]) for f in fields}

    refs = row_refs(rows)
    first_row = first_per_group(cluster, np.arange(len(cluster)), n_clusters)
    name_field = name_field_of(profile_data)
    if settings.get("enabled", True) and name_field:
        chosen_keys = consensus_keys(*codes.named_keys(), cluster, n_clusters)
    else:
        chosen_keys = np.full(n_clusters, "", dtype=object)
    link_fields = [f for f in settings.get("link_fields", []) if f in chosen]
    identity = np.full(n_clusters, None, dtype=object)
    for field in reversed(link_fields):  # the first link field with a value wins
        identity = np.where(present(chosen[field]), chosen[field], identity)
    records = {"record_id": record_ids(chosen_keys, refs[first_row], identity)}
    for name in output_columns:
        if name in DERIVED_TYPES:
            sources = [f"{f}__all" for f, s in fields_spec.items() if s["type"] == DERIVED_TYPES[name]]
            records[name] = collect_all(rows, sources, cluster, order, n_clusters)
        else:
            records[name] = chosen[name]
    records["source_count"] = np.bincount(cluster, minlength=n_clusters).astype(np.int64)
    records["source_rows"] = "[" + join_by_group(cluster, refs, ",", n_clusters) + "]"
    explained = {f: source[f] for f in output_columns if f in source}
    alternatives_by_field = {
        f: alternatives(column(rows, f), codes[f], source[f], cluster, order, n_clusters) for f in explained
    }
    records["provenance"] = provenance_json(explained, position_in_cluster(cluster), alternatives_by_field, n_clusters)
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


def rejected_rows(
    rows: pd.DataFrame, cluster: np.ndarray, record_reasons: np.ndarray, record_id: np.ndarray
) -> pd.DataFrame:
    """Source rows that were rejected (their record failed a requirement) or flagged (invalid values)."""
    rejected_reason = record_reasons[cluster]
    flag_reason = column(rows, "_reasons")
    status = np.where(rejected_reason != "", "rejected", np.where(flag_reason != "", "flagged", ""))
    keep = np.flatnonzero(status != "")
    return object_frame(
        {
            "source_file": column(rows, "_file")[keep],
            "source_sheet": column(rows, "_sheet")[keep],
            "source_row": rows["_row"].to_numpy(dtype=np.int64)[keep],
            "source": column(rows, "_source")[keep],
            "status": status[keep],
            "reasons": join_nonempty([rejected_reason[keep], flag_reason[keep]], "; "),
            "record_id": np.where(status[keep] == "rejected", None, record_id[cluster[keep]]),
        }
    )


def quality_summary(records: pd.DataFrame, flags: dict[str, np.ndarray]) -> dict:
    counts = {name: int(marks.sum()) for name, marks in sorted(flags.items()) if marks.any()}
    return {
        "mean_score": round(float(records["quality_score"].mean()), 4) if len(records) else 0.0,
        "records_flagged": int((records["flags"] != "").sum()),
        "flag_counts": counts,
    }


def sort_codes(values: np.ndarray) -> np.ndarray:
    """Integer codes that sort like the values; missing values sort last.

    Only the distinct values are sorted (in Python, as str comparison orders them); pandas'
    factorize(sort=True) does the same work about twice as slowly.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return np.append(text_ranks(uniques), len(uniques))[codes]  # code -1 (missing) takes the last


def reading_order(records: pd.DataFrame, output_columns: list[str]) -> np.ndarray:
    """Record positions sorted by name (case-insensitive, unnamed last), then id: a stable, readable order."""
    record_id = records["record_id"].to_numpy(dtype=object)
    names = records[output_columns[0]].to_numpy(dtype=object) if output_columns else record_id
    folded = pd.Series(names, dtype=object).str.casefold().to_numpy(dtype=object)
    # ids are ASCII ("sf-" + hex digits): as a bytes array they sort in C
    return np.lexsort((np.array(record_id, dtype="S"), sort_codes(folded)))


def take_rows(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """frame's rows at positions, each column copied once (boolean masks and sorts copy it twice)."""
    return object_frame({name: frame[name].to_numpy()[positions] for name in frame.columns})


def resolve(
    rows: pd.DataFrame, profile_data: dict, output_columns: list[str], known_codes: dict | None = None
) -> Resolution:
    """Normalised source rows → records, rejected/flagged rows, counts and quality summary.

    known_codes: value codes of text columns already computed (compact.compact_text returns them);
    the dict is emptied once they are used.
    """
    rows = rows.reset_index(drop=True)
    codes = ColumnCodes(rows, known_codes)
    if profile_data.get("resolution", {}).get("enabled", True) and name_field_of(profile_data):
        cluster = cluster_rows(rows, codes, profile_data)
    else:
        cluster = np.arange(len(rows))
    records, flags = build_records(rows, codes, cluster, profile_data, output_columns)
    codes.release()  # ~4 bytes per row and column: not needed for the rest
    reasons = required_missing(records, profile_data.get("required", []))
    rejected = rejected_rows(rows, cluster, reasons, records["record_id"].to_numpy(dtype=object))
    kept_positions = reading_order(records, output_columns)
    kept_positions = kept_positions[reasons[kept_positions] == ""]
    kept = take_rows(records, kept_positions)
    del records
    kept_flags = {name: marks[kept_positions] for name, marks in flags.items()}
    status = rejected["status"].to_numpy(dtype=object)
    rejected_count = int((status == "rejected").sum())
    counts = {
        "rows_in": int(len(rows)),
        "records_out": int(len(kept)),
        "duplicates_merged": int(len(rows) - rejected_count - len(kept)),
        "flagged": int((status == "flagged").sum()),
        "rejected": rejected_count,
    }
    return Resolution(kept, rejected, counts, quality_summary(kept, kept_flags))
