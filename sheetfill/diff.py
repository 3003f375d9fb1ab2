"""What changed between two builds of refined records, matched by record_id.

Only record ids and column names leave this module, never values, so a diff shown in the data
docs cannot leak personal data.
"""

from __future__ import annotations

import pandas as pd

EXAMPLES = 5
IGNORED = {"provenance", "source_rows", "source_count"}  # where a value came from is not a change of it


def _comparable(frame: pd.DataFrame, ids: list, columns: list[str]) -> pd.DataFrame:
    """The shared records' values as text, every kind of missing value as ""."""
    picked = frame.drop_duplicates("record_id").set_index("record_id").loc[ids, columns]
    return picked.astype(object).where(picked.notna(), "").astype(str)


def diff_records(old: pd.DataFrame, new: pd.DataFrame) -> dict:
    """Counts of records added / removed / changed (with the columns that changed), and examples."""
    old_ids, new_ids = set(old["record_id"]), set(new["record_id"])
    added, removed, shared = sorted(new_ids - old_ids), sorted(old_ids - new_ids), sorted(old_ids & new_ids)
    columns = [c for c in new.columns if c in old.columns and c != "record_id" and c not in IGNORED]
    differs = _comparable(old, shared, columns).ne(_comparable(new, shared, columns))
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
            "changed": [{"record_id": rid, "columns": [c for c in columns if differs.at[rid, c]]}
                        for rid in changed[:EXAMPLES]],
        },
    }
