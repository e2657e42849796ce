"""The audit trail as people read it: translated actions, item labels, people by code.

The events store internal names ("edit", "response", "double_entry_wanted", item codes); this
module turns them into words through registries (action -> label, record kind -> label, field
-> label) and the item bank (an answer's item label and option labels). A person appears by
their code only while they exist: once deleted or erased, the event says so and shows no code.
An unknown name (an action added later without its label) is shown as it is, never an error.

It also reads the page's filters: person code, staff member, action, dates, page number; each
bad value becomes a translated message, never a 500. The form is a POST, answered by a
redirect to an address that names the person by their database id (`person_id`), never by
their code: a code is a credential and a shared computer's history keeps addresses.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session
from werkzeug.datastructures import MultiDict

from selfcheck.accounts.admin_views import ROLE_LABELS
from selfcheck.platform import audit, codes
from selfcheck.platform.labels import CHANNEL_LABELS, FORM_LABELS
from selfcheck.platform.models import (
    MAX_ROW_ID,
    AuditEvent,
    Beneficiary,
    Response,
    StaffUser,
    Structure,
)
from selfcheck.questionnaire.model import NO_ANSWER, PRE_SUFFIX, Definition, Item

PAGE_SIZE = 50

# Every action recorded by `audit.record` (tests/accounts/test_audit_trail.py checks the
# source for actions without a label). Past tense, as a log reads.
ACTION_LABELS: Mapping[str, object] = {
    "create": _l("Création"),
    "edit": _l("Modification"),
    "resolve": _l("Écarts de saisie résolus"),
    "delete": _l("Suppression"),
    "erase": _l("Effacement à la demande de la personne"),
    "purge": _l("Suppression des données trop anciennes"),
    "invite": _l("Invitation d'une personne de l'équipe"),
    "role": _l("Changement de rôle"),
    "deactivate": _l("Compte désactivé"),
    "reactivate": _l("Compte réactivé"),
    "grant": _l("Accès aux données donné"),
    "revoke": _l("Accès aux données retiré"),
    "free_text": _l("Droit de lire les réponses libres changé"),
    "link_invitation": _l("Lien d'invitation créé"),
    "link_reset": _l("Lien de nouveau mot de passe créé"),
    "use_invitation": _l("Invitation acceptée"),
    "use_reset": _l("Mot de passe changé par un lien"),
    "enrol_2fa": _l("Double authentification activée"),
    "reset_2fa": _l("Double authentification réinitialisée"),
    "recovery_code": _l("Code de secours utilisé"),
    "recovery_codes": _l("Nouveaux codes de secours"),
    "archive": _l("Structure archivée"),
    "unarchive": _l("Structure remise en service"),
    "reset_password": _l("Mot de passe réinitialisé par l'exploitation"),
    "sign_out_everywhere": _l("Toutes les sessions fermées par l'exploitation"),
}

# What an event is about (AuditEvent.entity).
ENTITY_LABELS: Mapping[str, object] = {
    audit.Entity.RESPONSE: _l("Questionnaire"),
    audit.Entity.BENEFICIARY: _l("Personne"),
    audit.Entity.SECOND_ENTRY: _l("Seconde saisie"),
    audit.Entity.USER: _l("Compte"),
    audit.Entity.STRUCTURE: _l("Structure"),
    audit.Entity.RETENTION: _l("Données trop anciennes"),
}

# The names of the changes that are not answers (answers are named by the item bank).
FIELD_LABELS: Mapping[str, object] = {
    "code": _l("Code"),
    "form": _l("Questionnaire"),
    "responses": _l("Questionnaires"),
    "status": _l("État"),
    "channel": _l("Canal"),
    "language": _l("Langue"),
    "count": _l("Nombre"),
    "double_entry_wanted": _l("Tiré au sort pour la double saisie"),
    "double_entry_percent": _l("Part des questionnaires saisis deux fois (%)"),
    "after_due_weeks": _l("Délai avant le questionnaire de fin (semaines)"),
    "settled": _l("Écarts résolus"),
    "differing_fields": _l("Réponses différentes entre les deux saisies"),
    "reason": _l("Raison"),
    "retention_months": _l("Durée de conservation (mois)"),
    "cutoff": _l("Données antérieures au"),
    "people": _l("Personnes"),
    "email": _l("Adresse e-mail"),
    "for": _l("Pour"),
    "role": _l("Rôle"),
    "name": _l("Nom"),
    "territory_type": _l("Type de territoire"),
    "department": _l("Département"),
    "departments": _l("Départements"),
    "region": _l("Région"),
    "structure": _l("Structure"),
    "can_read_free_text": _l("Peut lire les réponses libres"),
}

STATUS_VALUES: Mapping[str, object] = {
    "in_progress": _l("en cours"),
    "submitted": _l("envoyé"),
    "completed": _l("terminée"),
}
# privacy.operations.ErasureReason values (privacy imports accounts: named here by value; a
# test checks that every reason has its words).
REASON_VALUES: Mapping[str, object] = {
    "person_online": _l("la personne l'a demandé en ligne"),
    "person_asked": _l("la personne l'a demandé"),
    "consent_withdrawn": _l("la personne ne veut plus participer"),
    "created_by_mistake": _l("code créé ou saisi par erreur"),
}
YES_NO: Mapping[str, object] = {"true": _l("oui"), "false": _l("non")}
# Per field: the words for its stored values.
VALUE_LABELS: Mapping[str, Mapping[str, object]] = {
    "form": FORM_LABELS,
    "responses": FORM_LABELS,
    "channel": CHANNEL_LABELS,
    "status": STATUS_VALUES,
    "role": ROLE_LABELS,
    "reason": REASON_VALUES,
    "double_entry_wanted": YES_NO,
    "can_read_free_text": YES_NO,
}


# --- describing events -----------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    label: str
    old: list[str] | None  # None: a value set, not a change from one value to another
    new: list[str]


@dataclass(frozen=True)
class PersonRef:
    code: str | None  # None: the person no longer exists (deleted or erased)
    id: int | None = None  # their page's address (never the code: docs/security.md)


@dataclass(frozen=True)
class EventLine:
    at: datetime
    who: str
    action: str
    subject: str
    person: PersonRef | None
    changes: list[Change] = field(default_factory=list)


def action_label(action: str) -> str:
    return str(ACTION_LABELS.get(action, action))


def _as_strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [s for item in value for s in _as_strings(item)]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    return [str(value)]


def _item_of(definition: Definition, name: str) -> tuple[Item, bool] | None:
    """The item an answer change names, and whether it is the "before" of a retro form."""
    pre = name.endswith(PRE_SUFFIX)
    code = name.removesuffix(PRE_SUFFIX) if pre else name
    try:
        return definition.item(code), pre
    except KeyError:
        return None


# The name an event's record is shown by, per kind of record: (id column, name column). A
# response is named by its form; a user by e-mail; a structure by its name.
RECORD_NAMES: Mapping[
    audit.Entity, tuple[InstrumentedAttribute[int], InstrumentedAttribute[str]]
] = {
    audit.Entity.RESPONSE: (Response.id, Response.form),
    audit.Entity.USER: (StaffUser.id, StaffUser.email),
    audit.Entity.STRUCTURE: (Structure.id, Structure.name),
}


class Describer:
    """Turns a page of events into lines, with a few batched look-ups (people, record names)."""

    def __init__(self, session: Session, definition: Definition) -> None:
        self.session = session
        self.definition = definition

    def lines(self, views: Sequence[audit.EventView]) -> list[EventLine]:
        people = self._codes(
            {v.event.beneficiary_id for v in views if v.event.beneficiary_id is not None}
        )
        names = {
            entity: self._names(
                entity, {v.event.entity_id for v in views if v.event.entity == entity}
            )
            for entity in RECORD_NAMES
        }
        return [self._line(v, people, names) for v in views]

    def _codes(self, ids: set[int]) -> dict[int, str]:
        if not ids:
            return {}
        rows = self.session.execute(
            select(Beneficiary.id, Beneficiary.code).where(Beneficiary.id.in_(ids))
        )
        return {row.id: row.code for row in rows}

    def _names(self, entity: audit.Entity, ids: set[int | None]) -> dict[int, str]:
        ids.discard(None)
        if not ids:
            return {}
        id_column, name_column = RECORD_NAMES[entity]
        rows = self.session.execute(select(id_column, name_column).where(id_column.in_(ids)))
        return {row_id: name for row_id, name in rows}  # noqa: C416 (Row to tuple)

    def _subject(self, event: AuditEvent, changes: Mapping[str, Any], name: str | None) -> str:
        """What the event is about: the kind of record and its name (a response: its form)."""
        subject = str(ENTITY_LABELS.get(event.entity, event.entity))
        if event.entity != audit.Entity.RESPONSE:
            return subject if name is None else f"{subject} {name}"
        recorded = changes.get("form")  # a deleted or created form says which it was
        if name is None and isinstance(recorded, dict):
            values = _as_strings(recorded.get("old")) or _as_strings(recorded.get("new"))
            name = values[0] if values else None
        return str(FORM_LABELS[name]) if name is not None and name in FORM_LABELS else subject

    def _line(
        self,
        view: audit.EventView,
        people: Mapping[int, str],
        names: Mapping[audit.Entity, Mapping[int, str]],
    ) -> EventLine:
        event = view.event
        changes = view.changes if isinstance(view.changes, dict) else {}
        person: PersonRef | None = None
        if event.beneficiary_id is not None:
            code = people.get(event.beneficiary_id)
            person = PersonRef(code, event.beneficiary_id if code is not None else None)
        record_name = None
        if event.entity_id is not None and event.entity in names:
            record_name = names[audit.Entity(event.entity)].get(event.entity_id)
        subject = self._subject(event, changes, record_name)
        hide_code = person is not None and person.code is None
        lines = [
            change
            for name, raw in sorted(changes.items())
            if not (hide_code and name == "code")
            for change in [self._change(name, raw)]
        ]
        return EventLine(event.at, view.who, action_label(event.action), subject, person, lines)

    def _change(self, name: str, raw: Any) -> Change:
        found = _item_of(self.definition, name)
        if found is not None:
            item, pre = found
            label = gettext(item.short_label or item.label)
            if pre:
                label = gettext("%(item)s (avant)", item=label)
        else:
            label = str(FIELD_LABELS.get(name, name))
        if isinstance(raw, dict) and set(raw) <= {"old", "new"}:
            old: list[str] | None = _as_strings(raw.get("old"))
            new = _as_strings(raw.get("new"))
        else:
            old, new = None, _as_strings(raw)
        return Change(
            label,
            None if old is None else self._values(name, found, old),
            self._values(name, found, new),
        )

    def _values(
        self, name: str, found: tuple[Item, bool] | None, values: Iterable[str]
    ) -> list[str]:
        if name == "code":
            return [codes.display(v) for v in values]
        if name == "settled":
            return [self._variable_label(v) for v in values]
        if found is not None:
            item = found[0]
            words = []
            for value in values:
                option = item.option(value)
                if value == NO_ANSWER:
                    words.append(gettext("Sans réponse"))
                else:
                    words.append(gettext(option.label) if option is not None else value)
            return words
        known = VALUE_LABELS.get(name, {})
        return [str(known[v]) if v in known else v for v in values]

    def _variable_label(self, name: str) -> str:
        found = _item_of(self.definition, name)
        if found is None:
            return name
        item, pre = found
        label: str = gettext(item.short_label or item.label)
        return gettext("%(item)s (avant)", item=label) if pre else label


# --- the page's filters ----------------------------------------------------------------------


@dataclass
class Filters:
    """What was asked (as typed, to fill the form again), what it means, what was wrong."""

    typed: dict[str, str]
    chosen: audit.EventFilter
    page: int
    errors: dict[str, str]

    @property
    def address(self) -> dict[str, str]:
        """The filters as the page's address writes them: the person by id, not by code."""
        kept = {
            key: value
            for key, value in self.typed.items()
            if value and key != "person" and key not in self.errors  # a code typed astray
        }
        if self.chosen.person_id is not None and self.chosen.person_id > 0:
            kept["person_id"] = str(self.chosen.person_id)
        return kept


