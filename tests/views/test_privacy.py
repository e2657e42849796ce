"""The information notice and erasing one's own answers by code (public pages)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import select

from selfcheck.platform import codes
from selfcheck.platform.db import Database
from selfcheck.platform.models import Answer, AuditEvent, Beneficiary, Response, Structure
from selfcheck.privacy.views import retention_words
from tests.support import Visitor, count, error_summary, text_of, words

ERASE = "/privacy/erase"
UNKNOWN = "Nous ne trouvons pas ce code"


def test_the_notice_says_what_why_how_long_who_and_how_to_erase(
    visitor: Visitor, structure: Structure
) -> None:
    page = visitor.get("/privacy")
    assert page.status_code == 200
    text = visitor.text
    for expected in (
        "Ce que nous ne demandons jamais",
        "ni votre nom",
        "Ce que nous gardons",
        "Pourquoi",
        "effacées 3 ans après votre dernière réponse",  # SELFCHECK_RETENTION_MONTHS = 36
        "groupes d'au moins 5 personnes",  # SELFCHECK_K_ANONYMITY = 5
        "CNIL",
    ):
        assert expected in text, expected
    assert 'href="/privacy/erase"' in visitor.html
    # Linked from the journey's start page and from the footer of every page.
    visitor.get(f"/s/{structure.slug}")
    assert visitor.html.count('href="/privacy"') == 2
    visitor.get("/code")
    assert 'href="/privacy"' in visitor.html


def test_the_notice_follows_the_configured_retention(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SELFCHECK_RETENTION_MONTHS", "18")
    page = make_app().test_client().get("/privacy")
    assert "effacées 18 mois après" in words(text_of(page))


def test_retention_words(app: Flask) -> None:
    with app.test_request_context():
        assert [retention_words(m) for m in (12, 24, 18, 1)] == [
            "1 an",
            "2 ans",
            "18 mois",
            "1 mois",
        ]


def test_a_person_erases_their_answers(
    visitor: Visitor, database: Database, structure: Structure
) -> None:
    code = visitor.complete(structure.slug)
    other = Visitor(visitor.client.application.test_client()).complete(structure.slug)
    assert count(database, Response) == 2
    visitor.get(ERASE)
    assert visitor.last is not None and visitor.last.status_code == 200
    response = visitor.post(ERASE, {"code": codes.display(code), "confirm": "y"})
    assert response.status_code == 302
    done = visitor.follow(response)
    assert done.status_code == 200
    assert "Vos réponses sont effacées" in visitor.text
    assert code not in visitor.html and codes.display(code) not in visitor.html
    with database.session() as session:
        assert session.scalar(select(Beneficiary).where(Beneficiary.code == code)) is None
        assert session.scalar(select(Beneficiary).where(Beneficiary.code == other)) is not None
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "erase"))
        assert event is not None and event.user_id is None and code not in event.changes
    assert count(database, Response) == 1
    # The code leads nowhere now, and this browser shows no answers any more.
    assert visitor.enter_code(code).status_code == 422
    assert visitor.client.get("/summary").status_code != 200


def test_nothing_is_erased_without_the_box_ticked(
    visitor: Visitor, database: Database, structure: Structure
) -> None:
    code = visitor.complete(structure.slug)
    answers = count(database, Answer)
    visitor.get(ERASE)
    response = visitor.post(ERASE, {"code": code})
    assert response.status_code == 422
    assert error_summary(text_of(response)) == [
        "Cochez la case pour confirmer que vous voulez tout effacer."
    ]
    assert 'value="' + code + '"' in text_of(response)  # what was typed stays
    assert count(database, Answer) == answers


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Écrivez votre code"),
        ("ZZZZZZZZ0", "erreur de frappe"),
        ("ZZZZZZZZ" + codes.check_character("ZZZZZZZZ"), UNKNOWN),
    ],
)
def test_bad_codes_are_refused_and_nothing_else_is_said(
    visitor: Visitor, database: Database, structure: Structure, typed: str, message: str
) -> None:
    visitor.complete(structure.slug)
    visitor.get(ERASE)
    response = visitor.post(ERASE, {"code": typed, "confirm": "y"})
    assert response.status_code == 422
    assert any(message in line for line in error_summary(text_of(response)))
    assert count(database, Response) == 1


def test_erasure_without_csrf_token_is_refused(
    visitor: Visitor, database: Database, structure: Structure
) -> None:
    code = visitor.complete(structure.slug)
    visitor.get(ERASE)
    response = visitor.post(ERASE, {"code": code, "confirm": "y"}, csrf=False)
    assert response.status_code == 400
    assert count(database, Beneficiary) == 1


def test_erasure_shares_the_code_guessing_limit(
    make_app: Callable[..., Flask], structure: Structure
) -> None:
    app = make_app(SELFCHECK_RATE_LIMITS={"code_ip": (2, 600)})
    visitor = Visitor(app.test_client())
    visitor.get(ERASE)
    for n in range(2):
        payload = f"ZZZZZZ{n:02d}"
        guess = payload + codes.check_character(payload)
        assert visitor.post(ERASE, {"code": guess, "confirm": "y"}).status_code == 422
    well_formed = "K7M2QX9R" + codes.check_character("K7M2QX9R")
    refused = visitor.post(ERASE, {"code": well_formed, "confirm": "y"})
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
    # The code entry page counts the same guesses.
    assert visitor.enter_code(well_formed).status_code == 429
