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
    admin = signed_in(app, add_staff(database, Role.STRUCTURE_ADMIN, structure))
    admin.get("/staff/team/invite")
    response = admin.post(
        "/staff/team/invite", {"email": "perdu@example.org", "role": "mediator", "send": "1"}
    )
    assert response.status_code == 200
    admin.last = response
    assert "/staff/link/" in admin.html and "pas pu partir" in admin.text
