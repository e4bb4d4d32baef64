"""The unified social credit code: 18 characters from a 31-character alphabet with a check character."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from accounts.validators import USCC_ALPHABET, make_uscc, uscc_check_character, uscc_problem, validate_uscc

# Complete codes written out in full, so the check is not only make_uscc agreeing with itself.
KNOWN_VALID = ["91110000802100433B", "911100001000079554", "91310000MA1FL1MMXL"]


@pytest.mark.parametrize("code", KNOWN_VALID)
def test_known_codes_are_valid(code):
    assert uscc_problem(code) is None
    validate_uscc(code)


@pytest.mark.parametrize("body", ["91110000MA0000005", "11100000MB0000001", "9111011271092188X"])
def test_make_uscc_completes_a_valid_code(body):
    code = make_uscc(body)

    assert len(code) == 18
    assert code[:17] == body
    assert uscc_problem(code) is None


def test_every_wrong_check_character_is_refused():
    code = make_uscc("91110000MA0000005")
    wrong = [c for c in USCC_ALPHABET if c != code[17]]

    problems = [uscc_problem(code[:17] + c) for c in wrong]

    assert len(wrong) == 30
    assert all(p == f"check character is {c}, expected {code[17]}" for p, c in zip(problems, wrong, strict=True))


def test_check_character_weights():
    # All zeros weigh nothing: the check character is 0.
    assert uscc_check_character("0" * 17) == "0"
    # A single 1 in the first position weighs 1: (31 - 1) % 31 = 30, the last character of the alphabet.
    assert uscc_check_character("1" + "0" * 16) == USCC_ALPHABET[30] == "Y"


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("91110000MA000000", "must be 18 characters, not 16"),
        ("91110000MA00000051X", "must be 18 characters, not 19"),
        ("91110000MI0000005O", "contains characters not allowed in a USCC: IO"),
        ("91110000ma00000051", "contains characters not allowed in a USCC: am"),
    ],
)
def test_malformed_codes_are_refused(code, problem):
    assert uscc_problem(code) == problem
    with pytest.raises(ValidationError) as refused:
        validate_uscc(code)
    assert refused.value.code == "invalid_uscc"


def test_make_uscc_refuses_a_bad_body():
    with pytest.raises(ValueError, match="17 USCC characters"):
        make_uscc("91110000MA000000S")
