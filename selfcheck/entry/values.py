"""Reading what was typed: posted values, the ones that apply, the ones not typed yet."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from selfcheck.journey import operations as journey
from selfcheck.journey.registry import MSG_NOT_AN_OPTION, PageFormFactory
from selfcheck.questionnaire.answer_types import Problem
from selfcheck.questionnaire.model import (
    Definition,
    FormKind,
    Variable,
)

Values = Mapping[str, Sequence[str]]
Answers = dict[str, tuple[str, ...]]

MSG_BOTH = _l("Choisissez soit une réponse, soit « Sans réponse », pas les deux.")
# What the entry screen says when what was typed cannot be read (AnswerType.read_entry).
ENTRY_MESSAGES: Mapping[Problem, object] = {
    Problem.NO_ANSWER_NOT_ALONE: MSG_BOTH,
    Problem.SEVERAL: MSG_NOT_AN_OPTION,
}
MSG_NOT_TYPED = _l("Pas encore saisie : tapez la réponse, ou 0 si la personne n'a pas répondu.")

# --- reading what was typed ------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    """Posted values: `values` holds the typed variables (valid or not, as posted when not)."""

    values: Answers
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.errors


_FORMS = PageFormFactory()  # one small cached form class per variable: a bounded cache


def parse_values(definition: Definition, form: FormKind, posted: MultiDict[str, str]) -> Parsed:
    """Validate what was typed for every variable of the form (nothing else is read).

    Empty means "not typed yet", never an error here; "Sans réponse" must stand alone; other
    values go through the field registry (options of the scale, number bounds, text length).
    """
    values: Answers = {}
    errors: dict[str, list[str]] = {}
    for variable in definition.variables(form):
        typed = variable.item.type.read_entry(posted.getlist(variable.code))
        given = typed.values
        if typed.problem is not None:
            errors[variable.code] = [str(ENTRY_MESSAGES[typed.problem])]
        if typed.final:
            if given:
                values[variable.code] = given
            continue
        formdata = MultiDict([(variable.code, value) for value in given])
        clean, problems = _FORMS.validate([variable], formdata)
        if problems:
            errors.update(problems)
            values[variable.code] = tuple(given)
        else:
            values[variable.code] = clean[variable.code]
    return Parsed(values, errors)


def applicable_values(definition: Definition, form: FormKind, values: Values) -> Answers:
    """Only the variables of questions that apply, given the answers themselves."""
    current = {code: tuple(given) for code, given in values.items()}
    return {
        variable.code: current[variable.code]
        for variable in definition.variables(form)
        if variable.code in current and journey.is_visible(variable.item, current)
    }


def untyped(definition: Definition, form: FormKind, values: Values) -> list[Variable]:
    """Variables of applicable questions with nothing typed (not even "Sans réponse")."""
    current = {code: tuple(given) for code, given in values.items()}
    return [
        variable
        for variable in definition.variables(form)
        if journey.is_visible(variable.item, current) and not current.get(variable.code)
    ]


def not_typed_errors(missing: Iterable[Variable]) -> dict[str, list[str]]:
    return {variable.code: [str(MSG_NOT_TYPED)] for variable in missing}
