"""Full-page screenshots of the main screens, for the README (docs/screenshots/).

By default they go to a temporary folder, so that running the tests never changes tracked
files; refresh the README's pictures with:

    SELFCHECK_SCREENSHOTS=docs/screenshots .venv/bin/pytest tests/browser -k screenshots
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from selfcheck.platform.models import Role
from selfcheck.questionnaire.model import Wording
from tests.browser.routes import ACCOUNTS, STAFF_PASSWORD, ensure_accounts, seed_paper_person
from tests.browser.support import SCREENSHOTS_DIR, SLUG, ContextFactory, Journey, LiveServer
from tests.browser.test_browser_summary import beginner

pytestmark = pytest.mark.browser

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VIEWPORT = {"width": 900, "height": 800}
# Plausible answers for the pictures: a retired woman of 70 or more, mixed skills.
PREFERRED = {"ASSIST": 1, "AGE": 6, "GENDER": 0, "STATUS": 0, "DIPLOMA": 2, "AREA": 1, "COMFORT": 1}


def plausible(name: str, count: int) -> int:
    return PREFERRED.get(name, sum(map(ord, name)) % min(count, 4))


def test_screenshots_of_the_main_screens(
    new_context: ContextFactory, walk: Journey, live_server: LiveServer, tmp_path: Path
) -> None:
    folder = Path(SCREENSHOTS_DIR) if SCREENSHOTS_DIR else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    taken: list[Path] = []

    def shoot(page: Page, name: str) -> None:
        page.wait_for_load_state("load")
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
        taken.append(path)

    page = new_context(viewport=VIEWPORT).new_page()
    page.goto(f"/s/{SLUG}")
    shoot(page, "fr-1-start")
    walk.start(page, "before")

    def each_page(page: Page) -> None:
        if walk.path(page) == "/q/p_comfort":
            walk.next(page)
            expect(page.locator(".error-summary")).to_be_visible()
            shoot(page, "fr-3-question-with-error")
        elif walk.path(page) == "/q/p_tasks_device":
            shoot(page, "fr-2-question")

    walk.walk(page, each_page, plausible)
    shoot(page, "fr-4-check")
    walk.submit(page)
    shoot(page, "fr-5-done")

    walk.see_progress(page, live_server.seed("pre_post", seed=9))  # a realistic mix
    expect(page.locator(".summary-headline__message")).to_be_visible()
    shoot(page, "fr-6-summary-before-after")

    # A beginner who moved every task one rung, in both wordings (issue 12).
    for wording, name in (
        (Wording.STANDARD, "fr-6b-summary-beginner"),
        (Wording.EASY, "fr-6c-summary-beginner-easy"),
    ):
        shown = new_context(viewport=VIEWPORT).new_page()
        shown.goto("/")
        walk.see_progress(shown, beginner(live_server, wording))
        expect(shown.locator(".summary-headline__message")).to_be_visible()
        shoot(shown, name)

    mobile = new_context(viewport={"width": 320, "height": 640}).new_page()
    mobile.goto(f"/s/{SLUG}")
    walk.start(mobile, "before")
    mobile.goto("/q/p_tasks_device")
    shoot(mobile, "fr-2-question-phone")

    english = new_context(viewport=VIEWPORT).new_page()
    english.goto(f"/s/{SLUG}?lang=en")
    expect(english.locator("html")).to_have_attribute("lang", "en")
    shoot(english, "en-1-start")

    for path in taken:
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000, path


def test_screenshots_of_the_follow_up_search(
    new_context: ContextFactory, live_server: LiveServer, tmp_path: Path
) -> None:
    """Issue 14: a mediator finds their people by part of a code; desktop and 320 px."""
    folder = Path(SCREENSHOTS_DIR) if SCREENSHOTS_DIR else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    ensure_accounts(live_server)
    seeded = [seed_paper_person(live_server, weeks_ago=w, after=False)[0] for w in (2, 9, 14)]
    seeded += [seed_paper_person(live_server, weeks_ago=12)[0]]
    seeded += [live_server.seed(kind, seed=n) for n, kind in enumerate(["before_only"] * 3)]
    part = seeded[1][:3]
    taken: list[Path] = []
    for width, name in ((1100, "fr-9-followup-search"), (320, "fr-9b-followup-search-phone")):
        page = new_context(viewport={"width": width, "height": 900}).new_page()
        page.goto("/staff/login?lang=fr")
        page.locator("#email").fill(ACCOUNTS[Role.MEDIATOR])
        page.locator("#password").fill(STAFF_PASSWORD)
        with page.expect_navigation():
            page.locator("main form button[type=submit]").first.click()
        page.goto("/staff/people/?show=before_only&sort=oldest")
        expect(page.locator("#people-caption")).to_be_visible()
        page.goto("/staff/people/")
        page.locator("#q").fill(part)  # the search is a POST: the code stays out of the address
        with page.expect_navigation():
            page.locator("form.filters button[type=submit]").click()
        assert page.url.endswith("/staff/people/?search=1"), page.url
        expect(page.locator(".code-link").first).to_be_visible()
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
        taken.append(path)
        assert page.evaluate("document.documentElement.scrollWidth") <= width, name
    for path in taken:
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000, path


def test_screenshot_of_a_retro_today_screen(
    new_context: ContextFactory, walk: Journey, tmp_path: Path
) -> None:
    """Issue 12: the light retrospective form on a 320 px phone, easy-read: "today" for a
    domain's tasks, the person's "before" answer beside each."""
    folder = Path(SCREENSHOTS_DIR) if SCREENSHOTS_DIR else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page = new_context(viewport={"width": 320, "height": 640}).new_page()
    page.goto(f"/s/{SLUG}?wording=easy")
    walk.start(page, "retro")

    def before_then_today(name: str, count: int) -> int:
        return {"T04_PRE": 1, "T05_PRE": 0, "T04": 2, "T05": 1}.get(name, plausible(name, count))

    def until_today(current: Page) -> None:
        if walk.path(current) == "/q/p_tasks_information_today":
            raise _Arrived

    with pytest.raises(_Arrived):
        walk.walk(page, until_today, before_then_today)
    expect(page.locator(".earlier")).to_have_count(2)
    path = folder / "fr-2b-retro-today-phone.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
    assert path.read_bytes().startswith(PNG_SIGNATURE)


class _Arrived(Exception):
    """The walk reached the screen to photograph."""
