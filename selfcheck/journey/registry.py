"""Answer type -> WTForms field: the posted-form side of each answer type (answer_types.py).

Forms are used for validation only; inputs are rendered by our own Jinja macros (faster,
and shaped for accessibility). Field names are variable codes (T01, T01_PRE…).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask_babel import gettext, ngettext
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict
from wtforms import Form, RadioField, SelectMultipleField, StringField
from wtforms.fields.core import UnboundField
from wtforms.validators import ValidationError

from selfcheck.questionnaire.answer_types import (
    MAX_DIGITS,
    AnswerType,
    FreeText,
    MultipleChoice,
    Number,
    OrderedScale,
    SingleChoice,
    has_control_characters,
)
from selfcheck.questionnaire.model import Item, Variable

MSG_CHOOSE = _l("Choisissez une réponse.")
MSG_NOT_AN_OPTION = _l(
    "Cette réponse ne fait pas partie des choix proposés. Choisissez dans la liste."
)
MSG_NOT_A_NUMBER = _l("Écrivez un nombre entier, en chiffres, par exemple 3.")
MSG_WRONG_CHARACTERS = _l("Ce texte contient des caractères qui ne sont pas acceptés.")


def _required(field: Any) -> bool:
    return bool(field.item.required)


class ChoiceField(RadioField):  # type: ignore[misc]
    """One option among the item's codes."""

    data: str | None

    def __init__(self, *args: Any, item: Item, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.item = item

    def pre_validate(self, form: Form) -> None:
        if self.data in (None, ""):
            self.data = None
            if _required(self):
                raise ValidationError(MSG_CHOOSE)
            return
        if self.data not in self.item.option_codes or getattr(self, "several", False):
            raise ValidationError(MSG_NOT_AN_OPTION)

    def process_formdata(self, valuelist: list[str]) -> None:
        # One choice means one value: a tampered ASSIST=a&ASSIST=b is refused, not truncated.
        self.several = len(valuelist) > 1
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
        allowed = set(self.item.option_codes)
        if any(value not in allowed for value in values) or len(set(values)) != len(values):
            raise ValidationError(MSG_NOT_AN_OPTION)
        exclusive = [o for o in self.item.options if o.exclusive and o.code in values]
        if exclusive and len(values) > 1:
            raise ValidationError(
                gettext(
                    "Vous avez coché « %(option)s » avec d'autres réponses : gardez l'un ou "
                    "l'autre.",
                    option=gettext(exclusive[0].label),
                )
            )
        limit = self.item.max_choices
        if limit is not None and len(values) > limit:
            raise ValidationError(
                ngettext("Cochez une seule réponse.", "Cochez %(num)s réponses au plus.", limit)
            )


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
        if not (raw.isascii() and raw.isdigit()) or len(raw) > MAX_DIGITS:
            raise ValidationError(MSG_NOT_A_NUMBER)
        number = int(raw)
        low, high = self.item.minimum, self.item.maximum
        if (low is not None and number < low) or (high is not None and number > high):
            raise ValidationError(
                gettext("Écrivez un nombre entre %(low)s et %(high)s.", low=low, high=high)
            )
        self.data = str(number)


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
        if has_control_characters(text):
            raise ValidationError(MSG_WRONG_CHARACTERS)
        limit = self.item.max_length
        if limit is not None and len(text) > limit:
            raise ValidationError(
                gettext("Votre texte est trop long : %(limit)s caractères au plus.", limit=limit)
            )


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
        self._classes: dict[tuple[str, ...], type[Form]] = {}

    def form_class(self, variables: Iterable[Variable]) -> type[Form]:
        variables = tuple(variables)
        key = tuple(variable.code for variable in variables)
        cls = self._classes.get(key)
        if cls is None:
            attrs = {v.code: FIELD_FACTORIES[type(v.item.type)](v.item) for v in variables}
            cls = type("PageForm", (Form,), attrs)
            self._classes[key] = cls
        return cls

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
