"""Field normalisation with field libraries (phonenumbers, email-validator, urllib).

Each ``normalise_<type>`` function takes one cleaned text value and returns a ``Normalised``:
the canonical value (or None), every valid value found in the cell, and whether the cell held
something that could not be parsed (flagged, never silently dropped). ``normalise_column`` runs one
of them over a whole column, once per *unique* value, because captures repeat values a lot.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

# Cell contents that mean "nothing here" in hand-kept captures.
PLACEHOLDERS = frozenset(
    {"", "-", "--", "---", "n/a", "na", "none", "nil", "null", "unknown", "tbc", "tba", "?", "#n/a", "nan", ".", "x"}
)
INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
WHITESPACE = re.compile(r"\s+")
MULTI_VALUE_SEPARATORS = re.compile(r"[;,/|\n]+")
URL_SEPARATORS = re.compile(r"[\s;,|]+")  # '/' belongs to URLs
NON_ALNUM = re.compile(r"[^0-9a-z]+")
DIGITS = re.compile(r"\d+")
PHONE_PUNCTUATION = re.compile(r"[\s.\-]+")
LETTERS = re.compile(r"[^\W\d_]")
ROLE_IN_PARENS = re.compile(r"^(.*?)\s*\(([^()]*)\)\s*$")
HOST_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# A bare lower-case host name that normalise_website would return as https://host unchanged
PLAIN_HOST = re.compile(r"(?!www\.)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{1,63}")
EXCEL_EPOCH = dt.datetime(1899, 12, 30)
DEFAULT_LEGAL_SUFFIXES = ("pty", "ltd", "limited", "cc", "inc", "npc", "rf", "llc", "plc", "co", "proprietary")


class Normalised(NamedTuple):
    value: str | None  # canonical value, None when the cell holds nothing usable
    all_values: tuple = ()  # every valid value in the cell (emails / phones can hold several)
    invalid: bool = False  # the cell held text that is not a valid value of this type


EMPTY = Normalised(None)


def clean_text(value) -> str | None:
    """Unicode NFC, invisible characters removed, whitespace collapsed; placeholders become None."""
    if value is None:
        return None
    value = str(value)
    if value.isascii():
        # NFC and the invisible characters only concern non-ASCII text; str.split() splits on the
        # same whitespace as WHITESPACE (str.isspace) and drops it at both ends, like strip()
        text = " ".join(value.split())
        if text == value:
            text = value  # keep the cell's own string: no second copy of every value
    else:
        text = WHITESPACE.sub(" ", unicodedata.normalize("NFC", value).translate(INVISIBLE)).strip()
    return None if text.casefold() in PLACEHOLDERS else text


def fix_case(text: str) -> str:
    """ALL CAPS or all lower-case captures become Title Case; mixed case is left as typed."""
    if text.isupper() or text.islower():
        return text.title()
    return text


def normalise_text(text: str) -> Normalised:
    return Normalised(text, (text,))


def normalise_org_name(text: str) -> Normalised:
    name = fix_case(text)
    return Normalised(name, (name,))


NAME_PARTICLES = frozenset({"van", "der", "den", "de", "du", "le", "la", "von", "da", "dos", "das"})


def fix_person_case(text: str) -> str:
    """Word by word: 'john SMITH' -> 'John Smith', 'jan van der merwe' -> 'Jan van der Merwe';
    words already in mixed case ('McDonald') are left as typed."""
    words = text.split(" ")
    fixed = []
    for position, word in enumerate(words):
        if position and word.casefold() in NAME_PARTICLES and (word.islower() or word.isupper()):
            fixed.append(word.lower())
        elif word.isupper() or word.islower():
            fixed.append(word.title())
        else:
            fixed.append(word)
    return " ".join(fixed)


def normalise_person_name(text: str) -> Normalised:
    name = fix_person_case(text)
    return Normalised(name, (name,))


def split_role(text: str) -> tuple[str, str | None]:
    """'Jane Smith (Chief Flight Instructor)' -> ('Jane Smith', 'Chief Flight Instructor')."""
    match = ROLE_IN_PARENS.match(text)
    if not match or not match.group(1):
        return text, None
    return match.group(1).strip(), clean_text(match.group(2))


def name_match_key(text: str | None, legal_suffixes=DEFAULT_LEGAL_SUFFIXES) -> str:
    """Accent-, case-, punctuation- and legal-suffix-free key used to match organisation names.

    'Acme Aviation (Pty) Ltd', 'ACME  AVIATION PTY LTD.' and 'Acmé Aviation' all give 'acme aviation';
    'Sky & Orbit', 'Sky and Orbit' and 'Sky Orbit' all give 'sky orbit' (captures drop the '&' freely).
    """
    if not text:
        return ""
    folded = unicodedata.normalize("NFKD", text.casefold())
    ascii_text = "".join(ch for ch in folded if not unicodedata.combining(ch))
    tokens = [t for t in NON_ALNUM.sub(" ", ascii_text).split() if t != "and"]
    while len(tokens) > 1 and tokens[-1] in legal_suffixes:
        tokens.pop()
    return " ".join(tokens)


def _email_candidates(text: str) -> list[str]:
    """Split a cell into address-shaped parts; spaces inside one address are typing noise."""
    lowered = text.casefold().replace("mailto:", " ")
    parts = []
    for chunk in MULTI_VALUE_SEPARATORS.split(lowered):
        joined = "".join(chunk.split())
        if joined.count("@") > 1:
            parts.extend(chunk.split())  # "a@x.com b@y.com": two addresses, not one with spaces
        elif joined:
            parts.append(joined)
    return [p.strip("<>()[]'\".:") for p in parts if p.strip("<>()[]'\".:")]


# Plain lower-case ASCII addresses that email-validator accepts unchanged: dot-atom local part of
# letters, digits and '_+-'; host labels of letters, digits and inner hyphens (no '--', so no
# Punycode); a final label of letters; lengths within the RFC limits. Anything else goes through
# the library. tests/test_normalise.py checks this agrees with email-validator.
PLAIN_EMAIL = re.compile(
    r"[a-z0-9_+\-]+(?:\.[a-z0-9_+\-]+)*@"
    r"(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)


@lru_cache(maxsize=1)
def _special_use_domains() -> tuple[str, ...]:
    from email_validator import SPECIAL_USE_DOMAIN_NAMES

    return tuple(SPECIAL_USE_DOMAIN_NAMES)


def plain_email(part: str) -> bool:
    """True when part is an address email-validator would accept and return as it is."""
    if len(part) > 254 or "--" in part or not PLAIN_EMAIL.fullmatch(part):
        return False
    domain = part[part.index("@") + 1 :]
    return len(domain) <= 253 and not any(domain == d or domain.endswith("." + d) for d in _special_use_domains())


def normalise_email(text: str) -> Normalised:
    """Lower-cased, syntax-checked addresses (no DNS: check_deliverability=False)."""
    from email_validator import EmailNotValidError, validate_email

    valid, invalid = [], False
    for part in _email_candidates(text):
        if plain_email(part):
            if part not in valid:
                valid.append(part)
            continue
        try:
            address = validate_email(part, check_deliverability=False).normalized.lower()
        except EmailNotValidError:
            invalid = True
            continue
        if address not in valid:
            valid.append(address)
    if not valid:
        return Normalised(None, (), True)
    return Normalised(valid[0], tuple(valid), invalid)


@lru_cache(maxsize=8)
def _phone_library():
    import phonenumbers

    return phonenumbers


# National ('0' + 9 digits) and international ('+27' / '27' + 9 digits) South African numbers, the
# common shapes, are checked against the region's number patterns directly instead of through
# phonenumbers.parse (most of the cost). Other regions and shapes use the library.
# tests/test_normalise.py checks this agrees with phonenumbers.
ZA_SHAPE = re.compile(r"(?:0|\+?27)([1-9]\d{8})")


@lru_cache(maxsize=1)
def _za_valid_national():
    """fullmatch of the 9-digit national numbers phonenumbers.is_valid_number accepts for ZA."""
    metadata = _phone_library().PhoneMetadata.metadata_for_region("ZA")
    general = metadata.general_desc
    assert 9 in general.possible_length
    kinds = [
        metadata.premium_rate,
        metadata.toll_free,
        metadata.shared_cost,
        metadata.voip,
        metadata.personal_number,
        metadata.pager,
        metadata.uan,
        metadata.voicemail,
        metadata.fixed_line,
        metadata.mobile,
    ]
    patterns = [
        d.national_number_pattern
        for d in kinds
        if d is not None and d.national_number_pattern and (not d.possible_length or 9 in d.possible_length)
    ]
    typed = re.compile("|".join(f"(?:{p})" for p in patterns))
    general_pattern = re.compile(general.national_number_pattern)
    return lambda national: bool(general_pattern.fullmatch(national) and typed.fullmatch(national))


def _parse_single_phone(text: str, region: str) -> str | None:
    if region == "ZA":
        shape = ZA_SHAPE.fullmatch(text)
        if shape:
            national = shape.group(1)
            return f"+27{national}" if _za_valid_national()(national) else None
    phonenumbers = _phone_library()
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    # E.164 is '+', country code, national significant number: what format_number(E164) builds, cheaper
    return f"+{number.country_code}{phonenumbers.national_significant_number(number)}"


def _find_phones(text: str, region: str) -> list[str]:
    phonenumbers = _phone_library()
    found = []
    for match in phonenumbers.PhoneNumberMatcher(text, region):
        e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        if e164 not in found:
            found.append(e164)
    return found


def normalise_phone(text: str, region: str = "ZA") -> Normalised:
    """E.164 numbers; national numbers are read in the profile's region ('011 555 1234' -> +27115551234).

    Each '/'- or ';'-separated part is parsed on its own (quick); a cell where that finds nothing
    but which holds words around the digits goes through phonenumbers' PhoneNumberMatcher.
    """
    if not DIGITS.search(text):
        return EMPTY  # "n/a", "ask reception": no number was captured
    parts = [p for p in MULTI_VALUE_SEPARATORS.split(text) if DIGITS.search(p)]
    parsed = [_parse_single_phone(part, region) for part in parts]
    found = list(dict.fromkeys(number for number in parsed if number))
    if not found and LETTERS.search(text):
        found = _find_phones(text, region)
    if not found:
        return Normalised(None, (), True)
    return Normalised(found[0], tuple(found), None in parsed and len(found) < len(parts))


def normalise_website(text: str) -> Normalised:
    """https://host/path with the host lower-cased and without 'www.'; e-mail addresses are invalid."""
    if PLAIN_HOST.fullmatch(text):
        return Normalised(f"https://{text}", (f"https://{text}",))
    first = URL_SEPARATORS.split(text.strip())[0]
    if "@" in first and "://" not in first:
        return Normalised(None, (), True)
    parts = urlsplit(first if "://" in first else f"https://{first}")
    host = (parts.hostname or "").rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    labels = host.split(".")
    if (
        parts.scheme not in ("http", "https")
        or len(labels) < 2
        or not labels[-1].isalpha()
        or not all(HOST_LABEL.match(label) for label in labels)
    ):
        return Normalised(None, (), True)
    path = parts.path.rstrip("/")
    url = f"https://{host}{path}" + (f"?{parts.query}" if parts.query else "")
    return Normalised(url, (url,))


