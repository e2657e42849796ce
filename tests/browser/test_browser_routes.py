"""Every route, in every configured language, with its error states: WCAG 2.2 AA in Chromium.

The pages come from tests/browser/routes.py, a table checked against `app.url_map` (an
endpoint missing from it fails `test_every_endpoint_has_a_scene` with its name). Each page
reached is checked for:
- axe-core, WCAG 2.0/2.1/2.2 A and AA rules: no violation at all;
- one h1, header/main/footer landmarks, the skip link first, the accessibility statement
  linked in the footer, radio buttons in fieldsets with legends;
- form error states: the title starts with "Erreur" (in the page's language) and every link of
  the error summary leads to a field of the page;
- target sizes: 44 x 44 CSS px on the beneficiary journey, 24 x 24 elsewhere;
- reflow: no horizontal scroll at 320 CSS px;
- on the beneficiary journey, text at 200 %: no horizontal scroll, no text cut off.
Every question page met on the way gets the same checks (axe-core and text at 200 % in the
reference language). Error states are played in every language; further examples of the same
error (`variant=True`) only in the reference language, to keep the suite fast.

What each language checks. axe-core was about half of the suite's time (a profile of the
French pass on 2026-12-07, load 8: 207 s of 425 s, 203 runs at ~1 s each; navigation 39 s,
reflow and text at 200 % 37 s, structure and targets 8 s). Its WCAG A/AA rules read the
markup, the ARIA attributes, the colours and the accessible names, which come from the same
templates and stylesheet in every language. So:
- the reference language (fr) and every right-to-left language (ar: the direction changes the
  layout, the order and the mirrored styles) run axe-core on every page;
- the other languages (en, es) run it on the first page of each sequence (the translated
  header, language links and footer, and any markup a translation carried, get a real audit)
  and every check of their own on every page: what a translation can break is checked there
  wherever it can break it: the html lang attribute, the error titles ("Error: …") and error
  summaries, target sizes (a longer label), reflow at 320 px and text at 200 % on the
  beneficiary journey (longer words). An accessible name cannot become empty through a
  translation: gettext shows the French msgid for an empty msgstr, and
  `scripts/translations check` requires every message translated.
- the staff's side (sign-in, back office, data entry, administration, the evaluator's pages)
  is played in fr, ar and the left-to-right translation whose texts are longest (es); the
  other translations (en) play the beneficiary's side only (journeys, follow-up, error
  pages). What their checks look for on a page (text running off a 320 px screen, a target
  made smaller, a missing lang) comes first with the longest texts, and the staff pages'
  lang attribute, error titles and summaries come from the same templates as the journey's.
The checks of a page other than axe-core run in five round trips and three viewport changes
(`checks.page_problems`; tests/browser/test_browser_checks.py shows on pages broken on purpose
that it finds exactly what the separate checks find).
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from flask import Flask
from playwright.sync_api import Page

from selfcheck import create_app
from selfcheck.platform.i18n import TRANSLATIONS_DIR as TRANSLATIONS
from selfcheck.platform.i18n import text_direction
from selfcheck.platform.models import Role
from tests.browser import checks
from tests.browser.routes import (
    SEQUENCES,
    Scene,
    Visit,
    auto_pages,
    covered_endpoints,
    ensure_accounts,
    error_prefix,
    missing_endpoints,
    stale_entries,
)
from tests.browser.support import AxeAudit, ContextFactory, Journey, LiveServer

pytestmark = pytest.mark.browser


def configured_languages() -> tuple[str, ...]:
    """The languages of an app built as the live server's is (SELFCHECK_LANGUAGES)."""
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            {"DATABASE_URL": f"sqlite:///{folder}/x.db", "INSTANCE_PATH": Path(folder)}
        )
        languages: tuple[str, ...] = app.config["SELFCHECK_LANGUAGES"]
        app.extensions["selfcheck.platform.db"].dispose()
        return languages


