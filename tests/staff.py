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


# Creating an account hashes its password with argon2: about 0.2 s of CPU with the app's
# parameters, a large part of many tests. Every account made by add_staff has the same password,
# so its hash is made once per test process, by the app's own hash_password (argon2id, the real
# parameters, a random salt), and given to each of them; signing in still verifies it for real.
# tests/services/test_auth.py checks the hashing itself (a salt per account) without add_staff.
_hashes: dict[str, str] = {}
_real_hash_password = auth.hash_password


def _hash_once(password: str) -> str:
    if password != PASSWORD:
        return _real_hash_password(password)
    if password not in _hashes:
        _hashes[password] = _real_hash_password(password)
    return _hashes[password]


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
        auth.hash_password = _hash_once
        try:
            user = auth.create_user(
                session,
                auth.NewUser(email, role, structure.id if structure is not None else None),
                PASSWORD,
            )
        finally:
            auth.hash_password = _real_hash_password
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
