"""Saving the first entry, finishing it, and drawing it for a blind second entry."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from selfcheck.entry.values import Values, applicable_values, untyped
from selfcheck.journey import operations as journey
from selfcheck.platform import audit
from selfcheck.platform.models import (
    Answer,
    Channel,
    Response,
    StaffUser,
    Status,
    Structure,
    utcnow,
)
from selfcheck.questionnaire.model import (
    FOLLOWUP_FORMS,
    Definition,
    FormKind,
    Variable,
)

# --- saving the first entry --------------------------------------------------------------------


MAX_PERCENT = 100


@dataclass(frozen=True)
class SaveResult:
    saved: bool
    submitted_now: bool = False
    missing: tuple[Variable, ...] = ()
    double_entry_wanted: bool = False


def random_percent() -> int:
    return secrets.randbelow(MAX_PERCENT)


def draw_double_entry(percent: int, draw: Callable[[], int] = random_percent) -> bool:
    """0: never, 100: always, otherwise a random share of the finished paper forms."""
    if percent <= 0:
        return False
    if percent >= MAX_PERCENT:
        return True
    return draw() < percent


def codes_of_form(definition: Definition, form: FormKind) -> list[str]:
    return [variable.code for variable in definition.variables(form)]


def save_entry(
    session: Session,
    definition: Definition,
    user: StaffUser,
    response: Response,
    values: Values,
    finish: bool = False,
    draw: Callable[[], int] = random_percent,
) -> SaveResult:
    """Store what was typed (replacing the form's answers), and finish if asked and complete.

    A submitted form stays complete: a change that would leave a question untyped is refused
    (saved=False), nothing written. Answers, the response's entry fields, the submission and
    the audit event are one transaction.
    """
    form = FormKind(response.form)
    kept = applicable_values(definition, form, values)
    missing = tuple(untyped(definition, form, kept))
    # Two saves at once (a double click) are done one after the other, on fresh answers.
    was_submitted = journey.lock_for_writing(session, response) == Status.SUBMITTED.value
    if was_submitted and missing:
        return SaveResult(saved=False, missing=missing)
    session.expire(response, ["answers"])
    form_codes = codes_of_form(definition, form)
    old = {k: v for k, v in journey.answers_of(response).items() if k in form_codes}
    changes: dict[str, dict[str, list[str]]] = audit.answer_changes(old, kept)
    session.execute(
        delete(Answer).where(Answer.response_id == response.id, Answer.variable.in_(form_codes))
    )
    session.add_all(answer_rows(definition, response.id, form_codes, kept))
    now = utcnow()
    response.channel = Channel.PAPER.value
    if response.entered_by_id is None:
        response.entered_by_id = user.id
    response.entered_at = now
    response.updated_at = now
    submitted_now = wanted = False
    if finish and not missing and not was_submitted:
        structure = session.get(Structure, response.structure_id)
        wanted = draw_double_entry(structure.double_entry_percent if structure else 0, draw)
        session.flush()
        result = session.execute(
            update(Response)
            .where(Response.id == response.id, Response.status == Status.IN_PROGRESS.value)
            .values(
                status=Status.SUBMITTED.value,
                submitted_at=now,
                updated_at=now,
                double_entry_wanted=wanted,
            )
        )
        submitted_now = bool(getattr(result, "rowcount", 0))
        if submitted_now:
            if FormKind(response.form) in FOLLOWUP_FORMS:
                journey.forget_reminder(session, response.beneficiary_id)  # follow-up done
            changes["status"] = {"old": [Status.IN_PROGRESS.value], "new": [Status.SUBMITTED.value]}
            if wanted:
                changes["double_entry_wanted"] = {"old": [], "new": ["true"]}
    if changes:
        audit.record(
            session,
            user,
            "edit",
            audit.Entity.RESPONSE,
            response.id,
            response.structure_id,
            changes,
        )
    session.flush()
    session.refresh(response)
    session.expire(response, ["answers"])
    return SaveResult(
        saved=True,
        submitted_now=submitted_now,
        missing=missing,
        double_entry_wanted=submitted_now and wanted,
    )


def answer_rows(
    definition: Definition,
    response_id: int,
    order: Sequence[str],
    values: Mapping[str, Sequence[str]],
) -> list[Answer]:
    return [
        Answer(
            response_id=response_id,
            variable=code,
            value=value,
            definition_version=definition.version,
        )
        for code in order
        for value in dict.fromkeys(values.get(code, ()))  # once each, in the order given
    ]
