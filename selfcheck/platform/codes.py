"""Pseudonymous beneficiary codes: 8 random Crockford base32 characters (40 bits) + 1 check.

Crockford's alphabet drops I, L, O and U, so a code copied by hand from paper is not
ambiguous; we read O as 0 and I/L as 1 anyway. The check character uses the Luhn mod N
algorithm over the same 32 symbols (N = 32), which catches every single mistyped character
and most swaps of two neighbours, so a typo is reported as a typo, not as "unknown code".
Shown as three groups of three (K7M-2QX-9RT) for reading aloud and copying.
"""

from __future__ import annotations

import enum
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BASE = len(ALPHABET)  # 32
RANDOM_CHARS = 8  # 8 x 5 bits = 40 bits of randomness
CODE_LENGTH = RANDOM_CHARS + 1
GROUP = 3
_VALUES = {char: index for index, char in enumerate(ALPHABET)}
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


class CodeProblem(enum.Enum):
    EMPTY = "empty"
    LENGTH = "length"
    CHARACTER = "character"
    CHECK = "check"


class InvalidCode(ValueError):
    def __init__(self, problem: CodeProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


def check_character(payload: str) -> str:
    """Luhn mod 32 check symbol for `payload` (already normalised)."""
    factor = 2
    total = 0
    for char in reversed(payload):
        addend = factor * _VALUES[char]
        factor = 1 if factor == 2 else 2
        total += addend // BASE + addend % BASE
    return ALPHABET[(BASE - total % BASE) % BASE]


def generate_code() -> str:
    payload = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_CHARS))
    return payload + check_character(payload)


def normalise(raw: str) -> str:
    """Upper-case, drop spaces and dashes, read O as 0 and I/L as 1; validate; or raise."""
    cleaned = "".join(raw.split()).replace("-", "").replace(".", "").upper().translate(_READ_AS)
    if not cleaned:
        raise InvalidCode(CodeProblem.EMPTY)
    if any(char not in _VALUES for char in cleaned):
        raise InvalidCode(CodeProblem.CHARACTER)
    if len(cleaned) != CODE_LENGTH:
        raise InvalidCode(CodeProblem.LENGTH)
    if check_character(cleaned[:-1]) != cleaned[-1]:
        raise InvalidCode(CodeProblem.CHECK)
    return cleaned


def normalise_part(raw: str) -> str:
    """A piece of a code typed to search for it, cleaned like `normalise` (no check
    character to verify); "" for nothing typed. Raises InvalidCode for a character that is
    in no code, or for more characters than a code has."""
    cleaned = "".join(raw.split()).replace("-", "").replace(".", "").upper().translate(_READ_AS)
    if any(char not in _VALUES for char in cleaned):
        raise InvalidCode(CodeProblem.CHARACTER)
    if len(cleaned) > CODE_LENGTH:
        raise InvalidCode(CodeProblem.LENGTH)
    return cleaned


def display(code: str) -> str:
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def spoken(code: str) -> str:
    """Text for screen readers: one character at a time, groups separated by commas."""
    return ", ".join(" ".join(code[i : i + GROUP]) for i in range(0, len(code), GROUP))