def province_key(text: str) -> str:
    return NON_ALNUM.sub("", name_match_key(text, ()))


def build_province_lookup(provinces: dict[str, list[str]]) -> dict[str, str]:
    """Alias key -> canonical province, from the profile's normalisation.provinces."""
    lookup = {}
    for canonical, aliases in provinces.items():
        for alias in [canonical, *aliases]:
            lookup[province_key(alias)] = canonical
    return lookup


def normalise_province(text: str, lookup: dict[str, str]) -> Normalised:
    """Map to the canonical list; close misspellings ('Guateng') are matched with rapidfuzz."""
    if not lookup:
        return normalise_text(text)
    key = province_key(text)
    canonical = lookup.get(key)
    if canonical is None and len(key) >= 5:
        from rapidfuzz import fuzz, process

        best = process.extractOne(key, list(lookup), scorer=fuzz.ratio, score_cutoff=85)
        canonical = lookup[best[0]] if best else None
    if canonical is None:
        return Normalised(None, (), True)
    return Normalised(canonical, (canonical,))


def normalise_key(text: str) -> Normalised:
    key = text.casefold()
    return Normalised(key, (key,))


def parse_date(text: str) -> dt.datetime | None:
    if re.fullmatch(r"\d{5}(\.\d+)?", text) and 20000 <= float(text) <= 80000:
        return EXCEL_EPOCH + dt.timedelta(days=float(text))
    try:
        return dt.datetime.fromisoformat(text)  # what calamine's date cells become: quick
    except ValueError:
        stamp = pd.to_datetime(text, errors="coerce", dayfirst=False)
        return None if pd.isna(stamp) else stamp


