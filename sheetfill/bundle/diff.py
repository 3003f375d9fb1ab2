"""What changed between two builds of refined records, matched by record_id.

Only record ids and column names leave this module, never values, so a diff shown in the data
docs cannot leak personal data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EXAMPLES = 5
IGNORED = {"provenance", "source_rows", "source_count"}  # where a value came from is not a change of it


def _as_text(values: np.ndarray) -> np.ndarray:
    """Values as text for comparison, every kind of missing value (None, NaN, NaT) as ""."""
    text = values.astype(str)
    text[pd.isna(values)] = ""
    return text


def _comparable(frame: pd.DataFrame, ids: list, columns: list[str]) -> dict[str, np.ndarray]:
    """The shared records' values per column as text arrays, rows in the order of ids."""
    unique = frame.drop_duplicates("record_id")
    rows = pd.Index(unique["record_id"]).get_indexer(ids)
    return {c: _as_text(unique[c].to_numpy(dtype=object)[rows]) for c in columns}


def comparable_columns(columns) -> list[str]:
    """The columns a diff looks at: what to read from a parquet file to diff it."""
    return [c for c in columns if c not in IGNORED]


def read_for_diff(path) -> pd.DataFrame:
    """A refined.parquet without the (large) columns a diff ignores."""
    import pyarrow.parquet as pq

    return pd.read_parquet(path, columns=comparable_columns(pq.read_schema(path).names))


def diff_records(old: pd.DataFrame, new: pd.DataFrame) -> dict:
    """Counts of records added / removed / changed (with the columns that changed), and examples."""
    old_ids, new_ids = set(old["record_id"]), set(new["record_id"])
    added, removed, shared = sorted(new_ids - old_ids), sorted(old_ids - new_ids), sorted(old_ids & new_ids)
    columns = [c for c in comparable_columns(new.columns) if c in old.columns and c != "record_id"]
    before, after = _comparable(old, shared, columns), _comparable(new, shared, columns)
    differs = pd.DataFrame({c: before[c] != after[c] for c in columns}, index=pd.Index(shared, dtype=object))
    changed = differs.index[differs.any(axis=1)]
    per_column = differs.sum()
    return {
        "added": len(added),
        "removed": len(removed),
        "changed": len(changed),
        "unchanged": len(shared) - len(changed),
        "changed_columns": {c: int(n) for c, n in per_column[per_column > 0].sort_values(ascending=False).items()},
        "columns_added": [c for c in new.columns if c not in old.columns],
        "columns_removed": [c for c in old.columns if c not in new.columns],
        "examples": {
            "added": added[:EXAMPLES],
            "removed": removed[:EXAMPLES],
            "changed": [
                {"record_id": rid, "columns": [c for c in columns if differs.at[rid, c]]} for rid in changed[:EXAMPLES]
            ],
        },
    }
