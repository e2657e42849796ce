"""Small forms of the entry screens (validation only; rendered by our templates).

The answers themselves are validated item by item by the field registry
(services/entry.parse_values); these are the surrounding choices.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, Form, HiddenField, StringField
from wtforms.validators import ValidationError

from selfcheck.entry.rates import WEEKS_RANGE
from selfcheck.entry.saving import MAX_PERCENT
from selfcheck.questionnaire.model import FormKind

FORM_CHOICES = tuple(kind.value for kind in FormKind)
MSG_CHOOSE_FORM = _l("Choisissez le questionnaire : départ, fin ou rétrospectif.")


def _check_form(field: Any, allowed: tuple[str, ...]) -> None:
    if field.data not in allowed:
        raise ValidationError(MSG_CHOOSE_FORM)


class OpenByCodeForm(Form):  # type: ignore[misc]
    """A code (typed, or scanned from the QR code into the field) and the paper form's kind."""

    code = StringField()
    form = StringField()
    lang = StringField()
    wording = StringField()  # the paper copy's wording: standard or easy-read (Response.wording)

    def validate_form(self, field: Any) -> None:
        _check_form(field, FORM_CHOICES)


class OpenWithoutCodeForm(Form):  # type: ignore[misc]
    """A paper form printed without a code: a fresh code is made (once per token)."""

    form = StringField()
    lang = StringField()
    wording = StringField()
    structure = StringField()
    token = HiddenField()

    def validate_form(self, field: Any) -> None:
        _check_form(field, (FormKind.BEFORE.value, FormKind.RETRO.value))

    def validate_token(self, field: Any) -> None:
        token = field.data or ""
        if not (16 <= len(token) <= 64 and token.replace("-", "").replace("_", "").isalnum()):
            raise ValidationError(_l("La page a expiré. Rechargez-la et réessayez."))


class WholeNumber:
    """A whole number in [low, high], typed in digits; `field.number` holds it once valid."""

    def __init__(self, low: int, high: int, message: object) -> None:
        self.low, self.high, self.message = low, high, message

    def __call__(self, form: Form, field: Any) -> None:
        raw = (field.data or "").strip()
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 4):
            raise ValidationError(self.message)
        number = int(raw)
        if not self.low <= number <= self.high:
            raise ValidationError(self.message)
        field.number = number


MSG_PERCENT = _l("Écrivez un pourcentage entre 0 et 100, en chiffres, par exemple 20.")
MSG_WEEKS = _l("Écrivez un nombre de semaines entre 1 et 52, en chiffres, par exemple 6.")


class SettingsForm(Form):  # type: ignore[misc]
    double_entry_percent = StringField(validators=[WholeNumber(0, MAX_PERCENT, MSG_PERCENT)])
    after_due_weeks = StringField(validators=[WholeNumber(*WEEKS_RANGE, MSG_WEEKS)])
    totp_required = BooleanField()
