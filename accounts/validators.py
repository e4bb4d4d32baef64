"""The unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters with a check digit."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 characters: no I, O, S, V, Z
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_check_character(first17: str) -> str:
    """The 18th character for the first 17 of a code."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def uscc_problem(code: str) -> str | None:
    """Why ``code`` is not a valid USCC, or None when it is."""
    if len(code) != 18:
        return gettext("must be 18 characters, not %(length)s") % {"length": len(code)}
    bad = sorted({c for c in code if c not in USCC_ALPHABET})
    if bad:
        return gettext("contains characters not allowed in a USCC: %(characters)s") % {"characters": "".join(bad)}
    expected = uscc_check_character(code[:17])
    if code[17] != expected:
        return gettext("check character is %(given)s, expected %(expected)s") % {
            "given": code[17],
            "expected": expected,
        }
    return None


def invalid_uscc_message(problem: str) -> str:
    return gettext("Invalid unified social credit code: %(problem)s.") % {"problem": problem}


def validate_uscc(code: str) -> None:
    problem = uscc_problem(code)
    if problem:
        raise ValidationError(invalid_uscc_message(problem), code="invalid_uscc")


def make_uscc(body17: str) -> str:
    """Complete a 17-character body with its check character (for the demo and tests)."""
    if len(body17) != 17 or any(c not in USCC_ALPHABET for c in body17):
        raise ValueError("the body must be 17 USCC characters")
    return body17 + uscc_check_character(body17)
