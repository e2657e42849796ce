"""Staff accounts: argon2 hashes, sign-in without user enumeration, password rules, grants."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck.accounts import auth
from selfcheck.accounts.permissions import (
    ROLE_PERMISSIONS,
    Permission,
    can_access_structure,
    has_permission,
    visible_structure_ids,
)
from selfcheck.accounts.structures import create_structure
from selfcheck.platform.db import Database
from selfcheck.platform.models import Role, StaffUser, Structure, utcnow

PASSWORD = "une phrase assez longue"


def new_user(
    session: Session,
    role: Role = Role.MEDIATOR,
    structure: Structure | None = None,
    email: str = "nadia@example.org",
    password: str = PASSWORD,
) -> StaffUser:
    user = auth.create_user(
        session,
        auth.NewUser(email, role, structure.id if structure is not None else None),
        password,
    )
    session.commit()  # the test is the caller: operations never commit
    return user


# --- hashes ------------------------------------------------------------------------------


def test_passwords_are_stored_as_salted_argon2id_hashes(
    db_session: Session, structure: Structure
) -> None:
    user = new_user(db_session, structure=structure)
    other = new_user(db_session, structure=structure, email="karim@example.org")
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert user.password_hash != other.password_hash  # same password, different salt
    assert PasswordHasher().verify(user.password_hash, PASSWORD)


def test_hash_password_applies_the_rules() -> None:
    assert auth.hash_password("x" * auth.MIN_PASSWORD_LENGTH).startswith("$argon2id$")
    with pytest.raises(auth.AuthError) as short:
        auth.hash_password("x" * (auth.MIN_PASSWORD_LENGTH - 1))
    assert short.value.reason == "password_too_short"
    with pytest.raises(auth.AuthError) as long:
        auth.hash_password("x" * (auth.MAX_PASSWORD_LENGTH + 1))
    assert long.value.reason == "password_too_long"


# --- authenticate ------------------------------------------------------------------------


def test_authenticate_with_the_right_password(db_session: Session, structure: Structure) -> None:
    user = new_user(db_session, structure=structure)
    assert auth.authenticate(db_session, "nadia@example.org", PASSWORD) is user
    # The e-mail is compared case-insensitively, spaces trimmed.
    assert auth.authenticate(db_session, "  Nadia@Example.ORG ", PASSWORD) is user


def test_authenticate_refuses_wrong_password_unknown_email_and_inactive_account(
    db_session: Session, structure: Structure
) -> None:
    user = new_user(db_session, structure=structure)
    assert auth.authenticate(db_session, user.email, PASSWORD + "!") is None
    assert auth.authenticate(db_session, "nobody@example.org", PASSWORD) is None
    assert auth.authenticate(db_session, user.email, "") is None
    assert auth.authenticate(db_session, user.email, "x" * (auth.MAX_PASSWORD_LENGTH + 1)) is None
    user.active = False
    db_session.commit()
    assert auth.authenticate(db_session, user.email, PASSWORD) is None


def test_an_unknown_email_costs_a_hash_verification_too(
    db_session: Session, structure: Structure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No timing difference tells which e-mails have an account."""
    new_user(db_session, structure=structure)
    verified: list[str] = []
    real_verify = auth._verify

    def spy(password_hash: str, password: str) -> bool:
        verified.append(password_hash)
        return real_verify(password_hash, password)

    monkeypatch.setattr(auth, "_verify", spy)
    auth.authenticate(db_session, "nobody@example.org", PASSWORD)
    auth.authenticate(db_session, "nadia@example.org", "a wrong password")
    assert len(verified) == 2
    assert verified[0] == auth._DUMMY_HASH


def test_an_old_hash_is_upgraded_at_sign_in(db_session: Session, structure: Structure) -> None:
    user = new_user(db_session, structure=structure)
    user.password_hash = PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    db_session.commit()
    assert auth.authenticate(db_session, user.email, PASSWORD) is user
    assert not auth._HASHER.check_needs_rehash(user.password_hash)
    assert auth.authenticate(db_session, user.email, PASSWORD) is user


# --- accounts ------------------------------------------------------------------------------


def test_create_user_checks_email_structure_and_duplicates(
    db_session: Session, structure: Structure
) -> None:
    def reason(**kwargs: object) -> str:
        with pytest.raises(auth.AuthError) as error:
            new_user(db_session, **kwargs)  # type: ignore[arg-type]
        return error.value.reason

    assert reason(email="not-an-email", structure=structure) == "bad_email"
    assert reason(role=Role.MEDIATOR) == "structure_required"
    assert reason(role=Role.STRUCTURE_ADMIN) == "structure_required"
    assert reason(role=Role.EVALUATOR, structure=structure) == "no_structure_for_role"
    assert reason(role=Role.PLATFORM_ADMIN, structure=structure) == "no_structure_for_role"
    assert reason(structure=structure, password="short") == "password_too_short"
    new_user(db_session, structure=structure)
    assert reason(structure=structure, email="NADIA@example.org") == "email_taken"
    assert db_session.scalars(select(StaffUser.email)).all() == ["nadia@example.org"]


