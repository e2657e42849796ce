"""The follow-up on the web, with a fixed clock: before at 0, after 8 weeks later, then the
code says when to come back until the day it opens, and leads straight to it from then."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from selfcheck.accounts.structures import create_structure
from selfcheck.journey import operations as journey
from selfcheck.platform import clock, codes
from selfcheck.platform.db import Database
from selfcheck.platform.models import Response, Role, Status, Structure
from selfcheck.questionnaire import Definition, FormKind
from tests.pdf_support import qr_codes
from tests.pdf_support import text as pdf_text
from tests.staff import add_staff, signed_in
from tests.support import (
    AFTER,
    BEFORE,
    TASKS,
    Visitor,
    count,
    fill_response,
    path_of,
    submitted,
    words,
)

START = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
FOLLOWUP: dict[str, tuple[str, ...]] = {
    "ASSIST": ("seul",),
    "COMFORT": ("3",),
    **dict.fromkeys(TASKS, ("3",)),
    "STILL_USE": ("parfois",),
    "HELP_AGAIN": ("non",),
    "LOST": ("rien",),
}


@pytest.fixture
def fixed() -> Iterator[clock.FixedClock]:
    with clock.fixed(START) as fixed_clock:
        yield fixed_clock


def test_the_web_journey_at_start_end_and_three_months_later(
    visitor: Visitor,
    new_visitor: Callable[[], Visitor],
    structure: Structure,
    database: Database,
    fixed: clock.FixedClock,
) -> None:
    code = visitor.complete(structure.slug)
    fixed.advance(timedelta(weeks=8))  # the after form on 7 March 2027
    end = new_visitor()
    end.follow(end.enter_code(code))
    end.fill(AFTER, end.post("/welcome-back"))
    end.follow(end.submit())
    assert "Revenez à partir du 7 juin 2027" in end.text  # the end of the after form
    end.get("/summary")
    assert "Revenez à partir du 7 juin 2027" in end.text  # the summary
    summary_pdf = end.get("/summary.pdf")
    assert summary_pdf.status_code == 200
    assert "Revenez à partir du 7 juin 2027" in pdf_text(summary_pdf.data)  # and its PDF

    fixed.set(datetime(2027, 6, 6, 21, 59, tzinfo=UTC))  # 23:59 in Paris, the day before
    early = new_visitor()
    routed = early.enter_code(code)
    assert path_of(routed.headers["Location"]) == "/come-back"
    page = early.follow(routed)
    assert page.status_code == 200
    assert "Revenez le 7 juin 2027" in early.text
    assert code[:3] in early.html  # the code is on the page

    fixed.set(datetime(2027, 6, 6, 22, 0, tzinfo=UTC))  # midnight in Paris: it opens
    later = new_visitor()
    routed = later.enter_code(code)
    assert path_of(routed.headers["Location"]) == "/q/p_help"  # straight to the follow-up
    visited = later.fill(FOLLOWUP, routed)
    assert visited[0] == "p_help" and "p_still_use" in visited and "p_lost" in visited
    assert "p_age" not in visited and "p_progress" not in visited  # only the short form
    assert later.url == "/check"
    sent = later.submit()
    assert path_of(sent.headers["Location"]) == "/done"
    again = later.submit()  # sent twice: nothing changes, nothing created
    assert again.status_code in (302, 409)
    assert count(database, Response) == 3
    assert count(database, Response, Response.status == Status.SUBMITTED.value) == 3

    back = new_visitor()
    routed = back.enter_code(code)
    assert path_of(routed.headers["Location"]) == "/summary"


def test_come_back_without_a_code_asks_for_it(visitor: Visitor) -> None:
    page = visitor.get("/come-back")
    assert page.status_code in (200, 302, 303)
    assert "/come-back" not in page.headers.get("Location", "")


def test_the_come_back_card_for_the_mediator(
    app: Flask,
    database: Database,
    db_session: Session,
    definition: Definition,
    structure: Structure,
    fixed: clock.FixedClock,
) -> None:
    before = submitted(db_session, definition, structure, FormKind.BEFORE, BEFORE)
    code = before.beneficiary.code
    mediator = signed_in(app, add_staff(database, Role.MEDIATOR, structure))
    url = f"/staff/people/{code}/come-back-card.pdf"
    refused = mediator.get(url)  # no end form yet: no date to give, said kindly
    assert refused.status_code == 409
    assert "Pas de questionnaire de suivi à venir" in words(refused)
    assert mediator.get(f"/staff/people/{code}").status_code == 200
    assert "come-back-card.pdf" not in mediator.html

    fixed.advance(timedelta(weeks=8))
    after = journey.start_after(db_session, definition, before.beneficiary, "fr")
    db_session.commit()
    fill_response(db_session, definition, after, AFTER)
    assert journey.submit(db_session, definition, after)
    db_session.commit()
    mediator.get(f"/staff/people/{code}")
    assert "come-back-card.pdf" in mediator.html
    card = mediator.get(url)
    assert card.status_code == 200 and card.mimetype == "application/pdf"
    text = pdf_text(card.data)
    assert "7 juin 2027" in text and codes.display(code) in text and "/code" in text
    assert qr_codes(card.data) == [code]  # the QR code is the personal code, read back
    other = create_structure(db_session, "Ailleurs", "rural", "29")
    db_session.commit()
    elsewhere = submitted(db_session, definition, other, FormKind.BEFORE, BEFORE)
    assert (
        mediator.get(f"/staff/people/{elsewhere.beneficiary.code}/come-back-card.pdf").status_code
        == 404
    )
