"""Administration without a terminal: one-time links, a structure's team, the platform
administrators' structures and staff, the poster, the audit trail."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck.accounts import invitations, team
from selfcheck.accounts.admin_views import SCOPE_GRANTS, SCOPE_LABELS, Scope
from selfcheck.accounts.structures import create_structure
from selfcheck.platform.db import Database
from selfcheck.platform.models import (
    AuditEvent,
    Grant,
    OneTimeLink,
    Role,
    StaffUser,
    Structure,
    utcnow,
)
from tests.staff import PASSWORD, add_staff, sign_in, signed_in
from tests.support import Visitor, words

NEW_PASSWORD = "une toute nouvelle phrase"
LINK = re.compile(r'value="(https?://[^"]+/staff/link/([^"]+))"')


def shown_link(visitor: Visitor) -> tuple[str, str]:
    found = LINK.search(visitor.html)
    assert found, visitor.text
    return found.group(1), found.group(2)


def user_by_email(database: Database, email: str) -> StaffUser | None:
    with database.session() as session:
        found = session.scalar(select(StaffUser).where(StaffUser.email == email))
        if found is not None:
            session.expunge(found)
        return found


def audit_text(database: Database) -> str:
    with database.session() as session:
        return " ".join(
            f"{e.action} {e.entity} {e.changes}" for e in session.scalars(select(AuditEvent))
        )


def test_invitation_link_sets_a_password_once(
    app: Flask, database: Database, structure: Structure
) -> None:
    admin = signed_in(app, add_staff(database, Role.STRUCTURE_ADMIN, structure))
    admin.get("/staff/team/invite")
    assert admin.last is not None and admin.last.status_code == 200
    response = admin.post(
        "/staff/team/invite", {"email": "  Nouvelle@Example.org ", "role": "mediator"}
    )
    assert response.status_code == 200
    admin.last = response
    url, token = shown_link(admin)
    assert "72" in admin.text
    invited = user_by_email(database, "nouvelle@example.org")
    assert invited is not None and invited.structure_id == structure.id
    assert invited.role == Role.MEDIATOR.value
    # Only the hash is stored; the link is nowhere in the database's audit trail.
    with database.session() as session:
        (link,) = session.scalars(select(OneTimeLink))
        assert link.token_hash == invitations.token_hash(token) and token not in link.token_hash
    assert token not in audit_text(database)
    # No password works before the link is used.
    stranger = Visitor(app.test_client())
    assert sign_in(stranger, "nouvelle@example.org", "!invited").status_code == 422

    newcomer = Visitor(app.test_client())
    page = newcomer.get(url)
    assert page.status_code == 200 and "nouvelle@example.org" in newcomer.text
    short = newcomer.post(url, {"new": "court", "confirm": "court"})
    assert short.status_code == 422
    newcomer.last = short
    assert "12 caractères" in newcomer.text
    done = newcomer.post(url, {"new": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302 and "password_set=1" in done.headers["Location"]
    assert sign_in(newcomer, "nouvelle@example.org", NEW_PASSWORD).status_code == 302
    # Used: refused, and nothing changes.
    again = Visitor(app.test_client())
    assert again.get(url).status_code == 410
    assert again.post(
        url, {"new": "une autre phrase longue", "confirm": "une autre phrase longue"}, csrf=False
    ).status_code in (400, 410)
    assert Visitor(app.test_client()).get("/staff/link/not-a-real-token").status_code == 404
    assert "NEW_PASSWORD" not in audit_text(database) and NEW_PASSWORD not in audit_text(database)


def test_a_link_expires_after_72_hours(db_session: Session, structure: Structure) -> None:
    user, token = team.invite(db_session, None, "late@example.org", Role.MEDIATOR, structure.id)
    db_session.commit()
    later = utcnow() + timedelta(hours=72, seconds=1)
    with pytest.raises(invitations.LinkError) as refused:
        invitations.use(db_session, token, NEW_PASSWORD, later)
    assert refused.value.reason == "expired"
    # A new link voids the old one; a deactivated account's link is refused.
    fresh = invitations.issue(db_session, user, invitations.Purpose.INVITATION, None)
    with pytest.raises(invitations.LinkError) as old:
        invitations.find(db_session, token)
    assert old.value.reason == "used"
    user.active = False
    with pytest.raises(invitations.LinkError) as inactive:
        invitations.find(db_session, fresh)
    assert inactive.value.reason == "inactive"


def test_a_structure_admin_never_gives_more_than_they_have(
    app: Flask, database: Database, structure: Structure, db_session: Session
) -> None:
    paris = create_structure(db_session, "France Services Paris 11", "urbain", "75")
    db_session.commit()
    away = add_staff(database, Role.MEDIATOR, paris)
    colleague = add_staff(database, Role.MEDIATOR, structure)
    admin_account = add_staff(database, Role.STRUCTURE_ADMIN, structure)
    admin = signed_in(app, admin_account)
    admin.get("/staff/team/invite")
    # The role choices are the structure's; an evaluator is refused, nothing created.
    assert "evaluator" not in admin.html and "platform_admin" not in admin.html
    refused = admin.post("/staff/team/invite", {"email": "eval@example.org", "role": "evaluator"})
    assert refused.status_code == 422
    assert user_by_email(database, "eval@example.org") is None
    # Another structure's staff: as if nobody.
    assert admin.get(f"/staff/team/{away.id}").status_code == 404
    admin.get(f"/staff/team/{colleague.id}")
    assert admin.post(f"/staff/team/{away.id}", {"action": "deactivate"}).status_code == 404
    # Duplicate e-mail: 409, a clear message.
    admin.get("/staff/team/invite")
    taken = admin.post("/staff/team/invite", {"email": colleague.email, "role": "mediator"})
    assert taken.status_code == 409
    admin.last = taken
    assert "existe déjà" in admin.text and "Erreur" in admin.text
    # Change a role, deactivate, re-activate: done, audited.
    admin.get(f"/staff/team/{colleague.id}")
    assert (
        admin.post(
            f"/staff/team/{colleague.id}", {"action": "role", "role": "structure_admin"}
        ).status_code
        == 302
    )
    admin.get(f"/staff/team/{colleague.id}")
    assert admin.post(
        f"/staff/team/{colleague.id}", {"action": "role", "role": "platform_admin"}
    ).status_code in (403, 422)
    assert admin.post(f"/staff/team/{colleague.id}", {"action": "deactivate"}).status_code == 302
    moved = user_by_email(database, colleague.email)
    assert moved is not None and moved.role == Role.STRUCTURE_ADMIN.value and not moved.active
    assert sign_in(Visitor(app.test_client()), colleague.email).status_code == 422
    admin.get(f"/staff/team/{colleague.id}")
    assert admin.post(f"/staff/team/{colleague.id}", {"action": "reactivate"}).status_code == 302
    # Not on oneself.
    admin.get(f"/staff/team/{admin_account.id}")
    assert (
        admin.post(f"/staff/team/{admin_account.id}", {"action": "deactivate"}).status_code == 403
    )
    trail = audit_text(database)
    for action in ("role", "deactivate", "reactivate"):
        assert action in trail
    assert PASSWORD not in trail


def test_reset_link_for_a_member(app: Flask, database: Database, structure: Structure) -> None:
    colleague = add_staff(database, Role.MEDIATOR, structure)
    admin = signed_in(app, add_staff(database, Role.STRUCTURE_ADMIN, structure))
    still_in = signed_in(app, colleague)
    admin.get(f"/staff/team/{colleague.id}")
    response = admin.post(f"/staff/team/{colleague.id}", {"action": "link"})
    assert response.status_code == 200
    admin.last = response
    url, _token = shown_link(admin)
    person = Visitor(app.test_client())
    person.get(url)
    assert person.post(url, {"new": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 302
    # The old password no longer works, and the session elsewhere is over.
    assert sign_in(Visitor(app.test_client()), colleague.email).status_code == 422
    assert sign_in(Visitor(app.test_client()), colleague.email, NEW_PASSWORD).status_code == 302
    assert still_in.get("/staff/").status_code == 302


def test_platform_admin_structures_and_staff(
    app: Flask, database: Database, structure: Structure
) -> None:
    admin = signed_in(app, add_staff(database, Role.PLATFORM_ADMIN))
    admin.get("/staff/admin/structures/new")
    bad = admin.post(
        "/staff/admin/structures/new",
        {"name": "", "territory_type": "lunaire", "department": "99"},
    )
    assert bad.status_code == 422
    admin.last = bad
    assert admin.text.count("Erreur") >= 1
    with database.session() as session:
        assert len(list(session.scalars(select(Structure)))) == 1
    made = admin.post(
        "/staff/admin/structures/new",
        {"name": "Centre social des Dervallières", "territory_type": "urbain", "department": "44"},
    )
    assert made.status_code == 302
    with database.session() as session:
        created = session.scalar(select(Structure).where(Structure.name.like("Centre social%")))
        assert created is not None
        created_id, slug = created.id, created.slug
    admin.get(f"/staff/admin/structures/{created_id}")
    renamed = admin.post(
        f"/staff/admin/structures/{created_id}",
        {"name": "Centre social Dervallières", "territory_type": "periurbain", "department": "2a"},
    )
    assert renamed.status_code == 302
    admin.get(f"/staff/admin/structures/{created_id}")
    assert (
        admin.post(f"/staff/admin/structures/{created_id}", {"action": "archive"}).status_code
        == 302
    )
    with database.session() as session:
        archived = session.get(Structure, created_id)
        assert archived is not None and archived.archived_at is not None
        assert (archived.name, archived.department, archived.slug) == (
            "Centre social Dervallières",
            "2A",
            slug,
        )
    admin.get("/staff/admin/structures?q=derval")
    assert "Dervallières" not in admin.text  # archived: not in the usual list
    admin.get("/staff/admin/structures?q=derval&archived=1")
    assert "Dervallières" in admin.text
    # Archived: nobody can be invited there.
    admin.get("/staff/team/invite")
    refused = admin.post(
        "/staff/team/invite",
        {"email": "x@example.org", "role": "mediator", "structure": slug},
    )
    assert refused.status_code in (409, 422)

    # An evaluator (territorial coordinator): invite, scope by region, free text.
    admin.get("/staff/team/invite")
    invited = admin.post("/staff/team/invite", {"email": "coord@example.org", "role": "evaluator"})
    assert invited.status_code == 200
    evaluator = user_by_email(database, "coord@example.org")
    assert evaluator is not None and evaluator.structure_id is None
    admin.get(f"/staff/team/{evaluator.id}")
    assert (
        admin.post(
            f"/staff/team/{evaluator.id}", {"action": "grant", "scope": "region", "value": "52"}
        ).status_code
        == 302
    )
    assert (
        admin.post(
            f"/staff/team/{evaluator.id}", {"action": "grant", "scope": "department", "value": "99"}
        ).status_code
        == 422
    )
    assert (
        admin.post(f"/staff/team/{evaluator.id}", {"action": "free_text", "value": "1"}).status_code
        == 302
    )
    with database.session() as session:
        grants = list(session.scalars(select(Grant).where(Grant.user_id == evaluator.id)))
        assert sorted(g.department or "" for g in grants) == ["44", "49", "53", "72", "85"]
        first = grants[0].id
        person = session.get(StaffUser, evaluator.id)
        assert person is not None and person.can_read_free_text
    assert (
        admin.post(
            f"/staff/team/{evaluator.id}", {"action": "revoke", "grant": str(first)}
        ).status_code
        == 302
    )
    with database.session() as session:
        assert len(list(session.scalars(select(Grant).where(Grant.user_id == evaluator.id)))) == 4
    # The staff list: searchable and paged.
    admin.get("/staff/admin/staff?q=coord")
    assert "coord@example.org" in admin.text
    admin.get("/staff/admin/staff?role=mediator")
    assert "coord@example.org" not in admin.text
    trail = audit_text(database)
    for action in ("create", "edit", "archive", "grant", "revoke", "free_text", "invite"):
        assert action in trail


def test_the_last_platform_admin_stays(app: Flask, database: Database, db_session: Session) -> None:
    only = add_staff(database, Role.PLATFORM_ADMIN)
    admin = signed_in(app, only)
    admin.get(f"/staff/team/{only.id}")
    assert admin.post(f"/staff/team/{only.id}", {"action": "deactivate"}).status_code == 403
    assert (
        admin.post(f"/staff/team/{only.id}", {"action": "role", "role": "evaluator"}).status_code
        == 403
    )
    user = db_session.get(StaffUser, only.id)
    assert user is not None
    # Not even from the command line (no actor).
    with pytest.raises(team.TeamError) as refused:
        team.set_active(db_session, None, user, False)
    assert refused.value.reason == "last_platform_admin"
    with pytest.raises(team.TeamError):
        team.set_role(db_session, None, user, Role.EVALUATOR)
    # With a second one, the first can be deactivated (by the other).
    other = add_staff(database, Role.PLATFORM_ADMIN, email="second@example.org")
    second = signed_in(app, other)
    second.get(f"/staff/team/{only.id}")
    assert second.post(f"/staff/team/{only.id}", {"action": "deactivate"}).status_code == 302


def test_the_poster(app: Flask, database: Database, structure: Structure) -> None:
    from io import BytesIO

    from pypdf import PdfReader

    admin = signed_in(app, add_staff(database, Role.STRUCTURE_ADMIN, structure))
    for query, pages in (("", 1), ("?large=1", 1)):
        response = admin.get("/staff/team/poster.pdf" + query)
        assert response.status_code == 200 and response.mimetype == "application/pdf"
        reader = PdfReader(BytesIO(response.data))
        assert len(reader.pages) == pages
        text = words(" ".join(page.extract_text() for page in reader.pages))
        assert "Médiathèque de Rezé" in text
        assert f"/s/{structure.slug}" in text.replace(" ", "")
        box = reader.pages[0].mediabox
        assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4


def test_the_poster_qr_code_is_the_link(
    app: Flask, database: Database, structure: Structure
) -> None:
    import pypdfium2
    import zxingcpp

    admin = signed_in(app, add_staff(database, Role.STRUCTURE_ADMIN, structure))
    response = admin.get("/staff/team/poster.pdf")
    page = pypdfium2.PdfDocument(response.data)[0]
    image = page.render(scale=2).to_pil()
    found = [result.text for result in zxingcpp.read_barcodes(image)]
    assert found == [f"http://localhost/s/{structure.slug}"]


def test_the_command_line_calls_the_same_operations(
    app: Flask, database: Database, structure: Structure
) -> None:
    from tests.test_cli import run

    result = run(
        app,
        "users",
        "invite",
        "--email",
        "cli@example.org",
        "--role",
        "structure_admin",
        "--structure",
        structure.slug,
        "--base-url",
        "https://mesure.example.org/",
    )
    assert result.exit_code == 0, result.output
    link = result.output.strip().splitlines()[-1]
    assert link.startswith("https://mesure.example.org/staff/link/")
    newcomer = Visitor(app.test_client())
    path = link.removeprefix("https://mesure.example.org")
    newcomer.get(path)
    assert newcomer.post(path, {"new": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 302
    assert sign_in(Visitor(app.test_client()), "cli@example.org", NEW_PASSWORD).status_code == 302
    again = run(
        app,
        "users",
        "invite",
        "--email",
        "cli@example.org",
        "--role",
        "mediator",
        "--structure",
        structure.slug,
    )
    assert again.exit_code != 0 and "email_taken" in again.output
    assert run(app, "users", "deactivate", "--email", "cli@example.org").exit_code == 0
    assert sign_in(Visitor(app.test_client()), "cli@example.org", NEW_PASSWORD).status_code == 422
    assert run(app, "users", "deactivate", "--again", "--email", "cli@example.org").exit_code == 0
    assert run(app, "users", "link", "--email", "cli@example.org").output.startswith("reset link")
    only = add_staff(database, Role.PLATFORM_ADMIN)
    refused = run(app, "users", "deactivate", "--email", only.email)
    assert refused.exit_code != 0 and "last_platform_admin" in refused.output
    assert run(app, "structures", "archive", "--structure", structure.slug).exit_code == 0
    with database.session() as session:
        archived = session.get(Structure, structure.id)
        assert archived is not None and archived.archived_at is not None
    trail = audit_text(database)
    assert "invite" in trail and "deactivate" in trail and "archive" in trail


def test_every_scope_has_its_radio_button_and_its_grant() -> None:
    assert list(SCOPE_LABELS) == list(Scope)  # the page's order: the first one is checked
    assert set(SCOPE_GRANTS) == set(Scope)


def test_typed_names_take_their_own_direction_in_arabic(
    app: Flask, database: Database, structure: Structure
) -> None:
    """In Arabic a French structure's name in its field ran right to left and lost its first
    letter at 320 px (round 23, the demo's structure page): typed names, addresses and
    searches take the direction of what is typed, the one-time link stays left to right."""
    admin = signed_in(app, add_staff(database, Role.PLATFORM_ADMIN))
    admin.get("/staff/admin/structures?lang=ar")
    assert 'id="q" name="q" value="" dir="auto">' in admin.text
    admin.get(f"/staff/admin/structures/{structure.id}")
    assert re.search(r'<input [^>]*id="name" [^>]*dir="auto"', admin.text)
    admin.get("/staff/admin/staff")
    assert re.search(r'<input [^>]*id="q" [^>]*dir="auto"', admin.text)
    member = add_staff(database, Role.MEDIATOR, structure)
    admin.get(f"/staff/team/{member.id}")
    page = admin.post(f"/staff/team/{member.id}", {"action": "link"})
    assert page.status_code == 200
    assert re.search(r'<input [^>]*id="one-time-link" [^>]*dir="ltr"', page.get_data(as_text=True))
    login = app.test_client().get("/staff/login?lang=ar").get_data(as_text=True)
    assert re.search(r'<input [^>]*id="email" [^>]*dir="auto"', login)
