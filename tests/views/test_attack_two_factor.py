"""Attacks on staff sign-in and its second factor (outside review of the back office):
nobody without the password locks the code page, guesses are counted before they are
checked, a copy of the database does not give the TOTP secrets, and `next=` never fails a
sign-in nor leaves the site."""

from __future__ import annotations

import socket
import time
from typing import Any
from urllib.parse import quote

import pyotp
import pytest
from flask import Flask
from sqlalchemy import select, update

from selfcheck.accounts import totp
from selfcheck.platform.db import Database
from selfcheck.platform.models import Role, StaffUser, Structure
from tests.staff import add_staff, sign_in
from tests.support import Visitor
from tests.views.test_admin_two_factor import enrol


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_attack_forgotten_password_posts_do_not_lock_the_code_page(
    make_app: Any, database: Database
) -> None:
    """A bot posting the victim's e-mail to "mot de passe oublié" (no password needed) used
    to spend the victim's allowance of second-factor codes: locked out for 15 minutes."""
    smtp = {"host": "127.0.0.1", "port": _free_port(), "from": "x@example.org"}
    app: Flask = make_app(
        SELFCHECK_TOTP_REQUIRED=True,
        SELFCHECK_SMTP=smtp,
        SELFCHECK_RATE_LIMITS={"login_account": (3, 900), "forgotten_account": (3, 900)},
    )
    account = add_staff(database, Role.PLATFORM_ADMIN)
    _visitor, secret, _codes = enrol(app, account)
    statuses = []
    for _ in range(5):  # the bot: no password, any address
        bot = Visitor(app.test_client())
        bot.get("/staff/password/forgotten")
        statuses.append(bot.post("/staff/password/forgotten", {"email": account.email}))
    assert [r.status_code for r in statuses] == [200, 200, 200, 429, 429]  # e-mails bounded
    owner = Visitor(app.test_client())
    assert sign_in(owner, account.email).headers["Location"].endswith("/staff/login/code")
    owner.get("/staff/login/code")
    right = pyotp.TOTP(secret).at(time.time() + totp.STEP_SECONDS)
    assert owner.post("/staff/login/code", {"code": right}).status_code == 302
    assert owner.get("/staff/").status_code == 200


def test_attack_a_code_is_counted_before_it_is_checked(
    make_app: Any, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Check-then-count let parallel guesses all pass the check: the count comes first."""
    app: Flask = make_app(SELFCHECK_TOTP_REQUIRED=True)
    account = add_staff(database, Role.PLATFORM_ADMIN)
    enrol(app, account)
    seen: list[int] = []
    real_verify = totp.verify

    def spy(*args: Any, **kwargs: Any) -> bool:
        from selfcheck.platform import ratelimit, security

        limit = security.limit("login_account")
        assert limit is not None
        with database.session() as session:
            decision = ratelimit.peek(session, str(app.secret_key), limit, account.email)
        seen.append(decision.count)
        return real_verify(*args, **kwargs)

    monkeypatch.setattr(totp, "verify", spy)
    visitor = Visitor(app.test_client())
    sign_in(visitor, account.email)
    visitor.get("/staff/login/code")
    assert visitor.post("/staff/login/code", {"code": "000001"}).status_code in (302, 422)
    assert seen == [1]  # this guess was already counted while it was being checked


def test_attack_a_copy_of_the_database_does_not_give_the_totp_secret(
    make_app: Any, database: Database
) -> None:
    app: Flask = make_app(SELFCHECK_TOTP_REQUIRED=True)
    account = add_staff(database, Role.PLATFORM_ADMIN)
    _visitor, secret, _codes = enrol(app, account)
    with database.session() as session:
        stored = session.scalar(select(StaffUser.totp_secret).where(StaffUser.id == account.id))
    assert stored is not None and secret not in stored and stored.startswith(totp.SEALED)
    assert totp.unseal(stored, "another secret key") != secret
    # A secret stored in clear before sealing still works, and is sealed at its next use.
    with database.session() as session:
        session.execute(
            update(StaffUser).where(StaffUser.id == account.id).values(totp_secret=secret)
        )
        session.commit()
    visitor = Visitor(app.test_client())
    sign_in(visitor, account.email)
    visitor.get("/staff/login/code")
    right = pyotp.TOTP(secret).at(time.time() + totp.STEP_SECONDS)
    assert visitor.post("/staff/login/code", {"code": right}).status_code == 302
    with database.session() as session:
        stored = session.scalar(select(StaffUser.totp_secret).where(StaffUser.id == account.id))
    assert stored is not None and stored.startswith(totp.SEALED)
    assert totp.unseal(stored, str(app.secret_key)) == secret


@pytest.mark.parametrize(
    "target", ["/staff/x\r\nSet-Cookie: a=b", "/staff/\ny", "/\\evil.example/", "/\t/evil.example"]
)
def test_attack_next_never_fails_a_sign_in_nor_leaves_the_site(
    app: Flask, database: Database, structure: Structure, target: str
) -> None:
    account = add_staff(database, Role.MEDIATOR, structure)
    visitor = Visitor(app.test_client())
    response = sign_in(visitor, account.email, query="?next=" + quote(target))
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/"
