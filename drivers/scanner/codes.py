"""Is a scanned line a usable item identifier? Character set, length, and EAN/UPC check digits.

A misread barcode that slips through files a capture under the wrong item and mixes
up its reference gallery, so a doubtful scan is rejected with its reason and the
associate scans again.

Check-digit modes:

* ``auto`` — a code of only digits with the length of an EAN-8, UPC-A (12) or EAN-13 must
  carry a valid check digit; anything else (internal item identifiers) is checked only
  for characters and length.
* ``ean_upc`` — only EAN-8, UPC-A and EAN-13 with a valid check digit are accepted.
* ``off`` — characters and length only.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

GTIN_LENGTHS = (8, 12, 13)


class CheckDigitMode(enum.Enum):
    AUTO = "auto"
    EAN_UPC = "ean_upc"
    OFF = "off"


class RejectReason(enum.Enum):
    EMPTY = "empty"
    NOT_TEXT = "not text"
    ILLEGAL_CHARACTER = "illegal character"
    TOO_SHORT = "too short"
    TOO_LONG = "too long"
    NOT_EAN_UPC = "not an EAN/UPC code"
    BAD_CHECK_DIGIT = "bad check digit"


class InvalidCode(ValueError):
    """A scan that is not a usable item identifier; ``reason`` says why."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class CodeRules:
    """What a valid item identifier looks like at this station."""

    allowed_pattern: str = r"[A-Za-z0-9._\-]"
    min_length: int = 4
    max_length: int = 32
    check_digit: CheckDigitMode = CheckDigitMode.AUTO

    def __post_init__(self) -> None:
        if not 1 <= self.min_length <= self.max_length:
            raise ValueError(f"need 1 <= min_length <= max_length, got "
                             f"{self.min_length}..{self.max_length}")
        re.compile(self.allowed_pattern)


def gtin_check_digit(body: str) -> int:
    """The check digit for the digits before it (GS1: weights 3,1,3,… from the right)."""
    if not body.isdigit() or not body.isascii():
        raise ValueError(f"check digit needs digits only, got {body!r}")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def has_valid_check_digit(code: str) -> bool:
    """True for an EAN-8, UPC-A or EAN-13 whose last digit matches the rest."""
    return (code.isascii() and code.isdigit() and len(code) in GTIN_LENGTHS
            and gtin_check_digit(code[:-1]) == int(code[-1]))


def validate_code(code: str, rules: CodeRules = CodeRules()) -> str:
    """Return ``code`` if it is a valid item identifier, else raise :class:`InvalidCode`."""
    if not code:
        raise InvalidCode(RejectReason.EMPTY, "empty scan")
    illegal = sorted({c for c in code if not re.fullmatch(rules.allowed_pattern, c)})
    if illegal:
        raise InvalidCode(RejectReason.ILLEGAL_CHARACTER,
                          f"{code!r} contains {''.join(illegal)!r}")
    if len(code) < rules.min_length:
        raise InvalidCode(RejectReason.TOO_SHORT, f"{code!r} has {len(code)} characters, "
                                                  f"at least {rules.min_length} needed")
    if len(code) > rules.max_length:
        raise InvalidCode(RejectReason.TOO_LONG, f"{code!r} has {len(code)} characters, "
                                                 f"at most {rules.max_length} allowed")
    looks_like_gtin = code.isascii() and code.isdigit() and len(code) in GTIN_LENGTHS
    if rules.check_digit is CheckDigitMode.EAN_UPC and not looks_like_gtin:
        raise InvalidCode(RejectReason.NOT_EAN_UPC,
                          f"{code!r} is not 8, 12 or 13 digits")
    if rules.check_digit is not CheckDigitMode.OFF and looks_like_gtin \
            and not has_valid_check_digit(code):
        expected = gtin_check_digit(code[:-1])
        raise InvalidCode(RejectReason.BAD_CHECK_DIGIT,
                          f"{code!r} ends in {code[-1]}, its check digit is {expected}")
    return code
