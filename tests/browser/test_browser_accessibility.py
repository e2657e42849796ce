"""axe-core (WCAG 2.0/2.1/2.2, A and AA) on every page of the journey, in French and English.

Each test walks a real journey in Chromium and runs axe on every page it meets, error states
included; it fails once at the end with the list of violations (rule, help, target nodes).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from selfcheck.services import codes
from tests.browser.support import SLUG, AxeAudit, ContextFactory, Journey, LiveServer

pytestmark = pytest.mark.browser

LANGUAGES = ["fr", "en"]
ERROR_TITLE = re.compile(r"^(Erreur|Error)\b")


def open_in(new_context: ContextFactory, lang: str) -> Page:
    """A French browser; for English, `?lang=en` once, then the cookie keeps it."""
    page = new_context().new_page()
    page.goto("/?lang=en" if lang == "en" else "/")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    return page


def unknown_code() -> str:
    """Well formed (right length and check character) but given to nobody."""
    payload = "ZZZZZZZZ"
    return payload + codes.check_character(payload)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_before_then_after_journey_is_accessible(
    lang: str, new_context: ContextFactory, walk: Journey, audit: AxeAudit
) -> None:
    page = open_in(new_context, lang)
    audit.check(page, "home")

    page.goto(f"/s/{SLUG}")
    audit.check(page, "start page")
    walk.start(page, "before")

    # A required question left empty: error summary and inline message.
    audit.check(page, "first question")
    walk.next(page)
    expect(page.locator(".error-summary")).to_be_visible()
    expect(page.locator(".error-message")).to_have_count(1)
    expect(page).to_have_title(ERROR_TITLE)  # the title says so too (WCAG 3.3.1)
    audit.check(page, "question with a required answer missing")

    # Pause, then try to send with the required answers missing.
    with page.expect_navigation():
        page.locator("button[name=action][value=pause]").click()
    assert walk.path(page) == "/pause"
    audit.check(page, "pause")
    page.goto("/check")
    audit.check(page, "check page (nothing answered)")
    walk.submit(page)
    expect(page.locator(".error-summary li").first).to_be_visible()
    expect(page).to_have_title(ERROR_TITLE)
    audit.check(page, "check page with required answers missing")

    # The whole 'before' form, with an exclusive-choice error on the devices page.
    def each_before_page(page: Page) -> None:
        if walk.path(page) == "/q/p_devices":
            page.locator("#f-DEVICES-smartphone").check()
            page.locator("#f-DEVICES-aucun").check()
            walk.next(page)
            expect(page.locator(".error-summary")).to_be_visible()
            audit.check(page, "before form: exclusive choice error")
            page.locator("#f-DEVICES-aucun").uncheck()
        audit.check(page, "before form: question")

    page.goto("/q/p_help")
    pages = walk.walk(page, each_before_page)
    assert len(pages) >= 12
    audit.check(page, "before form: check page")
    walk.submit(page)
    assert walk.path(page) == "/done"
    audit.check(page, "before form: done")
    code = walk.code_on_page(page)
    with page.expect_navigation():
        page.locator("main a.button[href$='/summary']").click()
    audit.check(page, "summary: starting point only")

    # Back later with the code: code page and its errors, welcome back, the 'after' form.
    page.goto("/")
    with page.expect_navigation():
        page.locator("main a.button[href$='/code']").click()
    audit.check(page, "code page")
    for typed, label in [("", "empty"), ("K7M-2Q", "too short"), (unknown_code(), "unknown")]:
        page.locator("#code").fill(typed)
        with page.expect_navigation():
            page.locator("main form button[type=submit]").click()
        expect(page.locator("#code-error")).to_be_visible()
        expect(page.locator("#code")).to_have_attribute("aria-invalid", "true")
        expect(page).to_have_title(ERROR_TITLE)
        audit.check(page, f"code page with an error ({label} code)")
    walk.enter_code(page, code)
    assert walk.path(page) == "/welcome-back"
    audit.check(page, "welcome back")
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()

    def each_after_page(page: Page) -> None:
        if walk.path(page) == "/q/p_modality":
            page.locator("#f-SESSIONS").fill("beaucoup")
            walk.next(page)
            expect(page.locator("#err-SESSIONS")).to_be_visible()
            audit.check(page, "after form: number error")
            page.locator("#f-SESSIONS").fill("")
        audit.check(page, "after form: question")

    walk.walk(page, each_after_page)
    audit.check(page, "after form: check page")
    walk.submit(page)
    audit.check(page, "after form: done")
    with page.expect_navigation():
        page.locator("main a.button[href$='/summary']").click()
    expect(page.locator("h1")).to_have_text(re.compile("progrès|progress", re.I))
    audit.check(page, "summary: before and after")
    with page.expect_navigation():
        page.locator("form.leave button").click()
    audit.check(page, "home after leaving")
    assert walk.server.forms_of(code.replace("-", "")) == {
        "before": "submitted",
        "after": "submitted",
    }
    audit.assert_clean()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_retrospective_journey_is_accessible(
    lang: str, new_context: ContextFactory, walk: Journey, audit: AxeAudit
) -> None:
    page = open_in(new_context, lang)
    page.goto(f"/s/{SLUG}")
    walk.start(page, "retro")

    def each_page(page: Page) -> None:
        if walk.path(page) == "/q/p_comfort":
            walk.next(page)  # both "before" and "today" are required
            expect(page.locator(".error-summary li")).to_have_count(2)
            audit.check(page, "retro form: paired question with errors")
        audit.check(page, "retro form: question")

    walk.walk(page, each_page)
    audit.check(page, "retro form: check page")
    walk.submit(page)
    audit.check(page, "retro form: done")
    with page.expect_navigation():
        page.locator("main a.button[href$='/summary']").click()
    audit.check(page, "summary: retrospective")
    audit.assert_clean()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_summaries_and_error_pages_are_accessible(
    lang: str, new_context: ContextFactory, live_server: LiveServer, walk: Journey, audit: AxeAudit
) -> None:
    page = open_in(new_context, lang)
    for kind in ("pre_post", "retro"):
        walk.enter_code(page, live_server.seed(kind))
        assert walk.path(page) == "/summary"
        audit.check(page, f"summary of a seeded {kind} person")

    response = page.goto("/nowhere")
    assert response is not None and response.status == 404
    audit.check(page, "404 page")
    response = page.goto("/s/no-such-place")
    assert response is not None and response.status == 404

    page.goto("/q/p_help")  # no session: sent to the code page with a notice
    assert walk.path(page) == "/code"
    expect(page.locator(".notice")).to_be_visible()
    audit.check(page, "code page after an expired session")

    # The session cookie (which holds the CSRF secret) is lost before the form is sent.
    page.goto(f"/s/{SLUG}")
    page.context.clear_cookies(name="selfcheck_session")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.locator("form:has(input[name=form][value=before]) button").click()
    assert posted.value.status == 400
    page.wait_for_load_state("load")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    audit.check(page, "CSRF error page")
    audit.assert_clean()
