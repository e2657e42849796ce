"""Demo data: realistic answers entered through the same services as real ones."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck import demo
from selfcheck.journey import operations as journey
from selfcheck.journey.summary import build_summary
from selfcheck.platform.db import Database
from selfcheck.platform.models import Answer, AuditEvent, Beneficiary, Channel, Response, Structure
from selfcheck.questionnaire import Definition, FormKind
from tests.support import count


def test_generate_demo(db_session: Session, definition: Definition, database: Database) -> None:
    report = demo.generate_demo(db_session, definition, respondents=12, seed=5)
    db_session.commit()
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
    db_session.commit()
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
            if item.type.name == "number":
                assert item.minimum is not None and item.maximum is not None
                assert item.minimum <= int(values[0]) <= item.maximum
        assert response.submitted_at is not None and response.submitted_at > response.created_at


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
def test_demo_is_reproducible_and_reuses_its_structure(
    db_session: Session, definition: Definition, database: Database
) -> None:
    first = demo.generate_demo(db_session, definition, respondents=6, seed=42)
    db_session.commit()
    second = demo.generate_demo(db_session, definition, respondents=6, seed=42)
    db_session.commit()
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
    db_session.commit()
    for person in db_session.scalars(select(Beneficiary)):
        assert build_summary(definition, person) is not None


# --- chosen marginals -----------------------------------------------------------------------


def test_marginals_default_to_the_reference_survey() -> None:
    marginals = demo.Marginals()
    assert marginals.women == 0.72 and marginals.paper == 0.21
    assert marginals.typology["initiated_seniors"] == 0.35
    solved = demo.plan(marginals)
    # 61 % seniors + 26 % x share of 60+ in the improvement path = 75 % aged 60+.
    assert abs(0.61 + 0.26 * solved.improvement_60_plus - 0.75) < 1e-9


def test_marginals_from_a_file_override_some_shares(tmp_path: Path) -> None:
    path = tmp_path / "marginals.json"
    path.write_text(json.dumps({"women": 0.5, "paper": 0}), encoding="utf-8")
    marginals = demo.load_marginals(path)
    assert marginals.women == 0.5 and marginals.paper == 0
    assert marginals.urban == demo.Marginals().urban


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"womens": 0.5}', "unknown keys: womens"),
        ('{"women": 1.5}', "between 0 and 1"),
        ('{"typology": {"beginner_seniors": 1}}', "give exactly"),
        ('{"paths": {"pre_post": 0.5, "before_only": 0.1, "retro": 0.1}}', "add up to 1"),
        ("[1, 2]", "JSON object"),
        ("{not json", "cannot read"),
    ],
)
def test_bad_marginals_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "marginals.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(demo.MarginalsError, match=message):
        demo.load_marginals(path)


def test_paper_people_are_typed_in_through_the_entry_service(
    db_session: Session, definition: Definition
) -> None:
    marginals = demo.Marginals(paper=1.0, paths={"pre_post": 1.0, "before_only": 0.0, "retro": 0.0})
    report = demo.generate_demo(db_session, definition, respondents=3, seed=4, marginals=marginals)
    db_session.commit()
    assert report.paper == 3 and report.pre_post == 3
    responses = list(db_session.scalars(select(Response)))
    assert len(responses) == 6
    assert {r.channel for r in responses} == {Channel.PAPER.value}
    assert all(r.entered_by_id is not None and r.is_submitted for r in responses)
    events = db_session.scalars(select(AuditEvent.action)).all()
    assert "create" in events and "edit" in events  # the entry service's audit trail


def test_an_override_changes_the_population(db_session: Session, definition: Definition) -> None:
    men = demo.Marginals(women=0.0, paper=0.0, phone=1.0)
    demo.generate_demo(db_session, definition, respondents=20, seed=6, marginals=men)
    db_session.commit()
    genders = set(db_session.scalars(select(Answer.value).where(Answer.variable == "GENDER")))
    assert "feminin" not in genders
    assert set(db_session.scalars(select(Response.channel))) == {Channel.PHONE.value}
