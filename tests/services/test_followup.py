"""The follow-up list: statuses, "after due", counts and pages in SQL; one person; deletions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from selfcheck.accounts import auth
from selfcheck.accounts.structures import create_structure
from selfcheck.followup import operations as followup
from selfcheck.followup.operations import PersonStatus, Show
from selfcheck.journey import operations as journey
from selfcheck.platform import codes
from selfcheck.platform.db import Database
from selfcheck.platform.models import (
    Answer,
    AuditEvent,
    Beneficiary,
    Channel,
    Response,
    Role,
    SecondEntry,
    SecondEntryAnswer,
    StaffUser,
    Structure,
    utcnow,
)
from selfcheck.questionnaire.model import Definition, FormKind
from tests.support import AFTER, fill_and_submit, new_token, submitted

WEEKS = 6


@dataclass
class People:
    """One person of each kind in the structure (codes), and one elsewhere."""

    not_started: str
    in_progress: str
    due: str  # 'before' sent 10 weeks ago, no 'after'
    recent: str  # 'before' sent 1 week ago, no 'after'
    after_pending: str  # 'before' sent 10 weeks ago, 'after' started
    complete: str
    retro: str
    elsewhere: str


def backdate(session: Session, response: Response, weeks: float) -> None:
    response.submitted_at = utcnow() - timedelta(weeks=weeks)
    response.updated_at = response.submitted_at
    session.commit()


def make_people(session: Session, definition: Definition, structure: Structure) -> People:
    (fresh,) = journey.create_codes(session, structure, 1)
    session.commit()
    started = journey.start_response(
        session, definition, structure, FormKind.BEFORE, "fr", new_token()
    )
    session.commit()
    due = submitted(session, definition, structure, FormKind.BEFORE)
    backdate(session, due, 10)
    recent = submitted(session, definition, structure, FormKind.BEFORE)
    recent.channel = Channel.PAPER.value
    backdate(session, recent, 1)
    pending = submitted(session, definition, structure, FormKind.BEFORE)
    backdate(session, pending, 10)
    journey.start_after(session, definition, pending.beneficiary, "fr")
    session.commit()
    complete = submitted(session, definition, structure, FormKind.BEFORE)
    backdate(session, complete, 12)
    after = journey.start_after(session, definition, complete.beneficiary, "fr")
    session.commit()
    fill_and_submit(session, definition, after, AFTER)
    retro = submitted(session, definition, structure, FormKind.RETRO)
    other = create_structure(session, "Mairie de Bobigny", "urbain", "93")
    session.commit()
    elsewhere = submitted(session, definition, other, FormKind.BEFORE)
    backdate(session, elsewhere, 10)
    return People(
        fresh.code,
        started.beneficiary.code,
        due.beneficiary.code,
        recent.beneficiary.code,
        pending.beneficiary.code,
        complete.beneficiary.code,
        retro.beneficiary.code,
        elsewhere.beneficiary.code,
    )


@pytest.fixture
def people(db_session: Session, definition: Definition, structure: Structure) -> People:
    return make_people(db_session, definition, structure)


def statuses(page: followup.FollowupPage) -> dict[str, PersonStatus]:
    return {row.code: row.status for row in page.rows}


def test_each_person_gets_a_status(
    db_session: Session, structure: Structure, people: People
) -> None:
    listing = followup.list_people(db_session, structure)
    assert statuses(listing) == {
        people.not_started: PersonStatus.NOT_STARTED,
        people.in_progress: PersonStatus.IN_PROGRESS,
        people.due: PersonStatus.BEFORE_DONE,
        people.recent: PersonStatus.BEFORE_DONE,
        people.after_pending: PersonStatus.AFTER_PENDING,
        people.complete: PersonStatus.COMPLETE,
        people.retro: PersonStatus.RETROSPECTIVE,
    }
    assert people.elsewhere not in statuses(listing)
    assert listing.counts == {
        PersonStatus.NOT_STARTED: 1,
        PersonStatus.IN_PROGRESS: 1,
        PersonStatus.BEFORE_DONE: 2,
        PersonStatus.AFTER_PENDING: 1,
        PersonStatus.COMPLETE: 1,
        PersonStatus.RETROSPECTIVE: 1,
    }
    assert listing.people == listing.total == 7
    assert listing.after_due == 2
    assert listing.after_due_weeks == WEEKS


def test_rows_carry_dates_and_channels(
    db_session: Session, structure: Structure, people: People
) -> None:
    rows = {row.code: row for row in followup.list_people(db_session, structure).rows}
    recent = rows[people.recent]
    assert recent.before is not None and recent.before.is_submitted
    assert recent.before.channel == "paper"
    assert recent.before.submitted_at is not None
    assert recent.after is None and recent.retro is None
    assert recent.can_print_after and not recent.after_due

    complete = rows[people.complete]
    assert complete.before is not None and complete.after is not None
    assert complete.before.channel == complete.after.channel == "online"
    assert complete.after.submitted_at is not None and complete.before.submitted_at is not None
    assert complete.after.submitted_at > complete.before.submitted_at
    assert not complete.can_print_after and not complete.after_due

    pending = rows[people.after_pending]
    assert pending.after is not None and not pending.after.is_submitted
    assert pending.can_print_after and pending.after_due

    retro = rows[people.retro]
    assert retro.retro is not None and retro.retro.is_submitted and retro.before is None
    assert not retro.can_print_after
    assert rows[people.not_started].before is None


def test_after_due_filter_and_codes(
    db_session: Session, structure: Structure, people: People
) -> None:
    listing = followup.list_people(db_session, structure, Show.AFTER_DUE)
    assert sorted(statuses(listing)) == sorted([people.due, people.after_pending])
    assert all(row.after_due for row in listing.rows)
    assert listing.total == 2
    assert sorted(followup.after_due_codes(db_session, structure)) == sorted(
        [people.due, people.after_pending]
    )
    # A longer delay: nobody owes anything yet; a shorter one: the recent 'before' too.
    structure.after_due_weeks = 11
    db_session.commit()
    assert followup.after_due_codes(db_session, structure) == []
    structure.after_due_weeks = 0
    db_session.commit()
    assert sorted(followup.after_due_codes(db_session, structure)) == sorted(
        [people.due, people.after_pending, people.recent]
    )


@pytest.mark.parametrize("status", list(PersonStatus))
def test_status_filters(
    db_session: Session, structure: Structure, people: People, status: PersonStatus
) -> None:
    listing = followup.list_people(db_session, structure, Show(status.value))
    assert {row.status for row in listing.rows} == {status}
    assert listing.total == listing.counts[status] == len(listing.rows)


def test_show_parse_falls_back_to_everybody() -> None:
    assert Show.parse("after_due") is Show.AFTER_DUE
    assert Show.parse(None) is Show.ALL
    assert Show.parse("nonsense") is Show.ALL


def test_pages(db_session: Session, structure: Structure, people: People) -> None:
    seen: list[str] = []
    for number in (1, 2, 3):
        page = followup.list_people(db_session, structure, page=number, page_size=3)
        assert (page.page, page.pages, page.total) == (number, 3, 7)
        seen += [row.code for row in page.rows]
    assert len(seen) == len(set(seen)) == 7
    # Most recent activity first: the 'before' sent 1 then 10 weeks ago come last.
    assert seen[-2:] == [people.recent, people.due]
    assert followup.list_people(db_session, structure, page=99, page_size=3).page == 3
    assert followup.list_people(db_session, structure, page=-4, page_size=3).page == 1


def test_an_empty_structure(db_session: Session) -> None:
    empty = create_structure(db_session, "Nouvelle structure", "rural", "23")
    db_session.commit()
    listing = followup.list_people(db_session, empty)
    assert listing.rows == [] and listing.total == 0 and listing.pages == 1
    assert listing.after_due == 0


@pytest.fixture
def statements(database: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    event.listen(database.engine, "before_cursor_execute", count)
    yield seen
    event.remove(database.engine, "before_cursor_execute", count)


def test_a_page_costs_a_fixed_number_of_queries_however_many_people(
    db_session: Session, structure: Structure, statements: list[str]
) -> None:
    journey.create_codes(db_session, structure, 120)
    db_session.commit()
    statements.clear()
    listing = followup.list_people(db_session, structure, page=2, page_size=50)
    assert len(listing.rows) == 50 and listing.total == 120
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    # Counts by status, the other filters' counts (sums in one pass), the page.
    assert len(selects) == 3, selects
    assert all(
        "LIMIT" in s.upper() or "count(" in s.lower() or "sum(" in s.lower() for s in selects
    )


# --- one person --------------------------------------------------------------------------


def staff(session: Session, role: Role, structure: Structure | None, email: str) -> StaffUser:
    result = auth.create_user(
        session,
        auth.NewUser(email, role, structure.id if structure else None),
        "une phrase assez longue",
    )
    session.commit()
    return result


def _by_code(session: Session, code: str) -> Beneficiary | None:
    found: Beneficiary | None = session.scalar(select(Beneficiary).where(Beneficiary.code == code))
    return found


def test_find_person_by_id_within_scope(
    db_session: Session, structure: Structure, people: People
) -> None:
    """The staff pages' look-up (by id since round 23): another structure's person, an
    unknown id and one out of range all give None; evaluators see their grants only."""

    due_person, elsewhere_person = (
        _by_code(db_session, people.due),
        _by_code(db_session, people.elsewhere),
    )
    assert due_person is not None and elsewhere_person is not None
    due, elsewhere = due_person.id, elsewhere_person.id
    mediator = staff(db_session, Role.MEDIATOR, structure, "nadia@example.org")
    found = journey.find_person_by_id(db_session, mediator, due)
    assert found is not None and found.code == people.due
    assert journey.find_person_by_id(db_session, mediator, elsewhere) is None
    for wrong in (0, -1, 2**31, 10**30, max(due, elsewhere) + 1000):
        assert journey.find_person_by_id(db_session, mediator, wrong) is None

    platform = staff(db_session, Role.PLATFORM_ADMIN, None, "root@example.org")
    assert journey.find_person_by_id(db_session, platform, elsewhere) is not None
    evaluator = staff(db_session, Role.EVALUATOR, None, "eval@example.org")
    auth.grant(db_session, evaluator, department="44")
    db_session.commit()
    assert journey.find_person_by_id(db_session, evaluator, due) is not None
    assert journey.find_person_by_id(db_session, evaluator, elsewhere) is None


def test_responses_of_tells_who_typed_them(
    db_session: Session, structure: Structure, people: People
) -> None:
    mediator = staff(db_session, Role.MEDIATOR, structure, "nadia@example.org")
    person = _by_code(db_session, people.complete)
    assert person is not None
    before = person.responses[0]
    before.channel = Channel.PAPER.value
    before.entered_by_id = mediator.id
    before.entered_at = utcnow()
    db_session.commit()
    rows = followup.responses_of(db_session, person)
    assert [row.response.form for row in rows] == ["before", "after"]
    assert [row.entered_by for row in rows] == ["nadia@example.org", None]
    stored = db_session.scalar(
        select(func.count()).select_from(Answer).where(Answer.response_id == before.id)
    )
    assert rows[0].answers == stored and stored


def test_delete_a_response_keeps_its_values_in_the_audit_trail(
    db_session: Session, database: Database, structure: Structure, people: People
) -> None:
    admin = staff(db_session, Role.STRUCTURE_ADMIN, structure, "admin@example.org")
    person = _by_code(db_session, people.complete)
    assert person is not None
    before = person.responses[0]
    old = journey.answers_of(before)
    second = SecondEntry(response_id=before.id, entered_by_id=admin.id)
    second.answers.append(SecondEntryAnswer(variable="COMFORT", value="1"))
    db_session.add(second)
    db_session.commit()
    response_id = before.id

    followup.delete_response(db_session, admin, before)
    db_session.commit()

    with database.session() as fresh:
        assert fresh.get(Response, response_id) is None
        assert fresh.scalar(select(func.count()).where(Answer.response_id == response_id)) == 0
        assert fresh.scalar(select(func.count()).select_from(SecondEntry)) == 0
        assert fresh.scalar(select(func.count()).select_from(SecondEntryAnswer)) == 0
        (event_,) = fresh.scalars(select(AuditEvent)).all()
        remaining = fresh.scalars(
            select(Response.form).join(Beneficiary).where(Beneficiary.code == people.complete)
        ).all()
    assert remaining == ["after"]
    assert (event_.action, event_.entity, event_.entity_id) == ("delete", "response", response_id)
    assert event_.user_id == admin.id and event_.structure_id == structure.id
    changes = json.loads(event_.changes)
    assert changes["form"] == {"old": ["before"], "new": []}
    assert changes["code"] == {"old": [people.complete], "new": []}
    assert changes["status"] == {"old": ["submitted"], "new": []}
    for variable, values in old.items():
        assert changes[variable] == {"old": list(values), "new": []}


def test_delete_a_person(
    db_session: Session, database: Database, structure: Structure, people: People
) -> None:
    admin = staff(db_session, Role.STRUCTURE_ADMIN, structure, "admin@example.org")
    person = _by_code(db_session, people.after_pending)
    assert person is not None
    ids = [r.id for r in person.responses]

    followup.delete_person(db_session, admin, person)
    db_session.commit()

    with database.session() as fresh:
        assert (
            fresh.scalar(select(Beneficiary).where(Beneficiary.code == people.after_pending))
            is None
        )
        assert fresh.scalar(select(func.count()).where(Response.id.in_(ids))) == 0
        events = fresh.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(e.action, e.entity) for e in events] == [
        ("delete", "response"),
        ("delete", "response"),
        ("delete", "beneficiary"),
    ]
    assert json.loads(events[-1].changes) == {
        "code": {"old": [people.after_pending], "new": []},
        "responses": {"old": ["before", "after"], "new": []},
    }
    assert followup.list_people(db_session, structure).total == 6

    # A code printed on paper and never used can be deleted too.
    fresh_person = _by_code(db_session, people.not_started)
    assert fresh_person is not None
    followup.delete_person(db_session, admin, fresh_person)
    db_session.commit()
    assert followup.list_people(db_session, structure).counts[PersonStatus.NOT_STARTED] == 0


def test_after_due_codes_fit_in_one_print_run(
    db_session: Session, structure: Structure, people: People
) -> None:
    from selfcheck.paper import operations as paper

    assert followup.PRINT_BATCH <= paper.MAX_COPIES
    assert followup.PRINT_BATCH * 6 <= paper.MAX_PAGES  # an after-form has 6 pages
    # The longest overdue first: 'due' and 'after_pending' both sent 10 weeks ago.
    assert len(followup.after_due_codes(db_session, structure, limit=1)) == 1


# --- search, state filters, order (issue 14) ---------------------------------------------


def test_normalise_part_cleans_like_a_code_without_its_check() -> None:
    assert codes.normalise_part(" k7m-2qx ") == "K7M2QX"
    assert codes.normalise_part("o1l") == "011"  # read as on paper
    assert codes.normalise_part("") == ""
    with pytest.raises(codes.InvalidCode) as bad:
        codes.normalise_part("K7%")
    assert bad.value.problem is codes.CodeProblem.CHARACTER
    with pytest.raises(codes.InvalidCode) as long:
        codes.normalise_part("0123456789")
    assert long.value.problem is codes.CodeProblem.LENGTH


def test_search_by_part_of_a_code(
    db_session: Session, structure: Structure, people: People
) -> None:
    part = people.due[2:6]
    listing = followup.list_people(db_session, structure, search=part)
    found = [row.code for row in listing.rows]
    assert people.due in found and all(part in code for code in found)
    assert listing.total == len(found)
    # The whole code of another structure's person finds nobody here.
    assert followup.list_people(db_session, structure, search=people.elsewhere).total == 0
    # Search and state together.
    both = followup.list_people(db_session, structure, Show.COMPLETE, search=people.complete)
    assert [row.code for row in both.rows] == [people.complete]
    none = followup.list_people(db_session, structure, Show.AFTER_DUE, search=people.complete)
    assert none.rows == [] and none.total == 0


def test_before_only_and_every_filter_counted(
    db_session: Session, structure: Structure, people: People
) -> None:
    listing = followup.list_people(db_session, structure, Show.BEFORE_ONLY)
    assert set(statuses(listing)) == {people.due, people.recent, people.after_pending}
    assert listing.shown is not None
    expected = {
        Show.ALL: 7,
        Show.BEFORE_ONLY: 3,
        Show.AFTER_DUE: 2,
        Show.FOLLOWUP_DUE: 0,  # nobody's follow-up open yet
        Show.COMPLETE: 1,
        Show.NOT_STARTED: 1,
        Show.IN_PROGRESS: 1,
        Show.BEFORE_DONE: 2,
        Show.AFTER_PENDING: 1,
        Show.RETROSPECTIVE: 1,
    }
    assert dict(listing.shown) == expected
    for show, number in expected.items():
        assert followup.list_people(db_session, structure, show).total == number, show


def test_every_state_has_a_filter_rule() -> None:
    assert set(followup.SHOW_FILTERS) == set(Show) - {Show.ALL}
    assert Show.lookup("nonsense") is None and Show.lookup("") is Show.ALL
    assert followup.Sort.lookup("sideways") is None
    assert followup.Sort.lookup(None) is followup.Sort.RECENT


def test_first_and_last_visit_and_sort_by_them(
    db_session: Session, structure: Structure, people: People
) -> None:
    rows = {row.code: row for row in followup.list_people(db_session, structure).rows}
    complete = rows[people.complete]
    assert complete.first_visit is not None and complete.last_visit is not None
    assert complete.last_visit - complete.first_visit > timedelta(weeks=11)
    due = rows[people.due]
    assert due.first_visit is not None
    # SQLite gives naive UTC datetimes back, PostgreSQL aware ones: compare both as naive UTC.
    assert due.first_visit.replace(tzinfo=None) < utcnow().replace(tzinfo=None) - timedelta(weeks=9)
    assert rows[people.not_started].first_visit is None
    assert rows[people.not_started].last_visit is None

    def order(sort: followup.Sort) -> list[str]:
        return [r.code for r in followup.list_people(db_session, structure, sort=sort).rows]

    recent, oldest = order(followup.Sort.RECENT), order(followup.Sort.OLDEST)
    assert oldest == list(reversed(recent))
    assert oldest[0] == people.due  # last seen 10 weeks ago (the complete one came back)
    first_oldest = order(followup.Sort.FIRST_OLDEST)
    assert first_oldest[0] == people.complete  # first seen 12 weeks ago
    assert order(followup.Sort.FIRST_RECENT)[-1] == people.complete


def test_a_huge_page_number_is_brought_to_the_last_page(
    db_session: Session, structure: Structure, people: People
) -> None:
    listing = followup.list_people(db_session, structure, page=10**30, page_size=3)
    assert (listing.page, listing.pages, listing.requested_page) == (3, 3, 10**30)
    assert len(listing.rows) == 1
