"""What changed between two builds of refined records, matched by record_id."""

from __future__ import annotations

import pandas as pd

EXAMPLES = 5
IGNORED = {"provenance", "source_rows"}  # where a value came from is not a change of the value


def diff_records(old: pd.DataFrame, new: pd.DataFrame) -> dict:
    """Counts of records added / removed / changed, with a few examples of each."""
    old_ids, new_ids = set(old["record_id"]), set(new["record_id"])
    shared = sorted(old_ids & new_ids)
    columns = [c for c in new.columns if c in old.columns and c not in IGNORED and c != "record_id"]
    before = old.set_index("record_id").loc[shared, columns].astype(str)
    after = new.set_index("record_id").loc[shared, columns].astype(str)
    differs = before.ne(after)
    changed_ids = differs.index[differs.any(axis=1)]
    return {
        "added": len(new_ids - old_ids),
        "removed": len(old_ids - new_ids),
        "changed": int(len(changed_ids)),
        "unchanged": len(shared) - int(len(changed_ids)),
        "examples": {
            "added": sorted(new_ids - old_ids)[:EXAMPLES],
            "removed": sorted(old_ids - new_ids)[:EXAMPLES],
            "changed": [{"record_id": rid, "columns": [c for c in columns if differs.at[rid, c]]}
                        for rid in changed_ids[:EXAMPLES]],
        },
    }
