"""axe-core on the evaluator dashboard, with data and in its error states, French and English.

The dashboard's own world: a structure in department 13 with 200 people (answered through the
services, following the reference survey's marginals), and an evaluator granted only that
department, so the other browser tests' people are never counted (nor changed).
"""

from __future__ import annotations

import random
import secrets
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from selfcheck import demo
from selfcheck.accounts import auth
from selfcheck.accounts.structures import create_structure
from selfcheck.evaluation.guard_views import CHECKED_KEY
from selfcheck.evaluation.headline_views import PARTS
from selfcheck.journey import operations as journey
from selfcheck.platform.models import Role, StaffUser
from selfcheck.questionnaire.model import FormKind
from tests.browser.support import SCREENSHOTS_DIR, AxeAudit, ContextFactory, LiveServer

pytestmark = pytest.mark.browser

EVALUATOR = "evaluatrice-13@browser.invalid"
PASSWORD = "une phrase assez longue pour le tableau de bord"
SLUG = "eval-browser-13"
PEOPLE = 200


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


# The reference language only: the route audit (test_browser_routes.py) reaches these
# pages in every language, with axe-core on each of them in fr and ar and its own checks
# in the others (lang, error titles, target sizes, reflow).
@pytest.mark.parametrize("lang", ["fr"])
def test_the_dashboard_is_accessible_with_data_and_errors(
    lang: str, new_context: ContextFactory, live_server: LiveServer, audit: AxeAudit
) -> None:
    ensure_world(live_server)
    page = signed_in(new_context, lang)
    page.goto("/evaluate/")
    expect(page.locator("h1")).to_have_count(1)
    expect(page.locator("#table-headline")).to_be_visible()
    audit.check(page, "dashboard with data")
    # Every part on its own page, each chart with its table; the task and change pages.
    charts = 0
    for slug, _section in PARTS:
        page.goto(f"/evaluate/{slug}")
        on_page = page.locator("svg.chart__svg[role=img]").count()
        assert on_page >= 1 and page.locator("table.table").count() == on_page, slug
        charts += on_page
        audit.check(page, f"dashboard part {slug}")
    assert charts >= 25
    for path in ("/evaluate/tasks", "/evaluate/change"):
        page.goto(path)
        expect(page.locator("h1")).to_have_count(1)
        audit.check(page, f"dashboard {path}")
    page.goto("/evaluate/")

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
        expect(page.locator("#scope-error")).to_be_focused()  # autofocus, no script
        assert page.locator("table.table").count() == 0
        audit.check(page, f"dashboard error {status}")
    # From the focused summary, Tab and Enter lead to the filter at fault.
    page.goto("/evaluate/?from=mars")
    expect(page.locator("#scope-error")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("#scope-error a[href='#filter-from']")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#filter-from")).to_be_focused()
    expect(page.locator("#filter-from")).to_have_attribute("aria-invalid", "true")

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
    for path in PAGES:
        page.goto(path)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, path


PAGES = ("/evaluate/", *(f"/evaluate/{slug}" for slug, _s in PARTS), "/evaluate/tasks")
SCREEN = {"width": 1366, "height": 768}
MAX_SCREENS = 6


def test_each_dashboard_page_is_at_most_six_screens_and_the_headline_is_shot(
    new_context: ContextFactory, live_server: LiveServer, tmp_path: Path
) -> None:
    """Issue 14: no page of the dashboard longer than about six screens of 1366 x 768; the
    headline panel's picture for the README (docs/screenshots/, see test_browser_screenshots)."""
    ensure_world(live_server)
    page = new_context(viewport=SCREEN).new_page()
    page.goto("/staff/login")
    page.locator("#email").fill(EVALUATOR)
    page.locator("#password").fill(PASSWORD)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    heights = {}
    for path in (*PAGES, "/evaluate/change"):
        page.goto(path)
        heights[path] = page.evaluate("document.documentElement.scrollHeight")
    page.goto("/evaluate/")
    folder = Path(SCREENSHOTS_DIR) if SCREENSHOTS_DIR else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / "fr-13-dashboard-headline.png"
    page.locator("section.headline").screenshot(path=str(shot), animations="disabled")
    assert shot.read_bytes().startswith(b"\x89PNG")
    too_long = {p: h for p, h in heights.items() if h > MAX_SCREENS * SCREEN["height"]}
    assert not too_long, heights


def test_withheld_tables_are_accessible(
    new_context: ContextFactory,
    live_server: LiveServer,
    audit: AxeAudit,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tables withheld because their people differ from an earlier view's by fewer than k
    (differencing.guard_tables): a sentence in their place, the rest of each page shown."""
    ensure_world(live_server)
    monkeypatch.setattr(
        "selfcheck.evaluation.guard_views.guard_tables",
        lambda *_args, **_kwargs: frozenset({"after", "after+retro"}),
    )
    live_server.app.extensions.pop(CHECKED_KEY, None)  # views already checked: forgotten
    try:
        page = signed_in(new_context, "fr")
        for path in ("/evaluate/", "/evaluate/evolution", "/evaluate/tasks", "/evaluate/change"):
            page.goto(path)
            expect(page.locator(".withheld").first).to_be_visible()
            expect(page.locator("h1")).to_have_count(1)
            audit.check(page, f"withheld tables {path}")
        page.goto("/evaluate/people")  # no 'after' table there: every table shown
        assert page.locator(".withheld").count() == 0 and page.locator("table.table").count() >= 5
        audit.assert_clean()
    finally:
        live_server.app.extensions.pop(CHECKED_KEY, None)  # nothing withheld for later tests


# Each chart text's box outside its picture (a few pixels of slack for glyphs' overhang).
TEXTS_OUTSIDE_JS = """() => [...document.querySelectorAll("svg.chart__svg")].flatMap(svg => {
  const box = svg.getBoundingClientRect();
  return [...svg.querySelectorAll("text")].filter(t => {
    const r = t.getBoundingClientRect();
    return r.width === 0 || r.left < box.left - 2 || r.right > box.right + 2;
  }).map(t => `${svg.id || svg.getAttribute("aria-labelledby")}: ${t.textContent.trim()}`);
})"""


@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_every_chart_text_is_inside_its_picture(
    lang: str, new_context: ContextFactory, live_server: LiveServer
) -> None:
    """In Arabic the charts' texts took the page's direction and ran leftwards from x = 0,
    out of the picture: no row label and no legend were seen (round 23, the demo at 320 and
    1280 px). The charts now mirror; every text is drawn inside its chart, in both
    directions, on a phone and a wide screen."""
    ensure_world(live_server)
    page = signed_in(new_context, "fr")
    seen = {}
    for width, slugs in ((320, [slug for slug, _section in PARTS]), (1280, ["quality"])):
        page.set_viewport_size({"width": width, "height": 800})
        for slug in slugs:
            page.goto(f"/evaluate/{slug}?lang={lang}")
            seen[slug] = page.locator("svg.chart__svg text").count()
            outside = page.evaluate(TEXTS_OUTSIDE_JS)
            assert outside == [], (lang, width, slug, outside[:5])
    assert seen["quality"] > 10


def test_a_first_view_of_many_people_is_announced_accessibly(
    new_context: ContextFactory,
    live_server: LiveServer,
    audit: AxeAudit,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """evaluation/first_view.py: a new evaluator's first view of more than the bound is a page
    that says why the wait (focused status), then the browser loads the dashboard by itself,
    without JavaScript (the Refresh header), at 320 px as on a desktop."""
    from selfcheck.evaluation import first_view

    ensure_world(live_server)
    monkeypatch.setattr(first_view, "ANNOUNCE_ABOVE_PEOPLE", 50)  # the world has 200
    email = f"nouvelle-{secrets.token_hex(4)}@browser.invalid"
    database = live_server.app.extensions["selfcheck.platform.db"]
    with database.session() as session:
        user = auth.create_user(session, auth.NewUser(email, Role.EVALUATOR, None), PASSWORD)
        session.commit()
        auth.grant(session, user, department="13")
        session.commit()
    page = new_context(viewport={"width": 320, "height": 640}).new_page()
    page.goto("/staff/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    monkeypatch.setattr(first_view, "REFRESH_SECONDS", 60)  # time to look at it
    page.goto("/evaluate/?form=retro")
    expect(page.locator("#preparing-status")).to_be_focused()
    assert page.locator("table.table").count() == 0
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1
    audit.check(page, "dashboard, a first view announced")
    if SCREENSHOTS_DIR:
        page.screenshot(path=str(Path(SCREENSHOTS_DIR) / "fr-320-dashboard-preparing.png"))
    with page.expect_navigation():
        page.locator("main a[href*='ready=1']").click()
    expect(page.locator("section.headline")).to_be_visible()
    audit.assert_clean()
    # With the real delay and no JavaScript, the browser goes on by itself (another
    # selection: not seen yet).
    monkeypatch.setattr(first_view, "REFRESH_SECONDS", 1)
    bare = new_context(java_script_enabled=False).new_page()
    bare.context.add_cookies(page.context.cookies())
    bare.goto("/evaluate/?form=before")
    expect(bare.locator("#preparing-status")).to_be_visible()
    bare.wait_for_url("**ready=1**", timeout=15_000)
    expect(bare.locator("section.headline")).to_be_visible()
