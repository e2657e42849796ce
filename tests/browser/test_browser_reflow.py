"""Reflow (WCAG 1.4.10): at 320 CSS pixels wide, nothing scrolls sideways.

320 px is a phone, or a desktop screen zoomed to 400 %: people with low vision must be able
to read every page without scrolling in two directions.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.browser.support import SLUG, ContextFactory, Journey, LiveServer

pytestmark = pytest.mark.browser

WIDTH = 320
# The elements that stick out on the right, to say what to fix.
WIDEST_JS = """(limit) => [...document.querySelectorAll("body *")]
  .filter(e => e.getBoundingClientRect().right > limit + 0.5)
  .slice(0, 5)
  .map(e => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}.${[...e.classList].join(".")}`
            + ` (right edge ${Math.round(e.getBoundingClientRect().right)} px)`)"""


class Reflow:
    def __init__(self) -> None:
        self.checked: list[str] = []
        self.problems: list[str] = []

    def check(self, page: Page, name: str) -> None:
        width = page.evaluate("document.documentElement.scrollWidth")
        self.checked.append(name)
        if width > WIDTH:
            culprits = page.evaluate(WIDEST_JS, WIDTH)
            self.problems.append(f"{name} ({page.url}): {width} px wide; {', '.join(culprits)}")


def test_pages_reflow_at_320_css_pixels(
    new_context: ContextFactory, walk: Journey, live_server: LiveServer
) -> None:
    page = new_context(viewport={"width": WIDTH, "height": 640}).new_page()
    reflow = Reflow()
    page.goto("/")
    reflow.check(page, "home")
    page.goto(f"/s/{SLUG}")
    reflow.check(page, "start page")

    # The retrospective form has every kind of question: pairs, numbers, text, long lists.
    walk.start(page, "retro")
    walk.next(page)
    reflow.check(page, "question with errors")

    def each_page(page: Page) -> None:
        if walk.path(page) == "/q/p_comfort":
            walk.next(page)
            reflow.check(page, "paired question with errors")
        reflow.check(page, f"question {walk.path(page)}")

    walk.walk(page, each_page)
    reflow.check(page, "check page")
    walk.submit(page)
    reflow.check(page, "done page")
    page.goto("/summary")
    reflow.check(page, "summary (retrospective)")

    walk.enter_code(page, live_server.seed("pre_post", seed=7))
    reflow.check(page, "summary (before and after)")
    walk.enter_code(page, live_server.seed("before_only", seed=8))
    reflow.check(page, "welcome back")
    page.goto("/summary")
    reflow.check(page, "summary (starting point)")
    page.goto("/code")
    page.locator("#code").fill("K7M")
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    reflow.check(page, "code page with an error")

    assert len(reflow.checked) >= 25
    assert not reflow.problems, "horizontal scrolling at 320 px:\n" + "\n".join(reflow.problems)
