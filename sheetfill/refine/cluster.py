"""Clustering: group source rows into organisations.

Rows are joined when they share an ID within one file (profile ``link_keys``) or an exact value such
as a website (``link_fields``), then when their organisation names match exactly after
normalisation, then when their names are similar (rapidfuzz) among sorted neighbours
(sorted-neighbourhood blocking, so the cost is rows x window, not rows squared). Name evidence
never overrides contradicting identity values.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain

import numpy as np
import pandas as pd

from sheetfill.refine.arrays import ColumnCodes, distinct, isin
from sheetfill.refine.evidence import contact_rows, domains, initials_domains, keep_specific
from sheetfill.refine.similar import Pairs, similar_names_ahead


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


NO_DOMAINS = frozenset()


class Identities:
    """Union-find over strong clusters that refuses merges contradicting identity evidence.

    Each group keeps its organisation domains (website hosts and e-mail domains of organisation
    rows) and its people's e-mail domains (contact rows), specific ones only (evidence.py). Two
    groups conflict when both have organisation domains and share none, or when one has only
    people's domains and none of them is among the other's. People's domains never conflict with
    each other: two people of one organisation may write from different domains. Name matches
    are only evidence, so a name match between conflicting groups is ignored.
    """

    def __init__(self, domains: list[frozenset], person_domains: list[frozenset]):
        self.parent = list(range(len(domains)))
        self.domains = domains
        self.person_domains = person_domains

    def find(self, group: int) -> int:
        root = group
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[group] != root:  # path compression
            self.parent[group], group = root, self.parent[group]
        return root

    def compatible(self, a: int, b: int) -> bool:
        own_a, own_b = self.domains[a], self.domains[b]
        if own_a and own_b:
            return not own_a.isdisjoint(own_b)
        people_a, people_b = self.person_domains[a], self.person_domains[b]
        if own_a and people_b:
            return not people_b.isdisjoint(own_a | people_a)
        if own_b and people_a:
            return not people_a.isdisjoint(own_b | people_b)
        return True

    def share(self, a: int, b: int) -> bool:
        """True when the groups of a and b have a domain in common (evidence for a merge)."""
        a, b = self.find(a), self.find(b)
        if not (self.domains[a] or self.person_domains[a]) or not (self.domains[b] or self.person_domains[b]):
            return False  # the common case on big bundles: no sets built for it
        return not (self.domains[a] | self.person_domains[a]).isdisjoint(self.domains[b] | self.person_domains[b])

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
        if self.domains[b]:
            self.domains[a] = self.domains[a] | self.domains[b]
        if self.person_domains[b]:
            self.person_domains[a] = self.person_domains[a] | self.person_domains[b]
        return True

    def evidence(self, group: int) -> tuple[int, int]:
        """How much identity evidence a group holds: its organisation domains, then its people's."""
        root = self.find(group)
        return len(self.domains[root]), len(self.person_domains[root])

    def labels(self) -> np.ndarray:
        """Each group's root, found for all groups at once by pointer jumping (a million groups: one
        Python find() each took ~0.2 s); the roots become the parents, as find's path compression would."""
        roots = np.array(self.parent, dtype=np.int64)
        while True:
            jumped = roots[roots]
            if np.array_equal(jumped, roots):
                break
            roots = jumped
        self.parent = roots.tolist()
        return roots


def group_sets(group: np.ndarray, values: np.ndarray, n_groups: int) -> list[frozenset]:
    """Per group, the frozenset of its rows' value codes (>= 0)."""
    has = np.flatnonzero(values >= 0)
    sets = [NO_DOMAINS] * n_groups
    if not len(has):
        return sets
    width = int(values.max()) + 1
    groups, found = np.divmod(distinct(group[has].astype(np.int64) * width + values[has]), width)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]]).tolist()
    found = found.tolist()
    for g, start, end in zip(groups[starts].tolist(), starts, starts[1:] + [len(found)]):
        sets[g] = frozenset(found[start:end])
    return sets


def scoped_keys(codes: ColumnCodes, key: str) -> np.ndarray:
    """Link key codes made unique per file (an ID means something only within its workbook)."""
    files = codes["_file"].astype(np.int64)
    ids = codes[key].astype(np.int64)
    return np.where(ids >= 0, ids * (int(files.max()) + 1) + files, -1)


