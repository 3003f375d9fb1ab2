"""Matching functions of the entity resolution on small, tricky inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sheetfill.refine.arrays import ColumnCodes, distinct, first_occurrences, isin
from sheetfill.refine.choose import consensus_keys, latest_first_ranks
from sheetfill.refine.cluster import (
    Identities,
    connected_components,
    equal_value_edges,
    merge_same_names,
    sharing_pairs,
)
from sheetfill.refine.normalise import name_match_key
from sheetfill.refine.resolve import reading_order
from sheetfill.refine.similar import similar_name_pairs, text_order


def test_connected_components_follow_chains_and_label_in_row_order():
    labels = connected_components(6, np.array([4, 1, 3]), np.array([5, 3, 0]))
    assert labels.tolist() == [0, 0, 1, 0, 2, 2]  # 0-3-1 chained, 2 alone, 4-5 together


def test_equal_value_edges_ignore_missing_values():
    codes = ColumnCodes(pd.DataFrame({"id": np.array(["a", None, "b", "a", None, "b"], dtype=object)}))
    rows, first = equal_value_edges(codes["id"])
    assert sorted(zip(rows.tolist(), first.tolist())) == [(0, 0), (2, 2), (3, 0), (5, 2)]


def test_column_codes_can_ignore_values_and_empty_name_keys():
    rows = pd.DataFrame(
        {
            "website": np.array(["https://a", "https://gmail.com", None, "https://a"], dtype=object),
            "_name_key": np.array(["acme", "", "acme", "zen"], dtype=object),
        }
    )
    codes = ColumnCodes(rows)
    ignored = codes.ignoring("website", frozenset({"https://gmail.com"}))
    assert ignored[1] == -1 and ignored[2] == -1 and ignored[0] == ignored[3] >= 0
    name_codes, keys = codes.named_keys()
    assert name_codes[1] == -1 and keys[name_codes[0]] == keys[name_codes[2]] == "acme"


def test_text_order_sorts_like_a_stable_argsort_of_the_strings():
    texts = ["zulu air", "Zulu air", "aéro club", "aero club", "zulu air", "", "aero club " + "x" * 300]
    assert text_order(texts).tolist() == np.argsort(np.array(texts, dtype=str), kind="stable").tolist()


def test_int_set_helpers_agree_with_numpy():
    values = np.random.default_rng(0).integers(-1, 2**40, 5_000) % 997  # repeats, and -1 codes
    pool = np.array([3, 5, 996, -1, 10**12])
    assert distinct(values).tolist() == np.unique(values).tolist()
    assert distinct(values[:0]).tolist() == []
    assert isin(values, pool).tolist() == np.isin(values, pool).tolist()
    assert first_occurrences(values).tolist() == np.sort(np.unique(values, return_index=True)[1]).tolist()


def test_column_codes_release_all_but_the_columns_kept():
    known = {}
    codes = ColumnCodes(
        pd.DataFrame({"a": np.array(["x", "y"], dtype=object), "b": np.array(["z", None], dtype=object)}), known
    )
    codes["a"], codes["b"]
    codes.release(keep={"b"})
    assert list(known) == ["b"]  # the caller's dict shrinks with it
    assert codes["a"].tolist() == [0, 1]  # a released column is factorised again when asked for


def test_sharing_pairs_agrees_with_share_for_every_pair():
    own = [frozenset(), frozenset({1}), frozenset({2, 3}), frozenset({3}), frozenset(), frozenset({9})]
    people = [frozenset({1}), frozenset(), frozenset(), frozenset({7}), frozenset({7}), frozenset()]
    identities = Identities(own, people)
    a, b = np.array([p for p in range(6) for _ in range(6)]), np.array(list(range(6)) * 6)
    expected = [identities.share(x, y) for x, y in zip(a.tolist(), b.tolist())]
    assert sharing_pairs(identities, a, b).tolist() == expected
    assert sum(expected) > 6  # some pairs share by organisation domains, some by people's only


def test_consensus_key_is_the_most_shared_then_the_smallest():
    keys = np.array(["beta", "alpha", "gamma"], dtype=object)
    key_codes = np.array([0, 0, 1, 2, 1, 0, -1])  # cluster 0: beta x2, alpha; 1: gamma, alpha (tie)
    cluster = np.array([0, 0, 0, 1, 1, 2, 3])  # 2: beta; 3: no key
    assert consensus_keys(key_codes, keys, cluster, 4).tolist() == ["beta", "alpha", "beta", ""]


def keys(*names):
    return np.array([name_match_key(n) for n in names], dtype=object)


def test_similar_names_pair_typos_and_moved_spaces_but_not_word_order_or_different_numbers():
    names = keys(
        "Highveld Horizon Aviation",
        "Highveld Horizon Aviatoin (Pty) Ltd",
        "Horizon Highveld Aviation",
        "Hangar 7 Flight School",
        "Hangar 8 Flight School",
        "Karoo Aero Club",
        "HighveldH orizon Aviation",
    )
    left, right, scores = similar_name_pairs(names, threshold=92, window=4)
    pairs = {tuple(sorted(p)) for p in zip(left.tolist(), right.tolist())}
    assert (0, 1) in pairs and (0, 6) in pairs
    assert (0, 2) not in pairs  # the same words in another order: another organisation's name
    assert (3, 4) not in pairs  # digits differ
    assert not any(5 in p for p in pairs)
    assert (scores >= 92).all()


def domain_sets(*codes):
    return [frozenset(c) for c in codes]


def test_identities_refuse_a_merge_that_contradicts_an_organisation_domain():
    # organisation domains per group (website hosts, e-mail domains); none for group 2
    identities = Identities(domain_sets({0}, {1}, (), {0, 7}), domain_sets((), (), (), ()))
    assert not identities.merge(0, 1)  # two different websites
    assert identities.merge(0, 2)  # nothing to contradict
    assert identities.merge(3, 2)  # {0} and {0, 7} share a domain
    assert identities.labels().tolist() == [0, 1, 0, 0]


def test_people_domains_conflict_with_an_organisation_but_never_with_each_other():
    # group 0: organisation acme (domain 0); 1 and 2: contact rows writing from domains 5 and 6;
    # 3: a contact writing from acme's domain
    identities = Identities(domain_sets({0}, (), (), ()), domain_sets((), {5}, {6}, {0}))
    assert identities.merge(1, 2)  # two people of one organisation, different domains
    assert not identities.merge(0, 1)  # people of neither domain {5, 6} are not acme's
    assert identities.merge(0, 3)
    assert identities.share(0, 3) and not identities.share(0, 1)


def test_same_name_merges_only_when_unambiguous():
    # four groups called "blue sky aviation": two organisations with their own websites, one group
    # with no identity values (could be either: left alone), one matching the first website
    identities = Identities(domain_sets({0}, {1}, (), {0}), domain_sets((), (), (), ()))
    group = np.array([0, 1, 2, 3])
    names = np.array([0, 0, 0, 0])
    merge_same_names(identities, group, names, max_groups=10)
    labels = identities.labels().tolist()
    assert labels[0] == labels[3] and labels[0] != labels[1] and labels[2] == 2


def test_a_name_shared_by_too_many_groups_is_not_evidence():
    identities = Identities(domain_sets((), (), (), ()), domain_sets((), (), (), ()))
    merge_same_names(identities, np.arange(4), np.zeros(4, dtype=np.int64), max_groups=3)
    assert identities.labels().tolist() == [0, 1, 2, 3]


def test_reading_order_is_by_folded_name_then_id_with_unnamed_last():
    records = pd.DataFrame(
        {
            "organization_name": np.array(["beta", None, "Alpha", "alpha", "Ärzte", "BETA"], dtype=object),
            "record_id": np.array(["sf-2", "sf-0", "sf-9", "sf-1", "sf-5", "sf-3"], dtype=object),
        }
    )
    order = reading_order(records, ["organization_name"])
    assert records["record_id"].to_numpy()[order].tolist() == ["sf-1", "sf-9", "sf-2", "sf-3", "sf-5", "sf-0"]
    keys = [
        (not isinstance(n, str), n.casefold() if isinstance(n, str) else "", i)
        for n, i in records.to_numpy()[order].tolist()
    ]
    assert keys == sorted(keys)


def test_latest_first_ranks_equal_pandas_dense_descending_rank_with_missing_last():
    dates = np.array(["2025-03-01", None, "2024-12-31", "2025-03-01", "2025-10-09", None, "2023-01-01"], dtype=object)
    expected = pd.Series(dates).rank(method="dense", ascending=False, na_option="bottom").to_numpy()
    assert latest_first_ranks(dates).tolist() == expected.tolist() == [2, 5, 3, 2, 1, 5, 4]
