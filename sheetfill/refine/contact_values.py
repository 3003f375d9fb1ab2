"""E-mail, phone and website normalisers (email-validator, phonenumbers, urllib), with fast paths
for the common shapes that give the same answers as the libraries, and the cheap cache keys that
let spelling variants of one value share one library call.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urlsplit

from sheetfill.refine.values import EMPTY, Normalised

MULTI_VALUE_SEPARATORS = re.compile(r"[;,/|\n]+")
URL_SEPARATORS = re.compile(r"[\s;,|]+")  # '/' belongs to URLs
DIGITS = re.compile(r"\d+")
PHONE_PUNCTUATION = re.compile(r"[\s.\-]+")
LETTERS = re.compile(r"[^\W\d_]")
HOST_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


# A bare lower-case host name that normalise_website would return as https://host unchanged
PLAIN_HOST = re.compile(r"(?!www\.)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{1,63}")


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


# Stand-in addresses: reserved example domains (RFC 2606) and mailbox names that say "no address"
PLACEHOLDER_DOMAINS = frozenset(
    {"example.com", "example.org", "example.net", "example.co.za", "domain.com", "email.com"}
)
PLACEHOLDER_MAILBOX = re.compile(
    r"(?:unknown|none|noemail|no-?reply|na|nil|null|test|dummy|placeholder|nobody)(?:[+.\-_]?\d*)"
)


def placeholder_email(address: str) -> bool:
    mailbox, _, domain = address.rpartition("@")
    return (
        domain in PLACEHOLDER_DOMAINS
        or domain.endswith((".example", ".invalid", ".test", ".localhost"))
        or bool(PLACEHOLDER_MAILBOX.fullmatch(mailbox))
    )


def normalise_email(text: str) -> Normalised:
    """Lower-cased, syntax-checked addresses (no DNS: check_deliverability=False); stand-ins such as
    'unknown+12@example.com' are kept out of the values and flagged as placeholders."""
    valid = _valid_addresses(text)
    invalid = valid.pop()
    real = [address for address in valid if not placeholder_email(address)]
    placeholder = len(real) < len(valid)
    if not valid:
        return Normalised(None, (), True)
    if not real:
        return Normalised(None, (), invalid, True)
    return Normalised(real[0], tuple(real), invalid, placeholder)


def _valid_addresses(text: str) -> list:
    """The cell's valid addresses, in order, followed by whether some part was invalid."""
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
    return [*valid, invalid]


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
    real = [number for number in found if not placeholder_phone(number)]
    if not found:
        stand_in = any(placeholder_phone(part) for part in parts)
        return Normalised(None, (), not stand_in, stand_in)
    invalid = None in parsed and len(found) < len(parts)
    if not real:
        return Normalised(None, (), invalid, True)
    return Normalised(real[0], tuple(real), invalid, len(real) < len(found))


REPEATED_DIGIT = re.compile(r"(\d)\1{5,}")


def placeholder_phone(text: str) -> bool:
    """'000 000 0000', '+27 11 111 1111', '000-000-0123': digits nobody dials."""
    digits = "".join(DIGITS.findall(text))
    if len(digits) < 7:  # too short to stand for a number: a truncated one (invalid)
        return False
    significant = digits.removeprefix("27").lstrip("0")
    return len(significant) <= 4 or len(set(significant)) <= 1 or bool(REPEATED_DIGIT.search(significant))


def normalise_website(text: str) -> Normalised:
    """https://host/path with the host lower-cased and without 'www.'; e-mail addresses are invalid."""
    if PLAIN_HOST.fullmatch(text):
        return Normalised(f"https://{text}", (f"https://{text}",))
    first = URL_SEPARATORS.split(text.strip())[0]
    if "@" in first and "://" not in first:
        return Normalised(None, (), True)
    try:
        parts = urlsplit(first if "://" in first else f"https://{first}")
    except ValueError:  # a stray bracket reads as a broken IPv6 address: an invalid website, not a crash
        return Normalised(None, (), True)
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