def strong_links(codes: ColumnCodes, profile_data: dict, organisation: np.ndarray, name_codes, keys):
    """Groups of rows joined by exact evidence; per group its organisation and people's domains.

    Evidence: the same link key (an ID) within one file; the same specific website host or e-mail
    domain of organisation rows; the same specific e-mail address or phone of any rows.
    Also returns which rows have a link key (contact rows without one attach by name).
    """
    settings = profile_data.get("resolution", {})
    types = {name: spec["type"] for name, spec in profile_data["fields"].items()}
    edge_sets, keyed = [], np.zeros(len(organisation), dtype=bool)
    for key in settings.get("link_keys", []):
        scoped = scoped_keys(codes, key)
        keyed |= scoped >= 0
        edge_sets.append(equal_value_edges(scoped))
    # contact rows say which names a value belongs to (a corporate site), but are never identity
    domain_codes, domain_names = pd.factorize(domains(codes, profile_data), use_na_sentinel=True)
    every_domain = keep_specific(domain_codes, name_codes, keys)
    own_domain = np.where(organisation, every_domain, -1)
    edge_sets.append(equal_value_edges(own_domain))
    for field in settings.get("link_fields", []):
        if types.get(field) in ("email", "phone"):
            edge_sets.append(equal_value_edges(keep_specific(codes[field], name_codes, keys)))
    u = np.concatenate([e[0] for e in edge_sets])
    v = np.concatenate([e[1] for e in edge_sets])
    group = connected_components(len(organisation), u, v)
    n_groups = int(group.max()) + 1 if len(group) else 0
    weak = initials_domains(domain_codes, np.asarray(domain_names, dtype=object), name_codes, keys)
    people = group_sets(group, np.where(organisation | weak, -1, every_domain), n_groups)
    return group, group_sets(group, np.where(weak, -1, own_domain), n_groups), people, keyed


def attach_contacts(identities: Identities, group, name_codes, files, contact: np.ndarray, keyed) -> None:
    """A contact/address row with a blank link key joins the organisation of the same name in its
    workbook, when exactly one there fits it (its e-mail domain decides between several) and no
    organisation elsewhere in the bundle with that name contradicts the one chosen (then the name
    alone cannot say which of them the row belongs to)."""
    roots = identities.labels()[group]
    organisation = ~contact & (name_codes >= 0)
    candidates = pd.DataFrame(
        {"file": files[organisation], "name": name_codes[organisation], "root": roots[organisation]}
    )
    candidates = candidates.drop_duplicates()
    loose = np.flatnonzero(contact & ~keyed & (name_codes >= 0))
    if not len(loose) or not len(candidates):
        return
    roots_of_name: dict[int, set] = {}
    for name, root in zip(candidates["name"].tolist(), candidates["root"].tolist()):
        roots_of_name.setdefault(name, set()).add(root)
    wanted = pd.DataFrame({"row": loose, "file": files[loose], "name": name_codes[loose]})
    matches = wanted.merge(candidates, on=["file", "name"], how="inner").sort_values(["row", "root"], kind="stable")
    rows, names, options = (matches[c].tolist() for c in ("row", "name", "root"))
    starts = [i for i in range(len(rows)) if i == 0 or rows[i] != rows[i - 1]]
    for start, end in zip(starts, starts[1:] + [len(rows)]):
        row, name = rows[start], names[start]
        own = identities.find(int(group[row]))
        choices = [c for c in options[start:end] if identities.compatible(identities.find(c), own)]
        if len(choices) > 1:
            choices = [c for c in choices if identities.share(c, own)]
        if len(choices) != 1:
            continue
        chosen = identities.find(choices[0])
        rivals = {identities.find(r) for r in roots_of_name[name]} - {chosen}
        if all(identities.compatible(chosen, r) for r in rivals) or identities.share(chosen, own):
            identities.merge(chosen, own)


def merge_same_names(identities: Identities, group: np.ndarray, name_codes: np.ndarray, max_groups: int) -> None:
    """Merge groups whose organisation names have the same match key, when unambiguous.

    Within one name, groups with more identity domains go first (organisation domains, then people's
    e-mail domains, so that every group that can contradict another has formed its bucket before a
    group without evidence picks one); each group joins the single compatible group formed so far,
    stays apart when it contradicts all of them, and is left alone when several would fit (two
    different organisations can share a name). Names carried by more than max_groups groups say
    nothing about identity and are skipped.
    """
    pairs = pd.DataFrame({"name": name_codes, "group": group})
    pairs = pairs[pairs["name"] >= 0].drop_duplicates()
    sizes = pairs["name"].map(pairs["name"].value_counts())
    pairs = pairs[(sizes > 1) & (sizes <= max_groups)]
    for _, members in pairs.groupby("name", sort=True)["group"]:
        ordered = sorted(members.tolist(), key=lambda g: (*(-n for n in identities.evidence(g)), g))
        buckets: list[int] = []
        for member in ordered:
            fitting = [b for b in buckets if identities.compatible(identities.find(b), identities.find(member))]
            if len(fitting) == 1:
                identities.merge(fitting[0], member)
            elif not fitting:
                buckets.append(member)


