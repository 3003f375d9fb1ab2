"""Whole-column helpers shared by the stages: text joins, frames that keep numpy dtypes, value codes
and per-group reductions. Everything here works on numpy arrays; Python loops run once per group at most.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring

import numpy as np
import pandas as pd

from sheetfill.refine.similar import text_order


def join_nonempty(columns: list[np.ndarray], separator: str) -> np.ndarray:
    """Element-wise join of text columns, skipping empty strings (no separator dangling)."""
    joined = np.asarray(columns[0], dtype=object)
    for extra in columns[1:]:
        extra = np.asarray(extra, dtype=object)
        has_extra = extra != ""
        both = has_extra & (joined != "")
        result = np.where(joined == "", extra, joined)
        if both.any():  # concatenate only where both sides have text: usually a small share
            result[both] = joined[both] + separator + extra[both]
        joined = result
    return joined


def repeated(value, count: int) -> np.ndarray:
    """Object array holding the same object count times (np.full would copy a str once per element)."""
    array = np.empty(count, dtype=object)
    array.fill(value)
    return array


def object_frame(columns: dict) -> pd.DataFrame:
    """DataFrame that keeps each numpy column's dtype: text stays `object`.

    pandas 3 would otherwise convert every text column to its Arrow string dtype and back again at
    each numpy step, which costs more than the work itself on a million rows. The columns are not
    copied: callers hand over arrays they no longer change.
    """
    # copy=False also keeps one block per column: consolidating would copy every column into one
    # 2-D block (on a million rows, ~300 MB more at the normalise peak)
    return pd.DataFrame(
        {
            name: pd.Series(np.asarray(values), dtype=np.asarray(values).dtype, copy=False)
            for name, values in columns.items()
        },
        copy=False,
    )


def present(values: np.ndarray) -> np.ndarray:
    """True where a value is there (not None / NaN)."""
    return ~pd.isna(values)


def column(rows: pd.DataFrame, name: str) -> np.ndarray:
    return rows[name].to_numpy(dtype=object)


class ColumnCodes:
    """Per column of the rows, a code per row that is equal for equal values (-1: missing).

    Computed once per column: factorising a million distinct strings costs ~0.2 s, and clustering
    and value choice both need the link fields' codes. `known` takes codes already computed
    (compact.compact_text returns them).
    """

    def __init__(self, rows: pd.DataFrame, known: dict[str, tuple[np.ndarray, np.ndarray]] | None = None):
        self.rows = rows
        self.factorised = known if known is not None else {}

    def release(self, keep=()) -> None:
        """Free the codes of every column but keep (known ones included: the caller's dict shrinks too)."""
        for name in [n for n in self.factorised if n not in keep]:
            del self.factorised[name]

    def _factorise(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in self.factorised:
            codes, uniques = pd.factorize(column(self.rows, name), use_na_sentinel=True)
            self.factorised[name] = codes.astype(np.int32), uniques  # half the memory of int64
        return self.factorised[name]

    def pair(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The column's codes and the distinct values they index."""
        return self._factorise(name)

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


def row_codes(matrix: np.ndarray) -> np.ndarray:
    """Code per row of an int matrix (values >= -1), equal for equal rows; much faster than
    np.unique(axis=0). Codes are re-compacted after each column, so they never overflow."""
    codes = np.zeros(len(matrix), dtype=np.int64)
    for values in matrix.T:
        codes = pd.factorize(codes * (values.max() + 2) + values + 1)[0]
    return codes


# numpy 2.4's np.unique without return_counts hashes, then sorts: ~30x slower than a sort on
# millions of ints (2.3 s vs 0.08 s for 3M); np.isin sorts through it. These two avoid that path.
def distinct(values: np.ndarray) -> np.ndarray:
    """np.unique(values) of an int array: its distinct values, sorted."""
    ordered = np.sort(values)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else ordered


def isin(values: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """np.isin(values, pool), by pandas' hash table (any range of ints, ~6x faster on millions)."""
    return pd.Series(values).isin(pool).to_numpy(dtype=bool)


def first_occurrences(values: np.ndarray) -> np.ndarray:
    """Sorted positions of each value's first occurrence: np.sort(np.unique(values, return_index=True)[1])."""
    return np.flatnonzero(~pd.Series(values).duplicated().to_numpy())


def text_ranks(texts) -> np.ndarray:
    """Position of each text in sorted order (as Python compares str), for sorting by codes."""
    ranks = np.empty(len(texts), dtype=np.int64)
    ranks[text_order(texts)] = np.arange(len(texts))
    return ranks


def json_literals(values: list) -> list[str]:
    """JSON literal of each value. Strings go straight to json's C encoder: json.dumps(ensure_ascii=
    False) gives the same text but builds an encoder per call (~5x slower on many names)."""
    return [encode_basestring(v) if type(v) is str else json.dumps(v, ensure_ascii=False) for v in values]


def json_text(values: np.ndarray) -> np.ndarray:
    """JSON literal of each value, computed once per unique value."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    return np.array(json_literals(uniques.tolist()) + ["null"], dtype=object)[codes]


def coded_json_text(uniques: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """json_text(uniques[codes]) for codes >= 0 (a column's codes and distinct values): each value
    is encoded once, and the values need no hashing to find it."""
    used = distinct(codes)
    encoded = np.empty(len(uniques), dtype=object)
    encoded[used] = json_literals(np.asarray(uniques, dtype=object)[used].tolist())
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


def take(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """values[positions] with None where the position is -1."""
    return np.where(positions >= 0, values[np.maximum(positions, 0)], None)
