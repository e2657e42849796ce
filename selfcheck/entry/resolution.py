"""Settling the differences between the two entries (structure administrators)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from flask_babel import gettext
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, joinedload, selectinload
from werkzeug.datastructures import MultiDict

from selfcheck.entry.lookup import EntryError, load_response
from selfcheck.entry.saving import answer_rows, codes_of_form
from selfcheck.entry.screen import EntryVariable, entry_variable
from selfcheck.entry.second import emails_of
from selfcheck.entry.values import Answers, applicable_values, parse_values
from selfcheck.journey import operations as journey
from selfcheck.journey.page_view import question_numbers
from selfcheck.journey.registry import MSG_NOT_AN_OPTION
from selfcheck.platform import audit
from selfcheck.platform.models import (
    Answer,
    EntryDiscrepancy,
    Response,
    SecondEntry,
    StaffUser,
    utcnow,
)
from selfcheck.questionnaire.answer_types import EntryKind
from selfcheck.questionnaire.model import (
    Definition,
    FormKind,
    Variable,
)

# --- settling the differences ------------------------------------------------------------------


@dataclass(frozen=True)
class PendingResolution:
    entry: SecondEntry
    response: Response
    first_by: str
    second_by: str
    open: int


def pending_resolutions(session: Session, structure_ids: Sequence[int]) -> list[PendingResolution]:
    rows = session.execute(
        select(SecondEntry, Response)
        .join(Response, Response.id == SecondEntry.response_id)
        .where(
            Response.structure_id.in_(structure_ids),
            SecondEntry.completed_at.is_not(None),
            SecondEntry.resolved_at.is_(None),
        )
        .order_by(SecondEntry.completed_at, SecondEntry.id)
        .options(joinedload(Response.beneficiary), selectinload(SecondEntry.discrepancies))
    ).all()
    emails = emails_of(
        session, [r.entered_by_id for _e, r in rows] + [e.entered_by_id for e, _r in rows]
    )
    return [
        PendingResolution(
            entry=entry,
            response=response,
            first_by=emails.get(response.entered_by_id or 0, "—"),
            second_by=emails.get(entry.entered_by_id, "—"),
            open=sum(1 for d in entry.discrepancies if d.resolved_at is None),
        )
        for entry, response in rows
    ]


@dataclass(frozen=True)
class DiscrepancyView:
    discrepancy: EntryDiscrepancy
    variable: Variable
    number: int
    first: tuple[str, ...]
    second: tuple[str, ...]
    other: EntryVariable  # the widget to type another value

    @property
    def choice_name(self) -> str:
        return "choice-" + self.variable.code

    @property
    def kind(self) -> EntryKind:
        return self.variable.item.type.entry_kind


def load_resolution(
    session: Session, user: StaffUser, response_id: int
) -> tuple[SecondEntry, Response]:
    """The completed second entry of a response, to settle its differences."""
    response = load_response(session, user, response_id)
    entry = session.scalar(
        select(SecondEntry)
        .where(SecondEntry.response_id == response.id)
        .options(selectinload(SecondEntry.discrepancies))
    )
    if entry is None or entry.completed_at is None:
        raise EntryError("second_entry_not_done", response)
    return entry, response


def discrepancy_views(
    definition: Definition,
    response: Response,
    entry: SecondEntry,
    posted: MultiDict[str, str] | None = None,
    errors: Mapping[str, Sequence[str]] | None = None,
) -> list[DiscrepancyView]:
    """The open differences of a second entry, in the form's order (`posted`: shown again)."""
    form = FormKind(response.form)
    shown = {key: posted.getlist(key) for key in posted} if posted is not None else {}
    numbers = question_numbers(definition, form)
    open_ = {d.variable: d for d in entry.discrepancies if d.resolved_at is None}
    views = []
    for variable in definition.variables(form):
        found = open_.get(variable.code)
        if found is None:
            continue
        views.append(
            DiscrepancyView(
                discrepancy=found,
                variable=variable,
                number=numbers[variable.item.code],
                first=tuple(json.loads(found.first_value)),
                second=tuple(json.loads(found.second_value)),
                other=entry_variable(
                    variable.item, variable.code, variable.moment, shown, errors or {}
                ),
            )
        )
    return views


