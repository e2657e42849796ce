"""Demo people for export tests, entered through services/demo.py (the real journey)."""

from __future__ import annotations

import secrets

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from selfcheck import demo
from selfcheck.accounts.structures import create_structure
from selfcheck.platform.models import Answer, Beneficiary, Response, Status, Structure
from selfcheck.questionnaire.model import Definition
from tests.demo_once import write_once


def populate(
    db: Session, definition: Definition, people: int = 40, moved: int = 15
) -> tuple[Structure, Structure]:
    """`people` demo people; the last `moved` go to a second structure (department 59).

    Written once per test process on SQLite, then copied (tests/demo_once.py)."""

    def write() -> None:
        demo.generate_demo(db, definition, respondents=people, seed=11)
        db.commit()
        other = create_structure(db, "Centre social Nord", "urbain", "59", "centre-nord")
        db.commit()
        ids = list(db.scalars(select(Beneficiary.id).order_by(Beneficiary.id)))[-moved:]
        db.execute(update(Beneficiary).where(Beneficiary.id.in_(ids)).values(structure_id=other.id))
        db.execute(
            update(Response).where(Response.beneficiary_id.in_(ids)).values(structure_id=other.id)
        )
        db.commit()

    write_once(db, ("populate", people, moved), write)
    first = demo.demo_structure(db)
    other = db.scalars(select(Structure).where(Structure.slug == "centre-nord")).one()
    return first, other


def clone_people(db: Session, copies: int) -> int:
    """Copy every person (beneficiary, responses, answers) `copies` times by bulk inserts.

    Fast test data at scale: the copies have the answers of real demo people. Returns the
    number of people afterwards.
    """
    people = list(db.scalars(select(Beneficiary)))
    responses = list(db.scalars(select(Response)))
    answers = db.execute(select(Answer.response_id, Answer.variable, Answer.value)).all()
    by_response: dict[int, list[tuple[str, str]]] = {}
    for response_id, variable, value in answers:
        by_response.setdefault(response_id, []).append((variable, value))
    by_person: dict[int, list[Response]] = {}
    for response in responses:
        by_person.setdefault(response.beneficiary_id, []).append(response)
    for _copy in range(copies):
        for person in people:
            clone = Beneficiary(code="C" + secrets.token_hex(7), structure_id=person.structure_id)
            db.add(clone)
            db.flush()
            for response in by_person.get(person.id, []):
                new = Response(
                    beneficiary_id=clone.id,
                    structure_id=response.structure_id,
                    form=response.form,
                    definition_id=response.definition_id,
                    definition_version=response.definition_version,
                    channel=response.channel,
                    locale=response.locale,
                    status=response.status,
                    submitted_at=response.submitted_at,
                    wording=response.wording,
                )
                db.add(new)
                db.flush()
                db.execute(
                    insert(Answer),
                    [
                        {"response_id": new.id, "variable": variable, "value": value}
                        for variable, value in by_response.get(response.id, [])
                    ],
                )
    db.commit()
    return len(people) * (copies + 1)


def hold_back_a_last_form(db: Session) -> tuple[int, int]:
    """(person, response): someone with two forms or more whose latest is put back in
    progress and committed, so a test can send it later (a form that arrives between two
    exports, or during one)."""
    forms = db.execute(
        select(Response.beneficiary_id, func.count()).group_by(Response.beneficiary_id)
    ).all()
    person = next(b for b, n in forms if n >= 2)
    last = db.scalar(select(func.max(Response.id)).where(Response.beneficiary_id == person))
    assert last is not None
    db.execute(update(Response).where(Response.id == last).values(status=Status.IN_PROGRESS.value))
    db.commit()
    return person, last
