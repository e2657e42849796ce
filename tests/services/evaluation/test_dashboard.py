"""The dashboard's indicators: SQL aggregates checked against the answers, k, marginals."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck import demo
from selfcheck.accounts.structures import create_structure
from selfcheck.evaluation.dashboard import (
    SPECS,
    Dashboard,
    UnknownTable,
    build_dashboard,
    table_csv,
)
from selfcheck.evaluation.disclosure import Hidden, Table
from selfcheck.evaluation.scope import EvaluationFilters, ScopeError
from selfcheck.platform.models import Answer, Response, Status, Structure
from selfcheck.questionnaire import Definition, FormKind
from selfcheck.questionnaire.model import Role
from tests.support import code_of

K = 5


@pytest.fixture
def request_context(app: Flask) -> Iterator[None]:
    with app.test_request_context():
        yield


def scope(structure: Structure, **more: object) -> EvaluationFilters:
    return EvaluationFilters(structure_ids=(structure.id,), **more)  # type: ignore[arg-type]


def share(board: Dashboard, key: str, *rows: str, column: int = 0) -> float:
    table = board.table(key)
    found = 0.0
    for row in table.rows:
        if row.key in rows:
            value = row.cells[column].share
            assert value is not None, f"{key}/{row.key} hidden"
            found += value
    return found / 100


def every_cell(board: Dashboard) -> Iterator[tuple[Table, int]]:
    for section in board.sections:
        for table in section.tables:
            for row in table.rows:
                for cell in row.cells:
                    if cell.hidden is None and cell.count is not None:
                        yield table, cell.count


@pytest.mark.slow  # > 8 s on 2 shared cores: CI runs it, the fast tier does not
def test_the_dashboard_gives_back_the_chosen_marginals(
    db_session: Session, definition: Definition, request_context: None
) -> None:
    """The demo follows the reference survey's figures; the dashboard must find them again."""
    target = demo.Marginals()
    demo.generate_demo(db_session, definition, respondents=500, seed=2023)
    db_session.commit()
    board = build_dashboard(db_session, definition, scope(demo.demo_structure(db_session)), K)
    assert board.people == 500
    tolerance = 0.05  # 500 people: two standard errors of a share are at most 4.5 points
    found = {
        "aged_60_plus": share(board, "age", "soixante_soixante_neuf", "soixante_dix_plus"),
        "retired": share(board, "status", "retraite"),
        "women": share(board, "gender", "feminin"),
        "below_baccalaureate": share(board, "diploma", "aucun", "brevet", "cap_bep"),
        "urban": share(board, "area", "urbain"),
        "internet_home": share(board, "internet_home", "oui"),
        "new_things": share(board, "new_things", "oui"),
        "feel_progress": share(board, "progress_felt", "yes"),
        "administrative_topic": share(board, "topics", "aide_aux_demarches_administratives"),
    }
    for name, value in found.items():
        assert abs(value - getattr(target, name)) < tolerance, (name, value)
    for profile, expected in target.typology.items():
        assert abs(share(board, "typology", profile) - expected) < tolerance, profile
    assert abs(share(board, "channels", "paper") - target.paper) < tolerance
    assert abs(share(board, "pairs_completed", "with_after") - 0.55 / 0.70) < 0.08


def test_counts_match_the_stored_answers(
    db_session: Session, definition: Definition, request_context: None
) -> None:
    demo.generate_demo(db_session, definition, respondents=80, seed=7)
    db_session.commit()
    structure = demo.demo_structure(db_session)
    board = build_dashboard(db_session, definition, scope(structure), k=1)
    rows = db_session.execute(
        select(Response.beneficiary_id, Response.form, Answer.variable, Answer.value).join(
            Answer, Answer.response_id == Response.id
        )
    ).all()
    age, owned = code_of(definition, Role.AGE), code_of(definition, Role.DEVICES)
    ages = Counter(v for _p, f, var, v in rows if var == age)
    table = board.table(Role.AGE.value)
    assert {r.key: r.cells[0].count for r in table.rows if ages[r.key]} == dict(ages)
    devices = Counter(v for _p, _f, var, v in rows if var == owned)
    table = board.table(Role.DEVICES.value)
    assert {r.key: r.cells[0].count for r in table.rows if devices[r.key]} == dict(devices)
    answered = len({p for p, _f, var, _v in rows if var == owned})
    assert table.bases == (answered,)
    # Paired comfort: the same people's before and after answers.
    by_person: dict[int, dict[str, str]] = {}
    comfort_code = code_of(definition, Role.COMFORT)
    for person, form, variable, value in rows:
        if variable == comfort_code:
            by_person.setdefault(person, {})[form] = value
    pairs = [v for v in by_person.values() if "before" in v and "after" in v]
    comfort = board.table("comfort")
    assert comfort.bases[0] == comfort.bases[1] == len(pairs)
    more = sum(1 for v in pairs if v["after"] > v["before"])
    assert board.table("comfort_change").rows[0].cells[0].count == more
    assert board.people_by_form == dict(
        Counter(
            db_session.scalars(
                select(Response.form).where(Response.status == Status.SUBMITTED.value)
            )
        )
    )


