"""Finding the person and the record to type: codes, access, opening a paper form."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from selfcheck.journey import operations as journey
from selfcheck.journey import schedule
from selfcheck.platform import audit, clock, codes
from selfcheck.platform.models import (
    Beneficiary,
    Channel,
    Response,
    SecondEntry,
    StaffUser,
    Structure,
)
from selfcheck.policy import can_access_structure
from selfcheck.questionnaire.model import (
    FOLLOWUP_FORMS,
    FORM_RULES,
    Definition,
    FormKind,
    Wording,
)


class EntryError(Exception):
    """A request the entry screens cannot honour; `reason` picks the message and status."""

    def __init__(
        self,
        reason: str,
        response: Response | None = None,
        problem: codes.CodeProblem | None = None,
        opens_on: date | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.response = response
        self.problem = problem
        self.opens_on = opens_on  # "followup_not_open": the local day it opens


# --- finding or creating the record --------------------------------------------------------


def check_access(user: StaffUser, structure: Structure) -> None:
    if not can_access_structure(user, structure):
        raise EntryError("other_structure")


def find_person(session: Session, user: StaffUser, raw_code: str) -> Beneficiary:
    """The person with this code, if the user may see their structure; or EntryError."""
    try:
        person = journey.find_beneficiary(session, raw_code)
    except codes.InvalidCode as exc:
        raise EntryError("invalid_code", problem=exc.problem) from exc
    except journey.UnknownCode as exc:
        raise EntryError("unknown_code") from exc
    if not can_access_structure(user, person.structure):
        raise EntryError("unknown_code")  # never reveal that a code exists elsewhere
    return person


# The message of each refusal of `FORM_RULES` (form kind, its refusal), as EntryError reasons.
REFUSALS: dict[tuple[FormKind, str], str] = {
    (FormKind.AFTER, "needs_earlier"): "after_without_before",
    (FormKind.RETRO, "excluded"): "retro_with_pair",
    (FormKind.BEFORE, "excluded"): "pair_with_retro",
    (FormKind.AFTER, "excluded"): "pair_with_retro",
    (FormKind.FOLLOWUP, "needs_earlier"): "followup_without_end",
    (FormKind.FOLLOWUP_LATE, "needs_earlier"): "followup_without_end",
}


def _check_form_allowed(person: Beneficiary, form: FormKind) -> None:
    """Before and after are a pair; a retrospective form stands alone (as online); the
    follow-up needs a sent end form (FORM_RULES, the same table as the online journey)."""
    present = {FormKind(r.form): r.is_submitted for r in person.responses}
    refusal = FORM_RULES[form].refusal(present)
    if refusal is not None:
        raise EntryError(REFUSALS[(form, refusal)])


def _check_followup_open(
    person: Beneficiary, form: FormKind, now: datetime, zone: ZoneInfo
) -> None:
    """A follow-up is typed from paper only once it is open, as online (the same opening
    day, journey.schedule): answers given before it would not say what lasted. A second
    follow-up the structure does not run is refused too. Nothing is created either way."""
    if form not in FOLLOWUP_FORMS:
        return
    forms = [
        schedule.SentForm(FormKind(r.form), r.submitted_at if r.is_submitted else None)
        for r in person.responses
    ]
    ended = schedule.end_sent_at(forms)
    if ended is None:  # _check_form_allowed refused it already
        raise EntryError(REFUSALS[(form, "needs_earlier")])
    planned = {
        opening.form: opening
        for opening in schedule.openings(ended, journey.followup_delays(person.structure), zone)
    }
    opening = planned.get(form)
    if opening is None:
        raise EntryError("followup_not_planned")
    if not opening.is_open(now):
        raise EntryError("followup_not_open", opens_on=opening.day)


def open_entry(
    session: Session,
    definition: Definition,
    user: StaffUser,
    raw_code: str,
    form: FormKind,
    locale: str,
    wording: Wording = Wording.STANDARD,
    now: datetime | None = None,
    zone: ZoneInfo | None = None,
) -> Response:
    """The paper response of this code and form: found (to go on typing) or created.

    Never a second response for a person and form: a form already typed in raises
    "already_entered" (with the response, to link to it), one answered online
    "answered_online" or "in_progress_online". A follow-up before the day it opens raises
    "followup_not_open" (`now`, `zone`: the application's clock and calendar).
    """
    person = find_person(session, user, raw_code)
    existing = next((r for r in person.responses if r.form == form.value), None)
    if existing is not None:
        if existing.channel != Channel.PAPER.value:
            reason = "answered_online" if existing.is_submitted else "in_progress_online"
            raise EntryError(reason, existing)
        if existing.is_submitted:
            raise EntryError("already_entered", existing)
        return existing
    _check_form_allowed(person, form)
    _check_followup_open(
        person, form, now or clock.now(), zone or clock.zone_of(clock.DEFAULT_ZONE)
    )
    response = journey.open_form(
        session, definition, person, form, locale, Channel.PAPER, wording=wording
    )
    if response.channel != Channel.PAPER.value:  # the person started online just now
        raise EntryError("in_progress_online", response)
    _record_creation(session, user, response)
    return response


def open_uncoded(
    session: Session,
    definition: Definition,
    user: StaffUser,
    structure: Structure,
    form: FormKind,
    locale: str,
    token: str,
    wording: Wording = Wording.STANDARD,
) -> Response:
    """A paper form printed without a code: a fresh code and its response, once per token."""
    check_access(user, structure)
    if not FORM_RULES[form].opens_code:
        raise EntryError(REFUSALS[(form, "needs_earlier")])
    known = session.scalar(select(Response).where(Response.start_token == token))
    response = journey.start_response(
        session, definition, structure, form, locale, token, Channel.PAPER, wording
    )
    if known is None:
        _record_creation(session, user, response, new_code=True)
    return response


def _record_creation(
    session: Session, user: StaffUser, response: Response, new_code: bool = False
) -> None:
    changes: dict[str, dict[str, list[str]]] = {
        "form": {"old": [], "new": [response.form]},
        "channel": {"old": [], "new": [Channel.PAPER.value]},
    }
    if new_code:
        changes["code"] = {"old": [], "new": [response.beneficiary.code]}
    audit.record(
        session, user, "create", audit.Entity.RESPONSE, response.id, response.structure_id, changes
    )


def load_paper_response(session: Session, user: StaffUser, response_id: int) -> Response:
    """A paper response the user may type; EntryError otherwise (or "not_found")."""
    response = load_response(session, user, response_id)
    if response.channel != Channel.PAPER.value:
        raise EntryError("not_paper", response)
    if _doing_second_entry(session, user, response):
        raise EntryError("blind", response)
    return response


def _doing_second_entry(session: Session, user: StaffUser, response: Response) -> bool:
    """Whether the user types this form's blind second entry now (so must not see the first)."""
    entry = session.scalar(select(SecondEntry).where(SecondEntry.response_id == response.id))
    return entry is not None and entry.completed_at is None and entry.entered_by_id == user.id


def load_response(session: Session, user: StaffUser, response_id: int) -> Response:
    response = session.scalar(
        select(Response)
        .where(Response.id == response_id)
        .options(
            selectinload(Response.answers),
            joinedload(Response.beneficiary).joinedload(Beneficiary.structure),
        )
    )
    if response is None or not can_access_structure(user, response.beneficiary.structure):
        raise EntryError("not_found")  # the same answer whether it exists elsewhere or not
    return response
