"""The typology rule: one written rule, the same answer in Python and in SQL."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck import demo
from selfcheck.evaluation import indicators, typology
from selfcheck.evaluation.scope import EvaluationFilters
from selfcheck.evaluation.typology import (
    ALONE,
    ALONE_RANK,
    HELP,
    REFERENCE_SHARES,
    Profile,
    classify,
    person_facts,
)
from selfcheck.platform.models import Answer, Beneficiary, Response, Status, utcnow
from selfcheck.questionnaire import Definition
from selfcheck.questionnaire.model import PRE_SUFFIX, Role, Tag
from tests.services.evaluation.survey_population import Drawn, draw_population

SENIOR_LOW = {"age": "soixante_dix_plus", "status": "retraite", "comfort_before": "2"}


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        ({**SENIOR_LOW, "basics_before": HELP}, Profile.BEGINNER_SENIORS),
        ({**SENIOR_LOW, "comfort_before": "1", "basics_before": HELP}, Profile.BEGINNER_SENIORS),
        # Basic tasks not answered: the diploma decides.
        ({**SENIOR_LOW, "diploma": "cap_bep"}, Profile.BEGINNER_SENIORS),
        ({**SENIOR_LOW, "diploma": "bac"}, Profile.INITIATED_SENIORS),
        ({**SENIOR_LOW, "basics_before": ALONE}, Profile.INITIATED_SENIORS),
        ({**SENIOR_LOW, "basics_before": ALONE, "modality": "les_deux"}, Profile.INITIATED_SENIORS),
        ({**SENIOR_LOW, "basics_before": ALONE, "modality": "ponctuel"}, Profile.IMPROVEMENT_PATH),
        # A one-off help does not make a beginner an improver.
        ({**SENIOR_LOW, "basics_before": HELP, "modality": "ponctuel"}, Profile.BEGINNER_SENIORS),
        ({**SENIOR_LOW, "comfort_before": "3", "basics_before": HELP}, Profile.IMPROVEMENT_PATH),
        ({**SENIOR_LOW, "comfort_before": "4"}, Profile.IMPROVEMENT_PATH),
        ({**SENIOR_LOW, "status": "en_emploi", "basics_before": HELP}, Profile.IMPROVEMENT_PATH),
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


def stored_facts(db: Session, definition: Definition) -> dict[int, dict[str, str]]:
    """Every stored person's facts, read one answer at a time in Python."""
    rows = db.execute(
        select(Response.beneficiary_id, Response.form, Answer.variable, Answer.value).join(
            Answer, Answer.response_id == Response.id
        )
    )
    answers: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
    for person, form, variable, value in rows:
        answers[person].append((form, variable, value))
    return {
        person: facts
        for person, given in answers.items()
        if (facts := person_facts(given, definition)) is not None
    }


def test_sql_and_python_agree_on_every_person(
    app: Flask, db_session: Session, definition: Definition
) -> None:
    demo.generate_demo(db_session, definition, respondents=60, seed=11)
    db_session.commit()
    structure = demo.demo_structure(db_session)
    filters = EvaluationFilters(structure_ids=(structure.id,))
    with app.test_request_context():
        in_sql = indicators.typology_counts(db_session, definition, filters)
    facts = stored_facts(db_session, definition)
    in_python = Counter(classify(f, definition).value for f in facts.values())
    assert {k: v for k, v in in_sql.items() if v} == dict(in_python)
    assert sum(in_sql.values()) == 60


def store(db: Session, definition: Definition, people: list[Drawn]) -> dict[int, str]:
    """The drawn people as stored answers (submitted forms); beneficiary id -> drawn code."""
    structure = demo.demo_structure(db)
    ids: dict[int, str] = {}
    for number, person in enumerate(people):
        beneficiary = Beneficiary(code=f"S{number:05d}", structure_id=structure.id)
        db.add(beneficiary)
        db.flush()
        ids[beneficiary.id] = beneficiary.code
        forms = {form for form, _v, _a in person.answers}
        for form in sorted(forms):
            response = Response(
                beneficiary_id=beneficiary.id,
                structure_id=structure.id,
                form=form,
                definition_id=definition.id,
                definition_version=definition.version,
                locale="fr",
                status=Status.SUBMITTED.value,
                submitted_at=utcnow(),
            )
            response.answers = [
                Answer(variable=variable, value=value)
                for given, variable, value in person.answers
                if given == form
            ]
            db.add(response)
    db.flush()
    return ids


