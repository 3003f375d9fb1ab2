"""Entity-resolution quality against a ground truth: pairwise precision, recall and F1.

Two source rows form a predicted pair when they were merged into one record, and a true pair when the
ground truth says they are the same organisation. Rows missing from the output (rejected) count as
unmerged. Counting is by cluster sizes, so it stays linear however big the clusters get.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import PurePosixPath


def _pairs(sizes) -> int:
    return sum(n * (n - 1) // 2 for n in sizes)


def pairwise_scores(source_rows: list[str], truth_rows: list[list]) -> dict:
    """source_rows: the records' `source_rows` JSON strings; truth_rows: [file, sheet, row, entity_id].

    Files are compared by name only, so nested bundle folders do not matter.
    """
    entity_of = {(PurePosixPath(f).name, s, int(r)): e for f, s, r, e in truth_rows}
    record_of = {}
    for record, text in enumerate(source_rows):
        for f, s, r in json.loads(text):
            record_of[(PurePosixPath(f).name, s, int(r))] = record
    both = Counter()
    for row, entity in entity_of.items():
        record = record_of.get(row)
        if record is not None:
            both[(record, entity)] += 1
    true_positive = _pairs(both.values())
    predicted = _pairs(Counter(record_of[row] for row in entity_of if row in record_of).values())
    actual = _pairs(Counter(entity_of.values()).values())
    precision = true_positive / predicted if predicted else 1.0
    recall = true_positive / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "true_pairs": actual,
        "predicted_pairs": predicted,
        "rows": len(entity_of),
        "entities": len(set(entity_of.values())),
        "records": len(set(record_of.values())),
    }