# Set by hand, the route suite plays the reference language only (a quicker run while
# working); scripts/test plays every language, once (on PostgreSQL when it is there).
ONLY_REFERENCE_ENV = "SELFCHECK_ROUTES_REFERENCE_ONLY"


def languages_to_play() -> tuple[str, ...]:
    languages = configured_languages()
    if os.environ.get(ONLY_REFERENCE_ENV):
        return languages[:1]
    return languages


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "lang" in metafunc.fixturenames:
        metafunc.parametrize("lang", languages_to_play())


def test_every_endpoint_has_a_scene(live_server: LiveServer) -> None:
    missing = missing_endpoints(live_server.app)
    assert not missing, (
        "endpoints with no page in tests/browser/routes.py (add a Scene, or a NOT_PAGES "
        f"entry saying where they are checked): {', '.join(missing)}"
    )
    stale = stale_entries(live_server.app)
    assert not stale, f"tests/browser/routes.py names endpoints the app does not have: {stale}"


@functools.cache
def longest_translation() -> str | None:
    """The left-to-right translation whose texts are longest in all (the sum of its
    catalog's translations; es at 79,900 characters against en's 74,100 on 2026-12-07)."""
    lengths: dict[str, int] = {}
    for path in sorted(TRANSLATIONS.glob("*/LC_MESSAGES/messages.po")):
        lang = path.parent.parent.name
        if text_direction(lang) == "rtl":
            continue
        with path.open("rb") as file:
            catalog = read_po(file, locale=lang)
        lengths[lang] = sum(
            len(message.string[0] if isinstance(message.string, tuple) else message.string)
            for message in catalog
            if message.id and message.string
        )
    return max(lengths, key=lambda lang: lengths[lang]) if lengths else None


def staff_side(app: Flask, lang: str) -> bool:
    """The staff's side (sign-in, back office, data entry, administration, the evaluator's
    pages) in the languages with axe-core on every page, and in the longest left-to-right
    translation: what the others' own checks look for there (text running off a 320 px
    screen, a target made smaller) comes first with the longest texts (see the module's
    docstring); their beneficiary side is played whole."""
    return full_axe(app, lang) or lang == longest_translation()


def full_axe(app: Flask, lang: str) -> bool:
    """axe-core on every page in the reference language and in each right-to-left language;
    in the other languages on the first page of each sequence (see the module's docstring)."""
    return lang == app.config["BABEL_DEFAULT_LOCALE"] or text_direction(lang) == "rtl"


class Inspector:
    """Runs every check on a page and keeps the problems, to fail once with all of them."""

    def __init__(self, server: LiveServer, lang: str, audit: AxeAudit) -> None:
        self.lang = lang
        self.reference = lang == server.app.config["BABEL_DEFAULT_LOCALE"]
        self.full_axe = full_axe(server.app, lang)
        self.prefix = error_prefix(server.app, lang)
        self.audit = audit
        self.problems: list[str] = []
        self.reached: set[str] = set()
        self.pages = 0

    def inspect(
        self, page: Page, name: str, scene: Scene | None, axe: bool = True, zoom: bool = True
    ) -> None:
        self.pages += 1
        journey = scene.journey if scene else True
        if axe:
            self.audit.check(page, f"[{self.lang}] {name}")
        error = self.prefix if scene is not None and scene.error else None
        minimum = checks.JOURNEY_TARGET_MIN if journey else checks.TARGET_MIN
        found = checks.page_problems(page, self.lang, error, minimum, zoom=journey and zoom)
        self.problems += [f"[{self.lang}] {name} ({page.url}): {problem}" for problem in found]

    def sweep(self) -> Callable[[Page], None]:
        """For the question pages met while walking a form: the same checks, axe-core and
        text at 200 % in the reference language only."""

        def each(page: Page) -> None:
            name = f"question {Journey.path(page)}"
            self.inspect(page, name, None, axe=self.reference, zoom=self.reference)

        return each


