"""The plain path's wide rows (XLSX, SAV, DTA, CSV not in UTF-8), round 19 (issue 18, part
4): the head and each form's details prepared once per decisions dict
(`WideCoder.row_released`), and a form's answers made at once when each variable comes once
(`export._add_answers`, `stream_people`): the same rows as before."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from selfcheck.evaluation import export
from selfcheck.evaluation.export import Layout, Shape, WideCoder
from selfcheck.evaluation.writers import WRITERS
from selfcheck.questionnaire.model import Definition
from tests.services.evaluation.test_export_speed import _drawn_person, _released


@pytest.mark.usefixtures("request_context")
@pytest.mark.parametrize("free_text", [False, True])
def test_rows_from_each_decisions_dict_once_are_the_rows(
    definition: Definition, tmp_path: Path, free_text: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "CACHE_MAX", 3)  # the memory of dicts cleared along the way
    layout = Layout(definition, Shape.WIDE, free_text)
    rng = random.Random(19)
    people = [_drawn_person(definition, rng, number) for number in range(25)]
    shared = [_released(rng) for _ in range(5)]
    writers = [WRITERS[code](tmp_path / code, layout.columns, "t") for code in WRITERS]
    try:
        for prepare in [lambda value: value] + [writer.prepare for writer in writers]:
            coder = WideCoder(layout, prepare)
            for number, person in enumerate(people * 2):
                # Dicts shared by many people, and some of a person's own.
                released = dict(rng.choice(shared)) if number % 4 == 0 else rng.choice(shared)
                pseudonym = f"p{number}"
                head = layout.qi_cells(pseudonym, released)
                expected = coder.row(person, head, released)
                assert coder.row_released(person, pseudonym, released) == expected
            assert len(coder.by_released) <= 3
    finally:
        for writer in writers:
            writer.close()


def _added_one_at_a_time(
    answers: dict[str, list[str]], names: Sequence[str | None], values: Sequence[str]
) -> None:
    """`stream_people`'s loop as it was at 04f1da0."""
    for variable, value in zip(names, values, strict=True):
        if variable is not None:
            given = answers.get(variable)
            if given is None:
                answers[variable] = [value]
            else:
                given.append(value)


@pytest.mark.parametrize(
    ("start", "names", "values"),
    [
        ({}, ["a", "b", "c"], ["1", "2", "3"]),
        ({}, ["a", "b", "b", "c"], ["1", "2", "x", "3"]),  # a multiple choice
        ({}, [None], [None]),  # the outer join's empty row (SQLite)
        ({}, [], []),
        ({"a": ["0"]}, ["a", "b"], ["1", "2"]),  # a variable already there
        ({"z": ["0"]}, ["a", "b"], ["1", "2"]),
    ],
)
def test_answers_added_at_once_as_one_at_a_time(
    start: dict[str, list[str]], names: list[str | None], values: list[str]
) -> None:
    at_once = {name: list(given) for name, given in start.items()}
    one_by_one = {name: list(given) for name, given in start.items()}
    export._add_answers(at_once, names, values)
    _added_one_at_a_time(one_by_one, names, values)
    assert at_once == one_by_one
    assert list(at_once) == list(one_by_one)
    with pytest.raises(ValueError):
        export._add_answers({}, ["a", "b"], ["1"])
