"""Retention indicators (issue 15): the share of the end-form gains kept at the follow-up,
per competence type and overall (people as units, Wilson intervals), and the follow-up
response rate, checked against a small population built with a fixed clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from selfcheck.accounts.structures import create_structure
from selfcheck.evaluation import differencing, facts, retention, statistics
from selfcheck.evaluation.guard_views import GROUPS
from selfcheck.evaluation.scope import EvaluationFilters
from selfcheck.journey import operations as journey
from selfcheck.platform import clock
from selfcheck.platform.db import Database
from selfcheck.platform.models import Role, StaffUser, Structure
from selfcheck.questionnaire import Definition, FormKind
from tests.services.evaluation import retention_oracle
from tests.staff import add_staff
from tests.support import AFTER, BEFORE, TASKS, fill_and_submit, submitted

PARIS = ZoneInfo("Europe/Paris")
KEEPS_ALL = {
    "ASSIST": ("seul",),
    "COMFORT": ("3",),
    "STILL_USE": ("souvent",),
    **dict.fromkeys(TASKS, ("4",)),
}
LOSES_T01 = {**KEEPS_ALL, **dict.fromkeys(TASKS, ("3",))}  # "I can help" (4) -> 3 for T01
K = 5


@pytest.fixture(autouse=True)
def _request(app: Flask) -> Iterator[None]:
    with app.test_request_context():
        yield


def ended(session: Session, definition: Definition, structure: Structure) -> str:
    before = submitted(session, definition, structure, FormKind.BEFORE, BEFORE)
    after = journey.start_after(session, definition, before.beneficiary, "fr")
    session.commit()
    fill_and_submit(session, definition, after, AFTER)
    return before.beneficiary.code


def answered(session: Session, definition: Definition, code: str, answers: dict) -> None:  # type: ignore[type-arg]
    person = journey.find_beneficiary(session, code)
    followup = journey.start_followup(session, definition, person, "fr", clock.now(), PARIS)
    session.commit()
    fill_and_submit(session, definition, followup, answers)


def test_retention_figures_of_a_known_population(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    with clock.fixed(datetime(2027, 1, 10, 9, 0, tzinfo=UTC)) as fixed:
        people = [ended(db_session, definition, structure) for _ in range(8)]
        fixed.advance(timedelta(days=100))
        late_comer = ended(db_session, definition, structure)  # its follow-up not open yet
        for code in people[:4]:
            answered(db_session, definition, code, KEEPS_ALL)
        for code in people[4:6]:
            answered(db_session, definition, code, LOSES_T01)
        # people[6:8]: their follow-up opened, not answered.
        now = fixed.now()
    filters = EvaluationFilters(structure_ids=(structure.id,))
    loaded = retention.load(db_session, definition, filters, now=now, zone=PARIS)
    assert loaded is not None and late_comer
    assert loaded == retention_oracle.followed(db_session, definition, filters, now=now, zone=PARIS)
    # k = 2 so that every figure of this small population shows (small cells: below).
    result = retention.retention(loaded, definition, k=2)
    # 6 people answered; each gained on 14 tasks; 4 kept all, 2 lost T01.
    assert result.overall == statistics.share(4, 6, k=2)
    by = {c.competence: c.kept for c in result.by_competence}
    assert by["operational"] == statistics.share(4, 6, k=2)  # T01 is operational
    assert by["communication"] == statistics.share(6, 6, k=2)
    overall = result.overall
    assert isinstance(overall, statistics.Share) and overall.low < 4 / 6 < overall.high
    # The follow-up opened for 8 people (not the late comer); 6 answered.
    assert result.response_rate == statistics.share(6, 8, k=2)
    # Small cells, as the dashboard's tables: with k = 5, the 2 who lost T01 (and the 2 who
    # did not answer) are fewer than k: those shares are withheld; 6 of 6 stays.
    guarded = retention.retention(loaded, definition, k=K)
    assert isinstance(guarded.overall, statistics.TooFew)
    assert isinstance(guarded.response_rate, statistics.TooFew)
    by = {c.competence: c.kept for c in guarded.by_competence}
    assert isinstance(by["operational"], statistics.TooFew)
    assert by["communication"] == statistics.share(6, 6, k=K)
    # Under k people, no figure.
    three = frozenset(sorted(loaded.gained[None])[:3])
    small = retention.retention(
        retention.Followed(
            gained={None: three},
            kept_all={None: three & loaded.kept_all[None]},
            opened=three,
            answered=three,
        ),
        definition,
        k=K,
    )
    assert isinstance(small.overall, statistics.TooFew)
    assert isinstance(small.response_rate, statistics.TooFew)
    # Before the follow-ups open, nobody counts in the response rate.
    early = retention.load(
        db_session, definition, filters, now=now - timedelta(days=200), zone=PARIS
    )
    assert early is not None and early.opened == frozenset() and early.answered == frozenset()


def test_small_cells_are_withheld_on_either_side() -> None:
    assert retention.guarded_share(0, 10, k=5) == statistics.share(0, 10, k=5)
    assert retention.guarded_share(10, 10, k=5) == statistics.share(10, 10, k=5)
    assert retention.guarded_share(5, 10, k=5) == statistics.share(5, 10, k=5)
    for successes in (1, 4, 6, 9):  # 1 to 4 people on one side or the other
        assert isinstance(retention.guarded_share(successes, 10, k=5), statistics.TooFew)
    assert isinstance(retention.guarded_share(4, 4, k=5), statistics.TooFew)


def test_retention_honours_the_dashboard_filters(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    """Structure, period, channel and form: the follow-up in the selection dates the kept
    gains, the end form dates the response rate (as the 'after' form dates a pair)."""
    other = create_structure(db_session, "Ailleurs", "rural", "29")
    db_session.commit()
    with clock.fixed(datetime(2027, 1, 10, 9, 0, tzinfo=UTC)) as fixed:
        january = [ended(db_session, definition, structure) for _ in range(6)]
        elsewhere = [ended(db_session, definition, other) for _ in range(6)]
        fixed.set(datetime(2027, 3, 10, 9, 0, tzinfo=UTC))
        march = [ended(db_session, definition, structure) for _ in range(6)]
        fixed.set(datetime(2027, 4, 20, 9, 0, tzinfo=UTC))  # January's follow-ups: April
        for code in january:
            answered(db_session, definition, code, KEEPS_ALL)
        for code in elsewhere:
            answered(db_session, definition, code, LOSES_T01)
        fixed.set(datetime(2027, 6, 20, 9, 0, tzinfo=UTC))  # March's follow-ups: June
        for code in march[:5]:
            answered(db_session, definition, code, LOSES_T01)
        now = fixed.now()

    def figures(**chosen: object) -> retention.Retention:
        scope = {"structure_ids": (structure.id, other.id), **chosen}
        filters = EvaluationFilters(**scope)  # type: ignore[arg-type]
        people = retention.load(db_session, definition, filters, now=now, zone=PARIS)
        oracle = retention_oracle.followed(db_session, definition, filters, now=now, zone=PARIS)
        assert people == oracle, filters
        nobody = retention.Followed({}, {}, frozenset(), frozenset())
        return retention.retention(people or nobody, definition, k=5)

    everyone = figures()
    assert everyone.overall == statistics.share(6, 17, k=5)  # January's 6 kept all
    # 17 of 18 answered: the one who did not is under k, the rate is withheld.
    assert isinstance(everyone.response_rate, statistics.TooFew)
    # One structure: the other one's people are not in the figures.
    mine = figures(structure_ids=(structure.id,))
    assert mine.overall == statistics.share(6, 11, k=5)
    assert figures(structure_ids=(other.id,)).overall == statistics.share(0, 6, k=5)
    # A period: April's follow-ups for the gains kept (January's people, in both
    # structures); the people who ended in April for the rate: nobody.
    april = figures(date_from=date(2027, 4, 1), date_to=date(2027, 4, 30))
    assert april.overall == statistics.share(6, 12, k=5)
    assert isinstance(april.response_rate, statistics.TooFew)
    # The period of the end forms: January's 12 people, all answered (in April).
    assert figures(
        date_from=date(2027, 1, 1), date_to=date(2027, 1, 31)
    ).response_rate == statistics.share(12, 12, k=5)
    # June: March's five answers, all of which lost T01.
    june = figures(date_from=date(2027, 6, 1), date_to=date(2027, 6, 30))
    assert june.overall == statistics.share(0, 5, k=5)
    # A channel nobody used: nothing.
    paper = figures(channels=("paper",))
    assert isinstance(paper.overall, statistics.TooFew)
    nobody = EvaluationFilters(structure_ids=(structure.id,), channels=("paper",))
    assert retention.load(db_session, definition, nobody, now=now, zone=PARIS) is None
    assert retention_oracle.followed(db_session, definition, nobody, now=now, zone=PARIS) is None
    # Forms: the follow-up alone gives the gains kept, not the rate; the end forms the reverse.
    followups = figures(forms=("followup",))
    assert followups.overall == everyone.overall
    assert isinstance(followups.response_rate, statistics.TooFew)
    ends = figures(forms=("after",), date_from=date(2027, 1, 1), date_to=date(2027, 1, 31))
    assert ends.response_rate == statistics.share(12, 12, k=5)
    assert isinstance(ends.overall, statistics.TooFew)


def test_a_gain_needs_the_three_points(definition: Definition) -> None:
    tasks = {"A": "c1", "B": "c2"}
    person = retention_oracle.PersonPoints(
        before={"A": 1, "B": 2}, end={"A": 3, "B": 2}, later={"A": 2, "B": 1}
    )
    no_followup = retention_oracle.PersonPoints(before={"A": 1}, end={"A": 3})
    counts = retention_oracle.kept_gains([person, no_followup], tasks)
    # A: a gain (1 -> 3), lost (2); B: no gain (2 -> 2), its fall does not count.
    assert counts == {"c1": (0, 1), None: (0, 1)}
    # The facts say the same of one person's responses (facts.followup_facts).
    plan = facts.plan(definition)
    operational = dict(plan.competences)["T01"]
    at = datetime(2027, 1, 10, tzinfo=UTC)

    def response(number: int, form: FormKind, rungs: dict[str, str]) -> facts.Submitted:
        answers = {code: [rung] for code, rung in rungs.items()}
        return facts.Submitted(number, 1, 1, form.value, "online", at, answers, None)

    before = response(1, FormKind.BEFORE, {"T01": "1", "T02": "2"})
    after = response(2, FormKind.AFTER, {"T01": "3", "T02": "2"})
    later = response(3, FormKind.FOLLOWUP, {"T01": "2", "T02": "1"})
    lasting = facts.followup_facts(plan, [before, after, later])
    assert lasting == facts.Lasting(at, True, 3, f"{operational}:0")
    assert facts.followup_facts(plan, [before, after]) == facts.Lasting(at, False, None, None)
    assert facts.followup_facts(plan, [before]) == facts.Lasting(None, False, None, None)


def test_exports_and_the_anonymiser_carry_the_followups(app: Flask, definition: Definition) -> None:
    from selfcheck.evaluation import anonymise
    from selfcheck.evaluation.export import Layout, Shape

    wide = [column.name for column in Layout(definition, Shape.WIDE, free_text=False).columns]
    assert "followup_T01" in wide and "followup_STILL_USE" in wide
    assert "followup_late_COMFORT" in wide and "followup_month" in wide
    assert wide.index("followup_T01") > wide.index("after_T01")  # the follow-ups come last
    # Presence: the forms pattern has a bit per follow-up, the old numbers unchanged.
    assert anonymise.forms_pattern(["before", "after"]) == 3
    assert anonymise.forms_pattern(["before", "after", "followup"]) == 11
    assert anonymise.forms_pattern(["retro", "followup_late"]) == 20
    # Month: a quasi-identifier with the period ladder, like every form's month.
    columns = {c.column for c in anonymise.engine_columns(definition, {})}
    assert {"followup_month", "followup_late_month", "forms"} <= columns


@pytest.mark.slow  # about 6 s on a loaded machine: eleven people and seven follow-ups
def test_attack_retention_groups_one_person_apart_are_not_both_shown(
    db_session: Session, definition: Definition, structure: Structure, database: Database
) -> None:
    """Differencing through a sub-group: March-April and March differ by k people or more
    (three people who ended on 20 April), so both selections pass guard_view; but their
    kept-gains groups differ by one person (a follow-up sent on 20 April), and both figures
    would show (3 of 6 kept, then 3 of 7): their difference is that person's outcome. The
    second view's figures are withheld (attack2)."""
    k = 3
    with clock.fixed(datetime(2026, 12, 10, 9, 0, tzinfo=UTC)) as fixed:
        ended_december = [ended(db_session, definition, structure) for _ in range(7)]
        fixed.set(datetime(2027, 3, 12, 9, 0, tzinfo=UTC))  # their follow-ups: March
        for code in ended_december[:3]:
            answered(db_session, definition, code, KEEPS_ALL)
        for code in ended_december[3:6]:
            answered(db_session, definition, code, LOSES_T01)
        fixed.set(datetime(2027, 4, 20, 9, 0, tzinfo=UTC))
        answered(db_session, definition, ended_december[6], LOSES_T01)  # the one to single out
        for _ in range(3):
            ended(db_session, definition, structure)
        now = fixed.now()
    account = add_staff(database, Role.EVALUATOR, departments=(structure.department,))
    user = db_session.get(StaffUser, account.id)
    assert user is not None
    secret = "attack2"

    def view(last: date) -> tuple[bool, dict[str, frozenset[int]], retention.Retention]:
        filters = EvaluationFilters(
            structure_ids=(structure.id,), date_from=date(2027, 3, 1), date_to=last
        )
        differencing.guard_view(db_session, user, filters, k, secret)  # the selections pass
        people = retention.load(db_session, definition, filters, now=now, zone=PARIS)
        assert people is not None
        groups = retention.figure_groups(people, definition)
        shown = differencing.guard_figures(db_session, user, filters, groups, k, secret)
        return shown, groups, retention.retention(people, definition, k=k)

    shown, whole, figures = view(date(2027, 4, 30))
    assert shown and len(whole["kept"]) == 7
    assert figures.overall == statistics.share(3, 7, k=k)
    shown, part, figures = view(date(2027, 3, 31))
    assert len(part["kept"]) == 6 and len(whole["kept"] ^ part["kept"]) == 1
    assert figures.overall == statistics.share(3, 6, k=k)  # what the view would have shown
    assert not shown  # ... and does not
    # The whole period again (the same groups) is still shown; groups k people apart too.
    assert view(date(2027, 4, 30))[0]
    # The groups never enter the selections' comparisons: an identical selection is no refusal.
    differencing.guard_view(
        db_session,
        user,
        EvaluationFilters(
            structure_ids=(structure.id,), date_from=date(2027, 3, 1), date_to=date(2027, 4, 30)
        ),
        k,
        secret,
    )