def test_change_password(db_session: Session, structure: Structure) -> None:
    user = new_user(db_session, structure=structure)
    changed_at = user.password_changed_at
    with pytest.raises(auth.AuthError) as wrong:
        auth.change_password(db_session, user, "not the password", "un nouveau mot de passe")
    assert wrong.value.reason == "wrong_password"
    with pytest.raises(auth.AuthError) as short:
        auth.change_password(db_session, user, PASSWORD, "court")
    assert short.value.reason == "password_too_short"
    assert auth.authenticate(db_session, user.email, PASSWORD) is user

    user.password_changed_at = changed_at - timedelta(seconds=5)
    db_session.commit()
    auth.change_password(db_session, user, PASSWORD, "un nouveau mot de passe")
    assert auth.authenticate(db_session, user.email, PASSWORD) is None
    assert auth.authenticate(db_session, user.email, "un nouveau mot de passe") is user
    assert user.password_changed_at.replace(tzinfo=None) > (
        changed_at - timedelta(seconds=5)
    ).replace(tzinfo=None)


# --- roles, grants and scope -----------------------------------------------------------------


def test_role_permissions() -> None:
    mediator = ROLE_PERMISSIONS[Role.MEDIATOR]
    admin = ROLE_PERMISSIONS[Role.STRUCTURE_ADMIN]
    evaluator = ROLE_PERMISSIONS[Role.EVALUATOR]
    assert {Permission.BACKOFFICE, Permission.ENTER, Permission.SECOND_ENTRY} <= mediator
    assert not {Permission.AUDIT, Permission.RESOLVE, Permission.DELETE} & mediator
    assert mediator < admin
    assert {Permission.AUDIT, Permission.RESOLVE, Permission.DELETE} <= admin
    assert Permission.EVALUATE not in admin
    assert evaluator == {Permission.ACCOUNT, Permission.EVALUATE}  # aggregates only
    assert ROLE_PERMISSIONS[Role.PLATFORM_ADMIN] == set(Permission)
    assert set(ROLE_PERMISSIONS) == set(Role)


def test_inactive_or_missing_users_have_no_permission(
    db_session: Session, structure: Structure
) -> None:
    user = new_user(db_session, structure=structure)
    assert has_permission(user, Permission.BACKOFFICE)
    assert not has_permission(user, Permission.AUDIT)
    assert not has_permission(None, Permission.ACCOUNT)
    user.active = False
    assert not has_permission(user, Permission.ACCOUNT)


def test_grants_give_evaluators_a_structure_or_a_department(
    db_session: Session, structure: Structure
) -> None:
    nantes = create_structure(db_session, "Centre social de Nantes", "urbain", "44")
    paris = create_structure(db_session, "France Services Paris 11", "urbain", "75")
    lyon = create_structure(db_session, "Médiathèque de Lyon", "urbain", "69")
    evaluator = new_user(db_session, role=Role.EVALUATOR, email="eval@example.org")
    assert visible_structure_ids(evaluator, [structure, nantes, paris, lyon]) == []

    auth.grant(db_session, evaluator, department="44")
    auth.grant(db_session, evaluator, structure_id=lyon.id)
    assert visible_structure_ids(evaluator, [structure, nantes, paris, lyon]) == [
        structure.id,
        nantes.id,
        lyon.id,
    ]
    assert not can_access_structure(evaluator, paris)

    for kwargs, expected in [
        ({}, "one_scope"),
        ({"structure_id": paris.id, "department": "75"}, "one_scope"),
    ]:
        with pytest.raises(auth.AuthError) as error:
            auth.grant(db_session, evaluator, **kwargs)  # type: ignore[arg-type]
        assert error.value.reason == expected

    mediator = new_user(db_session, structure=structure)
    with pytest.raises(auth.AuthError) as error:
        auth.grant(db_session, mediator, department="75")
    assert error.value.reason == "grants_are_for_evaluators"


def test_structure_staff_see_their_structure_and_platform_admins_all(
    db_session: Session, structure: Structure
) -> None:
    other = create_structure(db_session, "Mairie de Bobigny", "urbain", "93")
    mediator = new_user(db_session, structure=structure)
    admin = new_user(
        db_session, role=Role.STRUCTURE_ADMIN, structure=other, email="admin@example.org"
    )
    platform = new_user(db_session, role=Role.PLATFORM_ADMIN, email="root@example.org")
    assert visible_structure_ids(mediator, [structure, other]) == [structure.id]
    assert visible_structure_ids(admin, [structure, other]) == [other.id]
    assert visible_structure_ids(platform, [structure, other]) == [structure.id, other.id]


# --- lockout -------------------------------------------------------------------------------

SECRET = "test secret"


def test_attempt_login_signs_in_and_hands_its_attempt_back(
    db_session: Session, structure: Structure
) -> None:
    user = new_user(db_session, structure=structure)
    now = utcnow()
    for _ in range(auth.LOCKOUT_THRESHOLD - 1):
        wrong = auth.attempt_login(db_session, user.email, "wrong", SECRET, now, "192.0.2.1")
        assert wrong.result is auth.LoginResult.REFUSED
    # Successful sign-ins do not count: the owner signing in again and again is never locked.
    for _ in range(3):
        email = " Nadia@Example.org "
        outcome = auth.attempt_login(db_session, email, PASSWORD, SECRET, now, "192.0.2.1")
        assert outcome.result is auth.LoginResult.SIGNED_IN and outcome.user is user


