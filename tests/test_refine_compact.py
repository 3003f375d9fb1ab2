"""compact_text: the rows keep their values, equal strings become one object, codes match."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from sheetfill.refine.compact import compact_text


def distinct_copies(*texts):
    """Equal strings as separate objects, as the read and normalise stages leave them."""
    return np.array(["".join([t, ""]) if isinstance(t, str) else t for t in texts], dtype=object)


def test_values_and_column_order_survive_and_equal_strings_share_one_object():
    frame = pd.DataFrame(
        {
            "_row": np.arange(5),
            "website": pd.Series(
                distinct_copies("https://a.org", None, "https://b.org", "https://a.org", "ünï"), dtype=object
            ),
            "flag": np.array([True, False, True, False, True]),
            "name": pd.Series(distinct_copies("Acme", "Acme", float("nan"), "", "Zen"), dtype=object),
        }
    )
    expected = frame.astype(object).where(frame.notna(), None).to_dict("list")
    codes = compact_text(frame)
    assert list(frame.columns) == ["_row", "website", "flag", "name"]
    assert frame["website"].dtype == object and frame["name"].dtype == object
    assert frame.astype(object).to_dict("list") == expected
    website = frame["website"].to_numpy()
    assert website[0] is website[3]  # one object per distinct value
    assert frame["name"].to_numpy()[2] is None  # NaN becomes None
    assert set(codes) == {"website", "name"}  # text columns only
    site_codes, sites = codes["website"]
    assert site_codes.dtype == np.int32 and site_codes[1] == -1
    assert [sites[c] for c in site_codes[[0, 2, 3, 4]]] == ["https://a.org", "https://b.org", "https://a.org", "ünï"]


def test_a_column_holding_a_type_marshal_cannot_carry_keeps_its_values():
    day = dt.date(2025, 9, 29)
    frame = pd.DataFrame({"when": pd.Series(distinct_copies("2025-09-29", day, None, day), dtype=object)})
    codes = compact_text(frame)
    assert frame["when"].tolist() == ["2025-09-29", day, None, day]
    assert codes["when"][0].tolist() == [0, 1, -1, 1]
