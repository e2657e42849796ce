"""The follow-up months later (issue 15): when it opens (fixed clock, time-zone edges), the
journey at 0, end and +3 months, paper entry, and the bad inputs (twice, too early, no end
form, two writers)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck.entry.lookup import EntryError, open_entry
from selfcheck.entry.rates import update_settings
from selfcheck.entry.saving import save_entry
from selfcheck.journey import lasting, schedule
from selfcheck.journey import operations as journey
from selfcheck.journey.operations import NextStep
from selfcheck.platform import clock
from selfcheck.platform.db import Database
from selfcheck.platform.models import (
    AuditEvent,
    Channel,
    FollowupReminder,
    Response,
    Role,
    StaffUser,
    Structure,
)
from selfcheck.questionnaire import Definition, FormKind
from selfcheck.questionnaire.model import NO_ANSWER, Wording
from tests.support import AFTER, BEFORE, TASKS, count, fill_and_submit, stored, submitted

PARIS = ZoneInfo("Europe/Paris")
START = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)

FOLLOWUP: dict[str, tuple[str, ...]] = {
    "ASSIST": ("seul",),
    "COMFORT": ("3",),
    **dict.fromkeys(TASKS, ("3",)),
    "STILL_USE": ("souvent",),
    "HELP_AGAIN": ("proche",),
    "LOST": ("acces",),
}


@pytest.fixture(autouse=True)
def _request(app: Flask) -> Iterator[None]:
    with app.test_request_context():
        yield


@pytest.fixture
def fixed() -> Iterator[clock.FixedClock]:
    with clock.fixed(START) as fixed_clock:
        yield fixed_clock


def mediator(session: Session, structure: Structure) -> StaffUser:
    user = StaffUser(
        email="m@example.org",
        password_hash="not a real hash",
        role=Role.MEDIATOR.value,
        structure_id=structure.id,
    )
    session.add(user)
    session.commit()
    return user


def route(session: Session, response: Response, now: datetime) -> journey.CodeRoute:
    session.expire_all()
    person = journey.find_beneficiary(session, response.beneficiary.code)
    return journey.route_for_code(person, now, PARIS)


def ended(
    session: Session, definition: Definition, structure: Structure, fixed: clock.FixedClock
) -> Response:
    """A person with a sent before form (at START) and a sent after form 8 weeks later."""
    before = submitted(session, definition, structure, FormKind.BEFORE, BEFORE)
    fixed.advance(timedelta(weeks=8))
    after = journey.start_after(session, definition, before.beneficiary, "fr")
    session.commit()
    fill_and_submit(session, definition, after, AFTER)
    return after


# --- the calendar ---------------------------------------------------------------------------


def test_add_months_keeps_the_day_or_takes_the_month_end() -> None:
    assert schedule.add_months(date(2027, 3, 7), 3) == date(2027, 6, 7)
    assert schedule.add_months(date(2027, 11, 30), 3) == date(2028, 2, 29)  # leap year
    assert schedule.add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert schedule.add_months(date(2027, 10, 15), 12) == date(2028, 10, 15)


def test_the_followup_opens_at_local_midnight_of_the_local_day() -> None:
    delays = {FormKind.FOLLOWUP: 3}
    # 23:30 UTC on 31 January is already 1 February in Paris: opens on 1 May, local midnight.
    sent = datetime(2027, 1, 31, 23, 30, tzinfo=UTC)
    (opening,) = schedule.openings(sent, delays, PARIS)
    assert opening.day == date(2027, 5, 1)
    assert opening.at == datetime(2027, 4, 30, 22, 0, tzinfo=UTC)  # summer time: UTC+2
    forms = [schedule.SentForm(FormKind.AFTER, sent)]
    just_before = schedule.status(forms, delays, opening.at - timedelta(seconds=1), PARIS)
    assert just_before.state is schedule.FollowupState.WAITING
    assert schedule.status(forms, delays, opening.at, PARIS).state is schedule.FollowupState.OPEN
    # One hour earlier it was still 31 January in Paris: opens on 30 April.
    (earlier,) = schedule.openings(datetime(2027, 1, 31, 22, 30, tzinfo=UTC), delays, PARIS)
    assert earlier.day == date(2027, 4, 30)
    # SQLite gives naive datetimes back: read as UTC, the same day.
    (naive,) = schedule.openings(datetime(2027, 1, 31, 23, 30), delays, PARIS)
    assert naive == opening


def test_the_latest_open_followup_is_the_one_to_answer() -> None:
    delays = schedule.months_of(3, 12)
    sent = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
    forms = [schedule.SentForm(FormKind.RETRO, sent)]
    at_4 = schedule.status(forms, delays, sent + timedelta(days=120), PARIS)
    assert (at_4.state, at_4.form) == (schedule.FollowupState.OPEN, FormKind.FOLLOWUP)
    done_first = [*forms, schedule.SentForm(FormKind.FOLLOWUP, sent + timedelta(days=100))]
    waiting = schedule.status(done_first, delays, sent + timedelta(days=120), PARIS)
    assert (waiting.state, waiting.form) == (
        schedule.FollowupState.WAITING,
        FormKind.FOLLOWUP_LATE,
    )
    # Back after 13 months without the first one: the second one (the first stays missed).
    late = schedule.status(forms, delays, sent + timedelta(days=400), PARIS)
    assert (late.state, late.form) == (schedule.FollowupState.OPEN, FormKind.FOLLOWUP_LATE)
    # No second follow-up set: done once the first is sent.
    only_first = schedule.months_of(3, None)
    finished = schedule.status(done_first, only_first, sent + timedelta(days=400), PARIS)
    assert finished.state is schedule.FollowupState.DONE
    assert schedule.status([], delays, sent, PARIS).state is schedule.FollowupState.NO_END


# --- the journey with a fixed clock -----------------------------------------------------------


def test_journey_at_start_end_and_three_months_later(
    db_session: Session,
    definition: Definition,
    structure: Structure,
    database: Database,
    fixed: clock.FixedClock,
) -> None:
    after = ended(db_session, definition, structure, fixed)
    assert after.submitted_at is not None  # the fixed clock wrote it: 7 March 2027
    assert schedule.local_day(after.submitted_at, PARIS) == date(2027, 3, 7)
    waiting = route(db_session, after, fixed.now())
    assert waiting.step is NextStep.FOLLOWUP_WAITING
    assert waiting.followup is not None and waiting.followup.opening is not None
    assert waiting.followup.opening.day == date(2027, 6, 7)
    with pytest.raises(journey.JourneyError, match="followup_not_open"):
        journey.start_followup(db_session, definition, after.beneficiary, "fr", fixed.now(), PARIS)
    db_session.rollback()

    fixed.set(datetime(2027, 6, 6, 21, 59, tzinfo=UTC))  # 23:59 in Paris: not yet
    assert route(db_session, after, fixed.now()).step is NextStep.FOLLOWUP_WAITING
    fixed.set(datetime(2027, 6, 6, 22, 0, tzinfo=UTC))  # midnight in Paris: open
    assert route(db_session, after, fixed.now()).step is NextStep.START_FOLLOWUP

    person = journey.find_beneficiary(db_session, after.beneficiary.code)
    followup = journey.start_followup(db_session, definition, person, "fr", fixed.now(), PARIS)
    db_session.commit()
    again = journey.start_followup(db_session, definition, person, "fr", fixed.now(), PARIS)
    db_session.commit()
    assert again.id == followup.id and followup.form == FormKind.FOLLOWUP.value
    assert route(db_session, after, fixed.now()).step is NextStep.RESUME
    fill_and_submit(db_session, definition, followup, FOLLOWUP)
    assert not journey.submit(db_session, definition, followup)  # sent twice: nothing changes
    db_session.commit()
    assert stored(database, followup.id) == FOLLOWUP
    assert count(database, Response) == 3
    assert route(db_session, after, fixed.now()).step is NextStep.SUMMARY


def test_no_followup_without_a_sent_end_form(
    db_session: Session, definition: Definition, structure: Structure, fixed: clock.FixedClock
) -> None:
    before = submitted(db_session, definition, structure, FormKind.BEFORE, BEFORE)
    fixed.advance(timedelta(days=400))
    with pytest.raises(journey.JourneyError, match="followup_without_end"):
        journey.start_followup(db_session, definition, before.beneficiary, "fr", fixed.now(), PARIS)
    assert route(db_session, before, fixed.now()).step is NextStep.START_AFTER


def test_the_structure_sets_the_delay_and_a_second_followup(
    db_session: Session, definition: Definition, structure: Structure, fixed: clock.FixedClock
) -> None:
    structure.followup_months, structure.second_followup_months = 1, 12
    db_session.commit()
    after = ended(db_session, definition, structure, fixed)
    fixed.advance(timedelta(days=32))
    routed = route(db_session, after, fixed.now())
    assert routed.step is NextStep.START_FOLLOWUP and routed.followup is not None
    assert routed.followup.form is FormKind.FOLLOWUP
    fixed.advance(timedelta(days=340))
    routed = route(db_session, after, fixed.now())
    assert routed.followup is not None and routed.followup.form is FormKind.FOLLOWUP_LATE
    late = journey.start_followup(
        db_session, definition, after.beneficiary, "fr", fixed.now(), PARIS
    )
    db_session.commit()
    assert late.form == FormKind.FOLLOWUP_LATE.value


# --- paper ------------------------------------------------------------------------------------


def test_a_paper_followup_is_typed_in_once_the_end_form_is_sent(
    db_session: Session,
    definition: Definition,
    structure: Structure,
    database: Database,
    fixed: clock.FixedClock,
) -> None:
    user = mediator(db_session, structure)
    before = submitted(db_session, definition, structure, FormKind.BEFORE, BEFORE)
    code = before.beneficiary.code
    with pytest.raises(EntryError, match="followup_without_end"):
        open_entry(db_session, definition, user, code, FormKind.FOLLOWUP, "fr")
    db_session.rollback()
    fixed.advance(timedelta(weeks=8))
    after = journey.start_after(db_session, definition, before.beneficiary, "fr")
    db_session.commit()
    # The after form open but not sent: still no follow-up.
    with pytest.raises(EntryError, match="followup_without_end"):
        open_entry(db_session, definition, user, code, FormKind.FOLLOWUP, "fr")
    db_session.rollback()
    fill_and_submit(db_session, definition, after, AFTER)
    # A consented reminder address (journey/reminders.py): it goes once the follow-up is typed.
    db_session.add(
        FollowupReminder(
            beneficiary_id=before.beneficiary_id,
            email="rappel@exemple.org",
            locale="fr",
            link="http://localhost/code",
        )
    )
    db_session.commit()
    fixed.advance(timedelta(days=95))
    typed = open_entry(db_session, definition, user, code, FormKind.FOLLOWUP, "fr")
    db_session.commit()
    assert typed.channel == Channel.PAPER.value
    # One writer at a time: the person typing the code online is told it is being typed.
    assert route(db_session, after, fixed.now()).step is NextStep.BEING_TYPED
    paper = {**FOLLOWUP, "COMMENT": (NO_ANSWER,)}  # the comment left blank on paper
    result = save_entry(db_session, definition, user, typed, paper, finish=True)
    db_session.commit()
    assert result.submitted_now
    assert stored(database, typed.id) == paper
    assert db_session.scalars(select(FollowupReminder)).all() == []
    with pytest.raises(EntryError, match="already_entered"):
        open_entry(db_session, definition, user, code, FormKind.FOLLOWUP, "fr")


def test_a_paper_followup_is_refused_before_it_opens(
    db_session: Session,
    definition: Definition,
    structure: Structure,
    database: Database,
    fixed: clock.FixedClock,
) -> None:
    """The paper gate is the web one: the local opening day, with a fixed clock; before it
    nothing is created (no response, no audit event)."""
    user = mediator(db_session, structure)
    after = ended(db_session, definition, structure, fixed)  # sent 7 March: opens 7 June
    code = after.beneficiary.code
    responses = count(database, Response)
    events = count(database, AuditEvent)
    with pytest.raises(EntryError, match="followup_not_open") as refused:
        open_entry(
            db_session,
            definition,
            user,
            code,
            FormKind.FOLLOWUP,
            "fr",
            now=datetime(2027, 6, 6, 21, 59, tzinfo=UTC),  # 23:59 in Paris, the day before
            zone=PARIS,
        )
    assert refused.value.opens_on == date(2027, 6, 7)
    db_session.rollback()
    assert (count(database, Response), count(database, AuditEvent)) == (responses, events)
    # Not a follow-up this structure runs (no second one set): refused whatever the date.
    with pytest.raises(EntryError, match="followup_not_planned"):
        open_entry(
            db_session,
            definition,
            user,
            code,
            FormKind.FOLLOWUP_LATE,
            "fr",
            now=datetime(2028, 6, 1, tzinfo=UTC),
            zone=PARIS,
        )
    db_session.rollback()
    typed = open_entry(
        db_session,
        definition,
        user,
        code,
        FormKind.FOLLOWUP,
        "fr",
        now=datetime(2027, 6, 6, 22, 0, tzinfo=UTC),  # midnight in Paris: open
        zone=PARIS,
    )
    assert typed.form == FormKind.FOLLOWUP.value and typed.channel == Channel.PAPER.value


def test_a_followup_open_online_is_not_typed_from_paper(
    db_session: Session, definition: Definition, structure: Structure, fixed: clock.FixedClock
) -> None:
    user = mediator(db_session, structure)
    after = ended(db_session, definition, structure, fixed)
    fixed.advance(timedelta(days=95))
    journey.start_followup(db_session, definition, after.beneficiary, "fr", fixed.now(), PARIS)
    db_session.commit()
    with pytest.raises(EntryError, match="in_progress_online"):
        open_entry(db_session, definition, user, after.beneficiary.code, FormKind.FOLLOWUP, "fr")


def test_the_followup_delays_are_structure_settings(
    db_session: Session, structure: Structure
) -> None:
    admin = StaffUser(
        email="admin@example.org",
        password_hash="not a real hash",
        role=Role.STRUCTURE_ADMIN.value,
        structure_id=structure.id,
    )
    db_session.add(admin)
    db_session.commit()
    assert (structure.followup_months, structure.second_followup_months) == (3, None)
    assert update_settings(db_session, admin, structure, 0, 6, 4, 12)
    db_session.commit()
    assert (structure.followup_months, structure.second_followup_months) == (4, 12)
    for first, second in ((4, 4), (0, None), (25, None), (3, 40)):
        with pytest.raises(EntryError, match="bad_settings"):
            update_settings(db_session, admin, structure, 0, 6, first, second)
    assert update_settings(db_session, admin, structure, 0, 6, 3, None)
    db_session.commit()
    assert structure.second_followup_months is None


# --- the three points -----------------------------------------------------------------------


def test_the_summary_says_what_lasted_grew_and_was_lost(
    db_session: Session, definition: Definition, structure: Structure, fixed: clock.FixedClock
) -> None:
    after = ended(db_session, definition, structure, fixed)
    person = after.beneficiary
    assert lasting.build_lasting(definition, person) is None  # no follow-up yet
    fixed.advance(timedelta(days=95))
    followup = journey.start_followup(db_session, definition, person, "fr", fixed.now(), PARIS)
    db_session.commit()
    fill_and_submit(db_session, definition, followup, FOLLOWUP)  # every task "on my own" (3)
    db_session.expire_all()
    three = lasting.build_lasting(definition, journey.find_beneficiary(db_session, person.code))
    assert three is not None and three.followup is FormKind.FOLLOWUP
    by_code = {task.item.code: task for task in three.tasks}
    assert [t.item.code for t in three.lost] == ["T01"]  # "I can help" (4) -> 3
    assert {t.item.code for t in three.grew} == {"T03", "T05", "T08", "T09", "T13", "T14"}
    assert len(three.kept) == 7
    assert not by_code["T12"].compared  # "does not concern me" at the end: not compared
    assert (len(three.gains), len(three.gains_kept)) == (14, 13)
    assert [o.code if o else None for o in (three.comfort_before, three.comfort_end)] == ["1", "3"]
    assert three.comfort_later is not None and three.comfort_later.code == "3"
    words = three.words()
    assert "7 choses au même niveau qu'à la fin" in words.kept
    assert words.kept.startswith("Ce qui a tenu")
    assert "1 chose que vous faites moins bien qu'à la fin" in words.lost
    assert "normal" in words.lost_kindly
    assert "6 choses que vous faites mieux qu'à la fin" in words.grew
    # Plain words, not the ladder's "marche" (jargon for a beginner; round 23).
    assert "marche" not in words.grew + words.lost
    assert words.gains_kept is not None and "13 sur 14" in words.gains_kept
    easy = lasting.build_lasting(definition, person, Wording.EASY)
    assert easy is not None and "un peu oublié 1 chose" in easy.words().lost


# --- the follow-up list's "follow-up due" filter ----------------------------------------------


def test_opened_before_is_the_opening_day_as_a_bound_on_the_end_form() -> None:
    """For every end day and every "now" around the openings (month ends, leap day, DST),
    an end form sent before `opened_before` is exactly one whose follow-up is open."""
    for months in (1, 3, 12):
        for end_day in range(0, 400, 3):
            end = datetime(2027, 1, 1, 22, 30, tzinfo=UTC) + timedelta(days=end_day)
            opening = schedule.openings(end, {FormKind.FOLLOWUP: months}, PARIS)[0]
            for shift in (-1, 0, 1):
                now = opening.at + timedelta(minutes=shift)
                assert (end < schedule.opened_before(months, now, PARIS)) is opening.is_open(now)


def test_the_followup_due_filter_agrees_with_the_overview(
    db_session: Session, definition: Definition, structure: Structure, fixed: clock.FixedClock
) -> None:
    from selfcheck.followup import operations as followup
    from selfcheck.followup.operations import FollowupDue, Show

    structure.second_followup_months = 12
    db_session.commit()
    after = ended(db_session, definition, structure, fixed)  # 7 March: opens 7 June, 7 March
    waiting = ended(db_session, definition, structure, fixed)  # 2 May: opens 2 August
    code = after.beneficiary.code

    def due_at(now: datetime) -> set[str]:
        listing = followup.list_people(
            db_session, structure, Show.FOLLOWUP_DUE, now=now, zone=PARIS
        )
        overview = followup.followup_overview(db_session, structure, now, PARIS)
        assert listing.shown is not None
        assert listing.shown[Show.FOLLOWUP_DUE] == (
            overview.counts[FollowupDue.DUE] + overview.counts[FollowupDue.OVERDUE]
        )
        listed = {row.code for row in listing.rows}
        assert listed == {row.code for row in overview.rows}
        assert all(row.followup_due for row in listing.rows)
        return listed

    assert due_at(datetime(2027, 6, 6, 21, 59, tzinfo=UTC)) == set()  # 23:59 the day before
    assert due_at(datetime(2027, 6, 6, 22, 0, tzinfo=UTC)) == {code}  # midnight in Paris
    everybody = followup.list_people(
        db_session, structure, now=datetime(2027, 6, 7, tzinfo=UTC), zone=PARIS
    )
    flagged = {row.code: row.followup_due for row in everybody.rows}
    assert flagged[code] and not flagged[waiting.beneficiary.code]
    fixed.set(datetime(2027, 6, 8, 9, 0, tzinfo=UTC))
    sent = journey.start_followup(
        db_session, definition, after.beneficiary, "fr", fixed.now(), PARIS
    )
    db_session.commit()
    fill_and_submit(db_session, definition, sent, FOLLOWUP)
    assert due_at(datetime(2027, 7, 1, tzinfo=UTC)) == set()  # answered
    assert due_at(datetime(2027, 8, 2, tzinfo=UTC)) == {waiting.beneficiary.code}
    # The second follow-up, 12 months after the end form: due again.
    assert due_at(datetime(2028, 3, 7, tzinfo=UTC)) == {code, waiting.beneficiary.code}