CHOICES = ("first", "second", "other")


def parse_resolution(
    definition: Definition,
    response: Response,
    entry: SecondEntry,
    posted: MultiDict[str, str],
) -> tuple[Answers, dict[str, list[str]]]:
    """The values chosen for the open differences (those left unchosen stay open)."""
    form = FormKind(response.form)
    others = parse_values(definition, form, posted)
    chosen: Answers = {}
    errors: dict[str, list[str]] = {}
    for view in discrepancy_views(definition, response, entry):
        code = view.variable.code
        choice = posted.get(view.choice_name, "")
        if choice == "":
            continue
        if choice not in CHOICES:
            errors[code] = [str(MSG_NOT_AN_OPTION)]
        elif choice == "first":
            chosen[code] = view.first
        elif choice == "second":
            chosen[code] = view.second
        elif code in others.errors:
            errors[code] = others.errors[code]
        elif not others.values.get(code):
            errors[code] = [gettext("Tapez l'autre réponse, ou 0 si la personne n'a pas répondu.")]
        else:
            chosen[code] = others.values[code]
    return chosen, errors


def resolve(
    session: Session,
    definition: Definition,
    user: StaffUser,
    entry: SecondEntry,
    response: Response,
    chosen: Mapping[str, Sequence[str]],
) -> int:
    """Apply the chosen values to the response; returns how many differences were settled.

    Answers to questions that no longer apply are removed, and their differences settled as
    empty, unless the question they depend on is itself still open.
    """
    form = FormKind(response.form)
    form_codes = codes_of_form(definition, form)
    journey.lock_for_writing(session, response)  # one resolution at a time, on fresh data
    session.expire(response, ["answers"])
    session.expire(entry, ["discrepancies", "resolved_at", "resolved_by_id"])
    open_ = {d.variable: d for d in entry.discrepancies if d.resolved_at is None}
    old = {k: v for k, v in journey.answers_of(response).items() if k in form_codes}
    current = dict(old)
    for code, values in chosen.items():
        if code in open_:
            current[code] = tuple(values)
    kept = applicable_values(definition, form, current)
    still_open = {code for code in open_ if code not in chosen}
    now = utcnow()
    settled = 0
    for variable in definition.variables(form):
        found = open_.get(variable.code)
        if found is None:
            continue
        applies = journey.is_visible(variable.item, kept)
        depends_on = variable.item.show_if.item if variable.item.show_if else None
        if applies and variable.code not in chosen:
            continue
        if not applies and depends_on in still_open:
            kept.pop(variable.code, None)
            continue
        found.resolved_value = json.dumps(list(kept.get(variable.code, ())))
        found.resolved_at = now
        found.resolved_by_id = user.id
        settled += 1
        still_open.discard(variable.code)
    changes = audit.answer_changes(old, kept)
    session.execute(
        delete(Answer).where(Answer.response_id == response.id, Answer.variable.in_(form_codes))
    )
    session.add_all(answer_rows(definition, response.id, form_codes, kept))
    response.updated_at = now
    if all(d.resolved_at is not None for d in entry.discrepancies):
        entry.resolved_at = now
        entry.resolved_by_id = user.id
    settled_codes = [d.variable for d in entry.discrepancies if d.resolved_at == now]
    if settled_codes or changes:
        audit.record(
            session,
            user,
            "resolve",
            audit.Entity.RESPONSE,
            response.id,
            response.structure_id,
            {**changes, "settled": {"old": [], "new": settled_codes}},
        )
    session.flush()
    session.expire(response, ["answers"])
    return settled
