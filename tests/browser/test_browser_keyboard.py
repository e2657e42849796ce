"""Keyboard only: whole questionnaires with Tab, Shift+Tab, Space, arrows and Enter.

No click and no fill: every answer and every button goes through the keyboard, as for someone
who cannot use a mouse (or uses a switch or a screen reader). Focus must stay visible.
"""

from __future__ import annotations

import pytest

from tests.browser.support import CODE_PATTERN, SLUG, ContextFactory, Journey, Keyboard, LiveServer

pytestmark = pytest.mark.browser


def send_from_check_page(keys: Keyboard) -> None:
    keys.tab_until(
        lambda e: e["tag"] == "button" and e["form"].endswith("/check"), "the send button"
    )
    keys.assert_focus_visible("send button of the check page")
    keys.activate()


def test_before_questionnaire_with_the_keyboard_only(
    new_context: ContextFactory, walk: Journey, live_server: LiveServer
) -> None:
    keys = Keyboard(new_context().new_page())
    keys.page.goto(f"/s/{SLUG}")

    # The skip link comes first, shows focus, and moves focus to the main content.
    first = keys.press("Tab")
    assert first["href"] == "#main", first
    keys.assert_focus_visible("skip link")
    keys.page.keyboard.press("Enter")
    assert keys.active()["id"] == "main"

    keys.tab_until(lambda e: e["tag"] == "button" and e["formKind"] == "before", "the start button")
    keys.assert_focus_visible("start button")
    keys.activate()
    assert walk.path(keys.page) == "/q/p_help"

    # Continue without answering: the error summary links to the question.
    keys.tab_until(lambda e: e["value"] == "next", "the Continue button")
    keys.activate()
    assert keys.page.locator(".error-summary").is_visible()
    # The error summary has the focus (autofocus, no script): its link is the next Tab.
    assert keys.active()["id"] == "error-summary"
    link = keys.press("Tab")
    assert link["href"].startswith("#f-"), link
    keys.assert_focus_visible("link of the error summary")
    keys.page.keyboard.press("Enter")
    target = keys.active()
    assert target["type"] == "radio" and "#" + target["id"] == link["href"], target
    keys.assert_focus_visible("radio button reached from the error summary")
    chosen = keys.press("Space")
    assert chosen["checked"]
    # An arrow moves to (and chooses) the next option; Shift+Tab comes back from the button.
    moved = keys.press("ArrowDown")
    assert moved["checked"] and moved["id"] != chosen["id"]
    button = keys.press("Tab")
    assert button["value"] == "next", button
    back = keys.press("Shift+Tab")
    assert back["id"] == moved["id"], back
    keys.press("Tab")
    keys.activate()

    pages = 1
    while walk.path(keys.page).startswith("/q/"):
        keys.answer_page()
        pages += 1
        assert pages < 40, "the questionnaire never reached the check page"
    assert walk.path(keys.page) == "/check"
    assert pages >= 12
    send_from_check_page(keys)

    assert walk.path(keys.page) == "/done"
    code = walk.code_on_page(keys.page)
    assert CODE_PATTERN.match(code)
    assert live_server.forms_of(code) == {"before": "submitted"}
    answers = live_server.answers_of(code, "before")
    assert answers["ASSIST"] == ("mediateur",)  # chosen with Space, then ArrowDown
    assert {"COMFORT", "T01", "T15", "DEVICES"} <= answers.keys()
    assert len(keys.focus_checks) >= 5


def test_retrospective_questionnaire_with_the_keyboard_only(
    new_context: ContextFactory, walk: Journey, live_server: LiveServer
) -> None:
    keys = Keyboard(new_context().new_page())
    keys.page.goto(f"/s/{SLUG}")
    keys.tab_until(lambda e: e["tag"] == "button" and e["formKind"] == "retro", "retro button")
    keys.activate()
    pages = 0
    while walk.path(keys.page).startswith("/q/"):
        keys.answer_page(number="4", text="Merci beaucoup.")
        pages += 1
        assert pages < 40, "the questionnaire never reached the check page"
    send_from_check_page(keys)
    assert walk.path(keys.page) == "/done"
    code = walk.code_on_page(keys.page)
    assert live_server.forms_of(code) == {"retro": "submitted"}
    answers = live_server.answers_of(code, "retro")
    # The light retrospective form: comfort and every task before and today, and progress.
    assert {"COMFORT_PRE", "COMFORT", "PROGRESS", "T01_PRE", "T01", "T15_PRE", "T15"} <= (
        answers.keys()
    )


def test_the_display_choice_with_the_keyboard_only(new_context: ContextFactory) -> None:
    """Large text, then high contrast, chosen with Tab and Enter; the choice stays."""
    keys = Keyboard(new_context().new_page())
    keys.page.goto(f"/s/{SLUG}")
    for mode in ("large", "contrast"):
        keys.page.keyboard.press("Escape")
        keys.tab_until(lambda e, mode=mode: e["href"] == f"?display={mode}", f"the {mode} link")
        keys.assert_focus_visible(f"display link {mode}")
        keys.activate()
        assert keys.page.locator("html").get_attribute("class") == f"display-{mode}"
        assert keys.active()["tag"] == "body"  # a new page: Tab starts again from the top
    keys.page.goto("/code")
    assert keys.page.locator("html").get_attribute("class") == "display-contrast"


def test_a_followup_months_later_with_the_keyboard_only_at_320_px(
    new_context: ContextFactory, walk: Journey, live_server: LiveServer
) -> None:
    """On a narrow phone (320 CSS px): the code typed in, the follow-up answered and sent with
    the keyboard only; no page scrolls sideways."""
    code = live_server.seed_followup_open()
    keys = Keyboard(new_context(viewport={"width": 320, "height": 640}).new_page())
    keys.page.goto("/code")
    keys.tab_until(lambda e: e["id"] == "code", "the code field")
    keys.page.keyboard.type(code)
    keys.activate()
    assert walk.path(keys.page) == "/q/p_help"  # straight to the follow-up

    def no_sideways_scroll() -> None:
        width = keys.page.evaluate("document.documentElement.scrollWidth")
        assert width <= 320, f"{keys.page.url} is {width} px wide at 320 px"

    pages: list[str] = []
    while walk.path(keys.page).startswith("/q/"):
        pages.append(walk.path(keys.page))
        no_sideways_scroll()
        keys.answer_page()
        assert len(pages) < 30, "the follow-up never reached the check page"
    assert "/q/p_still_use" in pages and "/q/p_lost" in pages and "/q/p_age" not in pages
    no_sideways_scroll()
    send_from_check_page(keys)
    assert walk.path(keys.page) == "/done"
    no_sideways_scroll()
    assert live_server.forms_of(code) == {
        "before": "submitted",
        "after": "submitted",
        "followup": "submitted",
    }
    answers = live_server.answers_of(code, "followup")
    assert {"STILL_USE", "HELP_AGAIN", "LOST", "COMFORT", "T01", "T15"} <= answers.keys()
    # The summary now has its third point, reached with the keyboard from the done page.
    keys.tab_until(lambda e: e["href"].endswith("/summary"), "the summary link")
    keys.activate()
    assert walk.path(keys.page) == "/summary"
    assert keys.page.get_by_text("Quelques mois après").first.is_visible()
    no_sideways_scroll()
