"""attack14: a NUL in the staff sign-in form (and the other forms anyone may post).

`POST /staff/login` with `email=%00` reached PostgreSQL as a query parameter holding NUL,
which it refuses: a 500 for anyone, signed in or not (SQLite: a wrong password). Now the
same answer as for an unknown address, on both databases.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from selfcheck.platform.db import Database
from selfcheck.platform.models import Role, Structure
from tests.staff import add_staff
from tests.support import Visitor
from tests.views.test_admin_mail import Inbox, inbox  # noqa: F401 (a fixture)
from tests.views.test_attack13_host import _app


@pytest.mark.parametrize("email", ["\x00", "a\x00@example.org", "{email}\x00"])
def test_attack14_a_nul_in_the_sign_in_address_is_a_wrong_sign_in(
    app: Flask, database: Database, structure: Structure, email: str
) -> None:
    account = add_staff(database, Role.MEDIATOR, structure)
    visitor = Visitor(app.test_client())
    assert visitor.get("/staff/login").status_code == 200
    typed = email.format(email=account.email)
    answer = visitor.post("/staff/login", {"email": typed, "password": "not the password"})
    assert answer.status_code < 500
    assert "Location" not in answer.headers or "/staff/login" in answer.headers["Location"]


@pytest.mark.parametrize("email", ["\x00", "a\x00@example.org"])
def test_attack14_a_nul_in_the_forgotten_password_address_is_not_a_500(
    make_app: Any,
    inbox: tuple[Inbox, int],  # noqa: F811
    email: str,
) -> None:
    app = _app(make_app, inbox[1])  # e-mail on: the page has its form
    visitor = Visitor(app.test_client())
    assert visitor.get("/staff/password/forgotten").status_code == 200
    assert visitor.post("/staff/password/forgotten", {"email": email}).status_code < 500
