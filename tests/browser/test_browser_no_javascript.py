"""Without JavaScript: the app ships none, so whole journeys work with it switched off."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import SLUG, ContextFactory, Journey, LiveServer

pytestmark = pytest.mark.browser

# Anything that would need JavaScript to do its job.
SCRIPTED = "script, [onclick], [onchange], [onsubmit], [oninput], [onload], [onkeydown]"


def test_journeys_work_with_javascript_disabled(
    new_context: ContextFactory, walk: Journey, live_server: LiveServer
) -> None:
    page = new_context(java_script_enabled=False).new_page()

    # JavaScript really is off in this context.
    page.goto("data:text/html,<title>off</title><script>document.title='on'</script>")
    assert page.title() == "off"

    def no_script(current: Page) -> None:
        assert current.locator(SCRIPTED).count() == 0, f"script found on {current.url}"

    page.goto(f"/s/{SLUG}")
    no_script(page)
    walk.start(page, "before")
    walk.next(page)  # server-side validation, no script needed
    expect(page.locator(".error-summary")).to_be_visible()
    walk.walk(page, no_script)
    no_script(page)
    walk.submit(page)
    assert walk.path(page) == "/done"
    code = walk.code_on_page(page)

    # Later, with the code: the 'after' form, then the summary.
    walk.enter_code(page, code)
    assert walk.path(page) == "/welcome-back"
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    walk.walk(page, no_script)
    walk.submit(page)
    with page.expect_navigation():
        page.locator("main a.button[href$='/summary']").click()
    no_script(page)
    # Every task once, under its answers (15 tasks); a folded chart opens without script.
    assert page.locator(".task-group__tasks li").count() == 15
    if page.locator(".rungs-block__toggle").count():
        page.locator(".rungs-block__toggle").click()
        assert page.locator(".rungs").is_visible()
    assert live_server.forms_of(code) == {"before": "submitted", "after": "submitted"}
    answers = live_server.answers_of(code, "after")
    assert answers["SESSIONS"] == ("3",)
    assert answers["COMMENT"] == ("Merci pour votre aide.",)
