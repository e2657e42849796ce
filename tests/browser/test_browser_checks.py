"""The page checks of the route suite find what they are meant to find, on pages broken on
purpose, and the one-pass `checks.page_problems` (the route suite's) finds exactly what the
separate checks find (`structure_problems`, `target_problems`, `reflow_problems`,
`zoom_problems` and the html lang attribute), with the same messages."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.browser import checks
from tests.browser.support import ContextFactory

pytestmark = pytest.mark.browser

CLEAN = """<!doctype html><html lang="fr"><head><title>Bien</title></head><body>
<header><a href="#main" style="display:inline-block;min-width:44px;min-height:44px">Aller</a>
</header><main id="main"><h1>Titre</h1>
<form><fieldset><legend>Choix</legend><label style="display:block;min-height:44px">
<input type="radio" name="a" value="1"> Oui</label></fieldset>
<button style="min-width:44px;min-height:44px">Continuer</button></form></main>
<footer><a href="/accessibilite" style="display:inline-block;min-height:44px">Accessibilité</a>
</footer></body></html>"""

# Everything wrong at once: the lang, two h1, no header nor footer (so no statement link), a
# button first instead of the skip link, a radio button outside a fieldset, a fieldset with
# no legend, a stray alert, a tiny button, a block too wide for 320 px (and, in rem, for
# 1280 px once the text is at 200 %), text cut off by a fixed height at 200 %, an error
# title without its prefix and an error summary linking to nothing.
BROKEN = """<!doctype html><html lang="en"><head><title>Formulaire</title></head><body>
<main id="main"><button style="width:10px;height:10px;padding:0">x</button>
<h1>Un</h1><h1>Deux</h1>
<div class="error-summary" role="alert"><a href="#nowhere">Champ</a></div>
<div role="alert">ailleurs</div>
<fieldset><span>pas de légende</span></fieldset>
<input type="radio" name="b" value="1" id="b" style="margin:20px">
<label for="b" style="display:inline-block;min-height:44px;min-width:44px">Oui</label>
<div style="width:70rem">large</div>
<div id="cut" style="height:20px;overflow:hidden">un texte coupé à 200 %</div>
</main></body></html>"""


def separately(page: Page, lang: str, error: str | None, minimum: int, zoom: bool) -> list[str]:
    """The route suite's checks as they were, one after the other."""
    found: list[str] = []
    actual = page.locator("html").get_attribute("lang")
    if actual != lang:
        found.append(f"html lang={actual!r}")
    found += checks.structure_problems(page, error)
    found += checks.target_problems(page, minimum)
    found += checks.reflow_problems(page)
    if zoom:
        found += checks.zoom_problems(page)
    return found


def test_the_checks_find_each_problem_of_a_broken_page(new_context: ContextFactory) -> None:
    page = new_context().new_page()
    page.set_content(BROKEN)
    found = checks.page_problems(page, "fr", "Erreur", checks.JOURNEY_TARGET_MIN, zoom=True)
    expected = [
        "html lang='en'",
        "2 h1 elements",
        "landmarks",
        "not the skip link",
        "no link to the accessibility statement",
        "1 fieldset(s) without a first legend",
        "role=alert is for the error summary",
        "1 radio button(s) outside a fieldset",
        "does not start with 'Erreur'",
        "error summary links to nothing: ['#nowhere']",
        "targets under 44x44 px: button",
        "px wide at 320 px",
        "px wide; div",  # text at 200 %: the 70rem block at 1,120 px is now 2,240 px
        "text at 200 %: cut off in div#cut",
    ]
    for part in expected:
        assert any(part in problem for problem in found), (part, found)
    assert len(found) == len(expected), found
    assert page.viewport_size == checks.DEFAULT_VIEWPORT
    assert page.evaluate("document.documentElement.style.fontSize") == ""
    assert found == separately(page, "fr", "Erreur", checks.JOURNEY_TARGET_MIN, zoom=True)
    # Without the zoom (pages off the beneficiary journey), and 24 px targets.
    smaller = checks.page_problems(page, "fr", None, checks.TARGET_MIN, zoom=False)
    assert not any("200 %" in problem for problem in smaller)
    assert any("targets under 24x24 px: button" in problem for problem in smaller)
    assert smaller == separately(page, "fr", None, checks.TARGET_MIN, zoom=False)


def test_a_clean_page_has_no_problem(new_context: ContextFactory) -> None:
    page = new_context().new_page()
    page.set_content(CLEAN)
    assert checks.page_problems(page, "fr", None, checks.JOURNEY_TARGET_MIN, zoom=True) == []
    assert separately(page, "fr", None, checks.JOURNEY_TARGET_MIN, zoom=True) == []
