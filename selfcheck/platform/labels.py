"""The translated names of the form kinds and channels, defined once for every screen.

`FormKind` lives in the Flask-free core (questionnaire.model) and `Channel` in the models;
their words for people live here, keyed by the enum values (what the database and the
templates hold). Three ways of naming a form, for three places:
- `FORM_LABELS`: a form on its own ("Questionnaire de départ": follow-up, data entry);
- `FORM_SHORT_LABELS`: a qualifier inside a longer text ("départ": export column labels);
- `FORM_PLURAL_LABELS`: a count of forms (dashboard column headers).
"""

from __future__ import annotations

from collections.abc import Mapping

from flask_babel import lazy_gettext as _l

from selfcheck.platform.models import Channel
from selfcheck.questionnaire.model import FormKind

FORM_LABELS: Mapping[str, object] = {
    FormKind.BEFORE.value: _l("Questionnaire de départ"),
    FormKind.AFTER.value: _l("Questionnaire de fin"),
    FormKind.RETRO.value: _l("Questionnaire rétrospectif"),
    FormKind.FOLLOWUP.value: _l("Questionnaire de suivi, quelques mois après"),
    FormKind.FOLLOWUP_LATE.value: _l("Second questionnaire de suivi, longtemps après"),
}
FORM_SHORT_LABELS: Mapping[str, object] = {
    FormKind.BEFORE.value: _l("départ"),
    FormKind.AFTER.value: _l("fin"),
    FormKind.RETRO.value: _l("rétrospectif"),
    FormKind.FOLLOWUP.value: _l("suivi"),
    FormKind.FOLLOWUP_LATE.value: _l("second suivi"),
}
FORM_PLURAL_LABELS: Mapping[str, object] = {
    FormKind.BEFORE.value: _l("Questionnaires de départ"),
    FormKind.AFTER.value: _l("Questionnaires de fin"),
    FormKind.RETRO.value: _l("Questionnaires rétrospectifs"),
    FormKind.FOLLOWUP.value: _l("Questionnaires de suivi"),
    FormKind.FOLLOWUP_LATE.value: _l("Seconds questionnaires de suivi"),
}
# Lower case, to sit inside a sentence; `capitalised` for a table row of its own.
CHANNEL_LABELS: Mapping[str, object] = {
    Channel.ONLINE.value: _l("en ligne"),
    Channel.PAPER.value: _l("papier"),
    Channel.PHONE.value: _l("téléphone"),
}


def capitalised(label: object) -> str:
    """The label, translated now, with a capital first letter ("En ligne")."""
    text = str(label)
    return text[:1].upper() + text[1:]
