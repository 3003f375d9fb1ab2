"""Which profile source a sheet belongs to: by file and sheet name, else by its header row.

Real captures get renamed (`… copy (2).xlsx`, `sacaa_2025-10.xlsx`), so a sheet that no file/sheet
name rule matches is still read when its header row holds every column a source declares (`headers`).
The rule that matched is recorded per sheet (`matched_by`) in provenance and on the data-docs page.
"""

from __future__ import annotations

import fnmatch
import re
import unicodedata

NON_ALNUM = re.compile(r"[\W_]+")
BY_NAME = "file name"
BY_HEADERS = "header row"


def header_key(text) -> str:
    """'Contact  Email-Address ' and 'contact_email_address' both give 'contactemailaddress'."""
    folded = unicodedata.normalize("NFKD", str(text).casefold())
    return NON_ALNUM.sub("", "".join(ch for ch in folded if not unicodedata.combining(ch)))


def match_source(profile_data: dict, file_name: str, sheet_name: str | None) -> dict | None:
    """First profile source whose file glob (and sheet list, if any) matches."""
    for source in profile_data["sources"]:
        if not fnmatch.fnmatch(file_name.casefold(), source["files"].casefold()):
            continue
        sheets = source.get("sheets")
        if sheet_name is None or not sheets or header_key(sheet_name) in {header_key(s) for s in sheets}:
            return source
    return None


def match_by_headers(profile_data: dict, first_rows: list[list]) -> dict | None:
    """First source with declared `headers` that all appear in one of the sheet's first rows."""
    row_keys = [{header_key(cell) for cell in row if cell not in (None, "")} for row in first_rows]
    for source in profile_data["sources"]:
        declared = {header_key(h) for h in source.get("headers", [])}
        if declared and any(declared <= keys for keys in row_keys):
            return source
    return None


def find_source(profile_data: dict, file_name: str, sheet_name: str | None, first_rows: list[list]):
    """(source, the rule that matched it) or (None, "") for a sheet no source claims."""
    source = match_source(profile_data, file_name, sheet_name)
    if source is not None:
        return source, BY_NAME
    source = match_by_headers(profile_data, first_rows)
    return (source, BY_HEADERS) if source is not None else (None, "")