def test_wrong_passwords_lock_the_email_from_that_address_for_the_window(
    db_session: Session, structure: Structure
) -> None:
    user = new_user(db_session, structure=structure)
    now = utcnow().replace(minute=0, second=0)  # the start of a 15-minute window

    def attempt(password: str, at: datetime, address: str = "192.0.2.1") -> auth.LoginResult:
        return auth.attempt_login(db_session, user.email, password, SECRET, at, address).result

    results = [attempt(f"wrong {n}", now) for n in range(auth.LOCKOUT_THRESHOLD)]
    assert results == [auth.LoginResult.REFUSED] * (auth.LOCKOUT_THRESHOLD - 1) + [
        auth.LoginResult.LOCKED
    ]
    # Locked from there, even with the right password...
    assert attempt(PASSWORD, now + timedelta(minutes=1)) is auth.LoginResult.LOCKED
    # ...but not for the owner elsewhere: an attacker cannot lock anyone out.
    assert attempt(PASSWORD, now + timedelta(minutes=1), "198.51.100.7") is (
        auth.LoginResult.SIGNED_IN
    )
    # After the window, the right password works again from there too.
    after = now + timedelta(seconds=auth.LOCKOUT_SECONDS + 1)
    assert attempt(PASSWORD, after) is auth.LoginResult.SIGNED_IN


@pytest.mark.slow  # > 8 s on 2 shared cores: CI runs it, the fast tier does not
def test_an_unknown_email_gets_the_same_answers_in_every_window(
    db_session: Session, structure: Structure
) -> None:
    """Locking is no way to learn whether an account exists: one windowed counter for both,
    the same answers in order, even for failures spread over several windows (the old
    counter of failures 'in a row' for accounts had no window)."""
    new_user(db_session, structure=structure)
    start = utcnow().replace(minute=0, second=0)
    moments = [start + timedelta(minutes=4 * n) for n in range(12)]  # 44 minutes, 3+ windows

    def answers(email: str) -> list[auth.LoginResult]:
        return [
            auth.attempt_login(db_session, email, "wrong", SECRET, at, "192.0.2.1").result
            for at in moments
        ]

    known, unknown = answers("nadia@example.org"), answers("nobody@example.org")
    assert known == unknown
    assert auth.LoginResult.LOCKED not in known  # never 5 failures within one window
    burst = [start + timedelta(hours=2)] * (auth.LOCKOUT_THRESHOLD + 1)
    moments[:] = burst
    assert answers("nadia@example.org") == answers("nobody@example.org")
    assert answers("nobody@example.org")[-1] is auth.LoginResult.LOCKED


def test_every_attempt_verifies_one_hash(
    db_session: Session, structure: Structure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unknown e-mail, wrong password, locked account: the same argon2 work each time."""
    user = new_user(db_session, structure=structure)
    verified: list[str] = []
    real_verify = auth._verify

    def spy(password_hash: str, password: str) -> bool:
        verified.append(password_hash)
        return real_verify(password_hash, password)

    monkeypatch.setattr(auth, "_verify", spy)
    auth.attempt_login(db_session, "nobody@example.org", PASSWORD, SECRET)
    auth.attempt_login(db_session, user.email, "wrong", SECRET)
    auth.attempt_login(db_session, user.email, "x" * (auth.MAX_PASSWORD_LENGTH + 5), SECRET)
    assert verified == [auth._DUMMY_HASH] + [user.password_hash] * 2


def test_reset_password_signs_out(db_session: Session, structure: Structure) -> None:
    user = new_user(db_session, structure=structure)
    before = user.password_changed_at
    auth.reset_password(db_session, user, "un tout nouveau mot de passe")
    assert user.password_changed_at > before
    assert auth.authenticate(db_session, user.email, "un tout nouveau mot de passe") is user
    with pytest.raises(auth.AuthError):
        auth.reset_password(db_session, user, "short")


def test_parallel_wrong_passwords_are_all_counted(
    database: Database, db_session: Session, structure: Structure
) -> None:
    """Check and count are one atomic step: parallel attempts cannot slip past the limit."""
    user = new_user(db_session, structure=structure)
    results: list[auth.LoginResult] = []
    now = utcnow()

    def attempt() -> None:
        with database.session() as session:
            outcome = auth.attempt_login(session, user.email, "wrong", SECRET, now, "192.0.2.1")
            results.append(outcome.result)

    workers = [threading.Thread(target=attempt) for _ in range(auth.LOCKOUT_THRESHOLD + 3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    refused = [r for r in results if r is auth.LoginResult.REFUSED]
    assert len(refused) == auth.LOCKOUT_THRESHOLD - 1
    right = auth.attempt_login(db_session, user.email, PASSWORD, SECRET, now, "192.0.2.1")
    assert right.result is auth.LoginResult.LOCKED
