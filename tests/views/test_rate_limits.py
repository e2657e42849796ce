"""Rate limits and lockout as people meet them: staff sign-in and the beneficiary's code."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from flask import Flask

from selfcheck.accounts import auth
from selfcheck.journey import operations as journey
from selfcheck.platform import codes, ratelimit, security
from selfcheck.platform.db import Database
from selfcheck.platform.models import Role, Structure
from tests.staff import Account, add_staff, sign_in
from tests.support import Visitor, error_summary, text_of, words

BAD_CREDENTIALS = "Adresse e-mail ou mot de passe incorrect."
LOCKED = "la connexion est bloquée pendant 15 minutes"
TOO_MANY = "Vous avez fait trop d'essais"


def unknown_code(n: int) -> str:
    payload = f"ZZZZZZ{n:02d}"
    return payload + codes.check_character(payload)


def from_address(app: Flask, address: str) -> Visitor:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return Visitor(client)


@pytest.fixture
def mediator(database: Database, structure: Structure) -> Account:
    return add_staff(database, Role.MEDIATOR, structure, email="nadia@example.org")


# --- staff sign-in ---------------------------------------------------------------------------


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
def test_lockout_says_so_in_the_same_words_for_unknown_emails(
    app: Flask, mediator: Account
) -> None:
    def attempts(email: str) -> list[tuple[int, list[str]]]:
        visitor = Visitor(app.test_client())
        seen = []
        for _ in range(auth.LOCKOUT_THRESHOLD + 1):
            response = sign_in(visitor, email, "not the password")
            seen.append((response.status_code, error_summary(text_of(response))))
        return seen

    known, unknown = attempts(mediator.email), attempts("nobody@example.org")
    assert known == unknown
    assert [status for status, _ in known] == [422] * (auth.LOCKOUT_THRESHOLD - 1) + [429, 429]
    assert known[0][1] == [BAD_CREDENTIALS]
    assert LOCKED in known[-1][1][0]
    # Locked: even the right password is refused, and says so.
    visitor = Visitor(app.test_client())
    response = sign_in(visitor, mediator.email)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == str(auth.LOCKOUT_SECONDS)
    assert LOCKED in words(response)


def test_too_many_sign_ins_from_one_address(
    make_app: Callable[..., Flask], mediator: Account
) -> None:
    app = make_app(SELFCHECK_RATE_LIMITS={"login_ip": (3, 900)})
    visitor = from_address(app, "203.0.113.7")
    statuses = [sign_in(visitor, f"someone{n}@example.org", "x").status_code for n in range(3)]
    assert statuses == [422, 422, 422]
    refused = sign_in(visitor, mediator.email)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 900
    assert TOO_MANY in words(refused)
    assert "Trop d'essais" in words(refused)
    # Another address is not concerned.
    assert sign_in(from_address(app, "203.0.113.8"), mediator.email).status_code == 302


def test_nobody_can_lock_an_account_from_elsewhere(
    make_app: Callable[..., Flask], mediator: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Wrong passwords from many addresses slow that e-mail down; they never lock its owner
    out (issue 13, finding 9)."""
    slowed: list[float] = []
    monkeypatch.setattr(security, "sleep", slowed.append)
    app = make_app()
    monkeypatch.setattr(auth, "ACCOUNT_FAILURES", ratelimit.Limit("login-failures-all", 3, 3600))
    for n in range(6):
        wrong = sign_in(from_address(app, f"198.51.100.{n}"), mediator.email, "wrong")
        assert wrong.status_code == 422
    assert len(slowed) == 3  # the 4th, 5th and 6th attempts waited
    assert sign_in(from_address(app, "203.0.113.50"), " NADIA@example.org").status_code == 302


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
def test_rate_limits_can_be_switched_off(make_app: Callable[..., Flask], mediator: Account) -> None:
    app = make_app(SELFCHECK_RATE_LIMITS=None)
    visitor = Visitor(app.test_client())
    for n in range(12):
        assert sign_in(visitor, f"x{n}@example.org", "wrong").status_code == 422
    assert sign_in(visitor, mediator.email).status_code == 302


def test_the_english_page_is_translated(make_app: Callable[..., Flask], mediator: Account) -> None:
    app = make_app(SELFCHECK_RATE_LIMITS={"login_ip": (1, 900)})
    visitor = Visitor(app.test_client())
    sign_in(visitor, "a@example.org", "x", query="?lang=en")
    refused = sign_in(visitor, "a@example.org", "x", query="?lang=en")
    assert refused.status_code == 429
    assert 'lang="en"' in words(refused)


