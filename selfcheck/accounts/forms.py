"""Staff forms (validation only; rendered by our templates)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import Form, PasswordField, StringField
from wtforms.validators import EqualTo, InputRequired, Length

from selfcheck.accounts.auth import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH


class LoginForm(Form):  # type: ignore[misc]
    email = StringField(
        validators=[InputRequired(_l("Écrivez votre adresse e-mail.")), Length(max=254)]
    )
    password = PasswordField(
        validators=[
            InputRequired(_l("Écrivez votre mot de passe.")),
            Length(max=MAX_PASSWORD_LENGTH),
        ]
    )


def new_password_field(missing: object) -> PasswordField:
    """A new password (`new`), its length rules, and `missing`, the message when it is empty."""
    return PasswordField(
        validators=[
            InputRequired(missing),
            Length(
                min=MIN_PASSWORD_LENGTH,
                max=MAX_PASSWORD_LENGTH,
                message=_l("Le mot de passe doit avoir au moins 12 caractères."),
            ),
        ]
    )


def confirm_password_field() -> PasswordField:
    """The new password typed again: it must equal the form's `new` field."""
    return PasswordField(
        validators=[EqualTo("new", message=_l("Les deux mots de passe ne sont pas identiques."))]
    )


class PasswordChangeForm(Form):  # type: ignore[misc]
    current = PasswordField(validators=[InputRequired(_l("Écrivez votre mot de passe actuel."))])
    new = new_password_field(_l("Écrivez un nouveau mot de passe."))
    confirm = confirm_password_field()
