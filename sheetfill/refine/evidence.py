"""Identity evidence for clustering, weighted by how specific it is.

- Websites are compared by host (path and query dropped): `fuze.edu.za/aviation` is `fuze.edu.za`,
  and hosts by their registered name (`acme.co.za`, `acme.com` and `www.training.acme.com` are `acme`).
- An e-mail address's domain is evidence about the organisation unless it is a free-mail provider;
  it is compared with website hosts, so a row with only `info@acme.co.za` meets a row with only
  `acme.co.za` (for), and a differing domain keeps two similar names apart (against).
- A value (host, domain, address, phone) carried by organisation rows whose names are not alike is a
  group or corporate value (a holding's website, one manager on two schools): not evidence at all.
- Rows of `role: contacts` sources describe people and addresses: their e-mail and phone never link
  or contradict organisations.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd

from sheetfill.refine.arrays import ColumnCodes, column, distinct, isin
from sheetfill.refine.similar import fuzz_workers

# Mail providers whose domain says nothing about the organisation (profile: normalisation.free_mail_domains)
FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.co.za",
        "yahoo.co.uk",
        "ymail.com",
        "hotmail.com",
        "hotmail.co.za",
        "outlook.com",
        "live.com",
        "live.co.za",
        "msn.com",
        "icloud.com",
        "me.com",
        "aol.com",
        "gmx.com",
        "protonmail.com",
        "mweb.co.za",
        "telkomsa.net",
        "webmail.co.za",
        "vodamail.co.za",
        "iafrica.com",
        "absamail.co.za",
        "lantic.net",
        "netactive.co.za",
        "afrihost.co.za",
        "cybersmart.co.za",
        "xsinet.co.za",
        "polka.co.za",
        "wol.co.za",
        "intekom.co.za",
    }
)
NAME_ALIKE = 90  # rapidfuzz token_set_ratio / partial_ratio at which two names can be one organisation's
LETTERS_ALIKE = 85  # rapidfuzz ratio of the keys without spaces, likewise (typos)
MIN_CONTAINED = 8  # letters the shorter key needs before containment counts ('saa' is in many names)


def host_of(url: str) -> str:
    """'https://acme.co.za/aviation?x=1' -> 'acme.co.za' (normalise_website's canonical form)."""
    return url.removeprefix("https://").split("/", 1)[0].split("?", 1)[0]


SECOND_LEVEL = frozenset({"co", "com", "org", "net", "ac", "edu", "gov", "mil", "nom", "web", "ltd", "plc"})


def domain_name(host: str) -> str:
    """The registered name of a host, without subdomains and public suffix: 'training.airbus.com',
    'airbus.co.za' and 'airbus.com' all give 'airbus' (one organisation holds several)."""
    labels = host.split(".")
    if len(labels) > 2 and len(labels[-1]) == 2 and labels[-2] in SECOND_LEVEL:
        return labels[-3]
    return labels[-2] if len(labels) > 1 else host


def contact_rows(rows: pd.DataFrame, profile_data: dict) -> np.ndarray:
    """True for rows of `role: contacts` sources (people and addresses of an organisation)."""
    names = [s["name"] for s in profile_data["sources"] if s.get("role") == "contacts"]
    return np.isin(column(rows, "_source"), names) if names else np.zeros(len(rows), dtype=bool)


def _map_unique(codes: np.ndarray, uniques, convert) -> np.ndarray:
    """convert() applied once per distinct value; None where the code is -1 or convert gives None."""
    converted = np.array([convert(u) for u in list(uniques)] + [None], dtype=object)
    return converted[codes]


def mail_domain(address: str) -> str:
    return address.rsplit("@", 1)[-1]


def registered_name(value: str, host: Callable[[str], str], ignored: frozenset) -> str | None:
    """domain_name of value's host, None when the host is an ignored one (generic site, free mail)."""
    found = host(value)
    return None if found in ignored else domain_name(found)


def domains(codes: ColumnCodes, profile_data: dict) -> np.ndarray:
    """Per row, the registered name of its website host or else of its e-mail domain (None: neither,
    or a generic host or free-mail provider)."""
    settings = profile_data.get("resolution", {})
    normalisation = profile_data.get("normalisation", {})
    generic = frozenset(normalisation.get("generic_websites", []))
    free = FREE_MAIL_DOMAINS | frozenset(normalisation.get("free_mail_domains", []))
    types = {name: spec["type"] for name, spec in profile_data["fields"].items()}
    found = np.full(len(codes.rows), None, dtype=object)
    for field in settings.get("link_fields", []):
        if types.get(field) == "website":
            convert = partial(registered_name, host=host_of, ignored=generic)
        elif types.get(field) == "email":
            convert = partial(registered_name, host=mail_domain, ignored=free)
        else:
            continue
        value = _map_unique(*codes.pair(field), convert)
        found = np.where(pd.isna(found), value, found)
    return found


def alike(left: list[str], right: list[str]) -> np.ndarray:
    """Pairwise: could these two name keys be one organisation's? Yes when they are equal without
    spaces, nearly so (typos), or one's words are (nearly) contained in the other's (a trading name,
    a branch, a longer form)."""
    from rapidfuzz import fuzz, process

    if not left:
        return np.zeros(0, dtype=bool)
    compact_left = [k.replace(" ", "") for k in left]
    compact_right = [k.replace(" ", "") for k in right]
    words = process.cpdist(left, right, scorer=fuzz.token_set_ratio, workers=fuzz_workers(len(left)))
    letters = process.cpdist(compact_left, compact_right, scorer=fuzz.ratio, workers=fuzz_workers(len(left)))
    contained = process.cpdist(compact_left, compact_right, scorer=fuzz.partial_ratio, workers=fuzz_workers(len(left)))
    long_enough = np.minimum([len(k) for k in compact_left], [len(k) for k in compact_right]) >= MIN_CONTAINED
    return (words >= NAME_ALIKE) | (letters >= LETTERS_ALIKE) | ((contained >= NAME_ALIKE) & long_enough)


def specific(values: np.ndarray, name_codes: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Codes (>= 0) of values whose rows' names are all alike: the others are shared values.

    values: value code per entry (-1: none); name_codes: name key code per entry (-1: unnamed).
    A value's names are compared with its most frequent name (ties: the smallest name code).
    """
    all_values = distinct(values[values >= 0])
    has = (values >= 0) & (name_codes >= 0)
    if not has.any():
        return all_values
    width = int(name_codes.max()) + 1
    pairs, rows = np.unique(values[has].astype(np.int64) * width + name_codes[has], return_counts=True)
    value, name = np.divmod(pairs, width)
    several = np.flatnonzero(np.r_[False, value[1:] == value[:-1]] | np.r_[value[:-1] == value[1:], False])
    if not len(several):
        return all_values  # every value carried by one name only: the common case, no scoring
    value, name, rows = value[several], name[several], rows[several]
    order = np.lexsort((name, -rows, value))  # per value: most rows first, then smallest name
    value, name = value[order], name[order]
    first = np.r_[True, value[1:] != value[:-1]]
    modal = name[first][np.cumsum(first) - 1]
    other = ~first
    ok = alike(keys[modal[other]].tolist(), keys[name[other]].tolist())
    shared = distinct(value[other][~ok])
    return all_values[~isin(all_values, shared)]


def keep_specific(values: np.ndarray, name_codes: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """values with the codes of shared values replaced by -1."""
    return np.where(isin(values, specific(values, name_codes, keys)), values, -1)


MINOR_WORDS = frozenset({"of", "the", "and", "for", "de", "van"})
MAX_INITIALS = 8  # letters of the longest acronym domain considered


def initials(key: str) -> set[str]:
    """'madiba bay school of flight' -> {'mbsof', 'mbsf'}: what an acronym domain of the name reads."""
    words = key.split()
    return {"".join(w[0] for w in words), "".join(w[0] for w in words if w not in MINOR_WORDS)}


def initials_domains(domain_codes: np.ndarray, domain_names: np.ndarray, name_codes: np.ndarray, keys) -> np.ndarray:
    """True for rows whose domain is the initials of their own name ('lac.co.za' of Lowveld Aero
    Club): a short acronym is held by many organisations, so it links but never contradicts."""
    weak = np.zeros(len(domain_codes), dtype=bool)
    short = np.flatnonzero(np.array([len(d) <= MAX_INITIALS for d in domain_names.tolist()], dtype=bool))
    has = np.flatnonzero(isin(domain_codes, short) & (name_codes >= 0))  # only short domains can be initials
    if not len(has):
        return weak
    width = int(name_codes.max()) + 1
    pair = domain_codes[has].astype(np.int64) * width + name_codes[has]
    pairs = distinct(pair)
    hit = [domain_names[d] in initials(keys[n]) for d, n in zip(*(part.tolist() for part in np.divmod(pairs, width)))]
    weak[has[isin(pair, pairs[np.array(hit, dtype=bool)])]] = True
    return weak