def name_pair_settings(settings: dict) -> tuple[float, float, int]:
    """(threshold, the lower score that merges with a shared domain, window) of resolution settings."""
    threshold = float(settings.get("threshold", 90))
    return threshold, threshold - float(settings.get("support", 12)), int(settings.get("window", 6))


def merge_similar_names(
    identities: Identities,
    group: np.ndarray,
    name_codes: np.ndarray,
    unique_keys: np.ndarray,
    settings: dict,
    similar_pairs: Callable[[], Pairs],
) -> None:
    """Merge groups whose names are similar (typos, a moved space), best scores first, when the name
    on each side belongs to one group only and nothing contradicts the merge. Names a little less
    alike (`support` points below the threshold) merge only when the groups share a domain.

    similar_pairs: similar_name_pairs of the non-empty unique_keys (similar_names_ahead)."""
    usable = np.flatnonzero(unique_keys != "")
    if len(usable) < 2:
        return
    threshold = name_pair_settings(settings)[0]
    present_codes = name_codes >= 0
    roots = identities.labels()[group[present_codes]]
    per_name = pd.DataFrame({"name": name_codes[present_codes], "root": roots}).drop_duplicates()
    counts = per_name["name"].value_counts()
    single = per_name[per_name["name"].map(counts) == 1].set_index("name")["root"]
    root_of_name = np.full(len(unique_keys), -1, dtype=np.int64)
    root_of_name[single.index.to_numpy()] = single.to_numpy()
    left, right, score = similar_pairs()  # taken last: a process computing them has had the most time
    a, b = root_of_name[usable[left]], root_of_name[usable[right]]
    candidate = np.flatnonzero((a >= 0) & (b >= 0) & (a != b))
    a, b, score = a[candidate], b[candidate], score[candidate]
    strong = (score >= threshold).tolist()
    sharing = sharing_pairs(identities, a, b).tolist()
    order = np.lexsort((b, a, -score)).tolist()
    a, b = a.tolist(), b.tolist()
    changed = set()  # roots merged so far in this loop: only their sets can differ from `sharing`'s
    for i in order:
        x, y = a[i], b[i]
        if strong[i] or (sharing[i] if x not in changed and y not in changed else identities.share(x, y)):
            x, y = identities.find(x), identities.find(y)
            if x != y and identities.merge(x, y):
                changed.update((x, y))


def sharing_pairs(identities: Identities, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Identities.share for many pairs of roots at once, as the groups are now (numpy, not a Python
    call per pair: a million name pairs on a big bundle)."""
    groups = distinct(np.concatenate([a, b]))
    # each group's domains, flat and in group order (no set or tuple built per group: a million pairs
    # of those would stay resident as CPython arenas)
    own = [identities.domains[g] for g in groups.tolist()]
    people = [identities.person_domains[g] for g in groups.tolist()]
    sizes = np.array([len(x) + len(y) for x, y in zip(own, people)], dtype=np.int64)
    if not sizes.sum():
        return np.zeros(len(a), dtype=bool)
    group_of = np.repeat(groups, sizes)
    domain = np.fromiter(chain.from_iterable(chain(x, y) for x, y in zip(own, people)), np.int64, int(sizes.sum()))
    width = int(domain.max()) + 1
    starts = np.searchsorted(group_of, a)  # members are in group order: a's domains are one slice
    counts = np.searchsorted(group_of, a, side="right") - starts
    pair = np.repeat(np.arange(len(a)), counts)
    position = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    hit = isin(b[pair] * width + domain[position], group_of * width + domain)
    return np.bincount(pair, weights=hit, minlength=len(a)) > 0


def cluster_rows(rows: pd.DataFrame, codes: ColumnCodes, profile_data: dict) -> np.ndarray:
    """Cluster id per row: exact evidence first, contacts to their organisation, then name evidence
    that contradicts nothing."""
    settings = profile_data.get("resolution", {})
    contact = contact_rows(rows, profile_data)
    name_codes, unique_keys = codes.named_keys()
    _, supported, window = name_pair_settings(settings)
    # the similar names are found meanwhile (in another process on a big bundle)
    with similar_names_ahead(unique_keys[unique_keys != ""], supported, window) as similar_pairs:
        group, own, people, keyed = strong_links(codes, profile_data, ~contact, name_codes, unique_keys)
        identities = Identities(own, people)
        attach_contacts(identities, group, name_codes, codes["_file"], contact, keyed)
        merge_same_names(identities, group, name_codes, int(settings.get("max_name_groups", 10)))
        merge_similar_names(identities, group, name_codes, unique_keys, settings, similar_pairs)
    return pd.factorize(identities.labels()[group])[0]