# Answers every unanswered question of a page in one round trip (the first option, a number,
# a sentence), as Journey.answer does with a dozen: the suite walks three forms per language.
ANSWER_JS = """([number, text]) => {
  const names = new Set([...document.querySelectorAll("input.choice__input")].map(i => i.name));
  for (const name of names) {
    const all = [...document.querySelectorAll("input.choice__input")];
    const group = all.filter(i => i.name === name);
    if (!group.some(i => i.checked)) group[0].checked = true;
  }
  for (const box of document.querySelectorAll("input.input--number")) {
    if (!box.value) box.value = number;
  }
  for (const area of document.querySelectorAll("textarea")) if (!area.value) area.value = text;
}"""


class Sweeping(Journey):
    """A journey driver that inspects every question page it walks through."""

    def __init__(self, server: LiveServer, each: Callable[[Page], None]) -> None:
        super().__init__(server)
        self.each = each

    def walk(
        self,
        page: Page,
        on_page: Callable[[Page], None] | None = None,
        choose: Callable[[str, int], int] | None = None,
    ) -> list[str]:
        return super().walk(page, on_page or self.each, choose)

    @staticmethod
    def answer(
        page: Page,
        number: str = "3",
        text: str = "Merci pour votre aide.",
        choose: Callable[[str, int], int] | None = None,
    ) -> None:
        assert choose is None, "the route suite always picks the first option"
        page.evaluate(ANSWER_JS, [number, text])


def test_every_page_in_every_language(
    lang: str, new_context: ContextFactory, live_server: LiveServer, audit: AxeAudit
) -> None:
    inspector = Inspector(live_server, lang, audit)
    staff = staff_side(live_server.app, lang)
    for sequence in SEQUENCES:
        if sequence.staff and not staff:
            continue
        page = new_context().new_page()
        visit = Visit(page, live_server, lang, Sweeping(live_server, inspector.sweep()))
        visit.goto(f"/?lang={lang}")
        sequence.setup(visit)
        first = True
        for scene in sequence.scenes:
            if scene.variant and not inspector.reference:
                continue
            try:
                scene.reach(visit)
            except Exception as error:  # the rest of the sequence depends on this scene
                inspector.problems.append(
                    f"[{lang}] {sequence.name}: could not reach {scene.name!r}: "
                    f"{type(error).__name__}: {str(error)[:400]}"
                )
                break
            inspector.reached.add(scene.endpoint)
            axe = inspector.full_axe or first
            inspector.inspect(page, f"{scene.endpoint}: {scene.name}", scene, axe=axe)
            first = False
        page.context.close()

    # The evaluator's screens, whatever they are when this runs.
    automatic = auto_pages(live_server.app) if staff else []
    if automatic:
        ensure_accounts(live_server)
        page = new_context().new_page()
        visit = Visit(page, live_server, lang, Journey(live_server))
        visit.sign_in(Role.EVALUATOR)
        first = True
        for endpoint, path in automatic:
            response = page.request.get(path)
            assert response.status < 500, f"{endpoint} {path}: {response.status}"
            if not response.headers.get("content-type", "").startswith("text/html"):
                continue
            visit.goto(path)
            inspector.reached.add(endpoint)
            scene = Scene(endpoint, path, lambda v: None)
            inspector.inspect(
                page, f"{endpoint} (evaluator)", scene, axe=inspector.full_axe or first
            )
            first = False

    unreached = covered_endpoints(staff) - inspector.reached
    assert not unreached or inspector.problems, f"never reached: {sorted(unreached)}"
    assert inspector.pages >= (60 if staff else 30), inspector.pages
    inspector.problems += audit.problems
    if inspector.problems:
        pytest.fail(
            f"{len(inspector.problems)} problems on {inspector.pages} pages in {lang!r}:\n"
            + "\n".join(inspector.problems),
            pytrace=False,
        )
