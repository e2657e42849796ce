"""The progress summary in a real browser (issue 12): a beginner who moved every task one rung
sees it, in French and Arabic, standard and easy-read, on a 320 px phone and a desktop; chart
text is never clipped; blank task rows are named once."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import expect

from selfcheck.journey import operations as journey
from selfcheck.questionnaire.model import FormKind, Role, Wording
from tests.browser.support import SLUG, AxeAudit, ContextFactory, Journey, LiveServer
from tests.support import fill_response

pytestmark = pytest.mark.browser

PHONE = {"width": 320, "height": 640}
DESKTOP = {"width": 1280, "height": 900}

# Every <text> of every SVG inside its viewBox (estimated generously: 0.62 em per character),
# every SVG's drawn box inside the page, and the page never wider than the screen.
LAYOUT_JS = """() => {
  const problems = [];
  for (const svg of document.querySelectorAll('svg')) {
    const box = svg.viewBox && svg.viewBox.baseVal;
    for (const t of svg.querySelectorAll('text')) {
      const b = t.getBBox();
      const size = parseFloat(getComputedStyle(t).fontSize) || 16;
      const guess = t.textContent.length * size * 0.62;
      if (box && box.width && (b.x < box.x || b.x + Math.max(b.width, guess) > box.x + box.width))
        problems.push('clipped: ' + t.textContent);
    }
    const r = svg.getBoundingClientRect();
    if (r.right > document.documentElement.clientWidth + 1 || r.left < -1)
      problems.push('svg outside the screen');
  }
  if (document.documentElement.scrollWidth > document.documentElement.clientWidth + 1)
    problems.push('page wider than the screen: ' + document.documentElement.scrollWidth);
  return problems;
}"""


def beginner(server: LiveServer, wording: Wording) -> str:
    """15 tasks moved from "not yet" to "with help"; returns the person's code."""
    definition = server.definition
    database = server.app.extensions["selfcheck.platform.db"]
    tasks = [item.code for item in definition.task_items()]
    comfort = definition.item_with_role(Role.COMFORT)
    progress = definition.item_with_role(Role.PROGRESS)
    assert comfort is not None and progress is not None
    with database.session() as session:
        structure = journey.find_structure(session, SLUG)
        assert structure is not None
        first = journey.start_response(
            session,
            definition,
            structure,
            FormKind.BEFORE,
            "fr",
            secrets.token_urlsafe(16),
            wording=wording,
        )
        answers = dict.fromkeys(tasks, ("1",)) | {comfort.code: ("1",)}
        required = {
            v.code: (v.item.options[0].code,)
            for v in definition.variables(FormKind.BEFORE)
            if v.item.required and v.code not in answers and v.item.options
        }
        fill_response(session, definition, first, {**required, **answers})
        assert journey.submit(session, definition, first)
        after = journey.start_after(session, definition, first.beneficiary, "fr")
        answers = dict.fromkeys(tasks, ("2",)) | {
            comfort.code: ("2",),
            progress.code: (progress.options[2].code,),
        }
        required = {
            v.code: (v.item.options[0].code,)
            for v in definition.variables(FormKind.AFTER)
            if v.item.required and v.code not in answers and v.item.options
        }
        fill_response(session, definition, after, {**required, **answers})
        assert journey.submit(session, definition, after)
        code: str = first.beneficiary.code
        session.commit()
    return code


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["320px", "desktop"])
@pytest.mark.parametrize("wording", list(Wording))
@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_a_beginner_sees_15_tasks_progressed(
    new_context: ContextFactory,
    live_server: LiveServer,
    walk: Journey,
    audit: AxeAudit,
    viewport: dict[str, int],
    wording: Wording,
    lang: str,
) -> None:
    code = beginner(live_server, wording)
    page = new_context(viewport=viewport).new_page()
    page.goto(f"/?lang={lang}")
    walk.enter_code(page, code)
    # The follow-up is months away: the code first says when to come back, then the progress.
    assert walk.path(page) == "/come-back"
    page.locator("main a.button[href$='/summary']").click()
    assert walk.path(page) == "/summary"
    expect(page.locator("html")).to_have_attribute("lang", lang)
    headline = page.locator(".summary-headline__message")
    expect(headline).to_be_visible()
    assert re.search(r"\b15\b.*\b15\b", headline.inner_text()), headline.inner_text()
    main = page.locator("main")
    assert not re.search(r"(^|\D)0 (chose|marche)", main.inner_text())
    # Each task once: one list of 15, under "not yet" -> "with help" and their pictograms.
    expect(page.locator(".task-group__tasks li")).to_have_count(15)
    expect(page.locator(".task-group__answers svg.picto")).to_have_count(2)
    if viewport is PHONE:
        # Short: the progress blocks end within three 320x640 screens (1,874 px measured in
        # French, standard wording; the whole page was about 5,700 px long before).
        bottom = page.evaluate(
            "Math.max(...[...document.querySelectorAll('main .summary-block')]"
            ".map(e => e.getBoundingClientRect().bottom + scrollY))"
        )
        assert bottom <= 3 * PHONE["height"], bottom
    # The rungs chart, folded under its one-line lead: 15 rungs out of 45 today, in words.
    expect(page.locator(".rungs")).to_be_hidden()
    page.locator(".rungs-block__toggle").click()
    expect(page.locator(".rungs")).to_be_visible()
    assert "15" in page.locator("#chart-summary").inner_text()
    assert page.evaluate(LAYOUT_JS) == []
    if viewport is PHONE:
        size = page.locator(".rungs__value").first.evaluate(
            "e => parseFloat(getComputedStyle(e).fontSize)"
        )
        assert size >= 16
    easy_label = live_server.definition.in_wording(Wording.EASY).item("T03").label
    if lang == "fr":
        text = page.locator("main").inner_text()
        assert (easy_label in text) is (wording is Wording.EASY)
        assert "Bravo" in text  # the person felt "a little" progress: no contradiction
    audit.check(page, f"summary {lang} {wording} {viewport['width']}")
    audit.assert_clean()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["320px", "desktop"])
