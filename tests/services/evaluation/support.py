"""Demo people for export tests, entered through services/demo.py (the real journey)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from selfcheck.models import Beneficiary, Response, Structure
from selfcheck.questionnaire.model import Definition
from selfcheck.services import demo
from selfcheck.services.structures import create_structure


def populate(
    db: Session, definition: Definition, people: int = 40, moved: int = 15
) -> tuple[Structure, Structure]:
    """`people` demo people; the last `moved` go to a second structure (department 59)."""
    demo.generate_demo(db, definition, respondents=people, seed=11)
    first = demo.demo_structure(db)
    other = create_structure(db, "Centre social Nord", "urbain", "59", "centre-nord")
    ids = list(db.scalars(select(Beneficiary.id).order_by(Beneficiary.id)))[-moved:]
    db.execute(update(Beneficiary).where(Beneficiary.id.in_(ids)).values(structure_id=other.id))
    db.execute(
        update(Response).where(Response.beneficiary_id.in_(ids)).values(structure_id=other.id)
    )
    db.commit()
    return first, other
