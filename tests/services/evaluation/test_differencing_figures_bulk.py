"""The follow-up figures' groups in bulk (differencing.guard_figures, issue 18): the text kept
and the groups read back are exactly those of the line-by-line code they replace."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from selfcheck.evaluation import differencing


def _groups() -> dict[str, frozenset[int]]:
    rng = np.random.default_rng(7)
    return {
        "response": frozenset(rng.choice(5_000, 900, replace=False).tolist()),
        "kept": frozenset(rng.choice(5_000, 400, replace=False).tolist()),
        "kept:numerique": frozenset(rng.choice(5_000, 300, replace=False).tolist()),
        "kept:é": frozenset({4, 5, 6}),  # a name that is not ASCII
        "kept:x": frozenset(),  # empty: no line
    }


def _arrays(groups: dict[str, frozenset[int]]) -> dict[str, npt.NDArray[np.bytes_]]:
    hasher = differencing.Hasher("secret", 3)
    return {
        name: np.unique(hasher.person_hexes(np.array(sorted(people), dtype=np.int64)))
        for name, people in groups.items()
    }


def test_the_text_kept_is_the_sorted_lines_as_before() -> None:
    groups = _groups()
    hashes = dict(
        zip(range(5_000), differencing.Hasher("secret", 3).persons(np.arange(5_000)), strict=True)
    )
    before = sorted(f"{name}|{hashes[p]}" for name, people in groups.items() for p in people)
    text, count = differencing._figures_text(_arrays(groups))
    assert text == "\n".join(before)
    assert count == len(before)


def test_the_groups_read_back_are_those_read_line_by_line() -> None:
    text, _count = differencing._figures_text(_arrays(_groups()))
    parsed = differencing._parsed_figures(text)
    slow = differencing._split_figures(text)
    assert parsed.keys() == slow.keys() == {"response", "kept", "kept:numerique", "kept:é"}
    for name, people in slow.items():
        assert set(parsed[name].astype(str).tolist()) == set(people)
        assert list(parsed[name]) == sorted(parsed[name])


def test_lines_out_of_order_or_of_another_shape_are_read_right() -> None:
    shuffled = "b|" + "1" * 24 + "\na|" + "2" * 24 + "\nb|" + "3" * 24 + "\nab|" + "4" * 24
    parsed = differencing._parsed_figures(shuffled)
    assert {name: set(v.tolist()) for name, v in parsed.items()} == {
        "a": {b"2" * 24},
        "b": {b"1" * 24, b"3" * 24},
        "ab": {b"4" * 24},
    }
    other = "kept|short\nkept|" + "5" * 24  # not a 24-digit hash: read line by line
    assert {name: set(v.tolist()) for name, v in differencing._parsed_figures(other).items()} == {
        "kept": {b"short", b"5" * 24}
    }
    assert differencing._parsed_figures("") == {}
