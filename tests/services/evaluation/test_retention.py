"""Retention indicators (issue 15): the share of the end-form gains kept at the follow-up,
per competence type and overall (people as units, Wilson intervals), and the follow-up
response rate, checked against a small population built with a fixed clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from selfcheck.evaluation import retention, statistics
from selfcheck.evaluation.scope import EvaluationFilters
from selfcheck.journey import operations as journey
from selfcheck.platform import clock
from selfcheck.platform.models import Structure
from selfcheck.questionnaire import Definition, FormKind
from tests.support import AFTER, BEFORE, TASKS, fill_response, submitted

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
    fill_response(session, definition, after, AFTER)
    assert journey.submit(session, definition, after)
    session.commit()
    return before.beneficiary.code


def answered(session: Session, definition: Definition, code: str, answers: dict) -> None:  # type: ignore[type-arg]
    person = journey.find_beneficiary(session, code)
    followup = journey.start_followup(session, definition, person, "fr", clock.now(), PARIS)
    session.commit()
    fill_response(session, definition, followup, answers)
    assert journey.submit(session, definition, followup)
    session.commit()


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
    loaded = retention.load_people(db_session, definition, filters)
    assert len(loaded) == 9 and late_comer
    result = retention.retention(loaded, definition, k=K, now=now, zone=PARIS)
    # 6 people answered; each gained on 14 tasks; 4 kept all, 2 lost T01.
    assert result.overall == statistics.share(4, 6, k=K)
    by = {c.competence: c.kept for c in result.by_competence}
    assert by["operational"] == statistics.share(4, 6, k=K)  # T01 is operational
    assert by["communication"] == statistics.share(6, 6, k=K)
    overall = result.overall
    assert isinstance(overall, statistics.Share) and overall.low < 4 / 6 < overall.high
    # The follow-up opened for 8 people (not the late comer); 6 answered.
    assert result.response_rate == statistics.share(6, 8, k=K)
    # Under k people, no figure.
    small = retention.retention(loaded[:3], definition, k=K, now=now, zone=PARIS)
    assert isinstance(small.overall, statistics.TooFew)


def test_a_gain_needs_the_three_points() -> None:
    tasks = {"A": "c1", "B": "c2"}
    person = retention.PersonPoints(
        before={"A": 1, "B": 2}, end={"A": 3, "B": 2}, later={"A": 2, "B": 1}
    )
    no_followup = retention.PersonPoints(before={"A": 1}, end={"A": 3})
    counts = retention.kept_gains([person, no_followup], tasks)
    # A: a gain (1 -> 3), lost (2); B: no gain (2 -> 2), its fall does not count.
    assert counts == {"c1": (0, 1), None: (0, 1)}


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
