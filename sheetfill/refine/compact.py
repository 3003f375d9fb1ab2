"""Re-pack the text of the normalised rows so that the memory freed around it goes back to the OS.

CPython allocates small objects in 1 MiB arenas and returns an arena only when nothing on it lives.
Reading and normalising a million rows create tens of millions of temporary objects; the few values
that survive into the rows end up scattered over hundreds of arenas, which then stay resident
(~300 MB on the 1M-row bench bundle). compact_text packs each column's distinct strings into one
buffer (marshal), drops the old objects (freeing those arenas) and reads the strings back, side by side.

The value codes it needs on the way are the ones entity resolution needs too, so it hands them on.
"""

from __future__ import annotations

import marshal

import numpy as np
import pandas as pd

Codes = dict[str, tuple[np.ndarray, np.ndarray]]  # column → (int32 code per row, -1: missing; distinct values)


def pack(values: list) -> bytes | list:
    """values serialised (marshal: C speed, no Python object per value), or values themselves when
    one is of a type marshal cannot carry."""
    try:
        return marshal.dumps(values)
    except ValueError:
        return values


def unpack(packed: bytes | list) -> np.ndarray:
    """Inverse of pack: fresh objects, allocated one after another."""
    values = marshal.loads(packed) if isinstance(packed, bytes) else packed
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def compact_text(frame: pd.DataFrame) -> Codes:
    """Replace, in place, every text column of frame by the same values in compact memory.

    Equal strings of a column become one object, missing values become None. Returns each text
    column's value codes and distinct values (as ColumnCodes in resolve uses them).
    """
    packed = {}
    for position, name in enumerate(frame.columns):
        values = frame[name].to_numpy()
        if values.dtype == object:
            codes, uniques = pd.factorize(values, use_na_sentinel=True)
            packed[name] = (position, codes.astype(np.int32), pack(uniques.tolist()))
    for name in packed:
        del frame[name]  # the old strings (and their arenas) go here
    result = {}
    for name in list(packed):
        position, codes, packed_values = packed.pop(name)
        uniques = unpack(packed_values)
        del packed_values  # each buffer is freed once read: they are not all held to the end
        frame.insert(position, name, pd.Series(np.append(uniques, None)[codes], dtype=object, copy=False))
        result[name] = codes, uniques
    return result
