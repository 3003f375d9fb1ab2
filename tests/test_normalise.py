"""Normalisation and matching functions on the tricky values real captures contain."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from sheetfill.refine.normalise import (
    build_province_lookup,
    clean_text,
    name_match_key,
    normalise_column,
    normalise_date,
    normalise_email,
    normalise_org_name,
    normalise_person_name,
    normalise_phone,
    normalise_province,
    normalise_website,
    split_role,
)


def library_path(monkeypatch, function, fast_path: str, never, text: str):
    """What function gives for text with its fast path switched off: the library alone."""
    with monkeypatch.context() as patch:
        patch.setattr(sys.modules[function.__module__], fast_path, never)
        return function(text)


PROVINCES = build_province_lookup({"Gauteng": ["GP"], "KwaZulu-Natal": ["KZN", "Natal"], "Western Cape": ["WC"]})


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("  Acme   Aviation\u00a0 ", "Acme Aviation"),
        ("\ufeffSky\u200bways", "Skyways"),
        ("N/A", None),
        (" - ", None),
        ("Cafe\u0301 Air", "Caf\u00e9 Air"),  # decomposed accent composed (NFC)
    ],
)
def test_clean_text_collapses_whitespace_and_placeholders(raw, expected):
    assert clean_text(raw) == expected


@pytest.mark.parametrize(
    "name",
    [
        "Acme Aviation (Pty) Ltd",
        "ACME  AVIATION PTY LTD.",
        "acme aviation",
        "Acmé Aviation (PTY) LIMITED",
        "Acme-Aviation",
        " Acme Aviation cc ",
    ],
)
def test_name_match_key_ignores_case_punctuation_accents_and_legal_suffixes(name):
    assert name_match_key(name) == "acme aviation"


def test_name_match_key_keeps_meaningful_words_and_treats_ampersand_as_optional():
    assert name_match_key("Smith & Sons Flight Training") == "smith sons flight training"
    assert name_match_key("Smith and Sons Flight Training") == name_match_key("Smith Sons Flight Training")
    assert name_match_key("Ltd") == "ltd"  # a name that is only a suffix stays
    assert name_match_key("Limited Edition Aviation") == "limited edition aviation"


@pytest.mark.parametrize(
    "text",
    ["acme_aviation (pty) ltd.", "sky&orbit\t7", "  a--b  ", "caf\u00e9 \u00f8 air", "x\u00a0y", "", "-"],
)
def test_alnum_words_separates_like_the_pattern(text):
    from sheetfill.refine.values import NON_ALNUM, alnum_words

    assert alnum_words(text) == NON_ALNUM.sub(" ", text).split()


def test_branch_and_trading_name_brackets_are_dropped_but_legal_forms_stay():
    assert name_match_key("Acme Aviation (Lanseria) ") == "acme aviation"
    assert name_match_key("Acme Aviation [Durban]\n") == "acme aviation"
    assert name_match_key("Acme Aviation (Pty)") == "acme aviation"
    assert name_match_key("Acme (Pty) Aviation") == "acme pty aviation"  # no closing bracket at the end
    assert clean_text("not publicly listed") is None and clean_text("Not publicly listed, ask") is not None


def test_org_and_person_names_fix_all_caps_and_all_lower_only():
    assert normalise_org_name("BLUE SKY FLIGHT SCHOOL").value == "Blue Sky Flight School"
    assert normalise_org_name("blue sky flight school").value == "Blue Sky Flight School"
    assert normalise_org_name("AeroVision SA").value == "AeroVision SA"
    assert normalise_person_name("o'brien").value == "O'Brien"
    assert normalise_person_name("john SMITH").value == "John Smith"
    assert normalise_person_name("jan VAN DER merwe").value == "Jan van der Merwe"
    assert normalise_person_name("Ronald McDonald").value == "Ronald McDonald"


def test_split_role_moves_parenthesised_role():
    assert split_role("Kelly Nguyen (Chief Pilot)") == ("Kelly Nguyen", "Chief Pilot")
    assert split_role("Kelly Nguyen") == ("Kelly Nguyen", None)
    assert split_role("(Chief Pilot)") == ("(Chief Pilot)", None)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("+27 (0)11 555 1234", "+27115551234"),
        ("011 555 1234", "+27115551234"),
        ("0027 82 123 4567", "+27821234567"),
        ("27821234567", "+27821234567"),
        ("821234567", "+27821234567"),  # leading zero eaten by a numeric cell
        ("tel: 082-123-4567", "+27821234567"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_phone_to_e164(raw, expected):
    result = normalise_phone(raw, "ZA")
    assert (result.value, result.invalid) == (expected, False)


def test_phone_cell_with_two_numbers_keeps_both():
    result = normalise_phone("082 123 4567 / 011 555 1234", "ZA")
    assert result.value == "+27821234567"
    assert result.all_values == ("+27821234567", "+27115551234")


@pytest.mark.parametrize("raw", ["12", "000", "555-12"])
def test_invalid_phone_is_flagged_not_dropped_silently(raw):
    result = normalise_phone(raw, "ZA")
    assert result.value is None and result.invalid


def test_phone_without_digits_is_empty_not_invalid():
    assert normalise_phone("ask at reception", "ZA") == (None, (), False, False)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("John.Doe@Acme.CO.ZA", "john.doe@acme.co.za"),
        ("mailto:info@acme.co.za", "info@acme.co.za"),
        ("MAILTO:Info@Acme.co.za", "info@acme.co.za"),
        (" info @ acme.co.za ", "info@acme.co.za"),
        ("<ops@skyways.aero>", "ops@skyways.aero"),
        ("josé@exämple.com", "josé@exämple.com"),
    ],
)
def test_email_lower_cased_and_validated(raw, expected):
    result = normalise_email(raw)
    assert (result.value, result.invalid) == (expected, False)


def test_email_cell_with_several_addresses():
    result = normalise_email("a@x.co.za; B@Y.CO.ZA, a@x.co.za")
    assert result.all_values == ("a@x.co.za", "b@y.co.za")
    assert normalise_email("a@x.co.za b@y.co.za").all_values == ("a@x.co.za", "b@y.co.za")


@pytest.mark.parametrize("raw", ["bad@", "no-at-sign.co.za", "a@@b.com", "a@b"])
def test_invalid_email_flagged(raw):
    result = normalise_email(raw)
    assert result.value is None and result.invalid


def test_partly_invalid_email_cell_keeps_the_good_one_and_flags():
    result = normalise_email("good@acme.co.za; broken@")
    assert result.value == "good@acme.co.za" and result.invalid


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("www.Acme.co.za", "https://acme.co.za"),
        ("acme.co.za/", "https://acme.co.za"),
        ("HTTP://www.acme.co.za/contact/", "https://acme.co.za/contact"),
        ("https://acme.co.za/?lang=en", "https://acme.co.za?lang=en"),
        ("acme.co.za, www.other.com", "https://acme.co.za"),
    ],
)
def test_website_canonical_form(raw, expected):
    result = normalise_website(raw)
    assert (result.value, result.invalid) == (expected, False)


@pytest.mark.parametrize(
    "raw", ["info@acme.co.za", "nope", "http://", "acme .co.za", "ftp://acme.co.za", "www.acme[.com", "http://[bad"]
)
def test_invalid_website_flagged(raw):
    assert normalise_website(raw).invalid


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("gauteng", "Gauteng"),
        ("GP", "Gauteng"),
        ("Kwa-Zulu  Natal", "KwaZulu-Natal"),
        ("kzn", "KwaZulu-Natal"),
        ("Guateng", "Gauteng"),
        ("W.C.", "Western Cape"),
    ],
)
def test_province_mapped_to_canonical_list(raw, expected):
    assert normalise_province(raw, PROVINCES).value == expected


def test_unknown_province_flagged():
    result = normalise_province("Atlantis", PROVINCES)
    assert result.value is None and result.invalid


def test_dates_from_text_and_excel_serials():
    assert normalise_date("2025-09-29").value == "2025-09-29"
    assert normalise_date("45929").value == "2025-09-29"
    assert normalise_date("not a date").invalid
    assert normalise_date("2025-05-18 ; 2025-01-01").value == "2025-05-18"


def test_normalise_column_calls_the_library_once_per_distinct_value(monkeypatch):
    import sheetfill.refine.normalise as module

    calls = []

    def spy(text):
        calls.append(text)
        return normalise_email(text)

    monkeypatch.setattr(module, "normalise_email", spy)
    column = np.array(["A@X.CO.ZA", "a@x.co.za ", None, "bad@", "A@X.CO.ZA", "", "n/a"], dtype=object)
    values, joined, invalid = normalise_column(column, "email", {})
    assert list(values) == ["a@x.co.za", "a@x.co.za", None, None, "a@x.co.za", None, None]
    assert list(invalid) == [False, False, False, True, False, False, False]
    assert sorted(calls) == ["a@x.co.za", "bad@"]  # case/space variants share one call


def test_large_columns_give_the_same_result_in_parallel(monkeypatch):
    import sheetfill.refine.parallel as parallel

    phones = np.array([f"0{821234567 + i}" for i in range(30_000)] + ["12"], dtype=object)
    monkeypatch.setattr(parallel, "PARALLEL_MIN_COST", 0)
    monkeypatch.setenv("SHEETFILL_PROCESSES", "2")
    spread = normalise_column(phones, "phone", {})
    monkeypatch.setenv("SHEETFILL_PROCESSES", "1")
    single = normalise_column(phones, "phone", {})
    assert all((a == b).all() for a, b in zip(spread, single))
    assert spread[0][0] == "+27821234567" and spread[2][-1]


EMAIL_CASES = [
    "info@acme.co.za",
    "jane.smith+ops@x-y.co.za",
    "a@b.test",
    "a@b.localhost",
    "a@x.arpa",
    "a@b.c",
    "a--b@x.com",
    "a@xn--bcher-kva.ch",
    "ab@ab--c.com",
    "a@x.co.z1",
    "a.@x.com",
    ".a@x.com",
    "a..b@x.com",
    "a@" + "b" * 64 + ".com",
    "x" * 70 + "@y.com",
    "x" * 250 + "@y.com",
    "a@1.com",
    "a@-x.com",
    "a@x-.com",
]


@pytest.mark.parametrize("part", EMAIL_CASES)
def test_plain_email_fast_path_agrees_with_email_validator(part, monkeypatch):
    from email_validator import EmailNotValidError, validate_email

    from sheetfill.refine.contact_values import plain_email

    try:
        expected = validate_email(part, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        expected = None
    if plain_email(part):
        assert expected == part
    fast = normalise_email(part)
    assert fast == library_path(monkeypatch, normalise_email, "plain_email", lambda _: False, part)


def test_za_phone_fast_path_agrees_with_phonenumbers():
    import random

    import phonenumbers

    from sheetfill.refine.contact_values import _parse_single_phone

    rnd = random.Random(7)
    numbers = [f"{lead}{rnd.randrange(10**8):08d}" for lead in range(10, 100) for _ in range(20)]
    for national in numbers:
        for text in (f"0{national}", f"+27{national}", f"27{national}", national):
            parsed = phonenumbers.parse(text, "ZA")
            expected = (
                phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
                if phonenumbers.is_valid_number(parsed)
                else None
            )
            assert _parse_single_phone(text, "ZA") == expected, text


WEBSITE_CASES = [
    "acme.co.za",
    "www.www.acme.co.za",
    "acme.c0m",
    "acme.com.",
    "-acme.com",
    "acme-.com",
    "acme.com/path",
    "acme..com",
    "a" * 64 + ".com",
    "x.co.za?x=1",
]


@pytest.mark.parametrize("text", WEBSITE_CASES)
def test_plain_website_fast_path_agrees_with_urlsplit_path(text, monkeypatch):
    from sheetfill.refine.contact_values import PLAIN_HOST

    fast = normalise_website(text)
    if PLAIN_HOST.fullmatch(text):
        assert fast.value == f"https://{text}" and not fast.invalid
    assert fast == library_path(monkeypatch, normalise_website, "PLAIN_HOST", re.compile(r"(?!)"), text)


def test_the_fast_path_cases_reach_both_sides_of_each_fast_path():
    from sheetfill.refine.contact_values import PLAIN_HOST, plain_email

    assert {bool(PLAIN_HOST.fullmatch(t)) for t in WEBSITE_CASES} == {True, False}
    assert {plain_email(p) for p in EMAIL_CASES} == {True, False}