def normalise_date(text: str) -> Normalised:
    """ISO date; Excel serial numbers (a date cell without a date format) are converted too.
    Several date columns feeding one field ('Last_Order_Date ; LoadDate') give the newest."""
    parts = [part.strip() for part in text.split(";") if part.strip()]
    dates = [parse_date(part) for part in parts]
    valid = [d.strftime("%Y-%m-%d") for d in dates if d is not None]
    if not valid:
        return Normalised(None, (), True)
    newest = max(valid)
    return Normalised(newest, (newest,), len(valid) < len(parts))


def normaliser_for(field_type: str, profile_data: dict) -> Callable[[str], Normalised]:
    """The one-value normaliser for a profile field type, bound to the profile's settings."""
    settings = profile_data.get("normalisation", {})
    if field_type == "phone":
        region = settings.get("phone_region", "ZA")
        return lambda text: normalise_phone(text, region)
    if field_type == "province":
        lookup = build_province_lookup(settings.get("provinces", {}))
        return lambda text: normalise_province(text, lookup)
    if field_type == "match_key":
        suffixes = frozenset(settings.get("legal_suffixes", DEFAULT_LEGAL_SUFFIXES))
        return lambda text: Normalised(name_match_key(text, suffixes) or None)
    return {
        "org_name": normalise_org_name,
        "person_name": normalise_person_name,
        "text": normalise_text,
        "email": normalise_email,
        "website": normalise_website,
        "key": normalise_key,
        "date": normalise_date,
    }[field_type]


