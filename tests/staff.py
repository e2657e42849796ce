"""Staff test helpers: an account of each role, signing in through the real login page."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask
from werkzeug.test import TestResponse

from selfcheck.accounts import auth
from selfcheck.platform.db import Database
from selfcheck.platform.models import Role, Structure
from tests.support import Visitor

PASSWORD = "une phrase assez longue"


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    role: Role
    password: str = PASSWORD


def add_staff(
    database: Database,
    role: Role,
    structure: Structure | None = None,
    email: str | None = None,
    departments: tuple[str, ...] = (),
    structures: tuple[Structure, ...] = (),
) -> Account:
    """Create an account (mediators and structure admins belong to `structure`)."""
    email = email or f"{role.value}-{structure.slug if structure else 'all'}@example.org"
    with database.session() as session:
        user = auth.create_user(
            session,
            auth.NewUser(email, role, structure.id if structure is not None else None),
            PASSWORD,
        )
        for department in departments:
            auth.grant(session, user, department=department)
        for granted in structures:
            auth.grant(session, user, structure_id=granted.id)
        session.commit()  # the test is the caller: operations never commit
        return Account(user.id, user.email, role)


def sign_in(
    visitor: Visitor, email: str, password: str = PASSWORD, query: str = ""
) -> TestResponse:
    """Open the login page (for its CSRF token) and post the credentials."""
    visitor.get("/staff/login" + query)
    return visitor.post("/staff/login" + query, {"email": email, "password": password})


def signed_in(app: Flask, account: Account) -> Visitor:
    visitor = Visitor(app.test_client())
    response = sign_in(visitor, account.email, account.password)
    assert response.status_code == 302, response.status_code
    return visitor
