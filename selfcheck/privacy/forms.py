"""The form a person uses to erase their own answers (CSRF is checked globally)."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, Form, StringField
from wtforms.validators import ValidationError

from selfcheck.journey.forms import CODE_MESSAGES
from selfcheck.platform import codes


class ErasureForm(Form):  # type: ignore[misc]
    code = StringField()
    confirm = BooleanField()

    def validate_code(self, field: Any) -> None:
        try:
            field.data = codes.normalise(field.data or "")
        except codes.InvalidCode as exc:
            raise ValidationError(CODE_MESSAGES[exc.problem]) from exc

    def validate_confirm(self, field: Any) -> None:
        if not field.data:
            raise ValidationError(_l("Cochez la case pour confirmer que vous voulez tout effacer."))
