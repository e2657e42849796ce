"""Forms of the administration pages (validation only; rendered by our templates)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import Form, StringField, ValidationError
from wtforms.validators import DataRequired, InputRequired, Length, Regexp

from selfcheck.accounts.forms import confirm_password_field, new_password_field
from selfcheck.accounts.structures import DEPARTMENT, one_line
from selfcheck.platform import visible
from selfcheck.platform.models import TerritoryType

TERRITORY_LABELS = {
    TerritoryType.URBAN.value: _l("Urbain"),
    TerritoryType.PERIURBAN.value: _l("Périurbain"),
    TerritoryType.RURAL.value: _l("Rural"),
}


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


CHOOSE = _l("Choisissez une des réponses proposées.")


class SetPasswordForm(Form):  # type: ignore[misc]
    new = new_password_field(_l("Écrivez un mot de passe."))
    confirm = confirm_password_field()


class InviteForm(Form):  # type: ignore[misc]
    email = StringField(
        validators=[
            InputRequired(_l("Écrivez l'adresse e-mail de la personne.")),
            Length(max=254, message=_l("L'adresse e-mail est trop longue.")),
            Regexp(r"^[^@\s]+@[^@\s]+$", message=_l("Écrivez une adresse e-mail valide.")),
        ],
        filters=[_strip],
    )
    role = StringField()
    structure = StringField(filters=[_strip])
    # Set by the view: what this administrator may give, (value, label) pairs.
    role_choices: list[tuple[str, object]] = []  # noqa: RUF012
    structure_choices: list[tuple[str, object]] = []  # noqa: RUF012

    def validate_role(self, field: StringField) -> None:
        if field.data not in {value for value, _label in self.role_choices}:
            raise ValidationError(CHOOSE)


class StructureForm(Form):  # type: ignore[misc]
    name = StringField(
        validators=[
            # On the name as kept (`one_line`): spaces or control characters only are no name.
            DataRequired(_l("Écrivez le nom de la structure.")),
            Length(max=200, message=_l("Le nom doit avoir 200 caractères au plus.")),
            visible.Visible(
                _l(
                    "Le nom contient un caractère invisible ou de mise en forme (espace sans "
                    "largeur, marque de sens d'écriture…) : retirez-le."
                )
            ),
        ],
        filters=[lambda value: one_line(value) if isinstance(value, str) else value],
    )
    territory_type = StringField()

    def validate_territory_type(self, field: StringField) -> None:
        if field.data not in TERRITORY_LABELS:
            raise ValidationError(CHOOSE)

    department = StringField(
        validators=[
            InputRequired(_l("Écrivez le numéro du département.")),
            Regexp(
                DEPARTMENT.pattern,
                message=_l("Écrivez un numéro de département : 01 à 95, 2A, 2B, 971 à 976…"),
            ),
        ],
        filters=[_strip, lambda value: value.upper() if isinstance(value, str) else value],
    )


class CodeForm(Form):  # type: ignore[misc]
    code = StringField(
        validators=[
            InputRequired(_l("Écrivez le code affiché par votre application.")),
            Length(max=32, message=_l("Ce code est trop long.")),
        ]
    )


class ForgottenForm(Form):  # type: ignore[misc]
    email = StringField(
        validators=[
            InputRequired(_l("Écrivez votre adresse e-mail.")),
            Length(max=254, message=_l("L'adresse e-mail est trop longue.")),
        ],
        filters=[_strip],
    )
