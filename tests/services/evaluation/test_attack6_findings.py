"""Round 15 attack (branch attack6) on dash3 (follow-up figures from cells, their check sealed)
and dash4 (remembered lines as binary records)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck.evaluation import differencing, facts, retention
from selfcheck.evaluation.guard_views import GROUPS
from selfcheck.evaluation.scope import ScopeError, parse_filters
from selfcheck.platform.db import Database
from selfcheck.platform.models import (
    Beneficiary,
    ExportLog,
    ExportSelection,
    Response,
    Role,
    StaffUser,
    Status,
    Structure,
)
from selfcheck.questionnaire.model import Definition, FormKind
from tests.services.evaluation.test_facts import PARIS, World, check_counted
from tests.staff import add_staff

K = 3
SECRET = "un secret de test"
# Two figures' groups one person apart (the second has person 99 more): shown one after the
# other, the second must be refused (its "kept" figure minus the first's is person 99).
FIRST = {"response": frozenset(range(1, 11)), "kept": frozenset(range(1, 11))}
SECOND = {"response": frozenset(range(1, 11)), "kept": frozenset([*range(1, 11), 99])}


def _filters(db: Session, user: StaffUser) -> tuple[Any, Any]:
    slug = db.scalars(select(Structure.slug).order_by(Structure.id)).first()
    return parse_filters(db, user, {}), parse_filters(db, user, {"structure": str(slug)})


def test_figures_one_person_apart_are_refused_one_after_the_other(
    populated: Session, admin: StaffUser
) -> None:
    # The control of the next test: in sequence the guard does its job.
    everyone, narrower = _filters(populated, admin)
    assert differencing.guard_figures(populated, admin, everyone, FIRST, K, SECRET)
    populated.commit()
    assert not differencing.guard_figures(populated, admin, narrower, SECOND, K, SECRET)


def test_two_views_at_once_cannot_both_show_figures_one_person_apart(
    populated: Session, admin: StaffUser, database: Database
) -> None:
    _everyone, narrower = _filters(populated, admin)
    record = differencing._record
    verdicts: list[bool] = []
    started: list[str] = []

    def the_other_request_meanwhile(*args: Any, **kwargs: Any) -> Any:
        # The first request has read the evaluator's memory and passed; before it writes,
        # the second request runs whole and commits (its own session, as another worker).
        if not started:
            started.append("the other request")
            with database.session() as other:
                user = other.get(StaffUser, admin.id)
                assert user is not None
                verdicts.append(
                    differencing.guard_figures(
                        other, user, parse_filters(other, user, {}), FIRST, K, SECRET
                    )
                )
                other.commit()
        return record(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(differencing, "_record", the_other_request_meanwhile)
        mine = differencing.guard_figures(populated, admin, narrower, SECOND, K, SECRET)
    populated.commit()
    assert verdicts == [True]  # the other request's figures were shown
    # ...so these, one person apart from them, must not be.
    assert not mine


# The whole selections: 40 people, 15 of them in the second structure (conftest.populated):
# "everyone" and "the first structure" differ by 15, fewer than this k.
WIDE_K = 20


def _guard_view(db: Session, user: StaffUser, filters: Any) -> bool:
    try:
        differencing.guard_view(db, user, filters, WIDE_K, SECRET)
    except ScopeError:
        return False
    return True


@pytest.mark.usefixtures("request_context")
def test_selections_fewer_than_k_apart_are_refused_one_after_the_other(
    populated: Session, admin: StaffUser
) -> None:
    # The control of the next test.
    everyone, narrower = _filters(populated, admin)
    assert _guard_view(populated, admin, everyone)
    populated.commit()
    assert not _guard_view(populated, admin, narrower)


@pytest.mark.usefixtures("request_context")
def test_two_dashboard_views_at_once_cannot_both_show_selections_under_k_apart(
    populated: Session, admin: StaffUser, database: Database
) -> None:
    _everyone, narrower = _filters(populated, admin)
    record = differencing._record
    verdicts: list[bool] = []
    started: list[str] = []

    def the_other_request_meanwhile(*args: Any, **kwargs: Any) -> Any:
        if not started:
            started.append("the other request")
            with database.session() as other:
                user = other.get(StaffUser, admin.id)
                assert user is not None
                verdicts.append(_guard_view(other, user, parse_filters(other, user, {})))
                other.commit()
        return record(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(differencing, "_record", the_other_request_meanwhile)
        mine = _guard_view(populated, admin, narrower)
    populated.commit()
    assert verdicts == [True]  # the other request's dashboard was shown
    assert not mine  # ...so this one, 15 people from it, must not be


@pytest.fixture
def world(
    db_session: Session, database: Database, definition: Definition, request_context: None
) -> World:
    return World(db_session, database, definition)


# End forms sent around the UTC and Paris midnights of one day (Paris is UTC+1 in March):
# the day a follow-up opening falls on is read one by one by retention.count, the days
# before it from the cells.
SENT = [
    datetime(2026, 3, 9, 22, 30, tzinfo=UTC),
    datetime(2026, 3, 9, 23, 30, tzinfo=UTC),
    datetime(2026, 3, 10, 0, 30, tzinfo=UTC),
    datetime(2026, 3, 10, 12, 0, tzinfo=UTC),
    datetime(2026, 3, 10, 22, 59, tzinfo=UTC),
    datetime(2026, 3, 10, 23, 0, tzinfo=UTC),
    datetime(2026, 3, 10, 23, 1, tzinfo=UTC),
    datetime(2026, 3, 11, 0, 0, tzinfo=UTC),
]


@pytest.mark.slow  # 8 people, then 3 selections x 9 days checked: about 5 s at load 10
def test_the_follow_up_figures_from_cells_are_the_peoples_on_every_day_around_an_opening(
    world: World,
) -> None:
    # The hypothesis test of dash3 checks the cells today and once every follow-up has
    # opened: never on the day an opening falls on, where the end forms are read one by one.
    db, definition = world.db, world.definition
    for number, moment in enumerate(SENT):
        structure = world.structures[number % 2]
        person = Beneficiary(code=f"ZZ-bord-{number}", structure_id=structure.id)
        db.add(person)
        db.flush()
        db.add(
            Response(
                beneficiary_id=person.id,
                structure_id=structure.id,
                form=FormKind.RETRO.value,
                definition_id=definition.id,
                definition_version=definition.version,
                channel="online",
                locale="fr",
                status=Status.SUBMITTED.value,
                created_at=moment,
                updated_at=moment,
                submitted_at=moment,
                wording="standard",
            )
        )
    db.commit()
    months = {structure.followup_months for structure in world.structures}
    assert months == {3}
    opening = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)  # 3 months after 10 March, at noon
    seen: set[int] = set()
    for days in range(-4, 5):
        for hour in (0, 12, 23):
            now = opening + timedelta(days=days, hours=hour - 12)
            for filters in world.selections()[:3]:
                check_counted(db, definition, filters, now)
            counted = retention.count(
                db,
                definition,
                world.selections()[0],
                now=now,
                zone=PARIS,
                key=facts.session_cell_key(db),
            )
            assert counted is not None
            seen.add(counted.opened)
    # Every step of the opening was met: nobody, some, everyone.
    assert {0, len(SENT)} <= seen and len(seen) > 2


# A sequence of views: the same people under other filters, sub-groups, other structures.
VIEWS: list[dict[str, str]] = [
    {},
    {"from": "2020-01"},
    {"structure": "FIRST"},
    {"form": "before"},
    {"form": "before,after"},
    {"channel": "online"},
    {"structure": "FIRST", "form": "before"},
    {},
]


def _as_kept_before_dash4(db: Session, user: StaffUser) -> None:
    """The evaluator's remembered selections rewritten as the code before dash4 kept them:
    text lines in `people` (after the group's name), no `lines`, and the digests of that text
    in their log rows' reports (the old code's digest: `_Digests` of the text lines)."""
    rows = db.execute(
        select(ExportSelection, ExportLog)
        .join(ExportLog, ExportLog.id == ExportSelection.export_id)
        .where(ExportSelection.user_id == user.id, ExportSelection.lines.is_not(None))
    ).all()
    for selection, log in rows:
        assert selection.lines is not None
        records = differencing._records(selection.lines)
        name = selection.people[:-1] if selection.people.endswith("|") else ""
        report = json.loads(log.report or "{}")
        as_text = differencing._Digests({name: records}).of(name, as_text=True)
        if differencing.DIGESTS in report:
            report[differencing.DIGESTS][name] = as_text
        else:
            report[differencing.DIGEST] = as_text
        log.report = json.dumps(report)
        selection.people = "\n".join(differencing.stored_lines(selection.people, selection.lines))
        selection.lines = None
    db.flush()


def _view(db: Session, user: StaffUser, args: dict[str, str], k: int) -> object:
    filters = parse_filters(db, user, args)
    selection = differencing.read_selection(db, filters)
    found = differencing.Hashed(differencing.Hasher(SECRET, user.id), selection)
    try:
        differencing.guard_view(db, user, filters, k, SECRET, found)
        withheld = differencing.guard_tables(db, user, filters, GROUPS, k, SECRET, found)
    except ScopeError:
        db.rollback()
        return "refused"
    db.commit()
    return sorted(withheld)


@pytest.mark.slow  # 2 x 8 views with their tables of 40 people: about 10 s at load 10
@pytest.mark.usefixtures("request_context")
@pytest.mark.parametrize("k", [3, 12])
def test_selections_kept_as_text_before_dash4_give_the_same_verdicts(
    populated: Session, admin: StaffUser, database: Database, k: int
) -> None:
    # Two evaluators see the same views in the same order; the first's memory is rewritten
    # as text (as kept before dash4) after every view, the second's stays binary: every
    # verdict (refused, or the tables withheld) and what is remembered must be the same.
    account = add_staff(database, Role.PLATFORM_ADMIN, email="second@example.org")
    second = populated.get(StaffUser, account.id)
    assert second is not None
    slug = str(populated.scalars(select(Structure.slug).order_by(Structure.id)).first())
    verdicts: dict[int, list[object]] = {admin.id: [], second.id: []}
    for args in VIEWS:
        args = {key: slug if value == "FIRST" else value for key, value in args.items()}
        verdicts[admin.id].append(_view(populated, admin, args, k))
        _as_kept_before_dash4(populated, admin)
        populated.commit()
        verdicts[second.id].append(_view(populated, second, args, k))
    assert verdicts[admin.id] == verdicts[second.id]
    assert "refused" in verdicts[admin.id] or any(verdicts[admin.id])  # something was held

    def remembered(user: StaffUser) -> list[int]:
        return sorted(
            populated.scalars(
                select(ExportSelection.count).where(ExportSelection.user_id == user.id)
            )
        )

    assert remembered(admin) == remembered(second)
    binary = select(ExportSelection.id).where(
        ExportSelection.user_id == admin.id, ExportSelection.lines.is_not(None)
    )
    assert populated.scalars(binary).first() is None  # the first's memory: all text
