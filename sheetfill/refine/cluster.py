"""Clustering: group source rows into organisations.

Rows are joined when they share an ID within one file (profile ``link_keys``) or an exact value such
as a website (``link_fields``), then when their organisation names match exactly after
normalisation, then when their names are similar (rapidfuzz) among sorted neighbours
(sorted-neighbourhood blocking, so the cost is rows x window, not rows squared). Name evidence
never overrides contradicting identity values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sheetfill.refine.arrays import ColumnCodes

DIGITS_TABLE = str.maketrans("", "", "abcdefghijklmnopqrstuvwxyz ")


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