def email_cache_key(text: str) -> str:
    """The address-shaped parts themselves: ' Info@X.co.za ' and 'mailto:info@x.co.za' share one."""
    return ";".join(_email_candidates(text)) or text


WEBSITE_PREFIXES = re.compile(r"(?:https://)?(?:http://)?(?:www\.)?")


def website_cache_key(text: str) -> str:
    """Scheme, 'www.' and a trailing slash do not change the canonical website.

    Strips, in this order and each at most once: 'https://', 'http://', 'www.'."""
    key = text.casefold().strip()
    return key[WEBSITE_PREFIXES.match(key).end() :].rstrip("/")


def phone_cache_key(text: str) -> str:
    """Spaces, dashes, dots and a '(0)' trunk prefix do not change the number."""
    return PHONE_PUNCTUATION.sub("", text).replace("(0)", "")


# Cheap canonicalisation applied before the library call, so that spelling variants of one value
# ("INFO@X.CO.ZA " / "info@x.co.za") cost one library call, not one each.
CACHE_KEYS = {"email": email_cache_key, "website": website_cache_key, "phone": phone_cache_key}
# Rough microseconds per distinct value, used to share the work out evenly over processes.
COST_PER_VALUE = {"email": 20, "phone": 20, "website": 8, "org_name": 4, "match_key": 4}
CHUNK = 50_000


