"""Refine fidelity on Hotpass's own sample workbooks (issue 13), side by side with Hotpass's figures.

    SHEETFILL_HOTPASS_DATA=/path/to/hotpass/data python bench/hotpass_bench.py [--profile aviation]

The folder holds the three workbooks from `data/` of the public Hotpass repository
(`Reachout Database.xlsx`, `Contact Database.xlsx`, `SACAA Flight Schools - Refined copy__CLEANED.xlsx`);
they are not part of this repository. Without the variable (or with a folder lacking them) the bench
says so and exits 0.

Prints records out, records whose organisation name (match key) is shared with another record,
records built only from contact/address rows (sources with `role: contacts`) although a row of an
organisation sheet with the same name is in the bundle, and records with planes.
Goals: <= 3 repeated-name records, 0 such contact-only records, planes on >= 30 records.
Hotpass itself gives 1,514 records with no repeated name and planes on 38.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
ENV = "SHEETFILL_HOTPASS_DATA"
WORKBOOKS = (
    "Reachout Database.xlsx",
    "Contact Database.xlsx",
    "SACAA Flight Schools - Refined copy__CLEANED.xlsx",
)


def fidelity(result, profile) -> dict:
    """The four figures of issue 13 for one refine result."""
    from sheetfill.refine.values import name_match_key

    records = result.records
    names = records["organization_name"].tolist()
    keys = [name_match_key(n) if isinstance(n, str) else "" for n in names]
    shared = Counter(k for k in keys if k)
    contact_sources = {s["name"] for s in profile.sources if s.get("role") == "contacts"}
    source_of = {(s["file"], s["sheet"]): s["source"] for s in result.sources}
    org_keys = set()
    for name, frame in result.frames.items():
        if name not in contact_sources:
            org_keys.update(name_match_key(n) for n in frame["organization_name"].dropna().tolist())
    contact_only = 0
    for key, text in zip(keys, records["source_rows"].tolist()):
        sources = {source_of.get((f, s)) for f, s, _ in json.loads(text)}
        if sources <= contact_sources and key in org_keys:
            contact_only += 1
    planes = records["planes"].notna().sum() if "planes" in records.columns else 0
    return {
        "records_out": len(records),
        "repeated_name_records": sum(1 for k in keys if k and shared[k] > 1),
        "contact_only_with_org_in_bundle": contact_only,
        "records_with_planes": int(planes),
    }


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="aviation")
    args = parser.parse_args()
    folder = Path(os.environ.get(ENV, "")).expanduser()
    if not os.environ.get(ENV) or not all((folder / name).is_file() for name in WORKBOOKS):
        print(f"skipped: set {ENV} to a folder holding {', '.join(WORKBOOKS)} (from Hotpass's data/)")
        return 0

    from sheetfill.bundle.profiles import load_profile
    from sheetfill.refine import refine_bundle, write_outputs

    profile = load_profile(args.profile)
    # every source's rows are kept so that "organisation in the bundle" can be checked
    wanted = [{"name": f"_all_{s['name']}", "source": s["name"], "check": "row_count"} for s in profile.sources]
    profile = type(profile)(**{**profile.__dict__, "expectations": profile.expectations + wanted})
    with tempfile.TemporaryDirectory() as bundle:
        for name in WORKBOOKS:
            (Path(bundle) / name).symlink_to(folder / name)
        started = time.perf_counter()
        result = refine_bundle(bundle, profile)
        seconds = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as out:
            write_outputs(result, out)
    figures = fidelity(result, profile)
    print(f"Hotpass sample ({folder}), profile {profile.name}: {result.counts['rows_in']} rows in, {seconds:.2f} s")
    print(f"  records out:                                   {figures['records_out']}  (Hotpass: 1,514)")
    print(f"  records with a repeated organisation name:     {figures['repeated_name_records']}  (goal <= 3)")
    print(f"  contact/address-only records, org in bundle:   {figures['contact_only_with_org_in_bundle']}  (goal 0)")
    print(f"  records with planes:                           {figures['records_with_planes']}  (goal >= 30)")
    for sheet in result.sources:
        print(
            f"    {sheet['file']} | {sheet['sheet']}: {sheet['rows']} rows, {sheet['source'] or '-'}, {sheet['note']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