def _day(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw) if len(raw) == 10 else None
    except ValueError:
        return None


def _code_of(session: Session, raw: str, structure_ids: Sequence[int] | None) -> str | None:
    """The code of the person with this id (as the address writes it) in `structure_ids`
    (None: every structure); None when there is none."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10 or int(raw) > MAX_ROW_ID:
        return None
    query = select(Beneficiary.code).where(Beneficiary.id == int(raw))
    if structure_ids is not None:
        query = query.where(Beneficiary.structure_id.in_(structure_ids))
    return session.scalar(query)


def read_filters(
    session: Session,
    args: MultiDict[str, str],
    structure_ids: Sequence[int] | None,
    authors: Sequence[StaffUser],
) -> Filters:
    typed = {key: args.get(key, "").strip() for key in ("person", "staff", "action", "from", "to")}
    errors: dict[str, str] = {}
    person_id = user_id = None
    action = None
    unknown = gettext("Aucune personne de vos structures n'a ce code (ou elle a été supprimée).")
    if args.get("person_id") and not typed["person"]:
        # The address names the person by id: their code fills the form again.
        typed["person"] = _code_of(session, args.get("person_id", ""), structure_ids) or ""
        if not typed["person"]:
            errors["person"] = unknown
    if typed["person"]:
        try:
            code = codes.normalise(typed["person"])
        except codes.InvalidCode:
            errors["person"] = gettext(
                "Ce code n'est pas complet ou contient une faute de frappe : vérifiez-le."
            )
        else:
            query = select(Beneficiary.id).where(Beneficiary.code == code)
            if structure_ids is not None:
                query = query.where(Beneficiary.structure_id.in_(structure_ids))
            person_id = session.scalar(query)
            if person_id is None:
                # The same words whether the code exists elsewhere or not at all.
                errors["person"] = unknown
    if typed["staff"]:
        user_id = next((u.id for u in authors if str(u.id) == typed["staff"]), None)
        if user_id is None:
            errors["staff"] = gettext("Choisissez une personne de l'équipe dans la liste.")
    if typed["action"]:
        if typed["action"] in ACTION_LABELS:
            action = typed["action"]
        else:
            errors["action"] = gettext("Choisissez une action dans la liste.")
    since = until = None
    for key in ("from", "to"):
        if typed[key]:
            day = _day(typed[key])
            if day is None:
                errors[key] = gettext(
                    "Cette date n'existe pas : choisissez un jour dans le calendrier."
                )
            elif key == "from":
                since = datetime.combine(day, time.min)
            else:
                until = datetime.combine(day + timedelta(days=1), time.min)
    if since is not None and until is not None and since >= until:
        errors["to"] = gettext("La date de fin est avant la date de début.")
        until = None
    raw_page = args.get("page", "").strip()
    page = 1
    if raw_page:
        if raw_page.isascii() and raw_page.isdigit() and len(raw_page) <= 9 and int(raw_page) > 0:
            page = int(raw_page)
        else:
            errors["page"] = gettext("Le numéro de page doit être un nombre entier à partir de 1.")
    if errors.get("person"):
        person_id = -1  # a code asked for and not found: no event, rather than every event
    return Filters(typed, audit.EventFilter(person_id, user_id, action, since, until), page, errors)


def pages_for(total: int) -> int:
    return max(1, math.ceil(total / PAGE_SIZE))
