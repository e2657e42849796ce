"""E-mailed invitations and "mot de passe oublié", against a local SMTP server (aiosmtpd)
started by the tests: the same answer whether or not the account exists."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from sqlalchemy import func, select

from selfcheck.platform.db import Database
from selfcheck.platform.models import OneTimeLink, Role, Structure
from tests.staff import add_staff, sign_in, signed_in
from tests.support import Visitor

NEW_PASSWORD = "une phrase reçue par courriel"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.original_content))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
def mailing_app(make_app: Any, inbox: tuple[Inbox, int]) -> Flask:
    _handler, port = inbox
    smtp = {
        "host": "127.0.0.1",
        "port": port,
        "from": "selfcheck@example.org",
        "user": "",
        "password": "",
        "starttls": False,
    }
    app: Flask = make_app(SELFCHECK_SMTP=smtp)
    return app


def link_in(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    found = re.search(r"http://localhost(/staff/link/\S+)", payload.decode())
    assert found, payload
    return found.group(1)


def test_an_invitation_is_e_mailed(
    mailing_app: Flask, database: Database, structure: Structure, inbox: tuple[Inbox, int]
) -> None:
    handler, _port = inbox
    admin = signed_in(mailing_app, add_staff(database, Role.STRUCTURE_ADMIN, structure))
    admin.get("/staff/team/invite")
    assert 'name="send"' in admin.html
    response = admin.post(
        "/staff/team/invite", {"email": "courriel@example.org", "role": "mediator", "send": "1"}
    )
    assert response.status_code == 200
    (message,) = handler.messages
    assert message["To"] == "courriel@example.org"
    path = link_in(message)
    assert path in response.get_data(as_text=True)  # the same link, also on screen
    person = Visitor(mailing_app.test_client())
    person.get(path)
    assert person.post(path, {"new": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 302
    assert sign_in(person, "courriel@example.org", NEW_PASSWORD).status_code == 302


def test_forgotten_password_same_answer_either_way(
    mailing_app: Flask, database: Database, structure: Structure, inbox: tuple[Inbox, int]
) -> None:
    handler, _port = inbox
    account = add_staff(database, Role.MEDIATOR, structure)
    answers = []
    for email in (account.email, "nobody@example.org"):
        visitor = Visitor(mailing_app.test_client())
        visitor.get("/staff/password/forgotten")
        response = visitor.post("/staff/password/forgotten", {"email": email})
        assert response.status_code == 200
        visitor.last = response
        answers.append(visitor.text)
    assert answers[0] == answers[1]
    (message,) = handler.messages  # only the real account got one
    assert message["To"] == account.email
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(OneTimeLink)) == 1
    path = link_in(message)
    person = Visitor(mailing_app.test_client())
    person.get(path)
    assert person.post(path, {"new": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 302
    assert sign_in(person, account.email, NEW_PASSWORD).status_code == 302
    empty = Visitor(mailing_app.test_client())
    empty.get("/staff/password/forgotten")
    assert empty.post("/staff/password/forgotten", {"email": ""}).status_code == 422


def test_without_smtp_no_form_and_no_mail(app: Flask) -> None:
    visitor = Visitor(app.test_client())
    page = visitor.get("/staff/password/forgotten")
    assert page.status_code == 200 and '<form method="post"' not in visitor.html.split("<main")[1]
    assert "administrateur" in visitor.text


def admin_who_invited(
    app: Flask, database: Database, structure: Structure, email: str = "file@example.org"
) -> Visitor:
    """A structure's administrator who has just invited `email` as a mediator, e-mail asked."""
    admin = signed_in(app, add_staff(database, Role.STRUCTURE_ADMIN, structure))
    admin.get("/staff/team/invite")
    response = admin.post("/staff/team/invite", {"email": email, "role": "mediator", "send": "1"})
    assert response.status_code == 200
    admin.last = response
    return admin


def test_an_unreachable_server_still_shows_the_link(
    make_app: Any, database: Database, structure: Structure
) -> None:
    smtp = {
        "host": "127.0.0.1",
        "port": free_port(),
        "from": "x@example.org",
        "user": "",
        "password": "",
        "starttls": False,
    }
    app: Flask = make_app(SELFCHECK_SMTP=smtp)
    admin = admin_who_invited(app, database, structure, "perdu@example.org")
    assert "/staff/link/" in admin.html and "pas pu partir" in admin.text


# --- sent by the background worker where the queue exists -----------------------------------


def queued_mailing_app(make_app: Any, tmp_path: Any, port: int) -> Flask:
    smtp = {
        "host": "127.0.0.1",
        "port": port,
        "from": "selfcheck@example.org",
        "user": "",
        "password": "",
        "starttls": False,
    }
    app: Flask = make_app(
        SELFCHECK_SMTP=smtp,
        SELFCHECK_JOBS_URL=f"sqlite:///{tmp_path / 'queue.db'}",
        SELFCHECK_JOBS_DIR=str(tmp_path / "files"),
    )
    return app


def run_worker_once(app: Flask) -> int:
    """What `selfcheck worker` does for each message: take it from the queue, run it."""
    from selfcheck.platform import jobs

    huey = jobs.queue(app).huey
    done = 0
    while (task := huey.dequeue()) is not None:
        huey.execute(task)
        done += 1
    return done


def test_the_request_only_queues_the_message_and_the_worker_sends_it(
    make_app: Any,
    database: Database,
    structure: Structure,
    inbox: tuple[Inbox, int],
    tmp_path: Any,
) -> None:
    handler, port = inbox
    app = queued_mailing_app(make_app, tmp_path, port)
    admin = admin_who_invited(app, database, structure)
    assert "dans quelques instants" in admin.text and "/staff/link/" in admin.html
    assert handler.messages == []  # nothing sent inside the request
    assert run_worker_once(app) == 1
    (message,) = handler.messages
    assert message["To"] == "file@example.org"
    assert link_in(message) in admin.html
    # "Mot de passe oublié": queued as well, and nothing queued for an unknown address.
    mediator = add_staff(database, Role.MEDIATOR, structure)
    for email in (mediator.email, "personne@example.org"):
        visitor = Visitor(app.test_client())
        visitor.get("/staff/password/forgotten")
        assert visitor.post("/staff/password/forgotten", {"email": email}).status_code == 200
    assert len(handler.messages) == 1
    assert run_worker_once(app) == 1
    assert [m["To"] for m in handler.messages] == ["file@example.org", mediator.email]


def test_the_worker_tries_again_later_and_logs_no_link(
    make_app: Any,
    database: Database,
    structure: Structure,
    tmp_path: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = queued_mailing_app(make_app, tmp_path, free_port())  # nobody listens there
    admin = signed_in(app, add_staff(database, Role.STRUCTURE_ADMIN, structure))
    admin.get("/staff/team/invite")
    response = admin.post(
        "/staff/team/invite", {"email": "loin@example.org", "role": "mediator", "send": "1"}
    )
    assert response.status_code == 200
    with caplog.at_level("INFO"):
        assert run_worker_once(app) == 1
    from selfcheck.platform import jobs, mail

    huey = jobs.queue(app).huey
    (retry,) = huey.scheduled()  # tried again in RETRY_SECONDS
    assert retry.retries == mail.RETRIES - 1
    assert "e-mail not sent" in caplog.text
    assert "/staff/link/" not in caplog.text and "loin@example.org" not in caplog.text
