"""Two-factor sign-in: required for platform administrators and exporters, enrolment with a
QR code and a text secret, codes accepted once, recovery codes, administrator reset."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck.accounts import totp
from selfcheck.platform.db import Database
from selfcheck.platform.models import AuditEvent, RecoveryCode, Role, StaffUser, Structure
from tests.staff import Account, add_staff, sign_in
from tests.support import Visitor

SECRET_TEXT = re.compile(r'<code class="secret-text">([A-Z2-7 ]+)</code>')


@pytest.fixture
def app(make_app: object) -> Flask:
    factory = make_app  # the suite's factory, with the second factor required
    made: Flask = factory(SELFCHECK_TOTP_REQUIRED=True)  # type: ignore[operator]
    return made


def enrol(app: Flask, account: Account) -> tuple[Visitor, str, list[str]]:
    """Sign in with the password, get sent to enrolment, confirm a code: (visitor, secret,
    recovery codes)."""
    visitor = Visitor(app.test_client())
    response = sign_in(visitor, account.email)
    assert response.status_code == 302
    home = visitor.get("/staff/")
    assert home.status_code == 302 and home.headers["Location"].endswith(
        "/staff/account/two-factor"
    )
    visitor.get("/staff/account/two-factor")
    assert "<svg" in visitor.html and "<script" not in visitor.html and "style=" not in visitor.html
    found = SECRET_TEXT.search(visitor.html)
    assert found
    secret = found.group(1).replace(" ", "")
    wrong = visitor.post("/staff/account/two-factor", {"code": "000000"})
    if pyotp.TOTP(secret).verify("000000", valid_window=1):  # one chance in 300 000
        pytest.skip("the random secret's current code is 000000")
    assert wrong.status_code == 422
    visitor.last = wrong
    secret_again = SECRET_TEXT.search(visitor.html)
    assert secret_again and secret_again.group(1).replace(" ", "") == secret
    done = visitor.post("/staff/account/two-factor", {"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200
    visitor.last = done
    codes = re.findall(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>", visitor.html)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert visitor.get("/staff/").status_code == 200
    return visitor, secret, codes


def test_required_for_platform_admins_and_exporters_only(
    app: Flask, database: Database, structure: Structure
) -> None:
    for role in (Role.PLATFORM_ADMIN, Role.EVALUATOR):
        account = add_staff(database, role, departments=("44",) if role is Role.EVALUATOR else ())
        visitor = Visitor(app.test_client())
        sign_in(visitor, account.email)
        assert visitor.get("/staff/").status_code == 302, role
        assert visitor.get("/staff/password").status_code == 200  # allowed before enrolling
    mediator = add_staff(database, Role.MEDIATOR, structure)
    visitor = Visitor(app.test_client())
    sign_in(visitor, mediator.email)
    assert visitor.get("/staff/").status_code == 200
    assert visitor.get("/staff/account/two-factor").status_code == 200  # optional for them


def test_enrolment_then_sign_in_with_a_code_once(
    app: Flask, database: Database, db_session: Session
) -> None:
    account = add_staff(database, Role.PLATFORM_ADMIN)
    _first, secret, codes = enrol(app, account)
    with database.session() as session:
        stored = list(session.scalars(select(RecoveryCode.code_hash)))
        assert len(stored) == 10 and not set(codes) & set(stored)
        user = session.get(StaffUser, account.id)
        assert user is not None and user.totp_secret is not None
        assert secret not in user.totp_secret  # sealed (tests/views/test_attack_two_factor.py)
        assert totp.unseal(user.totp_secret, str(app.secret_key)) == secret
    # Password alone: not signed in, the code page instead.
    visitor = Visitor(app.test_client())
    response = sign_in(visitor, account.email)
    assert response.headers["Location"].endswith("/staff/login/code")
    assert visitor.get("/staff/").status_code == 302
    visitor.get("/staff/login/code")
    assert visitor.post("/staff/login/code", {"code": "12345"}).status_code == 422
    # The code accepted at enrolment is refused: no replay.
    with database.session() as session:
        user = session.get(StaffUser, account.id)
        assert user is not None and user.totp_last_step is not None
        last = user.totp_last_step
    assert totp.matching_step(secret, pyotp.TOTP(secret).now()) in (last, last + 1)
    replay = visitor.post(
        "/staff/login/code", {"code": pyotp.TOTP(secret).at(last * totp.STEP_SECONDS)}
    )
    assert replay.status_code == 422
    # The next step's code (one step of drift is accepted) signs in, once.
    next_code = pyotp.TOTP(secret).at((last + 1) * totp.STEP_SECONDS)
    assert visitor.post("/staff/login/code", {"code": next_code}).status_code == 302
    assert visitor.get("/staff/").status_code == 200
    other = Visitor(app.test_client())
    sign_in(other, account.email)
    other.get("/staff/login/code")
    assert other.post("/staff/login/code", {"code": next_code}).status_code == 422
    # A recovery code works once.
    assert other.post("/staff/login/code", {"code": codes[0].upper()}).status_code == 302
    third = Visitor(app.test_client())
    sign_in(third, account.email)
    third.get("/staff/login/code")
    assert third.post("/staff/login/code", {"code": codes[0]}).status_code == 422


def test_wrong_codes_count_in_the_sign_in_limit(make_app: object, database: Database) -> None:
    limited: Flask = make_app(  # type: ignore[operator]
        SELFCHECK_TOTP_REQUIRED=True, SELFCHECK_RATE_LIMITS={"login_account": (2, 900)}
    )
    account = add_staff(database, Role.PLATFORM_ADMIN)
    _visitor, secret, _codes = enrol(limited, account)
    visitor = Visitor(limited.test_client())
    sign_in(visitor, account.email)  # a password sign-in is not counted here: codes are
    visitor.get("/staff/login/code")
    statuses = [visitor.post("/staff/login/code", {"code": "000001"}).status_code for _ in range(3)]
    assert statuses[-1] == 429, statuses
    # Even the right code is refused now.
    right = pyotp.TOTP(secret).at(time.time() + totp.STEP_SECONDS)
    assert visitor.post("/staff/login/code", {"code": right}).status_code == 429


def test_an_admin_resets_a_second_factor(app: Flask, database: Database) -> None:
    person = add_staff(database, Role.EVALUATOR, departments=("44",))
    enrol(app, person)
    admin_account = add_staff(database, Role.PLATFORM_ADMIN)
    admin, _secret, _codes = enrol(app, admin_account)
    admin.get(f"/staff/team/{person.id}")
    assert "Retirer la double authentification" in admin.text
    assert admin.post(f"/staff/team/{person.id}", {"action": "reset_2fa"}).status_code == 302
    with database.session() as session:
        user = session.get(StaffUser, person.id)
        assert user is not None and user.totp_secret is None
        assert not list(
            session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == person.id))
        )
        actions = [e.action for e in session.scalars(select(AuditEvent))]
        assert "reset_2fa" in actions and "enrol_2fa" in actions
        changes = " ".join(e.changes for e in session.scalars(select(AuditEvent)))
    # Next sign-in: password, then enrolment again (required for an evaluator).
    visitor = Visitor(app.test_client())
    assert sign_in(visitor, person.email).headers["Location"].endswith("/staff/")
    assert visitor.get("/staff/").headers["Location"].endswith("/staff/account/two-factor")
    assert "secret" not in changes.lower()


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
def test_a_new_place_from_nothing_to_a_mediator_without_a_terminal(
    app: Flask, database: Database, structure: Structure
) -> None:
    """The issue's story: a platform administrator (second factor on) creates a structure and
    invites its administrator, who accepts, invites a mediator and prints the poster; the
    mediator signs in and sees only that structure."""
    platform, _secret, _codes = enrol(app, add_staff(database, Role.PLATFORM_ADMIN))
    platform.get("/staff/admin/structures/new")
    made = platform.post(
        "/staff/admin/structures/new",
        {"name": "Espace numérique de Morlaix", "territory_type": "rural", "department": "29"},
    )
    assert made.status_code == 302
    with database.session() as session:
        place = session.scalar(select(Structure).where(Structure.department == "29"))
        assert place is not None
        slug = place.slug
    platform.get(f"/staff/team/invite?structure={slug}")
    invited = platform.post(
        "/staff/team/invite",
        {"email": "responsable@morlaix.example", "role": "structure_admin", "structure": slug},
    )
    assert invited.status_code == 200
    link = re.search(r'value="http://localhost(/staff/link/[^"]+)"', invited.get_data(as_text=True))
    assert link

    manager = Visitor(app.test_client())
    manager.get(link.group(1))
    password = "la phrase de la responsable"
    assert manager.post(link.group(1), {"new": password, "confirm": password}).status_code == 302
    assert sign_in(manager, "responsable@morlaix.example", password).status_code == 302
    assert manager.get("/staff/team/").status_code == 200  # no second factor required here
    assert "Espace numérique de Morlaix" in manager.text
    manager.get("/staff/team/invite")
    second = manager.post(
        "/staff/team/invite", {"email": "mediateur@morlaix.example", "role": "mediator"}
    )
    assert second.status_code == 200
    link = re.search(r'value="http://localhost(/staff/link/[^"]+)"', second.get_data(as_text=True))
    assert link
    poster = manager.get("/staff/team/poster.pdf")
    assert poster.status_code == 200 and poster.data.startswith(b"%PDF")

    mediator = Visitor(app.test_client())
    mediator.get(link.group(1))
    password = "la phrase du médiateur"
    assert mediator.post(link.group(1), {"new": password, "confirm": password}).status_code == 302
    assert sign_in(mediator, "mediateur@morlaix.example", password).status_code == 302
    assert mediator.get(f"/staff/people/?structure={slug}").status_code == 200
    assert mediator.get(f"/staff/people/?structure={structure.slug}").status_code in (403, 404)
    assert mediator.get("/staff/entry/").status_code == 200  # ready to type a paper form


def test_new_recovery_codes_need_a_current_code(app: Flask, database: Database) -> None:
    account = add_staff(database, Role.PLATFORM_ADMIN)
    visitor, secret, old_codes = enrol(app, account)
    visitor.get("/staff/account/two-factor")
    assert "10 codes de secours" in visitor.text
    assert visitor.post("/staff/account/two-factor", {"code": "000001"}).status_code == 422
    with database.session() as session:
        user = session.get(StaffUser, account.id)
        assert user is not None and user.totp_last_step is not None
        step = user.totp_last_step + 1
    fresh = visitor.post(
        "/staff/account/two-factor",
        {"code": pyotp.TOTP(secret).at(step * totp.STEP_SECONDS)},
    )
    assert fresh.status_code == 200
    new_codes = re.findall(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>", fresh.get_data(as_text=True))
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    # The old codes no longer sign in.
    other = Visitor(app.test_client())
    sign_in(other, account.email)
    other.get("/staff/login/code")
    assert other.post("/staff/login/code", {"code": old_codes[1]}).status_code == 422
    assert other.post("/staff/login/code", {"code": new_codes[1]}).status_code == 302
