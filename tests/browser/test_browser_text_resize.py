"""Large text on a narrow screen (WCAG 2.2 AA 1.4.4 Resize text, 1.4.10 Reflow, 1.4.12 Text
spacing; RGAA 10.4, 10.11, 10.12), on a representative set of pages.

Each page is checked at 320 CSS px wide (a phone, or a 640 px window at 200 % page zoom) with
text at 200 % (a root font size of 200 %, and separately the browser's own font size doubled)
and with the text spacing of WCAG 1.4.12 (`checks.large_text_problems`): the page never
scrolls sideways (a data table may scroll inside its own box) and nothing is cut off. The
route suite (test_browser_routes.py) checks every page at 320 px and the journey's pages at
200 % on a wide screen; the pass over every page in these conditions is in
docs/accessibility.md. The README's picture of a question with text at 200 % on a phone
comes from the French journey here:

    SELFCHECK_SCREENSHOTS=docs/screenshots .venv/bin/pytest tests/browser -k "journey_with_large"
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import FloatRect, Page, expect

from selfcheck.platform.models import Role
from tests.browser import checks
from tests.browser.routes import Visit, _print_batch, ensure_accounts, unknown_code
from tests.browser.support import (
    SCREENSHOTS_DIR,
    SLUG,
    AxeAudit,
    ContextFactory,
    Journey,
    LiveServer,
)

pytestmark = pytest.mark.browser

Step = tuple[str, Callable[[Visit], None]]


def _question_error(v: Visit) -> None:
    v.walk.next(v.page)
    expect(v.page.locator(".error-summary")).to_be_visible()


def _unknown_code(v: Visit) -> None:
    v.goto("/code")
    v.page.locator("#code").fill(unknown_code())
    v.submit_main_form()
    expect(v.page.locator("#code-error")).to_be_visible()


def _walk_and_send(v: Visit) -> None:
    v.goto("/q/p_help")
    v.walk.walk(v.page)
    v.walk.submit(v.page)
    assert v.walk.path(v.page) == "/done", v.page.url


def _start(form: str, wording: str = "standard") -> Callable[[Visit], None]:
    def reach(v: Visit) -> None:
        v.goto(f"/s/{SLUG}?wording={wording}")
        v.walk.start(v.page, form)

    return reach


# The beneficiary: the pages with the longest words and the widest parts (pictograms beside
# answers, the code, buttons side by side, the summary's chart), standard and easy-read.
JOURNEY: tuple[Step, ...] = (
    ("home", lambda v: v.goto("/")),
    ("start page", lambda v: v.goto(f"/s/{SLUG}")),
    ("start page, easy-read", lambda v: v.goto(f"/s/{SLUG}?wording=easy")),
    ("first question", _start("before")),
    ("a required answer missing", _question_error),
    ("answers with pictograms", lambda v: v.goto("/q/p_devices")),
    ("check page", lambda v: v.goto("/check")),
    ("done page", _walk_and_send),
    ("progress summary", lambda v: v.goto("/summary")),
    ("code page, unknown code", _unknown_code),
    ("retrospective: first question, easy-read", _start("retro", "easy")),
    ("retrospective: a today screen", lambda v: v.goto("/q/p_comfort_today")),
    ("privacy notice", lambda v: v.goto("/privacy")),
    ("error page (404)", lambda v: v.goto("/pas-de-page-ici", 404)),
)


def _as(role: Role, url: str) -> Callable[[Visit], None]:
    def reach(v: Visit) -> None:
        if v.data.get("role") != role:
            v.sign_in(role)
            v.data["role"] = role
        # The dashboard answers 422 while the area has too few answers (the live server's
        # data depends on the tests run before): a page all the same.
        response = v.page.goto(url)
        assert response is not None and response.status < 500, url

    return reach


# Staff and evaluators: forms with filters, wide tables (reflowed or in their own box), a
# progress bar, the code typed in, the dashboard.
STAFF: tuple[Step, ...] = (
    ("sign-in", lambda v: v.goto(f"/staff/login?lang={v.lang}")),
    ("staff home", _as(Role.PLATFORM_ADMIN, "/staff/")),
    ("follow-up list", _as(Role.PLATFORM_ADMIN, "/staff/people/")),
    ("audit trail", _as(Role.PLATFORM_ADMIN, "/staff/audit")),
    ("print page", _as(Role.PLATFORM_ADMIN, "/staff/print")),
    ("job page", _print_batch),
    ("administration: structures", _as(Role.PLATFORM_ADMIN, "/staff/admin/structures")),
    ("paper entry", _as(Role.MEDIATOR, "/staff/entry/")),
    ("team", _as(Role.STRUCTURE_ADMIN, "/staff/team/")),
    ("evaluator dashboard", _as(Role.EVALUATOR, "/evaluate/")),
    ("exports", _as(Role.EVALUATOR, "/evaluate/exports/")),
    ("exports: codebook", _as(Role.EVALUATOR, "/evaluate/exports/codebook")),
)


def _play(steps: tuple[Step, ...], v: Visit, audit: AxeAudit | None, problems: list[str]) -> None:
    for name, reach in steps:
        reach(v)
        if audit is not None:  # the fixes keep axe-core clean at 320 px
            audit.check(v.page, f"[{v.lang}] {name}")
        found = checks.large_text_problems(v.page)
        problems += [f"[{v.lang}] {name} ({v.page.url}): {problem}" for problem in found]


def _fail(problems: list[str]) -> None:
    if problems:
        pytest.fail(f"{len(problems)} problems:\n" + "\n".join(problems), pytrace=False)


def _screenshot(page: Page, path: Path) -> None:
    """The README's picture: answers with pictograms, text at 200 %, on a 320 px phone (1,100
    px from the question's heading: the question and its first answers)."""
    page.set_viewport_size(checks.PHONE)
    page.evaluate("document.documentElement.style.fontSize = '200%'")
    try:
        top: float = page.evaluate(
            "document.querySelector('main h1').getBoundingClientRect().top + window.scrollY"
        )
        clip: FloatRect = {"x": 0, "y": max(0, top - 16), "width": 320, "height": 1100}
        page.screenshot(
            path=str(path), full_page=True, clip=clip, animations="disabled", caret="hide"
        )
    finally:
        page.evaluate("document.documentElement.style.fontSize = ''")
    assert path.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_the_journey_with_large_text_on_a_narrow_screen(
    lang: str,
    new_context: ContextFactory,
    live_server: LiveServer,
    audit: AxeAudit,
    tmp_path: Path,
) -> None:
    page: Page = new_context(viewport=checks.PHONE).new_page()
    visit = Visit(page, live_server, lang, Journey(live_server))
    visit.goto(f"/?lang={lang}")
    problems: list[str] = []
    assert JOURNEY[5][0] == "answers with pictograms"
    _play(JOURNEY[:6], visit, audit, problems)
    if lang == "fr":
        folder = Path(SCREENSHOTS_DIR) if SCREENSHOTS_DIR else tmp_path
        _screenshot(page, folder / "fr-2c-question-large-text-phone.png")
    _play(JOURNEY[6:], visit, audit, problems)
    problems += audit.problems
    _fail(problems)


@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_staff_pages_with_large_text_on_a_narrow_screen(
    lang: str, new_context: ContextFactory, live_server: LiveServer
) -> None:
    ensure_accounts(live_server)
    page: Page = new_context(viewport=checks.PHONE).new_page()
    visit = Visit(page, live_server, lang, Journey(live_server))
    visit.goto(f"/?lang={lang}")
    problems: list[str] = []
    _play(STAFF, visit, None, problems)
    _fail(problems)
