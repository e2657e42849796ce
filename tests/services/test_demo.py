"""Demo data: realistic answers entered through the same services as real ones."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck.db import Database
from selfcheck.models import Answer, Beneficiary, Response, Structure
from selfcheck.questionnaire import Definition, FormKind
from selfcheck.services import demo, journey
from selfcheck.services.summary import build_summary
from tests.support import count


def test_generate_demo(db_session: Session, definition: Definition, database: Database) -> None:
    report = demo.generate_demo(db_session, definition, respondents=12, seed=5)
    assert report.structure_slug == demo.DEMO_SLUG
    assert report.people == 12
    assert report.pre_post + report.before_only + report.retro == 12
    assert count(database, Beneficiary) == 12
    assert count(database, Response) == 12 + report.pre_post
    assert count(database, Response, Response.status != "submitted") == 0
    forms = Counter(db_session.scalars(select(Response.form)))
    assert forms == Counter(
        {
            "before": report.pre_post + report.before_only,
            "after": report.pre_post,
            "retro": report.retro,
        }
    )


def test_demo_answers_are_valid_and_complete(db_session: Session, definition: Definition) -> None:
    demo.generate_demo(db_session, definition, respondents=10, seed=9)
    for response in db_session.scalars(select(Response)):
        form = FormKind(response.form)
        answers = journey.answers_of(response)
        assert journey.missing_required(definition, form, answers) == []
        variables = {v.code: v for v in definition.variables(form)}
        for code, values in answers.items():
            assert code in variables, code
            item = variables[code].item
            if item.options:
                assert set(values) <= set(item.option_codes), (code, values)
            if item.type == "number":
                assert item.minimum is not None and item.maximum is not None
                assert item.minimum <= int(values[0]) <= item.maximum
        assert response.submitted_at is not None and response.submitted_at > response.created_at


def test_demo_is_reproducible_and_reuses_its_structure(
    db_session: Session, definition: Definition, database: Database
) -> None:
    first = demo.generate_demo(db_session, definition, respondents=6, seed=42)
    second = demo.generate_demo(db_session, definition, respondents=6, seed=42)
    assert (first.pre_post, first.before_only, first.retro) == (
        second.pre_post,
        second.before_only,
        second.retro,
    )
    assert count(database, Structure) == 1
    assert count(database, Beneficiary) == 12
    values = list(db_session.scalars(select(Answer.value).order_by(Answer.id)))
    half = len(values) // 2
    assert values[:half] == values[half:]


def test_every_demo_person_gets_a_summary(db_session: Session, definition: Definition) -> None:
    demo.generate_demo(db_session, definition, respondents=8, seed=3)
    for person in db_session.scalars(select(Beneficiary)):
        assert build_summary(definition, person) is not None
