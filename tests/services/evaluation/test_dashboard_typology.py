"""The typology rule: one written rule, the same answer in Python and in SQL."""

from __future__ import annotations

from collections import Counter

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck import demo
from selfcheck.evaluation import indicators
from selfcheck.evaluation.scope import EvaluationFilters
from selfcheck.evaluation.typology import FACT_ROLES, Profile, classify
from selfcheck.platform.models import Answer, Response
from selfcheck.questionnaire import Definition
from selfcheck.questionnaire.model import PRE_SUFFIX


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (
            {"age": "soixante_dix_plus", "status": "retraite", "comfort_before": "1"},
            Profile.BEGINNER_SENIORS,
        ),
        (
            {"age": "soixante_soixante_neuf", "status": "retraite", "comfort_before": "2"},
            Profile.BEGINNER_SENIORS,
        ),
        (
            {"age": "soixante_dix_plus", "status": "retraite", "comfort_before": "3"},
            Profile.INITIATED_SENIORS,
        ),
        (
            {"age": "soixante_dix_plus", "status": "retraite", "comfort_before": "4"},
            Profile.IMPROVEMENT_PATH,
        ),
        (
            {"age": "soixante_soixante_neuf", "status": "en_emploi", "comfort_before": "2"},
            Profile.IMPROVEMENT_PATH,
        ),
        (
            {"age": "quarante_cinquante_neuf", "status": "en_emploi", "comfort_before": "1"},
            Profile.IMPROVEMENT_PATH,
        ),
        (
            {"age": "dix_huit_vingt_quatre", "status": "sans_emploi", "comfort_before": "3"},
            Profile.INTEGRATION_PATH,
        ),
        (
            {"age": "vingt_cinq_trente_neuf", "status": "en_emploi", "prescribed": "service"},
            Profile.INTEGRATION_PATH,
        ),
        ({"age": "soixante_dix_plus", "status": "retraite"}, Profile.NOT_CLASSIFIED),
        ({"status": "retraite", "comfort_before": "1"}, Profile.NOT_CLASSIFIED),
    ],
)
def test_rule(facts: dict[str, str], expected: Profile, definition: Definition) -> None:
    assert classify(facts, definition) is expected


def test_sql_and_python_agree_on_every_person(
    app: Flask, db_session: Session, definition: Definition
) -> None:
    demo.generate_demo(db_session, definition, respondents=60, seed=11)
    db_session.commit()
    structure = demo.demo_structure(db_session)
    filters = EvaluationFilters(structure_ids=(structure.id,))
    with app.test_request_context():
        in_sql = indicators.typology_counts(db_session, definition, filters)
    facts: dict[int, dict[str, str]] = {}
    rows = db_session.execute(
        select(Response.beneficiary_id, Response.form, Answer.variable, Answer.value).join(
            Answer, Answer.response_id == Response.id
        )
    )
    codes = {
        fact: item.code
        for fact, role in FACT_ROLES.items()
        if (item := definition.item_with_role(role)) is not None
    }
    comfort = codes.pop("comfort_before")
    names = {code: fact for fact, code in codes.items()}
    for person, form, variable, value in rows:
        mine = facts.setdefault(person, {})
        if form in ("before", "retro") and variable in names:
            mine[names[variable]] = value
        if (form, variable) in (("before", comfort), ("retro", comfort + PRE_SUFFIX)):
            mine["comfort_before"] = value
    in_python = Counter(classify(f, definition).value for f in facts.values())
    assert {k: v for k, v in in_sql.items() if v} == dict(in_python)
    assert sum(in_sql.values()) == 60
