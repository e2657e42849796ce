"""Page validation: one field type per question type, values checked against the definition."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from werkzeug.datastructures import MultiDict

from selfcheck.journey.registry import FIELD_FACTORIES, PageFormFactory
from selfcheck.questionnaire import Definition, FormKind, Variable, parse_definition
from selfcheck.questionnaire.answer_types import ANSWER_TYPES
from tests.questionnaire.test_loader_errors import MINIMAL


@pytest.fixture
def factory(app: Flask) -> Iterator[PageFormFactory]:
    with app.test_request_context():
        yield PageFormFactory()


def variables(definition: Definition, form: FormKind, *codes: str) -> list[Variable]:
    wanted = {v.code: v for v in definition.variables(form)}
    return [wanted[code] for code in codes]


def check(
    factory: PageFormFactory, chosen: list[Variable], data: list[tuple[str, str]]
) -> tuple[dict[str, tuple[str, ...]], dict[str, list[str]]]:
    return factory.validate(chosen, MultiDict(data))


def test_every_answer_type_has_a_field() -> None:
    assert set(FIELD_FACTORIES) == {type(answer_type) for answer_type in ANSWER_TYPES.values()}


def test_form_classes_are_cached_per_variable_set(
    factory: PageFormFactory, definition: Definition
) -> None:
    chosen = variables(definition, FormKind.BEFORE, "ASSIST")
    assert factory.form_class(chosen) is factory.form_class(tuple(chosen))
    other = variables(definition, FormKind.BEFORE, "AGE", "GENDER")
    assert factory.form_class(other) is not factory.form_class(chosen)


# --- single choice and scales ------------------------------------------------------------


def test_single_choice(factory: PageFormFactory, definition: Definition) -> None:
    chosen = variables(definition, FormKind.BEFORE, "AGE", "GENDER")
    values, errors = check(factory, chosen, [("AGE", "soixante_dix_plus")])
    assert values == {"AGE": ("soixante_dix_plus",), "GENDER": ()}
    assert errors == {}


def test_required_single_choice(factory: PageFormFactory, definition: Definition) -> None:
    chosen = variables(definition, FormKind.BEFORE, "ASSIST")
    values, errors = check(factory, chosen, [])
    assert values == {"ASSIST": ()}
    assert errors == {"ASSIST": ["Choisissez une réponse."]}
    _values, errors = check(factory, chosen, [("ASSIST", "")])
    assert errors == {"ASSIST": ["Choisissez une réponse."]}


@pytest.mark.parametrize("value", ["pirate", "SEUL", " seul", "1", "seul\x00"])
def test_single_choice_outside_the_options(
    factory: PageFormFactory, definition: Definition, value: str
) -> None:
    chosen = variables(definition, FormKind.BEFORE, "ASSIST")
    _values, errors = check(factory, chosen, [("ASSIST", value)])
    assert errors == {
        "ASSIST": ["Cette réponse ne fait pas partie des choix proposés. Choisissez dans la liste."]
    }


def test_scale_of_the_retro_pair(factory: PageFormFactory, definition: Definition) -> None:
    chosen = variables(definition, FormKind.RETRO, "T01_PRE", "T01")
    values, errors = check(factory, chosen, [("T01_PRE", "1"), ("T01", "9")])
    assert values == {"T01_PRE": ("1",), "T01": ("9",)}
    assert errors == {}
    _values, errors = check(factory, chosen, [("T01_PRE", "5"), ("T01", "3")])
    assert list(errors) == ["T01_PRE"]


# --- multiple choice ---------------------------------------------------------------------


def test_multiple_choice(factory: PageFormFactory, definition: Definition) -> None:
    chosen = variables(definition, FormKind.BEFORE, "DEVICES")
    values, errors = check(factory, chosen, [("DEVICES", "smartphone"), ("DEVICES", "fixe")])
    assert values == {"DEVICES": ("smartphone", "fixe")}
    assert errors == {}
    values, errors = check(factory, chosen, [])
    assert values == {"DEVICES": ()} and errors == {}


@pytest.mark.parametrize(
    "data",
    [
        [("DEVICES", "smartphone"), ("DEVICES", "minitel")],
        [("DEVICES", "smartphone"), ("DEVICES", "smartphone")],
    ],
)
def test_multiple_choice_refuses_unknown_or_repeated_values(
    factory: PageFormFactory, definition: Definition, data: list[tuple[str, str]]
) -> None:
    _values, errors = check(factory, variables(definition, FormKind.BEFORE, "DEVICES"), data)
    assert errors["DEVICES"] == [
        "Cette réponse ne fait pas partie des choix proposés. Choisissez dans la liste."
    ]


def test_exclusive_option_must_stand_alone(
    factory: PageFormFactory, definition: Definition
) -> None:
    chosen = variables(definition, FormKind.BEFORE, "DEVICES")
    _values, errors = check(factory, chosen, [("DEVICES", "aucun"), ("DEVICES", "tablette")])
    [message] = errors["DEVICES"]
    assert "« Aucun de ces appareils »" in message
    values, errors = check(factory, chosen, [("DEVICES", "aucun")])
    assert values == {"DEVICES": ("aucun",)} and errors == {}


@pytest.mark.parametrize(
    ("limit", "message"), [(1, "Cochez une seule réponse."), (2, "Cochez 2 réponses au plus.")]
)
def test_max_choices(factory: PageFormFactory, limit: int, message: str) -> None:
    text = MINIMAL.replace(
        '            label: "Lesquels ?"',
        f'            label: "Lesquels ?"\n            max_choices: {limit}',
    )
    text = text.replace("- {code: rien, label: Rien, exclusive: true}", "- {code: c, label: C}")
    definition = parse_definition(text)
    chosen = variables(definition, FormKind.AFTER, "WHICH")
    _values, errors = check(factory, chosen, [("WHICH", "a"), ("WHICH", "b"), ("WHICH", "c")])
    assert errors == {"WHICH": [message]}
    values, errors = check(factory, chosen, [("WHICH", "b")])
    assert errors == {} and values == {"WHICH": ("b",)}


# --- numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"), [("6", "6"), (" 12 ", "12"), ("007", "7"), ("200", "200"), ("", None)]
)
def test_number_accepted(
    factory: PageFormFactory, definition: Definition, raw: str, clean: str | None
) -> None:
    values, errors = check(
        factory, variables(definition, FormKind.AFTER, "SESSIONS"), [("SESSIONS", raw)]
    )
    assert errors == {}
    assert values == {"SESSIONS": (clean,) if clean else ()}


@pytest.mark.parametrize("raw", ["0", "201", "1000000"])
def test_number_out_of_range(factory: PageFormFactory, definition: Definition, raw: str) -> None:
    _values, errors = check(
        factory, variables(definition, FormKind.AFTER, "SESSIONS"), [("SESSIONS", raw)]
    )
    assert errors == {"SESSIONS": ["Écrivez un nombre entre 1 et 200."]}


@pytest.mark.parametrize("raw", ["trois", "-3", "3.5", "1e3", "٣", "３", "12345678901", "3 4"])
def test_number_not_a_whole_number(
    factory: PageFormFactory, definition: Definition, raw: str
) -> None:
    _values, errors = check(
        factory, variables(definition, FormKind.AFTER, "SESSIONS"), [("SESSIONS", raw)]
    )
    assert errors == {"SESSIONS": ["Écrivez un nombre entier, en chiffres, par exemple 3."]}


# --- free text ---------------------------------------------------------------------------


def test_text_is_stripped_and_keeps_line_breaks(
    factory: PageFormFactory, definition: Definition
) -> None:
    chosen = variables(definition, FormKind.AFTER, "COMMENT")
    values, errors = check(factory, chosen, [("COMMENT", "  Merci !\r\nÀ bientôt\t ")])
    assert errors == {}
    assert values == {"COMMENT": ("Merci !\r\nÀ bientôt",)}
    values, errors = check(factory, chosen, [("COMMENT", "   ")])
    assert values == {"COMMENT": ()} and errors == {}


@pytest.mark.parametrize("raw", ["a\x00b", "bip\x07", "esc\x1b[31m", "del\x7f", "c\x85d", "\x00"])
def test_text_with_control_characters_is_refused(
    factory: PageFormFactory, definition: Definition, raw: str
) -> None:
    _values, errors = check(
        factory, variables(definition, FormKind.AFTER, "COMMENT"), [("COMMENT", raw)]
    )
    assert errors == {"COMMENT": ["Ce texte contient des caractères qui ne sont pas acceptés."]}


def test_text_length_limit(factory: PageFormFactory, definition: Definition) -> None:
    chosen = variables(definition, FormKind.AFTER, "COMMENT")
    _values, errors = check(factory, chosen, [("COMMENT", "é" * 500)])
    assert errors == {}
    _values, errors = check(factory, chosen, [("COMMENT", "é" * 501)])
    assert errors == {"COMMENT": ["Votre texte est trop long : 500 caractères au plus."]}


def test_fields_not_on_the_page_are_ignored(
    factory: PageFormFactory, definition: Definition
) -> None:
    chosen = variables(definition, FormKind.BEFORE, "ASSIST")
    values, errors = check(factory, chosen, [("ASSIST", "seul"), ("T01", "4"), ("csrf_token", "x")])
    assert values == {"ASSIST": ("seul",)}
    assert errors == {}
