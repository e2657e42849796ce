"""A structure may require a second factor of its whole team (its settings page): its staff
are then sent to enrolment from every staff page, whatever URL they type. Platform
administrators and everyone who can export data must have one in any case."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck.accounts import totp
from selfcheck.accounts.two_factor_views import ENROLMENT_OPEN
from selfcheck.platform.db import Database
from selfcheck.platform.models import AuditEvent, Role, StaffUser, Structure
from selfcheck.policy import ROLE_PERMISSIONS, Permission
from tests.staff import add_staff, sign_in, signed_in
from tests.support import Visitor, csrf_token

ENROL = "/staff/account/two-factor"


@pytest.fixture
def app(make_app: Any) -> Flask:
    made: Flask = make_app(SELFCHECK_TOTP_REQUIRED=True)
    return made


def staff_urls(app: Flask) -> list[tuple[str, str]]:
    """(method, url) of every route that needs a signed-in staff member, with made-up
    arguments (the guard runs before the view looks them up)."""
    adapter = app.url_map.bind("localhost")
    found = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if getattr(view, "selfcheck_permission", None) is None:
            continue
        if rule.endpoint in ENROLMENT_OPEN:
            continue
        values: dict[str, object] = {
            name: 1 if "int" in type(converter).__name__.lower() else "x"
            for name, converter in rule._converters.items()
        }
        url = adapter.build(rule.endpoint, values)
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            found.append((method, url))
    return found


def test_every_role_that_can_export_or_administer_must_enrol() -> None:
    structure = Structure(slug="x", name="x", territory_type="urbain", department="44")
    structure.totp_required = False
    for role, permissions in ROLE_PERMISSIONS.items():
        user = StaffUser(email="a@example.org", password_hash="x", role=role.value, active=True)
        if role in (Role.MEDIATOR, Role.STRUCTURE_ADMIN):
            user.structure = structure
        must = Permission.EVALUATE in permissions or Permission.ADMINISTER in permissions
        assert totp.required_for(user) is must, role
        if user.structure is not None:
            structure.totp_required = True
            assert totp.required_for(user), role
            structure.totp_required = False


def test_a_structure_requiring_it_sends_its_staff_to_enrolment_from_every_page(
    app: Flask, database: Database, structure: Structure, db_session: Session
) -> None:
    mediator = add_staff(database, Role.MEDIATOR, structure)
    visitor = signed_in(app, mediator)
    assert visitor.get("/staff/").status_code == 200  # not required yet
    found = db_session.get(Structure, structure.id)
    assert found is not None
    found.totp_required = True
    db_session.commit()
    visitor.get(ENROL)
    token = csrf_token(visitor.html)  # a valid token: posts get past the CSRF check
    urls = staff_urls(app)
    assert len(urls) > 30 and any(method == "POST" for method, _url in urls)
    for method, url in urls:
        if method == "POST":
            response = visitor.client.post(url, data={"csrf_token": token})
        else:
            response = visitor.client.get(url)
        assert response.status_code == 302, (method, url, response.status_code)
        assert response.headers["Location"].endswith(ENROL), (method, url)
    assert visitor.get(ENROL).status_code == 200
    assert "Votre structure demande" in visitor.text  # why, in words
    assert visitor.get("/staff/password").status_code == 200  # still allowed
    # Another structure's staff are not concerned.
    with database.session() as session:
        other = Structure(slug="ailleurs", name="Ailleurs", territory_type="rural", department="85")
        session.add(other)
        session.commit()
        session.refresh(other)
        elsewhere = add_staff(database, Role.MEDIATOR, other)
    assert signed_in(app, elsewhere).get("/staff/").status_code == 200


def test_signing_in_again_also_leads_to_enrolment(
    app: Flask, database: Database, structure: Structure, db_session: Session
) -> None:
    found = db_session.get(Structure, structure.id)
    assert found is not None
    found.totp_required = True
    db_session.commit()
    admin = add_staff(database, Role.STRUCTURE_ADMIN, structure)
    visitor = Visitor(app.test_client())
    response = sign_in(visitor, admin.email, query="?next=/staff/team/")
    assert response.status_code == 302
    team = visitor.get("/staff/team/")
    assert team.status_code == 302 and team.headers["Location"].endswith(ENROL)


def test_the_structure_administrator_turns_it_on_in_the_settings(
    app: Flask, database: Database, structure: Structure, db_session: Session
) -> None:
    admin = add_staff(database, Role.STRUCTURE_ADMIN, structure)
    mediator = add_staff(database, Role.MEDIATOR, structure)
    visitor = signed_in(app, admin)
    visitor.get("/staff/entry/settings")
    assert (
        'name="totp_required"' in visitor.html
        and " checked" not in visitor.html.split('id="totp_required"')[1].split(">")[0]
    )
    response = visitor.post(
        "/staff/entry/settings",
        {
            "structure": str(structure.id),
            "double_entry_percent": "0",
            "after_due_weeks": "6",
            "totp_required": "1",
        },
    )
    assert response.status_code == 302
    db_session.expire_all()
    found = db_session.get(Structure, structure.id)
    assert found is not None and found.totp_required
    event = db_session.scalar(
        select(AuditEvent).where(
            AuditEvent.action == "edit",
            AuditEvent.entity == "structure",
            AuditEvent.entity_id == structure.id,
        )
    )
    assert event is not None and "totp_required" in event.changes
    # The administrator, not enrolled, goes to enrolment now; so does the mediator.
    assert visitor.get("/staff/team/").headers["Location"].endswith(ENROL)
    other = signed_in(app, mediator)
    assert other.get("/staff/").headers["Location"].endswith(ENROL)


def test_the_command_line_does_the_same(
    app: Flask, structure: Structure, db_session: Session
) -> None:
    from selfcheck.cli import main

    runner = app.test_cli_runner()
    done = runner.invoke(main, ["structures", "require-2fa", "--structure", structure.slug])
    assert done.exit_code == 0, done.output
    db_session.expire_all()
    found = db_session.get(Structure, structure.id)
    assert found is not None and found.totp_required
    undone = runner.invoke(
        main, ["structures", "require-2fa", "--structure", structure.slug, "--off"]
    )
    assert undone.exit_code == 0 and "optional" in undone.output
    db_session.expire_all()
    found = db_session.get(Structure, structure.id)
    assert found is not None and not found.totp_required
    events = db_session.scalars(
        select(AuditEvent).where(AuditEvent.entity == "structure", AuditEvent.user_id.is_(None))
    )
    assert sum("totp_required" in event.changes for event in events) == 2
