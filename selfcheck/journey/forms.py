"""Small forms of the journey (start, code entry); CSRF is checked globally by CSRFProtect."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, Form, HiddenField, StringField
from wtforms.validators import ValidationError

from selfcheck.journey.reminders import clean_address
from selfcheck.platform import codes
from selfcheck.questionnaire.model import FORM_RULES, Wording

CODE_MESSAGES = {
    codes.CodeProblem.EMPTY: _l("Écrivez votre code. Il est sur votre feuille ou votre écran."),
    codes.CodeProblem.CHARACTER: _l(
        "Un code contient seulement des chiffres et des lettres, par exemple K7M-2QX-9RT. "
        "Vérifiez chaque caractère."
    ),
    codes.CodeProblem.LENGTH: _l(
        "Un code a 9 caractères, par exemple K7M-2QX-9RT. Vérifiez qu'il ne manque rien."
    ),
    codes.CodeProblem.CHECK: _l(
        "Ce code contient sans doute une erreur de frappe. Vérifiez chaque caractère."
    ),
}
UNKNOWN_CODE = _l(
    "Nous ne trouvons pas ce code. Vérifiez-le, ou demandez de l'aide à votre médiateur "
    "ou médiatrice."
)


class CodeForm(Form):  # type: ignore[misc]
    code = StringField()

    def validate_code(self, field: Any) -> None:
        try:
            field.data = codes.normalise(field.data or "")
        except codes.InvalidCode as exc:
            raise ValidationError(CODE_MESSAGES[exc.problem]) from exc


STARTABLE = tuple(kind.value for kind, rule in FORM_RULES.items() if rule.opens_code)


class StartForm(Form):  # type: ignore[misc]
    form = HiddenField()
    token = HiddenField()
    # The wording chosen on the start page (standard or easy-read); empty means standard.
    wording = HiddenField()

    def validate_form(self, field: Any) -> None:
        if field.data not in STARTABLE:
            raise ValidationError(_l("Ce questionnaire n'existe pas."))

    def validate_token(self, field: Any) -> None:
        token = field.data or ""
        if not (16 <= len(token) <= 64 and token.replace("-", "").replace("_", "").isalnum()):
            raise ValidationError(_l("La page a expiré. Rechargez-la et réessayez."))

    def validate_wording(self, field: Any) -> None:
        if (field.data or Wording.STANDARD.value) not in {w.value for w in Wording}:
            raise ValidationError(_l("Ce questionnaire n'existe pas."))

    @property
    def chosen_wording(self) -> Wording:
        return Wording(self.wording.data or Wording.STANDARD.value)


REMINDER_CONSENT_MISSING = _l(
    "Pour recevoir le rappel, cochez la case qui dit que vous êtes d'accord. Sans elle, nous "
    "ne gardons pas votre adresse."
)
REMINDER_BAD_ADDRESS = _l(
    "Cette adresse e-mail n'est pas valable. Écrivez une seule adresse, par exemple nom@exemple.fr."
)


class ReminderForm(Form):  # type: ignore[misc]
    """One e-mail address for a single follow-up reminder, with explicit consent (unticked
    by default). The address is checked by journey.reminders.clean_address."""

    email = StringField()
    consent = BooleanField()

    def validate_consent(self, field: Any) -> None:
        if not field.data:
            raise ValidationError(REMINDER_CONSENT_MISSING)

    def validate_email(self, field: Any) -> None:
        address = clean_address(field.data or "")
        if address is None:
            raise ValidationError(REMINDER_BAD_ADDRESS)
        field.data = address
