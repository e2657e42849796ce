"""Attacks on background jobs (outside review): a finished batch of coded forms is not
downloaded by someone who has left the structure since; nobody else's job is reachable."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import update

from selfcheck.accounts.structures import create_structure
from selfcheck.platform.db import Database
from selfcheck.platform.models import Role, StaffUser, Structure
from tests.staff import add_staff, signed_in

CODED = {"kind": "coded", "form": "before", "language": "fr", "copies": "3"}


def test_attack_coded_forms_are_not_downloaded_after_leaving_the_structure(
    app: Flask, database: Database, structure: Structure
) -> None:
    account = add_staff(database, Role.MEDIATOR, structure)
    staff = signed_in(app, account)
    staff.get("/staff/print")
    started = staff.post("/staff/print", CODED)
    assert started.status_code == 303
    page = started.headers["Location"]
    assert staff.get(page).status_code == 200
    first = staff.get(f"{page}/download")
    assert first.status_code == 200 and first.mimetype == "application/pdf"
    first.close()
    # Another mediator, of another structure, gets the same answer as for no job at all.
    with database.session() as session:
        elsewhere = create_structure(session, "Ailleurs", "rural", "29")
        session.commit()
        elsewhere_id = elsewhere.id
    other = signed_in(app, add_staff(database, Role.MEDIATOR, elsewhere, email="o@example.org"))
    assert other.get(page).status_code == 404
    assert other.get(f"{page}/download").status_code == 404
    # The mediator moves to that other structure: the codes of the first are no longer theirs.
    with database.session() as session:
        session.execute(
            update(StaffUser).where(StaffUser.id == account.id).values(structure_id=elsewhere_id)
        )
        session.commit()
    again = staff.get(f"{page}/download")
    assert again.status_code == 403 and again.mimetype == "text/html"
