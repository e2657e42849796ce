"""`selfcheck purge` (dry run first) and the admin-only `users reset-password` / `unlock`."""

from __future__ import annotations

from datetime import timedelta

from click.testing import Result
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from selfcheck.accounts import auth
from selfcheck.cli import main
from selfcheck.platform import ratelimit
from selfcheck.platform.db import Database
from selfcheck.platform.models import (
    AuditEvent,
    Beneficiary,
    Response,
    Role,
    Structure,
    utcnow,
)
from selfcheck.questionnaire.model import Definition, FormKind
from tests.staff import add_staff
from tests.support import count, submitted


def run(app: Flask, *args: str, stdin: str | None = None) -> Result:
    return app.test_cli_runner().invoke(main, list(args), input=stdin)


def test_purge_is_a_dry_run_unless_told_yes(
    app: Flask,
    database: Database,
    db_session: Session,
    definition: Definition,
    structure: Structure,
) -> None:
    old = submitted(db_session, definition, structure, FormKind.BEFORE)
    submitted(db_session, definition, structure, FormKind.RETRO)
    long_ago = utcnow() - timedelta(days=40 * 31)
    db_session.execute(
        update(Response)
        .where(Response.id == old.id)
        .values(created_at=long_ago, updated_at=long_ago)
    )
    db_session.execute(
        update(Beneficiary).where(Beneficiary.id == old.beneficiary_id).values(created_at=long_ago)
    )
    db_session.commit()

    dry = run(app, "purge")
    assert dry.exit_code == 0, dry.output
    assert "retention 36 months" in dry.output
    assert "would delete (dry run): 1 people, 1 responses" in dry.output
    assert "selfcheck purge --yes" in dry.output
    assert count(database, Response) == 2

    done = run(app, "purge", "--yes")
    assert done.exit_code == 0, done.output
    assert "deleted: 1 people, 1 responses" in done.output
    assert count(database, Response) == 1
    assert count(database, AuditEvent, AuditEvent.action == "purge") == 1
    assert "deleted: 0 people, 0 responses" in run(app, "purge", "--yes").output


def test_reset_password_and_unlock(app: Flask, database: Database, structure: Structure) -> None:
    account = add_staff(database, Role.MEDIATOR, structure)
    secret = str(app.secret_key)
    with database.session() as session:
        for _ in range(auth.ACCOUNT_FAILURES.attempts + 1):
            ratelimit.hit(session, secret, auth.ACCOUNT_FAILURES, account.email)
        assert not ratelimit.peek(session, secret, auth.ACCOUNT_FAILURES, account.email).allowed
    result = run(app, "users", "unlock", "--email", account.email)
    assert result.exit_code == 0 and "unlocked" in result.output
    with database.session() as session:
        assert ratelimit.peek(session, secret, auth.ACCOUNT_FAILURES, account.email).allowed

    new = "un nouveau mot de passe solide"
    result = run(
        app,
        "users",
        "reset-password",
        "--email",
        account.email,
        "--password-stdin",
        stdin=new + "\n",
    )
    assert result.exit_code == 0, result.output
    with database.session() as session:
        assert auth.authenticate(session, account.email, new) is not None
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "reset_password"))
        assert event is not None and event.entity_id == account.id
        assert new not in event.changes


def test_reset_password_errors(app: Flask, database: Database, structure: Structure) -> None:
    account = add_staff(database, Role.MEDIATOR, structure)
    short = run(
        app, "users", "reset-password", "--email", account.email, "--password-stdin", stdin="x\n"
    )
    assert short.exit_code != 0 and "password_too_short" in short.output
    assert count(database, AuditEvent) == 0  # nothing half-done
    nobody = run(app, "users", "unlock", "--email", "nobody@example.org")
    assert nobody.exit_code != 0 and "no account" in nobody.output
