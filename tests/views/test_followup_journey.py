"""The follow-up on the web, with a fixed clock: before at 0, after 8 weeks later, then the
code says when to come back until the day it opens, and leads straight to it from then."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from selfcheck.accounts.structures import create_structure
from selfcheck.followup import operations as followup
from selfcheck.followup.operations import FollowupDue
from selfcheck.journey import operations as journey
from selfcheck.paper import operations as paper
from selfcheck.platform import clock, codes
from selfcheck.platform.db import Database
from selfcheck.platform.models import Response, Role, Status, Structure
from selfcheck.questionnaire import Definition, FormKind
from selfcheck.questionnaire.model import NO_ANSWER
from tests.pdf_support import qr_codes
from tests.pdf_support import text as pdf_text
from tests.services.evaluation import test_retention as retention_population
from tests.staff import add_staff, signed_in
from tests.support import (
    AFTER,
    BEFORE,
    RETRO,
    TASKS,
    Visitor,
    count,
    fill_and_submit,
    follow_job,
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


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
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
    back.follow(routed)  # the three points: before, at the end, months later
    assert "Quelques mois après" in back.text and "Ce qui a tenu" in back.text
    assert "Ce qui s'est un peu perdu" in back.text and "Ce qui a encore grandi" in back.text
    assert "Revenez à partir" not in back.text  # no follow-up awaits them any more
    pdf = back.get("/summary.pdf")
    assert pdf.status_code == 200
    assert "Ce qui a tenu" in pdf_text(pdf.data)


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
    page = f"/staff/people/{before.beneficiary.id}"  # by id, never by code
    account = add_staff(database, Role.MEDIATOR, structure)
    mediator = signed_in(app, account)
    url = f"{page}/come-back-card.pdf"
    refused = mediator.get(url)  # no end form yet: no date to give, said kindly
    assert refused.status_code == 409
    assert "Pas de questionnaire de suivi à venir" in words(refused)
    assert mediator.get(page).status_code == 200
    assert "come-back-card.pdf" not in mediator.html
    assert "Questionnaire de suivi :" not in mediator.text

    fixed.advance(timedelta(weeks=8))
    after = journey.start_after(db_session, definition, before.beneficiary, "fr")
    db_session.commit()
    fill_and_submit(db_session, definition, after, AFTER)
    mediator.get(page)
    assert f'href="{url}"' in mediator.html
    # Where the person stands with their follow-up, on their page.
    assert "Questionnaire de suivi : il s'ouvre le 7 juin 2027." in mediator.text
    card = mediator.get(url)
    assert card.status_code == 200 and card.mimetype == "application/pdf"
    text = pdf_text(card.data)
    assert "7 juin 2027" in text and codes.display(code) in text and "/code" in text
    assert qr_codes(card.data) == [code]  # the QR code is the personal code, read back
    other = create_structure(db_session, "Ailleurs", "rural", "29")
    db_session.commit()
    elsewhere = submitted(db_session, definition, other, FormKind.BEFORE, BEFORE)
    assert (
        mediator.get(f"/staff/people/{elsewhere.beneficiary.id}/come-back-card.pdf").status_code
        == 404
    )
    fixed.set(datetime(2027, 6, 8, 9, 0, tzinfo=UTC))  # signed in again, months later
    again = signed_in(app, account)
    again.get(page)
    assert "Questionnaire de suivi : ouvert depuis le 7 juin 2027, pas encore envoyé" in again.text


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
def test_the_followup_list_shows_who_is_due_and_prints_their_forms(
    app: Flask,
    database: Database,
    db_session: Session,
    definition: Definition,
    structure: Structure,
    fixed: clock.FixedClock,
) -> None:
    def ended() -> str:
        sent = submitted(db_session, definition, structure, FormKind.RETRO, RETRO)
        return sent.beneficiary.code

    overdue = ended()  # 10 January: opens 10 April
    fixed.set(datetime(2027, 2, 20, 10, 0, tzinfo=UTC))
    due, done = ended(), ended()  # opens 20 May
    fixed.set(datetime(2027, 5, 1, 10, 0, tzinfo=UTC))
    upcoming = ended()  # opens 1 August
    fixed.set(datetime(2027, 5, 25, 10, 0, tzinfo=UTC))
    person = journey.find_beneficiary(db_session, done)
    answered = journey.start_followup(
        db_session, definition, person, "fr", fixed.now(), ZoneInfo("Europe/Paris")
    )
    db_session.commit()
    fill_and_submit(db_session, definition, answered, FOLLOWUP)
    before_only = submitted(db_session, definition, structure, FormKind.BEFORE, BEFORE)

    overview = followup.followup_overview(
        db_session, structure, fixed.now(), ZoneInfo("Europe/Paris")
    )
    assert overview.counts == {
        FollowupDue.DUE: 1,
        FollowupDue.OVERDUE: 1,
        FollowupDue.DONE: 1,
        FollowupDue.UPCOMING: 1,
    }
    assert [row.code for row in overview.rows] == [overdue, due]  # the longest waiting first
    assert upcoming not in overview.to_print

    mediator = signed_in(app, add_staff(database, Role.MEDIATOR, structure))
    page = mediator.get("/staff/people/")
    assert page.status_code == 200
    assert "Questionnaire de suivi, quelques mois après" in mediator.text
    assert codes.display(due) in mediator.html and codes.display(overdue) in mediator.html
    (print_form,) = [f for f in mediator.forms() if f.action == "/staff/print/followup"]
    posted = [(i.name, i.value) for i in print_form.inputs if i.type == "hidden"]
    assert sorted(v for n, v in posted if n == "codes") == sorted([due, overdue])
    started = mediator.post("/staff/print/followup", posted)
    assert started.status_code == 303  # a background job, like the other print batches
    pdf = follow_job(mediator, started)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = pdf_text(pdf.data)
    assert "Quelques mois après" in text
    assert codes.display(due) in text and codes.display(overdue) in text
    assert codes.display(upcoming) not in text

    # Not due (not open yet, no end form, already answered): refused kindly, nothing queued.
    for code in (upcoming, before_only.beneficiary.code, done):
        mediator.get("/staff/people/")
        refused = mediator.post("/staff/print/followup", {"codes": code})
        assert refused.status_code == 422
        assert "n'est pas ouvert" in words(refused)
    assert mediator.post("/staff/print/followup", {"codes": []}).status_code == 422

    # The list's own filter (its Show registry) has the same people, on screen and printed.
    mediator.get("/staff/people/?show=followup_due")
    assert 'value="followup_due" selected' in mediator.html
    assert "Questionnaire de suivi à faire (ouvert, pas envoyé) (2)" in mediator.text
    listed = set(re.findall(r'class="code-link" href="[^"]+">([0-9A-Z-]{11})<', mediator.html))
    assert listed >= {codes.display(due), codes.display(overdue)}
    table = mediator.html.split('<table class="table table--reflow table--people">', 1)[1]
    assert set(re.findall(r">([0-9A-Z]{3}-[0-9A-Z]{3}-[0-9A-Z]{3})<", table)) == {
        codes.display(due),
        codes.display(overdue),
    }
    assert "suivi à faire" in words(table)
    printed = mediator.get("/staff/people/?show=followup_due&print=1")
    assert printed.status_code == 200
    rows = re.findall(
        r'<th scope="row" class="code-cell"><bdi>([0-9A-Z-]{11})</bdi><', mediator.html
    )
    assert sorted(rows) == sorted([codes.display(due), codes.display(overdue)])
    assert "Leur questionnaire de suivi est ouvert et pas encore envoyé." in words(printed)


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
def test_the_dashboard_says_what_lasts(
    app: Flask,
    database: Database,
    db_session: Session,
    definition: Definition,
    structure: Structure,
) -> None:
    with clock.fixed(datetime(2027, 1, 10, 9, 0, tzinfo=UTC)) as fixed:
        people = [retention_population.ended(db_session, definition, structure) for _ in range(6)]
        fixed.advance(timedelta(days=100))
        for code in people:
            retention_population.answered(
                db_session, definition, code, retention_population.KEEPS_ALL
            )
        evaluator = signed_in(
            app, add_staff(database, Role.EVALUATOR, departments=(structure.department,))
        )
    page = evaluator.get("/evaluate/")
    assert page.status_code == 200
    assert "Ce qui dure, quelques mois après" in evaluator.text
    assert "Parmi 6 personnes, 100" in evaluator.text  # all answered, all kept their gains
    assert "dont le questionnaire de suivi est dans la sélection" not in evaluator.text


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
def test_the_dashboard_retention_honours_the_filters_and_the_guards(
    app: Flask,
    database: Database,
    db_session: Session,
    definition: Definition,
    structure: Structure,
) -> None:
    """The period filter dates the kept gains by the follow-up and the response rate by the
    end form; a selection that leaves fewer than k people of the scope aside shows nothing
    (the dashboard's complement guard), retention included. (Past dates: the filters refuse
    future months.)"""
    with clock.fixed(datetime(2025, 1, 10, 9, 0, tzinfo=UTC)) as fixed:
        answering = [
            retention_population.ended(db_session, definition, structure) for _ in range(6)
        ]
        for _ in range(6):
            retention_population.ended(db_session, definition, structure)  # never answer
        fixed.set(datetime(2025, 2, 10, 9, 0, tzinfo=UTC))
        for _ in range(2):
            retention_population.ended(db_session, definition, structure)
        fixed.set(datetime(2025, 4, 20, 9, 0, tzinfo=UTC))
        for code in answering:
            retention_population.answered(
                db_session, definition, code, retention_population.KEEPS_ALL
            )
    evaluator = signed_in(
        app, add_staff(database, Role.EVALUATOR, departments=(structure.department,))
    )

    def lasting(query: str) -> str:
        page = evaluator.get(f"/evaluate/?{query}")
        assert page.status_code == 200, words(page)[:400]
        html = evaluator.html
        assert 'id="section-retention"' in html
        section = html.split('id="section-retention"', 1)[1].split("</section>", 1)[0]
        return " ".join(words(section).split())

    # April: the follow-ups sent then (6 people, all kept their gains); nobody ended then.
    april = lasting("from=2025-04&to=2025-04")
    assert "Parmi 6 personnes, 100" in april
    assert "Trop peu de personnes" in april  # the response rate of those who ended in April
    # January and February: the 14 who ended then, 6 of whom answered; their follow-ups
    # (April) are outside the period, so no kept gains.
    winter = lasting("from=2025-01&to=2025-02")
    assert "Parmi 14 personnes, 43" in winter
    assert "dont le questionnaire de suivi est dans la sélection" in winter  # said with filters
    assert "Parmi 6 personnes" not in winter
    # January alone leaves the 2 people of February aside (under k): nothing is shown.
    refused = evaluator.get("/evaluate/?from=2025-01&to=2025-01")
    assert refused.status_code == 422
    assert "Ce qui dure" not in evaluator.text


def test_a_paper_followup_is_typed_in_on_the_entry_screens(
    app: Flask,
    database: Database,
    db_session: Session,
    definition: Definition,
    structure: Structure,
    fixed: clock.FixedClock,
) -> None:
    mediator = signed_in(app, add_staff(database, Role.MEDIATOR, structure))
    page = mediator.get("/staff/entry/")
    assert 'value="followup"' in mediator.html  # a follow-up can be typed for a code
    started = submitted(db_session, definition, structure, FormKind.BEFORE, BEFORE)
    mediator.get("/staff/entry/")
    refused = mediator.post(
        "/staff/entry/",
        {"action": "code", "code": started.beneficiary.code, "form": "followup", "lang": "fr"},
    )
    assert refused.status_code == 409  # no end form: refused kindly, nothing created
    assert "questionnaire de fin" in words(refused)
    ended = submitted(db_session, definition, structure, FormKind.RETRO, RETRO)  # 10 January
    code = ended.beneficiary.code
    # Before the day it opens (10 April at midnight in Paris): a clear refusal with the date,
    # nothing saved, as online.
    fixed.set(datetime(2027, 4, 9, 21, 59, tzinfo=UTC))
    mediator.get("/staff/entry/")
    early = mediator.post(
        "/staff/entry/", {"action": "code", "code": code, "form": "followup", "lang": "fr"}
    )
    assert early.status_code == 409
    assert "ne s'ouvre que le 10 avril 2027" in words(early)
    assert "Rien n'a été enregistré" in words(early)
    assert count(database, Response, Response.form == FormKind.FOLLOWUP.value) == 0
    # The second follow-up, which this structure does not run: refused too.
    fixed.set(datetime(2027, 4, 9, 22, 0, tzinfo=UTC))
    mediator.get("/staff/entry/")
    late = mediator.post(
        "/staff/entry/", {"action": "code", "code": code, "form": "followup_late", "lang": "fr"}
    )
    assert late.status_code == 409 and "second questionnaire de suivi" in words(late)
    assert count(database, Response, Response.form == FormKind.FOLLOWUP_LATE.value) == 0
    mediator.get("/staff/entry/")
    opened = mediator.post(
        "/staff/entry/", {"action": "code", "code": code, "form": "followup", "lang": "fr"}
    )
    assert opened.status_code == 302 and page.status_code == 200
    url = path_of(opened.headers["Location"])
    screen = mediator.get(url)
    assert screen.status_code == 200 and 'name="STILL_USE"' in mediator.html
    typed = {**FOLLOWUP, "COMMENT": (NO_ANSWER,)}
    mediator.get(url)
    data: dict[str, list[str]] = {name: list(values) for name, values in typed.items()}
    data["action"] = ["finish"]
    done = mediator.post(url, data)
    assert done.status_code == 302, words(done)[:300]
    assert (
        count(
            database,
            Response,
            Response.form == FormKind.FOLLOWUP.value,
            Response.status == Status.SUBMITTED.value,
        )
        == 1
    )
    # Typed twice: refused, nothing in double.
    mediator.get("/staff/entry/")
    again = mediator.post(
        "/staff/entry/", {"action": "code", "code": code, "form": "followup", "lang": "fr"}
    )
    assert again.status_code == 409
    assert count(database, Response, Response.form == FormKind.FOLLOWUP.value) == 1


def test_the_come_back_card_is_an_accessible_pdf(app: Flask) -> None:
    from tests.services.test_pdf_accessibility import accessibility_problems

    code = codes.generate_code()
    with app.test_request_context("/"):
        renderer = paper.renderer(app)
        for large in (False, True):
            pdf = renderer.come_back_card(
                code, date(2027, 6, 7), "https://example.org/code", "fr", large=large
            )
            assert accessibility_problems(pdf, "fr", "Revenez nous voir", large) == []
            assert "7 juin 2027" in pdf_text(pdf)
