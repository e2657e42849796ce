"""axe-core (WCAG 2.0/2.1/2.2, A and AA) on every back-office page, in French and English.

The pages are read from the app's URL map (every GET route under /staff), so the screens of
paper forms, data entry and follow-up are covered as they are added; a route with a URL
variable this file has no value for fails with a message. Protected pages are opened as a
platform administrator (who has every permission), the follow-up and home pages also as a
mediator, and the error states too: sign-in errors, password change errors, 403 and 404.

Screenshots of the staff home and the follow-up list go to SELFCHECK_SCREENSHOTS when set
(see test_browser_screenshots.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import url_for
from playwright.sync_api import Page, expect
from sqlalchemy import select

from selfcheck.accounts import auth
from selfcheck.journey import operations as journey
from selfcheck.platform import codes
from selfcheck.platform.models import Beneficiary, Channel, Response, Role, StaffUser, utcnow
from selfcheck.questionnaire.model import FormKind
from tests.browser.support import (
    SCREENSHOTS_DIR,
    SLUG,
    ContextFactory,
    LiveServer,
)

pytestmark = pytest.mark.browser

LANGUAGES = ["fr", "en"]
PASSWORD = "une phrase assez longue pour les tests"
ERROR_TITLE = re.compile(r"^(Erreur|Error)\b")
ACCOUNTS = {
    Role.PLATFORM_ADMIN: "plateforme@browser.invalid",
    Role.STRUCTURE_ADMIN: "responsable@browser.invalid",
    Role.MEDIATOR: "mediatrice@browser.invalid",
    Role.EVALUATOR: "evaluateur@browser.invalid",
}


@dataclass(frozen=True)
class Seeded:
    code: str  # before (on paper, typed by the mediator) and after sent
    response_id: int  # its 'before'
    person_id: int  # the person's database id: their pages' address (never the code)


def ensure_accounts(server: LiveServer) -> None:
    """Staff accounts with a known password in the demo structure (once per server)."""
    database = server.app.extensions["selfcheck.platform.db"]
    with database.session() as session:
        structure = journey.find_structure(session, SLUG)
        assert structure is not None
        for role, email in ACCOUNTS.items():
            if session.scalar(select(StaffUser).where(StaffUser.email == email)) is not None:
                continue
            in_structure = role in (Role.MEDIATOR, Role.STRUCTURE_ADMIN)
            user = auth.create_user(
                session,
                auth.NewUser(email, role, structure.id if in_structure else None),
                PASSWORD,
            )
            session.commit()
            if role is Role.EVALUATOR:
                auth.grant(session, user, department=structure.department)
                session.commit()


def seed_paper_person(server: LiveServer, weeks_ago: float = 9, after: bool = True) -> Seeded:
    """A person whose 'before' came on paper, typed by the mediator, `weeks_ago` weeks ago."""
    code = server.seed("pre_post" if after else "before_only")
    database = server.app.extensions["selfcheck.platform.db"]
    with database.session() as session:
        mediator = session.scalar(
            select(StaffUser).where(StaffUser.email == ACCOUNTS[Role.MEDIATOR])
        )
        before = session.scalar(
            select(Response)
            .join(Beneficiary)
            .where(Beneficiary.code == code, Response.form == FormKind.BEFORE.value)
        )
        assert before is not None and mediator is not None
        before.channel = Channel.PAPER.value
        before.entered_by_id = mediator.id
        before.entered_at = before.submitted_at = utcnow() - timedelta(weeks=weeks_ago)
        session.commit()
        return Seeded(code, before.id, before.beneficiary_id)


# URL variable -> value, for the routes read from the URL map.
ARGUMENTS: dict[str, Callable[[Seeded], Any]] = {
    "person_id": lambda s: s.person_id,
    "response_id": lambda s: s.response_id,
    "slug": lambda s: SLUG,
    "form": lambda s: FormKind.BEFORE.value,
    "page_code": lambda s: "p_help",
}


def staff_pages(server: LiveServer, seeded: Seeded) -> list[tuple[str, str]]:
    """(endpoint, URL) of every GET route under /staff."""
    pages = []
    for rule in sorted(server.app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/staff") or "GET" not in (rule.methods or ()):
            continue
        values = {}
        for name in rule.arguments:
            if name not in ARGUMENTS:
                pytest.fail(
                    f"{rule.rule} ({rule.endpoint}): add a value for {name!r} to ARGUMENTS "
                    f"in {__name__}",
                    pytrace=False,
                )
            values[name] = ARGUMENTS[name](seeded)
        with server.app.test_request_context():
            pages.append((rule.endpoint, url_for(rule.endpoint, **values)))
    return pages


def open_in(new_context: ContextFactory, lang: str, **options: Any) -> Page:
    page = new_context(**options).new_page()
    page.goto("/staff/login?lang=en" if lang == "en" else "/staff/login")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    return page


def sign_in(page: Page, role: Role) -> None:
    page.goto("/staff/login")
    page.locator("#email").fill(ACCOUNTS[role])
    page.locator("#password").fill(PASSWORD)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    assert "/staff/login" not in page.url, f"{role} could not sign in"


def sign_out(page: Page) -> None:
    if page.locator(".staff-nav").count() == 0:  # error pages have no staff menu
        page.goto("/staff/")
    with page.expect_navigation():
        page.locator(".staff-nav form button").click()


def is_html(page: Page, url: str) -> tuple[int, bool]:
    """Status and whether `url` is an HTML page (a PDF is checked by the PDF tests)."""
    response = page.request.get(url, max_redirects=0)
    return response.status, response.headers.get("content-type", "").startswith("text/html")


@pytest.fixture
def seeded(live_server: LiveServer) -> Seeded:
    ensure_accounts(live_server)
    return seed_paper_person(live_server)


def test_follow_up_works_without_javascript(
    new_context: ContextFactory, live_server: LiveServer, seeded: Seeded
) -> None:
    """The filter is a plain form (a POST: a code never goes into an address); the list, the
    person and the print forms need no JS."""
    seed_paper_person(live_server, weeks_ago=10, after=False)  # someone owes an 'after'
    page = new_context(java_script_enabled=False).new_page()
    sign_in(page, Role.MEDIATOR)
    page.goto("/staff/people/")
    page.locator("#show").select_option("after_due")
    with page.expect_navigation():
        page.locator("form.filters button").click()
    assert "show=after_due" in page.url
    expect(page.locator("caption#people-caption")).to_be_visible()
    page.locator("#q").fill(codes.display(seeded.code))  # as printed, with its dashes
    page.locator("#show").select_option("all")
    with page.expect_navigation():
        page.locator("form.filters button").click()
    assert page.url.endswith("/staff/people/?search=1"), page.url
    found = page.locator("table.table--people a.code-link")
    expect(found).to_have_count(1)
    with page.expect_navigation():
        found.click()
    assert page.url.endswith(f"/staff/people/{seeded.person_id}"), page.url


def test_a_person_s_code_stays_whole_in_the_arabic_heading_at_320_px(
    new_context: ContextFactory, live_server: LiveServer, seeded: Seeded
) -> None:
    """The heading "الشخص TQK-ECG-S4T" broke the code after its second dash at 320 px
    (round 23, the demo): the code now moves whole to the next line."""
    page = new_context(viewport={"width": 320, "height": 640}).new_page()
    sign_in(page, Role.MEDIATOR)
    page.goto("/staff/people/?lang=ar")
    with page.expect_navigation():
        page.locator("a.code-link").first.click()
    code = page.locator("h1 bdi")
    expect(code).to_have_count(1)
    assert code.evaluate("e => e.getClientRects().length") == 1
    box = code.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 320


def test_screenshots_of_the_back_office(
    new_context: ContextFactory, live_server: LiveServer, seeded: Seeded, tmp_path: Path
) -> None:
    """The staff home and the follow-up list, for the README (only where asked)."""
    folder = Path(SCREENSHOTS_DIR) if SCREENSHOTS_DIR else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    for weeks in (1, 3, 8, 12):
        seed_paper_person(live_server, weeks_ago=weeks, after=False)
    page = new_context(viewport={"width": 1100, "height": 800}).new_page()
    sign_in(page, Role.MEDIATOR)
    taken = []
    for url, name in [("/staff/", "fr-7-staff-home"), ("/staff/people/", "fr-8-follow-up")]:
        page.goto(url)
        page.wait_for_load_state("load")
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
        taken.append(path)
    for path in taken:
        assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), path
