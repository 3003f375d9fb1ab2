"""Shortcuts of the refine engine give exactly what the plain computation gives: value codes handed on
by normalise_rows equal pd.factorize of the columns, and the packed-key row order equals np.lexsort."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sheetfill.bundle.profiles import load_profile
from sheetfill.refine.choose import Preference
from sheetfill.refine.normalise import normalise_rows


def raw_rows() -> pd.DataFrame:
    names = ["Acme Aviation", "ACME AVIATION ", None, "", "Zen Flight", "Acme Aviation", float("nan")]
    emails = ["INFO@acme.co.za", "info@acme.co.za", "n/a", None, "bad@", "", "ops@zen.aero; x@zen.aero"]
    sites = ["acme.co.za", "https://acme.co.za/", "", None, "zen.aero/school", "www.acme.co.za", float("nan")]
    n = len(names)
    return pd.DataFrame(
        {
            "_file": ["a.xlsx"] * n,
            "_sheet": ["S"] * n,
            "_row": np.arange(2, n + 2),
            "_source": ["reachout"] * n,
            "_priority": np.ones(n, dtype=np.int64),
            "organization_name": pd.Series(names, dtype=object),
            "contact_email": pd.Series(emails, dtype=object),
            "website": pd.Series(sites, dtype=object),
        }
    )


def test_handed_on_value_codes_equal_factorising_the_normalised_columns():
    profile = load_profile("aviation").data
    fields = {f: profile["fields"][f] for f in ("organization_name", "contact_email", "website")}
    data = {**profile, "fields": fields}
    value_codes = {}
    rows = normalise_rows(raw_rows(), data, value_codes=value_codes)
    assert set(value_codes) == {"organization_name", "contact_email", "contact_email__all", "website"}
    for name, (codes, uniques) in value_codes.items():
        expected_codes, expected_uniques = pd.factorize(rows[name].to_numpy(dtype=object), use_na_sentinel=True)
        assert codes.dtype == np.int32
        assert codes.tolist() == expected_codes.tolist(), name
        assert list(uniques) == list(expected_uniques), name
    # a missing raw value normalises like an empty one
    assert rows["organization_name"].iloc[2] is None and rows["organization_name"].iloc[6] is None
    assert rows["_name_key"].iloc[6] == "" and rows["_name_key"].iloc[3] == ""


def test_packed_preference_order_equals_lexsort():
    rng = np.random.default_rng(0)
    for trial in range(50):
        n = int(rng.integers(1, 400))
        dates = rng.choice(np.array([None, "2025-01-02", "2024-12-31", "2025-03-01"], dtype=object), n)
        rows = pd.DataFrame({"_priority": rng.integers(-3, 4, n), "date": pd.Series(dates, dtype=object)})
        cluster = rng.integers(0, max(1, n // 3), n)
        score = rng.integers(0, 8, n)
        preference = Preference(rows, cluster, "date")
        recency = pd.Series(dates).rank(method="dense", ascending=False, na_option="bottom").to_numpy()
        expected = np.lexsort((np.arange(n), recency, -score, -rows["_priority"].to_numpy(), cluster))
        assert preference.order(score).tolist() == expected.tolist(), trial


def test_preference_order_falls_back_to_lexsort_when_packed_keys_would_overflow():
    n = 6
    rows = pd.DataFrame({"_priority": np.array([0, 2**40, 5, 2**40, 0, 1])})
    cluster = np.array([2**30, 0, 2**30, 0, 1, 1])
    score = np.array([3, 1, 3, 2, 0, 0])
    expected = np.lexsort((np.arange(n), np.zeros(n), -score, -rows["_priority"].to_numpy(), cluster))
    assert Preference(rows, cluster, None).order(score).tolist() == expected.tolist()