def normalise_values(values: Sequence, field_type: str, profile_data: dict) -> tuple[list, list, list]:
    """clean_text → cache key → library normaliser, one library call per distinct key.

    Returns three parallel lists (canonical value, '; '-joined valid values, invalid flag): plain
    lists travel back from worker processes much faster than a list of tuples.
    """
    normaliser = normaliser_for(field_type, profile_data)
    cache_key = CACHE_KEYS.get(field_type)
    cache: dict[str, tuple] = {}
    empty = (None, None, False)
    outputs = []
    append = outputs.append
    for value in values:
        text = clean_text(value)
        if text is None:
            append(empty)
            continue
        key = cache_key(text) if cache_key else text
        output = cache.get(key)
        if output is None:
            result = normaliser(key)
            output = cache[key] = (result.value, "; ".join(result.all_values) or None, result.invalid)
        append(output)
    if not outputs:
        return [], [], []
    canonical, joined, invalid = zip(*outputs)
    return list(canonical), list(joined), list(invalid)


def normalise_column(raw, field_type: str, profile_data: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One column, normalised once per unique value: see normalise_columns."""
    return normalise_columns({"column": (raw, field_type)}, profile_data)["column"]


def normalise_columns(columns: dict[str, tuple], profile_data: dict) -> dict[str, tuple[np.ndarray, ...]]:
    """{name: (raw values, field type)} → {name: (canonical values, '; '-joined valid values, invalid)}.

    Each column is factorised, its distinct values are normalised (in chunks, spread over the CPU
    cores when there are many), and the results are mapped back onto the rows.
    """
    from sheetfill.refine.parallel import run_tasks

    factorised, by_array = {}, {}
    for name, (raw, _) in columns.items():
        if id(raw) not in by_array:  # the match key reads the name column: factorise it once
            by_array[id(raw)] = pd.factorize(np.asarray(raw, dtype=object), use_na_sentinel=True)
        factorised[name] = by_array[id(raw)]
    tasks, costs, owners = [], [], []
    for name, (_, field_type) in columns.items():
        uniques = list(factorised[name][1])
        for start in range(0, max(len(uniques), 1), CHUNK):
            tasks.append((uniques[start : start + CHUNK], field_type))
            costs.append(len(uniques[start : start + CHUNK]) * COST_PER_VALUE.get(field_type, 3))
            owners.append(name)
    outputs = run_tasks(lambda task: normalise_values(task[0], task[1], profile_data), tasks, costs)
    per_column = {name: ([], [], []) for name in columns}
    for name, output in zip(owners, outputs):
        for collected, part in zip(per_column[name], output):
            collected.extend(part)
    result = {}
    for name, (canonical, joined, invalid) in per_column.items():
        codes = factorised[name][0]
        # code -1 (missing) indexes the trailing sentinel entry
        result[name] = (
            np.array(canonical + [None], dtype=object)[codes],
            np.array(joined + [None], dtype=object)[codes],
            np.array(invalid + [False], dtype=bool)[codes],
        )
    return result


def join_nonempty(columns: list[np.ndarray], separator: str) -> np.ndarray:
    """Element-wise join of text columns, skipping empty strings (no separator dangling)."""
    joined = np.asarray(columns[0], dtype=object)
    for extra in columns[1:]:
        extra = np.asarray(extra, dtype=object)
        has_extra = extra != ""
        both = has_extra & (joined != "")
        result = np.where(joined == "", extra, joined)
        if both.any():  # concatenate only where both sides have text: usually a small share
            result[both] = joined[both] + separator + extra[both]
        joined = result
    return joined


def repeated(value, count: int) -> np.ndarray:
    """Object array holding the same object count times (np.full would copy a str once per element)."""
    array = np.empty(count, dtype=object)
    array.fill(value)
    return array


def object_frame(columns: dict) -> pd.DataFrame:
    """DataFrame that keeps each numpy column's dtype: text stays `object`.

    pandas 3 would otherwise convert every text column to its Arrow string dtype and back again at
    each numpy step, which costs more than the work itself on a million rows. The columns are not
    copied: callers hand over arrays they no longer change.
    """
    # copy=False also keeps one block per column: consolidating would copy every column into one
    # 2-D block (on a million rows, ~300 MB more at the normalise peak)
    return pd.DataFrame(
        {
            name: pd.Series(np.asarray(values), dtype=np.asarray(values).dtype, copy=False)
            for name, values in columns.items()
        },
        copy=False,
    )


def _text_array(series: pd.Series) -> np.ndarray:
    return series.fillna("").to_numpy(dtype=object)


def _move_roles(raw: dict[str, np.ndarray], fields: dict) -> None:
    """'Jane Smith (CFI)' in a name column: the role goes to the role field if that is empty."""
    for name, spec in fields.items():
        role_field = spec.get("role_field")
        if not role_field:
            continue
        codes, uniques = pd.factorize(raw[name])
        split = [split_role(str(u)) for u in uniques]
        names = np.array([s[0] for s in split] + [""], dtype=object)[codes]
        roles = np.array([s[1] or "" for s in split] + [""], dtype=object)[codes]
        current_role = raw[role_field]
        raw[name] = names
        raw[role_field] = np.where(current_role == "", roles, current_role)


def _combine_parts(raw: dict[str, np.ndarray], fields: dict) -> None:
    """First name + surname fill the full-name field where it is empty."""
    targets: dict[str, list[str]] = {}
    for name, spec in fields.items():
        if spec.get("combine_into"):
            targets.setdefault(spec["combine_into"], []).append(name)
    for target, parts in targets.items():
        combined = join_nonempty([raw[p] for p in parts], " ")
        current = raw[target]
        raw[target] = np.where(current == "", combined, current)


def output_fields(fields: dict) -> list[str]:
    """Fields that are normalised into output values (name parts only feed their target)."""
    return [name for name, spec in fields.items() if not spec.get("combine_into")]


def normalise_rows(raw: pd.DataFrame, profile_data: dict) -> pd.DataFrame:
    """Raw field text → canonical values, every-valid-value lists, invalid flags and reasons.

    Adds per field F: F (canonical value or None), F__all ('; '-joined valid values) for e-mail
    and phone fields, F__invalid (bool); plus _reasons (why a row is flagged) and _name_key.
    """
    fields = profile_data["fields"]
    columns = {name: raw[name].to_numpy() for name in raw.columns if name.startswith("_")}
    cells = {name: _text_array(raw[name]) for name in fields}
    _move_roles(cells, fields)
    _combine_parts(cells, fields)
    texts = {name: cells[name] for name in output_fields(fields)}
    jobs = {name: (texts[name], fields[name]["type"]) for name in texts}
    name_field = name_field_of(profile_data)
    if name_field:
        # the match key depends only on the cleaned text, so it is computed alongside the fields
        jobs["_name_key"] = (texts[name_field], "match_key")
    normalised = normalise_columns(jobs, profile_data)
    name_keys = normalised.pop("_name_key", None)
    reasons = []
    for name, (values, all_values, invalid) in normalised.items():
        columns[name] = values
        if fields[name]["type"] in ("email", "phone"):
            columns[f"{name}__all"] = all_values
        columns[f"{name}__invalid"] = invalid
        if invalid.any():
            reasons.append(np.where(invalid, _invalid_reason(name, texts[name]), ""))
    nothing = np.full(len(columns["_row"]), "", dtype=object)
    columns["_reasons"] = join_nonempty(reasons, "; ") if reasons else nothing
    columns["_name_key"] = np.where(present(name_keys[0]), name_keys[0], "") if name_keys else nothing
    return object_frame(columns)


def _invalid_reason(field: str, text: np.ndarray) -> np.ndarray:
    codes, uniques = pd.factorize(text)
    messages = np.array([f"invalid {field}: {str(u)[:80]!r}" for u in uniques] + [""], dtype=object)
    return messages[codes]


def present(values: np.ndarray) -> np.ndarray:
    """True where a value is there (not None / NaN)."""
    return ~pd.isna(values)


def name_field_of(profile_data: dict) -> str | None:
    """The field organisations are matched on: resolution.blocking_key, else the first org_name field."""
    declared = profile_data.get("resolution", {}).get("blocking_key")
    if declared:
        return declared
    return next((n for n, s in profile_data["fields"].items() if s["type"] == "org_name"), None)
