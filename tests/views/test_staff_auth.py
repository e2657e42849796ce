"""Staff sign-in, sign-out, password change, session expiry, the audit page and `users` CLI."""

from __future__ import annotations

import types
from collections.abc import Callable
from urllib.parse import quote, urlsplit

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import select

from selfcheck.accounts import auth
from selfcheck.accounts import session as staff_session
from selfcheck.accounts.structures import create_structure
from selfcheck.cli import main
from selfcheck.platform import audit
from selfcheck.platform.db import Database
from selfcheck.platform.models import Grant, Role, StaffUser, Structure
from tests.staff import PASSWORD, Account, add_staff, sign_in, signed_in
from tests.support import Visitor, error_summary, path_of, text_of, words

BAD_CREDENTIALS = "Adresse e-mail ou mot de passe incorrect."
EXPIRED = "Votre session a expiré"


@pytest.fixture
def mediator(database: Database, structure: Structure) -> Account:
    return add_staff(database, Role.MEDIATOR, structure, email="nadia@example.org")


class Clock:
    """Replaces the clock of the staff session only (not of the whole process)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1_800_000_000.0
        monkeypatch.setattr(staff_session, "time", types.SimpleNamespace(time=lambda: self.now))

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


# --- signing in ------------------------------------------------------------------------------


def test_sign_in_then_home(client_visitor: Visitor, mediator: Account) -> None:
    page = client_visitor.get("/staff/login")
    assert page.status_code == 200
    assert 'autocomplete="current-password"' in client_visitor.html
    response = sign_in(client_visitor, mediator.email)
    assert response.status_code == 302
    assert path_of(response.headers["Location"]) == "/staff/"
    home = client_visitor.get("/staff/")
    assert home.status_code == 200
    assert "nadia@example.org" in client_visitor.text
    assert "Suivi des personnes" in client_visitor.text
    assert "Journal des modifications" not in client_visitor.text  # not for mediators


def test_wrong_password_unknown_email_and_inactive_account_look_the_same(
    app: Flask, database: Database, structure: Structure, mediator: Account
) -> None:
    inactive = add_staff(database, Role.MEDIATOR, structure, email="gone@example.org")
    with database.session() as session:
        user = session.get(StaffUser, inactive.id)
        assert user is not None
        user.active = False
        session.commit()

    answers = []
    for email, password in [
        (mediator.email, "not the password"),
        ("nobody@example.org", PASSWORD),
        (inactive.email, PASSWORD),
    ]:
        visitor = Visitor(app.test_client())
        response = sign_in(visitor, email, password)
        answers.append((response.status_code, error_summary(text_of(response))))
        assert visitor.client.get("/staff/").status_code == 302  # still signed out
    assert answers == [(422, [BAD_CREDENTIALS])] * 3


def test_empty_fields_are_errors_on_each_field(client_visitor: Visitor) -> None:
    client_visitor.get("/staff/login")
    response = client_visitor.post("/staff/login", {"email": "", "password": ""})
    assert response.status_code == 422
    assert error_summary(text_of(response)) == [
        "Écrivez votre adresse e-mail.",
        "Écrivez votre mot de passe.",
    ]
    assert "<title>Erreur" in text_of(response)


def test_sign_in_without_csrf_token_is_refused(client_visitor: Visitor, mediator: Account) -> None:
    client_visitor.get("/staff/login")
    response = client_visitor.post(
        "/staff/login", {"email": mediator.email, "password": PASSWORD}, csrf=False
    )
    assert response.status_code == 400


def test_signing_in_forgets_the_beneficiary_journey(
    client_visitor: Visitor, mediator: Account
) -> None:
    with client_visitor.client.session_transaction() as session:
        session["response_id"] = 42
    sign_in(client_visitor, mediator.email)
    with client_visitor.client.session_transaction() as session:
        assert "response_id" not in session
        assert session[staff_session.STAFF_ID] == mediator.id


def test_protected_page_sends_visitors_to_sign_in_and_back(
    client_visitor: Visitor, database: Database, structure: Structure
) -> None:
    admin = add_staff(database, Role.STRUCTURE_ADMIN, structure)
    response = client_visitor.get("/staff/audit?page=0")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert path_of(location) == "/staff/login"
    assert "next=" in location
    client_visitor.follow(response)
    response = client_visitor.post(
        urlsplit(location).path + "?" + urlsplit(location).query,
        {
            "email": admin.email,
            "password": PASSWORD,
        },
    )
    assert response.headers["Location"] == "/staff/audit?page=0"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "",
    ],
)
def test_next_never_leaves_the_site(
    client_visitor: Visitor, mediator: Account, target: str
) -> None:
    response = sign_in(client_visitor, mediator.email, query="?next=" + quote(target, safe=""))
    assert response.status_code == 302
    location = response.headers["Location"]
    parts = urlsplit(location)
    assert not parts.scheme and not parts.netloc, location
    # Browsers read a backslash as a slash: "/\\evil" would be "//evil", another site.
    assert location.startswith("/") and not location.replace("\\", "/").startswith("//")


# --- signing out -------------------------------------------------------------------------------


def test_logout_is_a_post_with_csrf(client_visitor: Visitor, mediator: Account) -> None:
    sign_in(client_visitor, mediator.email)
    client_visitor.get("/staff/")
    assert client_visitor.client.get("/staff/logout").status_code == 405
    assert client_visitor.post("/staff/logout", csrf=False).status_code == 400
    assert client_visitor.client.get("/staff/").status_code == 200  # still signed in

    response = client_visitor.post("/staff/logout")
    assert response.status_code == 302
    assert path_of(response.headers["Location"]) == "/staff/login"
    client_visitor.follow(response)
    assert "Vous êtes déconnecté·e." in client_visitor.text
    assert client_visitor.client.get("/staff/").status_code == 302


# --- password change ---------------------------------------------------------------------------


def test_password_change_errors(app: Flask, mediator: Account) -> None:
    visitor = signed_in(app, mediator)
    assert visitor.get("/staff/password").status_code == 200
    cases = [
        (
            {"current": "not the password", "new": "x" * 12, "confirm": "x" * 12},
            ["Le mot de passe actuel n'est pas le bon."],
        ),
        (
            {"current": PASSWORD, "new": "court", "confirm": "court"},
            ["Le mot de passe doit avoir au moins 12 caractères."],
        ),
        (
            {"current": PASSWORD, "new": "x" * 12, "confirm": "y" * 12},
            ["Les deux mots de passe ne sont pas identiques."],
        ),
        (
            {"current": "", "new": "", "confirm": ""},
            ["Écrivez votre mot de passe actuel.", "Écrivez un nouveau mot de passe."],
        ),
    ]
    for data, expected in cases:
        response = visitor.post("/staff/password", data)
        assert response.status_code == 422, data
        assert [words(e) for e in error_summary(text_of(response))] == expected
        assert "<title>Erreur" in text_of(response)
    # Nothing changed: the old password still works.
    assert sign_in(Visitor(app.test_client()), mediator.email).status_code == 302


def test_password_change_signs_out_the_other_devices(
    app: Flask, mediator: Account, clock: Clock
) -> None:
    here = signed_in(app, mediator)
    elsewhere = signed_in(app, mediator)
    assert elsewhere.get("/staff/").status_code == 200
    clock.advance(2)  # the stamp has a one-second resolution

    here.get("/staff/password")
    response = here.post(
        "/staff/password",
        {
            "current": PASSWORD,
            "new": "une toute nouvelle phrase",
            "confirm": "une toute nouvelle phrase",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/?changed=1"
    here.follow(response)
    assert "Votre mot de passe est changé." in here.text  # this device stays signed in

    response = elsewhere.get("/staff/")
    assert response.status_code == 302
    assert path_of(response.headers["Location"]) == "/staff/login"

    assert sign_in(Visitor(app.test_client()), mediator.email).status_code == 422
    fresh = Visitor(app.test_client())
    assert sign_in(fresh, mediator.email, "une toute nouvelle phrase").status_code == 302


# --- expiry --------------------------------------------------------------------------------------


def test_idle_session_expires_with_a_notice(app: Flask, mediator: Account, clock: Clock) -> None:
    app.config["SELFCHECK_STAFF_IDLE_SECONDS"] = 600
    visitor = signed_in(app, mediator)
    for _ in range(6):  # activity keeps the session alive: an hour, a page every 9 minutes
        clock.advance(9 * 60)
        assert visitor.get("/staff/").status_code == 200
    clock.advance(601)
    response = visitor.get("/staff/password")
    assert response.status_code == 302
    assert path_of(response.headers["Location"]) == "/staff/login"
    page = visitor.follow(response)
    assert page.status_code == 200
    assert EXPIRED in visitor.text
    # Signing in again goes back to the page that was asked for.
    response = visitor.post(visitor.url or "", {"email": mediator.email, "password": PASSWORD})
    assert response.headers["Location"] == "/staff/password"


def test_idle_limit_comes_from_the_environment(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SELFCHECK_STAFF_IDLE_MINUTES", "5")
    assert make_app().config["SELFCHECK_STAFF_IDLE_SECONDS"] == 300


def test_session_ends_after_twelve_hours_whatever_the_activity(
    app: Flask, mediator: Account, clock: Clock
) -> None:
    app.config["SELFCHECK_STAFF_IDLE_SECONDS"] = 24 * 3600
    visitor = signed_in(app, mediator)
    clock.advance(staff_session.ABSOLUTE_SECONDS - 60)
    assert visitor.get("/staff/").status_code == 200
    clock.advance(61)
    response = visitor.get("/staff/")
    assert response.status_code == 302
    visitor.follow(response)
    assert EXPIRED in visitor.text


def test_deactivated_account_is_signed_out_at_once(
    app: Flask, database: Database, mediator: Account
) -> None:
    visitor = signed_in(app, mediator)
    with database.session() as session:
        user = session.get(StaffUser, mediator.id)
        assert user is not None
        user.active = False
        session.commit()
    assert visitor.get("/staff/").status_code == 302


# --- the audit trail page ------------------------------------------------------------------------


def test_audit_page_shows_only_the_users_structures(
    app: Flask, database: Database, structure: Structure
) -> None:
    with database.session() as session:
        other = create_structure(session, "Mairie de Bobigny", "urbain", "93")
        session.commit()
        mine, theirs = structure.id, other.id
        admin_a = add_staff(database, Role.STRUCTURE_ADMIN, structure)
        admin_b = add_staff(database, Role.STRUCTURE_ADMIN, other)
        user_a = session.get(StaffUser, admin_a.id)
        user_b = session.get(StaffUser, admin_b.id)
        audit.record(
            session,
            user_a,
            "edit",
            audit.Entity.RESPONSE,
            1,
            mine,
            {"T01": {"old": ["1"], "new": ["2"]}},
        )
        audit.record(
            session,
            user_b,
            "delete",
            audit.Entity.RESPONSE,
            2,
            theirs,
            {"T02": {"old": ["3"], "new": []}},
        )
        session.commit()
    platform = add_staff(database, Role.PLATFORM_ADMIN)
    mediator = add_staff(database, Role.MEDIATOR, structure)
    evaluator = add_staff(database, Role.EVALUATOR, departments=("44", "93"))

    # The items are named by their labels (the audit page shows no item code).
    definition = app.extensions["selfcheck.definition"]
    t01, t02 = (
        definition.item(code).short_label or definition.item(code).label for code in ("T01", "T02")
    )
    visitor = signed_in(app, admin_a)
    assert visitor.get("/staff/audit").status_code == 200
    assert t01 in visitor.text and admin_a.email in visitor.text
    assert t02 not in visitor.text and admin_b.email not in visitor.text

    visitor = signed_in(app, platform)
    visitor.get("/staff/audit")
    assert t01 in visitor.text and t02 in visitor.text

    for account in (mediator, evaluator):
        assert signed_in(app, account).get("/staff/audit").status_code == 403


# --- `selfcheck users` -------------------------------------------------------------------------


def run(app: Flask, *args: str, input: str | None = None) -> Result:
    return app.test_cli_runner().invoke(main, list(args), input=input)


def test_users_add_first_platform_admin_from_stdin(app: Flask, database: Database) -> None:
    result = run(
        app,
        "users",
        "add",
        "--email",
        "Admin@Example.org",
        "--role",
        "platform_admin",
        "--password-stdin",
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert result.output == "created platform_admin admin@example.org\n"
    assert PASSWORD not in result.output
    with database.session() as session:
        user = auth.authenticate(session, "admin@example.org", PASSWORD)
        assert user is not None and user.role == "platform_admin"
        assert user.password_hash.startswith("$argon2id$")
    visitor = Visitor(app.test_client())
    assert sign_in(visitor, "admin@example.org").status_code == 302


def test_users_add_prompts_twice_without_stdin(app: Flask, structure: Structure) -> None:
    result = run(
        app,
        "users",
        "add",
        "--email",
        "nadia@example.org",
        "--role",
        "mediator",
        "--structure",
        structure.slug,
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert "created mediator nadia@example.org" in result.output


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["--role", "mediator"], PASSWORD, "cannot create the account: structure_required"),
        (["--role", "platform_admin"], "court", "cannot create the account: password_too_short"),
        (["--role", "mediator", "--structure", "nowhere"], PASSWORD, "no structure with link name"),
        (["--role", "wizard"], PASSWORD, "Invalid value for '--role'"),
    ],
)
def test_users_add_errors(
    app: Flask, database: Database, args: list[str], password: str, message: str
) -> None:
    result = run(
        app,
        "users",
        "add",
        "--email",
        "x@example.org",
        *args,
        "--password-stdin",
        input=password + "\n",
    )
    assert result.exit_code != 0
    assert message in result.output
    with database.session() as session:
        assert session.scalars(select(StaffUser)).all() == []


def test_users_grant(app: Flask, database: Database, structure: Structure) -> None:
    evaluator = add_staff(database, Role.EVALUATOR, email="eval@example.org")
    mediator = add_staff(database, Role.MEDIATOR, structure)
    result = run(app, "users", "grant", "--email", evaluator.email, "--department", "44")
    assert result.exit_code == 0, result.output
    assert result.output == "granted 44 to eval@example.org\n"
    result = run(app, "users", "grant", "--email", evaluator.email, "--structure", structure.slug)
    assert result.exit_code == 0, result.output
    with database.session() as session:
        scopes = session.execute(
            select(Grant.structure_id, Grant.department).where(Grant.user_id == evaluator.id)
        ).all()
    assert sorted(scopes, key=str) == sorted([(None, "44"), (structure.id, None)], key=str)

    failures = [
        (["--email", "nobody@example.org", "--department", "44"], "no account"),
        (["--email", mediator.email, "--department", "44"], "grants_are_for_evaluators"),
        (["--email", evaluator.email], "one_scope"),
        (["--email", evaluator.email, "--structure", "nowhere"], "no structure with link name"),
    ]
    for args, message in failures:
        result = run(app, "users", "grant", *args)
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)


@pytest.fixture
def client_visitor(app: Flask) -> Visitor:
    return Visitor(app.test_client())
