"""The print form of the back office (validation only; rendered by staff/print.html)."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, Form, StringField
from wtforms.validators import ValidationError

from selfcheck.paper.operations import MAX_COPIES
from selfcheck.questionnaire.model import FORM_RULES, FormKind

BLANK = "blank"
CODED = "coded"
KINDS = (CODED, BLANK)
COPIES_MESSAGE = _l("Indiquez un nombre d'exemplaires entre 1 et 200.")


class PrintForm(Form):  # type: ignore[misc]
    """What to print: with fresh codes or blank, which questionnaire, language, copies."""

    kind = StringField(default=CODED)
    form = StringField(default=FormKind.BEFORE.value)
    language = StringField()
    copies = StringField(default="1")
    large = BooleanField()
    easy = BooleanField()  # the easy-read (FALC) wording: same items and codes
    duplex = BooleanField()

    def __init__(self, *args: Any, languages: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.languages = languages

    def validate_kind(self, field: Any) -> None:
        if field.data not in KINDS:
            raise ValidationError(_l("Choisissez des questionnaires avec ou sans code."))

    def validate_form(self, field: Any) -> None:
        if field.data not in {kind.value for kind in FormKind}:
            raise ValidationError(_l("Choisissez le questionnaire à imprimer."))

    def validate_language(self, field: Any) -> None:
        if field.data not in self.languages:
            raise ValidationError(_l("Choisissez une des langues proposées."))

    def validate_copies(self, field: Any) -> None:
        raw = (field.data or "").strip()
        # The length first: int() of more than 4,300 digits raises (a 500, attack15).
        if (
            not raw.isascii()
            or not raw.isdigit()
            or len(raw) > 9
            or not 1 <= int(raw) <= MAX_COPIES
        ):
            raise ValidationError(COPIES_MESSAGE)
        field.data = str(int(raw))

    def validate(self, extra_validators: Any = None) -> bool:
        valid: bool = super().validate(extra_validators)
        if valid and self.kind.data == CODED and FORM_RULES[self.form_kind].needs_sent:
            # A follow-up comes after a sent form: a fresh code would have none.
            self.kind.errors = [
                _l(
                    "Un questionnaire de suivi se remplit avec le code que la personne a déjà : "
                    "imprimez-le sans code, ou depuis la liste de suivi."
                )
            ]
            return False
        return valid

    @property
    def count(self) -> int:
        return int(self.copies.data)

    @property
    def form_kind(self) -> FormKind:
        return FormKind(self.form.data)