# --- the beneficiary's code ------------------------------------------------------------------


def test_guessing_codes_is_stopped_per_address(
    make_app: Callable[..., Flask], structure: Structure
) -> None:
    app = make_app(SELFCHECK_RATE_LIMITS={"code_ip": (3, 600)})
    with app.extensions["selfcheck.platform.db"].session() as session:
        (person,) = journey.create_codes(session, structure, 1)
        session.commit()
        real = person.code
    guesser = from_address(app, "203.0.113.7")
    assert [guesser.enter_code(unknown_code(n)).status_code for n in range(3)] == [422] * 3
    # Typos caught by the check character are not guesses: not counted, not refused.
    assert guesser.enter_code("ZZZZZZZZ0").status_code == 422
    refused = guesser.enter_code(real)  # even a real code: the guesser cannot tell
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert TOO_MANY in words(refused) and real not in words(refused)
    # Someone else, elsewhere, enters their code as usual.
    assert from_address(app, "198.51.100.1").enter_code(real).status_code == 302


def test_guessing_from_many_addresses_is_slowed_never_refused(
    make_app: Callable[..., Flask], structure: Structure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13, finding 5: the platform-wide limit once locked code entry for everyone.
    Beyond it now, every look-up waits (valid or not, so timing tells nothing), and a valid
    code always passes."""
    slowed: list[float] = []
    monkeypatch.setattr(security, "sleep", slowed.append)
    app = make_app(SELFCHECK_RATE_LIMITS={"code_all": (4, 3600)})
    with app.extensions["selfcheck.platform.db"].session() as session:
        (person,) = journey.create_codes(session, structure, 1)
        real = person.code
        session.commit()  # the test is the caller: operations never commit
    for n in range(4):
        assert from_address(app, f"192.0.2.{n}").enter_code(unknown_code(n)).status_code == 422
    assert slowed == []
    for n in range(4, 30):  # a botnet goes on: answered, but each guess waits
        assert from_address(app, f"192.0.2.{n}").enter_code(unknown_code(n)).status_code == 422
    assert len(slowed) == 26 and all(s > 0 for s in slowed)
    # A real person, anywhere, still gets in (after the same wait), on the code page and to
    # erase themselves.
    assert from_address(app, "198.51.100.1").enter_code(real).status_code == 302
    assert len(slowed) == 27


def test_ipv6_addresses_are_counted_per_64(
    make_app: Callable[..., Flask], structure: Structure
) -> None:
    app = make_app(SELFCHECK_RATE_LIMITS={"code_ip": (3, 600)})
    for n in range(3):
        guesser = from_address(app, f"2001:db8:1:2::{n + 1:x}")  # one /64, many addresses
        assert guesser.enter_code(unknown_code(n)).status_code == 422
    assert from_address(app, "2001:db8:1:2:ffff::9").enter_code(unknown_code(5)).status_code == 429
    assert from_address(app, "2001:db8:1:3::1").enter_code(unknown_code(6)).status_code == 422


def test_parallel_guesses_cannot_slip_past_the_limit(
    make_app: Callable[..., Flask], structure: Structure
) -> None:
    """Check and count are one atomic step: of 8 guesses at once, 3 are answered."""
    app = make_app(SELFCHECK_RATE_LIMITS={"code_ip": (3, 600)})
    statuses: list[int] = []
    visitors = [from_address(app, "203.0.113.9") for _ in range(8)]
    for visitor in visitors:
        visitor.get("/code")

    def guess(n: int) -> None:
        statuses.append(visitors[n].post("/code", {"code": unknown_code(n)}).status_code)

    workers = [threading.Thread(target=guess, args=(n,)) for n in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(statuses) == [422] * 3 + [429] * 5


def test_valid_codes_do_not_use_up_the_allowance(
    make_app: Callable[..., Flask], structure: Structure
) -> None:
    app = make_app(SELFCHECK_RATE_LIMITS={"code_ip": (2, 600)})
    with app.extensions["selfcheck.platform.db"].session() as session:
        (person,) = journey.create_codes(session, structure, 1)
        real = person.code
        session.commit()  # the test is the caller: operations never commit
    visitor = from_address(app, "203.0.113.10")
    for _ in range(5):
        assert visitor.enter_code(real).status_code == 302
    assert visitor.enter_code(unknown_code(1)).status_code == 422
