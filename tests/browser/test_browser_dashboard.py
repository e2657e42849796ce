"""axe-core on the evaluator dashboard, with data and in its error states, French and English.

The dashboard's own world: a structure in department 13 with 30 people (answered through the
services, following the reference survey's marginals), and an evaluator granted only that
department, so the other browser tests' people are never counted (nor changed).
"""

from __future__ import annotations

import random
import secrets

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from selfcheck import demo
from selfcheck.accounts import auth
from selfcheck.accounts.structures import create_structure
from selfcheck.journey import operations as journey
from selfcheck.platform.models import Role, StaffUser
from selfcheck.questionnaire.model import FormKind
from tests.browser.support import AxeAudit, ContextFactory, LiveServer

pytestmark = pytest.mark.browser

EVALUATOR = "evaluatrice-13@browser.invalid"
PASSWORD = "une phrase assez longue pour le tableau de bord"
SLUG = "eval-browser-13"
PEOPLE = 30


def ensure_world(server: LiveServer) -> None:
    database = server.app.extensions["selfcheck.platform.db"]
    definition = server.definition
    with database.session() as session:
        if session.scalar(select(StaffUser).where(StaffUser.email == EVALUATOR)) is not None:
            return
        structure = create_structure(session, "Tiers-lieu d'Arles", "rural", "13", SLUG)
        session.commit()
        rng = random.Random(13)
        marginals = demo.Marginals()
        solved = demo.plan(marginals)
        for _ in range(PEOPLE):
            profile = demo._profile(demo._pick(rng, marginals.typology))
            facts = demo.draw_facts(rng, profile, marginals, solved)
            person = demo.Person(profile, 0.5, 0.8, random.Random(rng.random()), fixed=facts)
            form = FormKind.RETRO if rng.random() < 0.3 else FormKind.BEFORE
            first = journey.start_response(
                session, definition, structure, form, "fr", secrets.token_urlsafe(16)
            )
            session.commit()
            demo.fill_in_batches(session, definition, first, person)
            session.commit()
            if form is FormKind.BEFORE and rng.random() < 0.7:
                after = journey.start_after(session, definition, first.beneficiary, "fr")
                session.commit()
                demo.fill_in_batches(session, definition, after, person)
                session.commit()
        user = auth.create_user(session, auth.NewUser(EVALUATOR, Role.EVALUATOR, None), PASSWORD)
        session.commit()
        auth.grant(session, user, department="13")
        session.commit()


def signed_in(new_context: ContextFactory, lang: str) -> Page:
    page = new_context().new_page()
    page.goto("/staff/login?lang=en" if lang == "en" else "/staff/login")
    page.locator("#email").fill(EVALUATOR)
    page.locator("#password").fill(PASSWORD)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    assert "/staff/login" not in page.url
    return page


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_dashboard_is_accessible_with_data_and_errors(
    lang: str, new_context: ContextFactory, live_server: LiveServer, audit: AxeAudit
) -> None:
    ensure_world(live_server)
    page = signed_in(new_context, lang)
    page.goto("/evaluate/")
    expect(page.locator("h1")).to_have_count(1)
    charts = page.locator("svg.chart__svg[role=img]")
    assert charts.count() >= 25
    assert page.locator("table.table").count() == charts.count()
    audit.check(page, "dashboard with data")

    # Filters through the form, with the keyboard-reachable submit button.
    page.locator("#filter-form").select_option("retro")
    with page.expect_navigation():
        page.locator(".eval-filters button[type=submit]").click()
    assert "form=retro" in page.url
    audit.check(page, "dashboard, retrospective forms only")

    for query, status in (
        ("?structure=demo", 403),  # another department's structure
        ("?from=2026-05-01&to=2025-01-01", 400),  # an absurd range
        ("?territory=urbain", 422),  # nobody there: fewer than k
    ):
        response = page.goto("/evaluate/" + query)
        assert response is not None and response.status == status, query
        expect(page.locator("#scope-error")).to_be_visible()
        assert page.locator("table.table").count() == 0
        audit.check(page, f"dashboard error {status}")

    response = page.goto("/evaluate/tables/unknown.csv")
    assert response is not None and response.status == 404
    expect(page.locator("#scope-error")).to_be_visible()
    audit.check(page, "unknown table")
    audit.assert_clean()


def test_the_dashboard_reflows_at_320_px(
    new_context: ContextFactory, live_server: LiveServer
) -> None:
    ensure_world(live_server)
    context = new_context(viewport={"width": 320, "height": 640})
    page = context.new_page()
    page.goto("/staff/login")
    page.locator("#email").fill(EVALUATOR)
    page.locator("#password").fill(PASSWORD)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    page.goto("/evaluate/")
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1
