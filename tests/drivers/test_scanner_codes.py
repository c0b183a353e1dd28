"""Barcode validation: characters, length, and EAN-8 / UPC-A / EAN-13 check digits."""

from __future__ import annotations

import random

import pytest

from drivers.scanner.codes import (CheckDigitMode, CodeRules, InvalidCode, RejectReason,
                                   gtin_check_digit, has_valid_check_digit, validate_code)

VALID_GTINS = ["4006381333931", "5901234123457", "96385074", "036000291452", "012345678905"]


@pytest.mark.parametrize("body, digit", [("400638133393", 1), ("590123412345", 7),
                                         ("9638507", 4), ("03600029145", 2), ("00000000000", 0)])
def test_gtin_check_digit_of_published_examples(body, digit):
    assert gtin_check_digit(body) == digit


def test_check_digit_catches_every_single_digit_error():
    rng = random.Random(7)
    for length in (8, 12, 13):
        for _ in range(50):
            body = "".join(rng.choice("0123456789") for _ in range(length - 1))
            good = body + str(gtin_check_digit(body))
            assert has_valid_check_digit(good)
            position = rng.randrange(length)
            wrong = str((int(good[position]) + rng.randrange(1, 10)) % 10)
            assert not has_valid_check_digit(good[:position] + wrong + good[position + 1:])


@pytest.mark.parametrize("code", VALID_GTINS + ["ITEM-0042", "B07XJ8C8F5", "sku_9.1", "1234"])
def test_valid_codes_pass_unchanged(code):
    assert validate_code(code) == code


@pytest.mark.parametrize("code, reason", [
    ("4006381333932", RejectReason.BAD_CHECK_DIGIT),
    ("96385075", RejectReason.BAD_CHECK_DIGIT),
    ("036000291453", RejectReason.BAD_CHECK_DIGIT),
    ("", RejectReason.EMPTY),
    ("AB1", RejectReason.TOO_SHORT),
    ("A" * 33, RejectReason.TOO_LONG),
    ("ITEM 42", RejectReason.ILLEGAL_CHARACTER),
    ("ABC$1", RejectReason.ILLEGAL_CHARACTER),
    ("ITEM-٤٢٤٢", RejectReason.ILLEGAL_CHARACTER),
    ("12\x0034", RejectReason.ILLEGAL_CHARACTER),
])
def test_bad_codes_are_rejected_with_their_reason(code, reason):
    with pytest.raises(InvalidCode) as raised:
        validate_code(code)
    assert raised.value.reason is reason


def test_bad_check_digit_message_names_the_expected_digit():
    with pytest.raises(InvalidCode, match="check digit is 1"):
        validate_code("4006381333932")


def test_ean_upc_mode_accepts_only_valid_gtins():
    rules = CodeRules(check_digit=CheckDigitMode.EAN_UPC)
    for code in VALID_GTINS:
        assert validate_code(code, rules) == code
    for code, reason in [("ITEM-0042", RejectReason.NOT_EAN_UPC),
                         ("1234567", RejectReason.NOT_EAN_UPC),
                         ("4006381333932", RejectReason.BAD_CHECK_DIGIT)]:
        with pytest.raises(InvalidCode) as raised:
            validate_code(code, rules)
        assert raised.value.reason is reason


def test_off_mode_skips_check_digits_but_not_characters_or_length():
    rules = CodeRules(check_digit=CheckDigitMode.OFF)
    assert validate_code("4006381333932", rules) == "4006381333932"
    with pytest.raises(InvalidCode):
        validate_code("12 34", rules)


def test_custom_rules():
    rules = CodeRules(allowed_pattern=r"[0-9]", min_length=6, max_length=6,
                      check_digit=CheckDigitMode.OFF)
    assert validate_code("123456", rules) == "123456"
    for code in ("12345", "1234567", "12345A"):
        with pytest.raises(InvalidCode):
            validate_code(code, rules)


def test_inconsistent_rules_are_refused():
    with pytest.raises(ValueError):
        CodeRules(min_length=10, max_length=5)
