"""Answer type -> WTForms field: the posted-form side of each answer type (answer_types.py).

Forms are used for validation only; inputs are rendered by our own Jinja macros (faster,
and shaped for accessibility). Field names are variable codes (T01, T01_PRE…).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from flask_babel import gettext, ngettext
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict
from wtforms import Form, RadioField, SelectMultipleField, StringField
from wtforms.fields.core import UnboundField
from wtforms.validators import ValidationError

from selfcheck.questionnaire.answer_types import (
    AnswerType,
    FreeText,
    MultipleChoice,
    Number,
    OrderedScale,
    Problem,
    SingleChoice,
)
from selfcheck.questionnaire.model import Item, Variable

MSG_CHOOSE = _l("Choisissez une réponse.")
MSG_NOT_AN_OPTION = _l(
    "Cette réponse ne fait pas partie des choix proposés. Choisissez dans la liste."
)
MSG_NOT_A_NUMBER = _l("Écrivez un nombre entier, en chiffres, par exemple 3.")
MSG_WRONG_CHARACTERS = _l("Ce texte contient des caractères qui ne sont pas acceptés.")


def _exclusive_not_alone(item: Item, values: Sequence[str]) -> str:
    option = next(o for o in item.options if o.exclusive and o.code in values)
    return str(
        gettext(
            "Vous avez coché « %(option)s » avec d'autres réponses : gardez l'un ou l'autre.",
            option=gettext(option.label),
        )
    )


def _too_many(item: Item, values: Sequence[str]) -> str:
    limit = item.max_choices or 0
    return str(ngettext("Cochez une seule réponse.", "Cochez %(num)s réponses au plus.", limit))


def _out_of_range(item: Item, values: Sequence[str]) -> str:
    low, high = item.minimum, item.maximum
    return str(gettext("Écrivez un nombre entre %(low)s et %(high)s.", low=low, high=high))


def _too_long(item: Item, values: Sequence[str]) -> str:
    limit = item.max_length
    return str(gettext("Votre texte est trop long : %(limit)s caractères au plus.", limit=limit))


# What a person reads for each problem the answer type finds (AnswerType.check).
MESSAGES: Mapping[Problem, Callable[[Item, Sequence[str]], str]] = {
    Problem.SEVERAL: lambda item, values: str(MSG_NOT_AN_OPTION),
    Problem.NOT_AN_OPTION: lambda item, values: str(MSG_NOT_AN_OPTION),
    Problem.REPEATED: lambda item, values: str(MSG_NOT_AN_OPTION),
    Problem.EXCLUSIVE_NOT_ALONE: _exclusive_not_alone,
    Problem.TOO_MANY: _too_many,
    Problem.NOT_A_NUMBER: lambda item, values: str(MSG_NOT_A_NUMBER),
    Problem.OUT_OF_RANGE: _out_of_range,
    Problem.TOO_LONG: _too_long,
    Problem.WRONG_CHARACTERS: lambda item, values: str(MSG_WRONG_CHARACTERS),
}


def _check(item: Item, values: Sequence[str]) -> None:
    """Raise the message of the first problem the answer type finds in `values`."""
    problems = item.type.check(item, values)
    if problems:
        raise ValidationError(MESSAGES[problems[0]](item, values))


def _required(field: Any) -> bool:
    return bool(field.item.required)


class ChoiceField(RadioField):  # type: ignore[misc]
    """One option among the item's codes."""

    data: str | None

    def __init__(self, *args: Any, item: Item, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.item = item
        self.posted: tuple[str, ...] = ()

    def pre_validate(self, form: Form) -> None:
        if self.data in (None, ""):
            self.data = None
            if _required(self):
                raise ValidationError(MSG_CHOOSE)
            return
        # One choice means one value: a tampered ASSIST=a&ASSIST=b is refused, not truncated.
        _check(self.item, self.posted or (str(self.data),))

    def process_formdata(self, valuelist: list[str]) -> None:
        self.posted = tuple(valuelist)
        super().process_formdata(valuelist)


class MultiChoiceField(SelectMultipleField):  # type: ignore[misc]
    """Several options; an exclusive one ("none of these") must stand alone."""

    data: list[str] | None

    def __init__(self, *args: Any, item: Item, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.item = item

    def pre_validate(self, form: Form) -> None:
        values = [value for value in (self.data or []) if value != ""]
        self.data = values
        if not values:
            if _required(self):
                raise ValidationError(_l("Cochez au moins une réponse."))
            return
        _check(self.item, values)


class NumberField(StringField):  # type: ignore[misc]
    """A whole number typed as text (inputmode=numeric), checked against min and max."""

    data: str | None

    def __init__(self, *args: Any, item: Item, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.item = item

    def pre_validate(self, form: Form) -> None:
        raw = (self.data or "").strip()
        self.data = raw or None
        if not raw:
            if _required(self):
                raise ValidationError(_l("Écrivez un nombre."))
            return
        _check(self.item, (raw,))
        self.data = str(int(raw))


class TextField(StringField):  # type: ignore[misc]
    data: str | None

    def __init__(self, *args: Any, item: Item, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.item = item

    def pre_validate(self, form: Form) -> None:
        text = (self.data or "").strip()
        self.data = text or None
        if not text:
            if _required(self):
                raise ValidationError(_l("Écrivez une réponse."))
            return
        _check(self.item, (text,))


FieldFactory = Callable[[Item], UnboundField]


def _choice(item: Item) -> UnboundField:
    return ChoiceField(choices=list(item.option_codes), item=item, validate_choice=False)


# Keyed by answer type class: WTForms is Flask-side, so it stays out of the core classes.
FIELD_FACTORIES: Mapping[type[AnswerType], FieldFactory] = {
    SingleChoice: _choice,
    OrderedScale: _choice,
    MultipleChoice: lambda item: MultiChoiceField(
        choices=list(item.option_codes), item=item, validate_choice=False
    ),
    Number: lambda item: NumberField(item=item),
    FreeText: lambda item: TextField(item=item),
}


class PageFormFactory:
    """Builds (once) and caches the WTForms class of each set of variables shown on a page."""

    def __init__(self) -> None:
        # Keyed by the items' identities, not only their codes: two definitions (a new version
        # loaded beside the old one) may give the same code other options. The entry keeps the
        # items alive, so an id cannot be reused while it is cached.
        self._classes: dict[tuple[tuple[str, int], ...], tuple[object, type[Form]]] = {}

    def form_class(self, variables: Iterable[Variable]) -> type[Form]:
        variables = tuple(variables)
        key = tuple((variable.code, id(variable.item)) for variable in variables)
        found = self._classes.get(key)
        if found is None:
            attrs = {v.code: FIELD_FACTORIES[type(v.item.type)](v.item) for v in variables}
            found = (tuple(v.item for v in variables), type("PageForm", (Form,), attrs))
            self._classes[key] = found
        return found[1]

    def validate(
        self, variables: Iterable[Variable], formdata: MultiDict[str, str]
    ) -> tuple[dict[str, tuple[str, ...]], dict[str, list[str]]]:
        """Validate posted data: (clean values by variable, error messages by variable)."""
        form = self.form_class(variables)(formdata)
        form.validate()
        values: dict[str, tuple[str, ...]] = {}
        for name, field in form._fields.items():
            data = field.data
            if isinstance(data, list):
                values[name] = tuple(data)
            else:
                values[name] = (data,) if data else ()
        errors = {name: [str(e) for e in errs] for name, errs in form.errors.items() if errs}
        return values, errors