@pytest.mark.slow  # about 4 s on a loaded machine: nine people
def test_attack_tables_of_one_form_one_person_apart_withhold_those_tables_only(
    db_session: Session, definition: Definition, structure: Structure, database: Database
) -> None:
    """Differencing through the tables of one form (attack2, first closed by 7767f6c, which
    refused the whole view): March-April and March differ by k people or more (three people
    who only started in April), but the 'after' tables and the paired tables differ by one
    person (who ended on 20 April). Only those tables are withheld from the second view
    (differencing.guard_tables, on the real responses); its 'before' tables are shown."""
    k = 3
    with clock.fixed(datetime(2027, 3, 10, 9, 0, tzinfo=UTC)) as fixed:
        for _ in range(4):
            ended(db_session, definition, structure)
        fixed.set(datetime(2027, 4, 20, 9, 0, tzinfo=UTC))
        ended(db_session, definition, structure)  # the one to single out
        for _ in range(3):
            submitted(db_session, definition, structure, FormKind.BEFORE, BEFORE)
            db_session.commit()
    account = add_staff(database, Role.EVALUATOR, departments=(structure.department,))
    user = db_session.get(StaffUser, account.id)
    assert user is not None

    def view(last: date) -> frozenset[str]:
        filters = EvaluationFilters(
            structure_ids=(structure.id,), date_from=date(2027, 3, 1), date_to=last
        )
        found = differencing.read_selection(db_session, filters)
        differencing.guard_view(db_session, user, filters, k, "attack2", found)  # passes
        return differencing.guard_tables(db_session, user, filters, GROUPS, k, "attack2", found)

    assert view(date(2027, 4, 30)) == frozenset()
    assert view(date(2027, 3, 31)) == {"after", "after+retro"}  # 'before' tables: shown
    assert view(date(2027, 4, 30)) == frozenset()  # the first view again: all shown
    # A period k people or more away in every table: nothing withheld.
    with clock.fixed(datetime(2027, 5, 12, 9, 0, tzinfo=UTC)):
        for _ in range(3):
            ended(db_session, definition, structure)
    assert view(date(2027, 5, 31)) == frozenset()