def test_no_cell_under_k_anywhere_and_csv_holds_the_same(
    db_session: Session, definition: Definition, request_context: None
) -> None:
    demo.generate_demo(db_session, definition, respondents=40, seed=3)
    db_session.commit()
    board = build_dashboard(db_session, definition, scope(demo.demo_structure(db_session)), K)
    assert all(count == 0 or count >= K for _table, count in every_cell(board))
    hidden = [t for s in board.sections for t in s.tables if t.hidden_cells]
    assert hidden, "40 people: some cells must be small"
    for table in hidden:
        if table.additive:
            for index in range(len(table.columns)):
                column = [row.cells[index] for row in table.rows]
                assert sum(1 for c in column if c.hidden is not None) != 1
        text = table_csv(table, K)
        assert f"< {K}" in text or "masqué" in text
        for row in table.rows:
            for cell in row.cells:
                if cell.hidden is Hidden.SMALL:
                    assert cell.count is None


def test_fewer_than_k_people_shows_nothing(
    db_session: Session, definition: Definition, request_context: None
) -> None:
    demo.generate_demo(db_session, definition, respondents=4, seed=1)
    db_session.commit()
    with pytest.raises(ScopeError) as caught:
        build_dashboard(db_session, definition, scope(demo.demo_structure(db_session)), K)
    assert caught.value.status == 422


def test_filters_narrow_the_population(
    db_session: Session, definition: Definition, request_context: None
) -> None:
    demo.generate_demo(db_session, definition, respondents=60, seed=5)
    db_session.commit()
    structure = demo.demo_structure(db_session)
    other = create_structure(db_session, "Ailleurs", "rural", "75")
    db_session.commit()
    everyone = build_dashboard(db_session, definition, scope(structure), K)
    retro = build_dashboard(db_session, definition, scope(structure, forms=("retro",)), K)
    assert retro.people == everyone.people_by_form["retro"] < everyone.people
    assert retro.table("comfort").bases[0] is None or retro.table("comfort").bases[0] == 0
    with pytest.raises(ScopeError):
        build_dashboard(db_session, definition, scope(other), K)
    with pytest.raises(UnknownTable):
        build_dashboard(db_session, definition, scope(structure), K, only=["nope"])
    one = build_dashboard(db_session, definition, scope(structure), K, only=["gender"])
    assert [t.key for s in one.sections for t in s.tables] == ["gender"]


def test_every_table_is_built_with_no_answer_at_all(
    db_session: Session, definition: Definition, request_context: None
) -> None:
    """People who answered only the required questions: no table breaks on empty counts."""
    structure = create_structure(db_session, "Vide", "urbain", "44")
    db_session.commit()
    from selfcheck.journey import operations as journey
    from tests.support import fill_response, new_token

    for _ in range(K):
        response = journey.start_response(
            db_session, definition, structure, FormKind.RETRO, "fr", new_token()
        )
        db_session.commit()
        fill_response(
            db_session,
            definition,
            response,
            {"ASSIST": ["seul"], "COMFORT": ["2"], "COMFORT_PRE": ["1"], "PROGRESS": ["3"]},
        )
        db_session.commit()
        assert journey.submit(db_session, definition, response)
        db_session.commit()
    board = build_dashboard(db_session, definition, scope(structure), K)
    assert {t.key for s in board.sections for t in s.tables} == {spec.key for spec in SPECS}
    assert board.table("typology").rows[-1].cells[0].count == K  # not classified


def test_the_cache_serves_a_selection_again_until_the_data_changes(
    db_session: Session, definition: Definition, request_context: None
) -> None:
    from selfcheck.evaluation.dashboard import DashboardCache

    demo.generate_demo(db_session, definition, respondents=12, seed=2)
    db_session.commit()
    structure = demo.demo_structure(db_session)
    cache = DashboardCache(size=2)
    first = build_dashboard(db_session, definition, scope(structure), K, cache=cache)
    again = build_dashboard(db_session, definition, scope(structure), K, cache=cache, only=["age"])
    assert again is first  # same selection, same data: not computed again
    other_k = build_dashboard(db_session, definition, scope(structure), 3, cache=cache)
    assert other_k is not first
    demo.generate_demo(db_session, definition, respondents=1, seed=99)  # the data changes
    db_session.commit()
    fresh = build_dashboard(db_session, definition, scope(structure), K, cache=cache)
    assert fresh is not first and fresh.people == first.people + 1
    # A changed answer (an edited paper form) changes the stamp too.
    response = db_session.scalars(select(Response)).first()
    assert response is not None
    response.updated_at = response.updated_at.replace(year=2030)
    db_session.commit()
    assert build_dashboard(db_session, definition, scope(structure), K, cache=cache) is not fresh


def test_the_data_stamp_is_the_data_version_raised_by_writes_to_the_facts(
    db_session: Session, definition: Definition, request_context: None
) -> None:
    from selfcheck.evaluation.dashboard import data_stamp

    demo.generate_demo(db_session, definition, respondents=3, seed=4)
    db_session.commit()
    first = data_stamp(db_session)
    db_session.commit()
    assert data_stamp(db_session) == first  # nothing written: the same stamp
    demo.generate_demo(db_session, definition, respondents=1, seed=98)
    db_session.commit()
    added = data_stamp(db_session)
    assert added != first
    # A deleted response changes it (its count and last id alone might not).
    response = db_session.scalars(select(Response).order_by(Response.id)).first()
    assert response is not None
    db_session.delete(response)
    db_session.commit()
    assert data_stamp(db_session) not in (first, added)