@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_blank_task_rows_are_named_once(
    new_context: ContextFactory,
    live_server: LiveServer,
    walk: Journey,
    audit: AxeAudit,
    viewport: dict[str, int],
    lang: str,
) -> None:
    page = new_context(viewport=viewport).new_page()
    page.goto(f"/s/{SLUG}?lang={lang}")
    walk.start(page, "before")
    page.goto("/q/p_tasks_device")
    page.locator(Journey.NEXT).click()
    page.wait_for_load_state("load")
    alert = page.locator(".notice[role=alert]")
    expect(alert).to_be_visible()
    assert alert.locator("li").count() == 3
    assert page.evaluate(LAYOUT_JS) == []
    audit.check(page, f"blank task rows warned {lang} {viewport['width']}")
    page.locator(Journey.NEXT).click()
    page.wait_for_load_state("load")
    assert walk.path(page) != "/q/p_tasks_device"
    audit.assert_clean()


@pytest.mark.parametrize("display", ["standard", "large_contrast"])
@pytest.mark.parametrize("wording", list(Wording))
@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_on_a_320px_phone_the_question_is_on_the_first_screen(
    new_context: ContextFactory,
    walk: Journey,
    audit: AxeAudit,
    display: str,
    wording: Wording,
    lang: str,
) -> None:
    page = new_context(viewport=PHONE).new_page()
    page.goto(f"/s/{SLUG}?lang={lang}&wording={wording}&display={display}")
    walk.start(page, "before")
    page.goto("/q/p_tasks_device")
    if display == "standard":
        # Large text at 150 % still puts the heading first, but not the whole screen's budget.
        box = page.locator("h1").bounding_box()
        assert box is not None and box["y"] + box["height"] <= PHONE["height"], box
    expect(page.locator(".site-header .languages")).to_be_hidden()
    link = page.locator(".settings-link")
    expect(link).to_be_visible()
    assert page.evaluate(LAYOUT_JS) == []
    audit.check(page, f"phone question {lang} {wording} {display}")
    link.click()
    page.wait_for_load_state("load")
    assert walk.path(page) == "/reglages"
    audit.check(page, f"choice page {lang}")
    page.locator("main a[href$='display=large_contrast']").click()
    page.wait_for_load_state("load")
    assert walk.path(page) == "/q/p_tasks_device"
    assert page.locator("html").get_attribute("class") == "display-large display-contrast"
    audit.assert_clean()