def test_sql_and_python_agree_person_by_person_on_the_survey_population(
    app: Flask, db_session: Session, definition: Definition
) -> None:
    """Each stored person gets the same profile from the SQL CASE as from `classify`."""
    people = draw_population(definition, people=300, seed=7)
    ids = store(db_session, definition, people)
    db_session.commit()
    structure = demo.demo_structure(db_session)
    filters = EvaluationFilters(structure_ids=(structure.id,))
    sources = typology.sources(definition)
    with app.test_request_context():
        in_sql = indicators.typology_counts(db_session, definition, filters)
        per_person = indicators.typology_people(db_session, definition, filters)
    facts = stored_facts(db_session, definition)
    in_python = {person: classify(f, definition).value for person, f in facts.items()}
    assert set(in_python) == set(ids)
    assert per_person == in_python
    assert {k: v for k, v in in_sql.items() if v} == dict(Counter(in_python.values()))
    # Every profile and every source is exercised, so the agreement means something.
    assert set(Counter(in_python.values())) >= {p.value for p in REFERENCE_SHARES}
    assert all(any(s.fact in f for f in facts.values()) for s in sources)


def test_the_survey_population_gives_back_the_survey_shares(definition: Definition) -> None:
    """The calibration (docs/typology.md): within 5 points of 26 / 35 / 26 / 13 %."""
    people = draw_population(definition)
    assert len(people) == 2000
    found = Counter(classify(person_facts(p.answers, definition) or {}, definition) for p in people)
    shares = {profile: found[profile] / len(people) for profile in Profile}
    for profile, expected in REFERENCE_SHARES.items():
        assert abs(shares[profile] - expected) < 0.05, (profile, shares)
    assert shares[Profile.NOT_CLASSIFIED] == 0
    # The population resembles the survey's published marginals (the fixture's own check).
    facts = [person_facts(p.answers, definition) or {} for p in people]
    senior = set(definition_tagged(definition, Role.AGE, Tag.SENIOR))
    below = set(definition_tagged(definition, Role.DIPLOMA, Tag.BELOW_BACCALAUREATE))
    low = set(definition_tagged(definition, Role.COMFORT, Tag.EASE_LOW))

    def share(test: Callable[[dict[str, str]], bool]) -> float:
        return sum(1 for f in facts if test(f)) / len(facts)

    assert abs(share(lambda f: f["age"] in senior) - 0.75) < 0.02
    assert abs(share(lambda f: f["status"] == "retraite") - 0.70) < 0.02
    assert abs(share(lambda f: f["diploma"] in below) - 0.59) < 0.02
    assert abs(share(lambda f: f["comfort_before"] in low) - 0.78) < 0.03
    # 15 % do not master switching their device on and off (the first basic task, before).
    switch_on = definition.items_with_role(Role.BASIC_TASK)[0]
    needs_help = {o.code for o in switch_on.options if o.rank is not None and o.rank < ALONE_RANK}
    before = {switch_on.code, switch_on.code + PRE_SUFFIX}
    helped = sum(
        1 for p in people if any(v in before and a in needs_help for _f, v, a in p.answers)
    )
    assert abs(helped / len(people) - 0.15) < 0.02
    # Person by person, the rule and the drawn profile agree for most people, not all: the
    # survey's profiles came from a clustering on many more answers than ours.
    agree = sum(
        classify(f, definition).value == p.profile for f, p in zip(facts, people, strict=True)
    )
    assert 0.65 < agree / len(people) < 0.9


def definition_tagged(definition: Definition, role: Role, tag: Tag) -> tuple[str, ...]:
    item = definition.item_with_role(role)
    assert item is not None
    return item.tagged(tag)
