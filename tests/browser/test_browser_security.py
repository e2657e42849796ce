"""In Chromium: the strict Content-Security-Policy blocks nothing the pages need, and the
privacy pages (notice, self-erasure with its error state, confirmation) pass axe-core."""

from __future__ import annotations

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.browser.support import SLUG, AxeAudit, ContextFactory, Journey

pytestmark = pytest.mark.browser
INJECT_INLINE_STYLE = (
    """document.body.insertAdjacentHTML("beforeend", '<p style="color: red">x</p>')"""
)


def watch_csp(page: Page) -> list[str]:
    """Chromium reports every blocked style, script or resource on the console."""
    blocked: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            blocked.append(f"{page.url}: {message.text}")

    page.on("console", on_console)
    return blocked


def test_the_csp_blocks_nothing_on_a_whole_journey(
    new_context: ContextFactory, walk: Journey
) -> None:
    page = new_context().new_page()
    blocked = watch_csp(page)
    for url in ("/", f"/s/{SLUG}", "/code", "/privacy", "/privacy/erase", "/staff/login"):
        response = page.goto(url)
        assert response is not None and "script-src 'self'" in (
            response.headers.get("content-security-policy") or ""
        )
    page.goto(f"/s/{SLUG}")
    walk.start(page, "retro")
    walk.walk(page)
    walk.submit(page)
    page.goto("/summary")
    expect(page.locator("section.summary-block").first).to_be_visible()
    # The stylesheet applied (a blocked stylesheet leaves the page unstyled).
    margin = page.evaluate("getComputedStyle(document.querySelector('.container')).maxWidth")
    assert margin not in ("", "none")
    assert blocked == []
    # The watch works: an inline style added now is blocked and reported.
    with page.expect_console_message(lambda m: "Content Security Policy" in m.text):
        page.evaluate(INJECT_INLINE_STYLE)
    assert len(blocked) == 1


# The reference language only: the route audit (test_browser_routes.py) reaches these
# pages in every language, with axe-core on each of them in fr and ar and its own checks
# in the others (lang, error titles, target sizes, reflow).
@pytest.mark.parametrize("lang", ["fr"])
def test_privacy_pages_are_accessible(
    lang: str, new_context: ContextFactory, walk: Journey, audit: AxeAudit
) -> None:
    page = new_context().new_page()
    page.goto("/?lang=en" if lang == "en" else "/")
    page.goto("/privacy")
    audit.check(page, "privacy notice")
    page.goto("/privacy/erase")
    audit.check(page, "erase my answers")
    with page.expect_navigation():
        page.locator("form[action$='/privacy/erase'] button[type=submit]").click()
    expect(page.locator(".error-summary li")).to_have_count(2)  # no code, box not ticked
    audit.check(page, "erase my answers: errors")

    # A real erasure, with the code of a journey just sent.
    page.goto(f"/s/{SLUG}")
    walk.start(page, "retro")
    walk.walk(page)
    walk.submit(page)
    code = walk.code_on_page(page)
    page.goto("/privacy/erase")
    page.locator("#code").fill(code)
    page.locator("#confirm").check()
    with page.expect_navigation():
        page.locator("form[action$='/privacy/erase'] button[type=submit]").click()
    assert walk.path(page) == "/privacy/erased"
    audit.check(page, "answers erased")
    audit.assert_clean()
