"""Beneficiary codes: random, unambiguous, self-checking, forgiving when typed back."""

from __future__ import annotations

import random
import re

import pytest

from selfcheck.platform import codes
from selfcheck.platform.codes import ALPHABET, CodeProblem, InvalidCode

CODE_PATTERN = re.compile(r"^[0-9A-HJKMNP-TV-Z]{9}$")


def make_code(payload: str) -> str:
    return payload + codes.check_character(payload)


def sample_codes(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [make_code("".join(rng.choice(ALPHABET) for _ in range(8))) for _ in range(count)]


def problem(raw: str) -> CodeProblem:
    with pytest.raises(InvalidCode) as caught:
        codes.normalise(raw)
    return caught.value.problem


def test_alphabet_is_crockford_base32() -> None:
    assert len(ALPHABET) == 32 == len(set(ALPHABET))
    assert not set("ILOU") & set(ALPHABET)


def test_generated_codes_have_nine_crockford_characters_and_a_valid_check() -> None:
    generated = {codes.generate_code() for _ in range(500)}
    assert len(generated) == 500  # 40 random bits: no collision in a small sample
    for code in generated:
        assert CODE_PATTERN.match(code), code
        assert codes.normalise(code) == code
        assert code[-1] == codes.check_character(code[:-1])


def test_display_groups_by_three_and_round_trips() -> None:
    code = make_code("K7M2QX9R")
    assert codes.display(code) == f"K7M-2QX-9R{code[-1]}"
    for code in sample_codes(50):
        shown = codes.display(code)
        assert re.fullmatch(r"\w{3}-\w{3}-\w{3}", shown)
        assert codes.normalise(shown) == code


def test_spoken_form_reads_one_character_at_a_time() -> None:
    code = make_code("ABC12345")
    assert codes.spoken(code) == f"A B C, 1 2 3, 4 5 {code[-1]}"


@pytest.mark.parametrize(
    "typed",
    [
        "{lower}",
        "{spaced}",
        "  {display}  ",
        "{display_lower}",
        "{dotted}",
        "{tabbed}",
    ],
)
def test_normalise_forgives_case_spaces_dashes_and_dots(typed: str) -> None:
    code = make_code("K7M2QX9R")
    variants = {
        "lower": code.lower(),
        "spaced": " ".join(code),
        "display": codes.display(code),
        "display_lower": codes.display(code).lower(),
        "dotted": ".".join(code[i : i + 3] for i in range(0, 9, 3)),
        "tabbed": code[:4] + "\t" + code[4:] + "\n",
    }
    assert codes.normalise(typed.format(**variants)) == code


def test_letters_o_i_l_are_read_as_digits() -> None:
    code = make_code("01010ABC")
    assert code.startswith("01010")
    assert codes.normalise("OIOLO" + code[5:]) == code
    assert codes.normalise("oiolo" + code[5:].lower()) == code


@pytest.mark.parametrize("raw", ["", "   ", "---", " - . "])
def test_empty(raw: str) -> None:
    assert problem(raw) is CodeProblem.EMPTY


@pytest.mark.parametrize("raw", ["ABC", "K7M-2QX-9R", "K7M-2QX-9RTT", "0" * 20])
def test_length(raw: str) -> None:
    assert problem(raw) is CodeProblem.LENGTH


@pytest.mark.parametrize(
    "raw", ["K7M-2QX-9RU", "K7M-2QX-9R!", "K7M_2QX_9RT", "é7M2QX9RT", "K7M2QX9R٣"]
)
def test_character(raw: str) -> None:
    assert problem(raw) is CodeProblem.CHARACTER


def test_check_character_mismatch() -> None:
    code = make_code("K7M2QX9R")
    wrong = ALPHABET[(ALPHABET.index(code[-1]) + 1) % 32]
    assert problem(code[:-1] + wrong) is CodeProblem.CHECK


def test_invalid_code_carries_its_problem() -> None:
    error = InvalidCode(CodeProblem.LENGTH)
    assert error.problem is CodeProblem.LENGTH
    assert str(error) == "length"
    assert isinstance(error, ValueError)


@pytest.mark.parametrize("code", sample_codes(12, seed=2023))
def test_every_single_substitution_is_detected(code: str) -> None:
    for position in range(len(code)):
        for char in ALPHABET:
            if char == code[position]:
                continue
            typo = code[:position] + char + code[position + 1 :]
            assert problem(typo) is CodeProblem.CHECK, (code, position, char)


def test_adjacent_transpositions_are_detected_except_zero_and_z() -> None:
    """Luhn mod 32 misses only swaps of the symbols 0 and 31 (here '0' and 'Z')."""
    checked = detected = 0
    for code in sample_codes(1500, seed=11):
        for position in range(len(code) - 1):
            a, b = code[position], code[position + 1]
            if a == b:
                continue
            swapped = code[:position] + b + a + code[position + 2 :]
            checked += 1
            try:
                codes.normalise(swapped)
            except InvalidCode as exc:
                assert exc.problem is CodeProblem.CHECK
                detected += 1
            else:
                assert {a, b} == {"0", "Z"}, (code, position)
    assert detected / checked > 0.99


def test_check_character_of_the_known_example_is_stable() -> None:
    # Pin the algorithm: changing it would make every printed code look like a typo.
    assert codes.check_character("00000000") == "0"
    assert codes.check_character("00000001") == ALPHABET[30]
    assert codes.check_character("K7M2QX9R") == "V"
    assert codes.check_character("12345678") == "8"
    assert codes.normalise("k7m 2qx 9rv") == "K7M2QX9RV"
