"""One-value normalisers for text, names, provinces and dates.

Each ``normalise_<type>`` function takes one cleaned text value and returns a ``Normalised``:
the canonical value (or None), every valid value found in the cell, and whether the cell held
something that could not be parsed (flagged, never silently dropped). E-mail, phone and website
values are in contact_values.py.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import NamedTuple

import pandas as pd

# Cell contents that mean "nothing here" in hand-kept captures.
PLACEHOLDERS = frozenset(
    {"", "-", "--", "---", "n/a", "na", "none", "nil", "null", "unknown", "tbc", "tba", "tbd", "?", "#n/a", "nan"}
    | {".", "x", "not listed", "not publicly listed", "unlisted", "not available", "none listed", "no email"}
    | {"no e-mail", "no phone", "no website", "not known", "to be confirmed"}
)


LONGEST_PLACEHOLDER = max(map(len, PLACEHOLDERS))
INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
WHITESPACE = re.compile(r"\s+")
NON_ALNUM = re.compile(r"[^0-9a-z]+")
# the same separation for ASCII text as bytes.translate: every byte but 0-9 and a-z becomes a space
_SEPARATOR_BYTES = bytes(c for c in range(128) if not (48 <= c <= 57 or 97 <= c <= 122))
ASCII_SEPARATORS = bytes.maketrans(_SEPARATOR_BYTES, b" " * len(_SEPARATOR_BYTES))
ROLE_IN_PARENS = re.compile(r"^(.*?)\s*\(([^()]*)\)\s*$")
EXCEL_EPOCH = dt.datetime(1899, 12, 30)
DEFAULT_LEGAL_SUFFIXES = ("pty", "ltd", "limited", "cc", "inc", "npc", "rf", "llc", "plc", "co", "proprietary")


class Normalised(NamedTuple):
    value: str | None  # canonical value, None when the cell holds nothing usable
    all_values: tuple = ()  # every valid value in the cell (emails / phones can hold several)
    invalid: bool = False  # the cell held text that is not a valid value of this type
    placeholder: bool = False  # the cell held a stand-in ('unknown+3@example.com', '000 000 0000')


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
    # casefold never shortens text, so nothing longer than the longest placeholder can be one
    return None if len(text) <= LONGEST_PLACEHOLDER and text.casefold() in PLACEHOLDERS else text


def placeholder_token(value) -> bool:
    """A cell clean_text empties that is not blank: 'n/a', '-', 'tbc' say "nothing here" in so many words."""
    return value is not None and clean_text(value) is None and bool(str(value).translate(INVISIBLE).strip())


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
    """'Jane Smith (Chief Flight Instructor)' -> ('Jane Smith', 'Chief Flight Instructor');
    'Accountable Manager (Not Listed)' -> ('', 'Accountable Manager'): no person was named."""
    match = ROLE_IN_PARENS.match(text)
    if not match or not match.group(1):
        return text, None
    role = clean_text(match.group(2))
    if role is None and match.group(2).strip():
        return "", match.group(1).strip()
    return match.group(1).strip(), role


TRADING_AS = re.compile(r"\s(?:t\s*/\s*a|t\.a\.|trading as)\s.*$")
TRAILING_BRACKETS = re.compile(r"^(.*\S)\s*[(\[]([^()\[\]]*)[)\]]\s*$")


def legal_name(text: str, legal_suffixes) -> str:
    """The name without a trading name ('X t/a Y', 'X (Y)') or a branch in brackets ('X (Durban)').

    Brackets holding only legal-form words ('(Pty)') stay: they are part of the legal name."""
    text = TRADING_AS.sub("", text)
    # the ending test is what the pattern needs and far cheaper than its backtracking on every name
    while text.rstrip().endswith((")", "]")) and (match := TRAILING_BRACKETS.match(text)):
        inside = NON_ALNUM.sub(" ", match.group(2)).split()
        if all(word in legal_suffixes for word in inside):
            break
        text = match.group(1)
    return text


def alnum_words(text: str) -> list[str]:
    """The runs of 0-9 and a-z in text (NON_ALNUM separates), for ASCII text without a regex."""
    if text.isascii():
        return text.encode("ascii").translate(ASCII_SEPARATORS).decode("ascii").split()
    return NON_ALNUM.sub(" ", text).split()


def name_match_key(text: str | None, legal_suffixes=DEFAULT_LEGAL_SUFFIXES) -> str:
    """Accent-, case-, punctuation- and legal-suffix-free key used to match organisation names.

    'Acme Aviation (Pty) Ltd', 'ACME  AVIATION PTY LTD.' and 'Acmé Aviation' all give 'acme aviation';
    'Sky & Orbit', 'Sky and Orbit' and 'Sky Orbit' all give 'sky orbit' (captures drop the '&' freely);
    'The Acme Aviation', 'Acme Aviation t/a Acme Flyers' and 'Acme Aviation (Lanseria)' give
    'acme aviation' too: a leading article, a trading name and a branch do not make another organisation.
    """
    if not text:
        return ""
    folded = text.casefold()
    if not folded.isascii():  # accents off: NFKD splits 'é' into 'e' + a combining mark
        folded = "".join(ch for ch in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(ch))
    ascii_text = legal_name(folded, legal_suffixes)
    tokens = [t for t in alnum_words(ascii_text) if t != "and"]
    while len(tokens) > 1 and tokens[-1] in legal_suffixes:
        tokens.pop()
    if len(tokens) > 1 and tokens[0] == "the":
        tokens.pop(0)
    return " ".join(tokens)


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


LIST_SEPARATORS = re.compile(r"\s*[;,|\n]+\s*")


def normalise_list(text: str) -> Normalised:
    """'C172, PA28; C172' -> 'C172; PA28': distinct items in first-seen order (a record merges every
    distinct item of all its rows)."""
    items = list(
        dict.fromkeys(item for item in LIST_SEPARATORS.split(text) if item and item.casefold() not in PLACEHOLDERS)
    )
    if not items:
        return EMPTY
    joined = "; ".join(items)
    return Normalised(joined, (joined,))


def normalise_key(text: str) -> Normalised:
    """Case-folded ID. An ID of zeros is what an uncached lookup formula reads as: no ID."""
    if not text.strip("0"):
        return EMPTY
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
