"""The light retrospective form in a real browser (issue 12): "before" for all the tasks of a
domain on one screen, then "today" on the next with the before answer beside each task, on a
320 px phone, in French and in Arabic, axe-clean, and without JavaScript."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from selfcheck.questionnaire.model import FormKind, Moment, Wording
from tests.browser.support import SLUG, AxeAudit, ContextFactory, Journey, LiveServer

pytestmark = pytest.mark.browser

PHONE = {"width": 320, "height": 640}


def choose(name: str, count: int) -> int:
    """Every task "not yet" before, "with help" today; the first answer elsewhere."""
    if re.fullmatch(r"T\d+_PRE", name):
        return 0
    return 1 if re.fullmatch(r"T\d+", name) else 0


@pytest.mark.parametrize(
    ("lang", "wording"), [("fr", Wording.STANDARD), ("ar", Wording.EASY)], ids=["fr", "ar-easy"]
)
def test_the_retro_journey_before_then_today(
    new_context: ContextFactory,
    live_server: LiveServer,
    walk: Journey,
    audit: AxeAudit,
    lang: str,
    wording: Wording,
) -> None:
    definition = live_server.definition
    screens = {s.code: s for s in definition.screens(FormKind.RETRO)}
    page = new_context(viewport=PHONE).new_page()
    page.goto(f"/s/{SLUG}?lang={lang}&wording={wording}")
    walk.start(page, "retro")

    def on_screen(current: Page) -> None:
        screen = screens[walk.path(current).removeprefix("/q/")]
        expect(current.locator("html")).to_have_attribute("lang", lang)
        # Never wider than the phone, never a table of radios: one fieldset per question.
        assert current.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1"
        )
        assert current.locator("main table").count() == 0
        questions = current.locator("main .question fieldset.fieldset")
        assert questions.count() == len(screen.items_for(FormKind.RETRO))
        if screen.moment is Moment.NOW:
            # The before answer beside each question, the ladder's pictogram beside a task's.
            expect(current.locator(".earlier")).to_have_count(questions.count())
            tasks = [i for i in screen.items_for(FormKind.RETRO) if i.competence]
            expect(current.locator(".earlier svg.picto")).to_have_count(len(tasks))
            expect(current.locator(".moment-title--now")).to_be_visible()
            if lang == "fr":
                said = " ".join(current.locator(".earlier").last.inner_text().split())
                assert said == "Avant, vous avez répondu : Je ne sais pas encore le faire", said
        elif screen.moment is Moment.PRE:
            expect(current.locator(".earlier")).to_have_count(0)
            expect(current.locator(".moment-title--pre")).to_be_visible()
        audit.check(current, f"retro {screen.code} {lang} {wording}")

    seen = walk.walk(page, on_screen, choose)
    assert seen == list(screens)
    assert len(seen) <= 14
    audit.check(page, f"retro check page {lang}")
    walk.submit(page)
    code = walk.code_on_page(page)

    # The same item codes as the before and after forms, "before" as CODE_PRE.
    answers = live_server.answers_of(code, "retro")
    assert set(answers) == {v.code for v in definition.variables(FormKind.RETRO)}
    for task in definition.task_items():
        assert answers[task.code + "_PRE"] == ("1",) and answers[task.code] == ("2",)

    # The summary counts the 15 tasks that went up a rung.
    walk.see_progress(page, code)
    headline = page.locator(".summary-headline__message")
    expect(headline).to_be_visible()
    assert re.search(r"\b15\b", headline.inner_text()), headline.inner_text()
    audit.check(page, f"retro summary {lang}")
    audit.assert_clean()


def test_the_retro_journey_works_without_javascript(
    new_context: ContextFactory, live_server: LiveServer, walk: Journey
) -> None:
    page = new_context(viewport=PHONE, java_script_enabled=False).new_page()
    page.goto(f"/s/{SLUG}")
    walk.start(page, "retro")
    seen = walk.walk(page, choose=choose)
    assert seen == [s.code for s in live_server.definition.screens(FormKind.RETRO)]
    assert page.locator("script").count() == 0
    walk.submit(page)
    answers = live_server.answers_of(walk.code_on_page(page), "retro")
    assert answers["COMFORT_PRE"] and answers["COMFORT"]
