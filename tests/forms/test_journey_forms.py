"""The start form and the code form."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from werkzeug.datastructures import MultiDict

from selfcheck.journey.forms import CODE_MESSAGES, CodeForm, StartForm
from selfcheck.platform import codes


@pytest.fixture
def request_context(app: Flask) -> Iterator[None]:
    with app.test_request_context():
        yield


def code_form(raw: str) -> CodeForm:
    form = CodeForm(MultiDict({"code": raw}))
    form.validate()
    return form


@pytest.mark.usefixtures("request_context")
def test_code_form_normalises_a_good_code() -> None:
    code = "K7M2QX9R" + codes.check_character("K7M2QX9R")
    form = code_form(codes.display(code).lower())
    assert form.errors == {}
    assert form.code.data == code


@pytest.mark.usefixtures("request_context")
@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", codes.CodeProblem.EMPTY),
        ("K7M", codes.CodeProblem.LENGTH),
        ("K7M-2QX-9R!", codes.CodeProblem.CHARACTER),
        ("K7M-2QX-9RZ", codes.CodeProblem.CHECK),  # the check character is V
    ],
)
def test_code_form_explains_each_problem(raw: str, problem: codes.CodeProblem) -> None:
    form = code_form(raw)
    assert form.code.errors == [str(CODE_MESSAGES[problem])]


def test_every_code_problem_has_a_message() -> None:
    assert set(CODE_MESSAGES) == set(codes.CodeProblem)


@pytest.mark.usefixtures("request_context")
@pytest.mark.parametrize("form", ["before", "retro"])
def test_start_form_accepts_the_startable_forms(form: str) -> None:
    start = StartForm(MultiDict({"form": form, "token": "abcdefghijklmnop-_12"}))
    assert start.validate(), start.errors


@pytest.mark.usefixtures("request_context")
@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"form": "after", "token": "abcdefghijklmnop"}, "form"),
        ({"form": "", "token": "abcdefghijklmnop"}, "form"),
        ({"form": "before", "token": "short"}, "token"),
        ({"form": "before", "token": "x" * 65}, "token"),
        ({"form": "before", "token": "abcdefghijklmnop<script>"}, "token"),
        ({"form": "before"}, "token"),
    ],
)
def test_start_form_refuses_bad_data(data: dict[str, str], field: str) -> None:
    start = StartForm(MultiDict(data))
    assert not start.validate()
    assert list(start.errors) == [field]
