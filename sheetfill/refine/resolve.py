"""Entity resolution: group source rows into one record per organisation and pick each value.

Clustering is in cluster.py, value choice in choose.py, the records themselves (ids, provenance,
quality) in records.py; this module puts them together and counts what was kept and rejected.
Each output value is chosen by source priority, then row completeness, then recency, and carries
its provenance and the alternatives it beat.

Everything here works on whole numpy columns; Python loops run once per record at most.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sheetfill.refine.arrays import ColumnCodes, column, join_nonempty, object_frame, present, text_ranks
from sheetfill.refine.cluster import cluster_rows
from sheetfill.refine.normalise import name_field_of, output_fields
from sheetfill.refine.records import build_records


@dataclass
class Resolution:
    records: pd.DataFrame
    rejected: pd.DataFrame
    counts: dict
    quality: dict


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
    # value choice needs only the fields' codes and the name keys'; clustering the files' too. The
    # others go before clustering, whose child process adds to this job's memory (similar.py)
    chosen_from = {*output_fields(profile_data["fields"]), "_name_key"}
    codes.release(keep=chosen_from | {"_file"})
    if profile_data.get("resolution", {}).get("enabled", True) and name_field_of(profile_data):
        cluster = cluster_rows(rows, codes, profile_data)
    else:
        cluster = np.arange(len(rows))
    codes.release(keep=chosen_from)  # before value choice's memory peak
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
