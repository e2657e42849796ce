"""axe-core on the export screens (export page, its error state, codebook, export log), in
French (every language in the route audit), and a keyboard-only journey: filter, choose a
format, download."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from selfcheck.platform.models import Role
from tests.browser.support import AxeAudit, ContextFactory, LiveServer
from tests.browser.test_browser_backoffice import ensure_accounts, sign_in

pytestmark = pytest.mark.browser

# The reference language only: the route audit (test_browser_routes.py) reaches these
# pages in every language, with axe-core on each of them in fr and ar and its own checks
# in the others (lang, error titles, target sizes, reflow).
LANGUAGES = ["fr"]
PEOPLE = 6  # at least k (5) people in the evaluator's department


@pytest.fixture(scope="module")
def exportable(live_server: LiveServer) -> LiveServer:
    ensure_accounts(live_server)
    for index in range(PEOPLE):
        live_server.seed("pre_post" if index % 2 else "retro", seed=100 + index)
    return live_server


def evaluator_page(new_context: ContextFactory, lang: str) -> Page:
    page = new_context().new_page()
    if lang == "en":
        page.goto("/?lang=en")
    sign_in(page, Role.EVALUATOR)
    return page


@pytest.mark.parametrize("lang", LANGUAGES)
def test_export_screens_are_accessible(
    lang: str, exportable: LiveServer, new_context: ContextFactory, audit: AxeAudit
) -> None:
    page = evaluator_page(new_context, lang)
    page.goto("/evaluate/exports/")
    expect(page.locator("form.export-form")).to_be_visible()
    audit.check(page, "export page")
    page.goto("/evaluate/exports/?structure=nowhere")
    expect(page.locator("#scope-error")).to_be_visible()
    audit.check(page, "export page: structure outside the grants")
    page.goto("/evaluate/exports/download?format=nonsense")
    expect(page.locator("#scope-error")).to_be_visible()
    audit.check(page, "export: unknown format")
    page.goto("/evaluate/exports/codebook")
    audit.check(page, "codebook (wide)")
    page.goto("/evaluate/exports/codebook?shape=long")
    audit.check(page, "codebook (long)")
    page.goto("/evaluate/exports/log")
    audit.check(page, "export log")
    audit.assert_clean()


def tab_to(page: Page, selector: str, limit: int = 80) -> None:
    """Press Tab until the focused element matches `selector` (keyboard only)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    text = page.locator("main").inner_text()
    raise AssertionError(f"{selector} never got the focus with Tab on {page.url}: {text[:600]}")


def test_keyboard_only_filter_then_download(
    exportable: LiveServer, new_context: ContextFactory, tmp_path: Path
) -> None:
    page = evaluator_page(new_context, "fr")
    page.goto("/evaluate/exports/")
    # The evaluator's own department: the whole scope, so no one is left out by the filter
    # (a filter leaving out 1 to k - 1 people of the scope is refused: differencing).
    tab_to(page, "#filter-department")
    page.keyboard.press("ArrowDown")
    tab_to(page, ".eval-filters button[type=submit]")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "department=" in page.url
    expect(page.locator("form.export-form")).to_be_visible()
    tab_to(page, "input[name=format]:checked")
    page.keyboard.press("ArrowDown")  # from XLSX to SPSS
    expect(page.locator("#export-format-sav")).to_be_checked()
    tab_to(page, "form.export-form button[type=submit]")
    with page.expect_navigation(timeout=180_000):  # a background job; PDF codebook, busy CI
        page.keyboard.press("Enter")
    assert "/staff/jobs/" in page.url  # the job's page: its status, then the file
    expect(page.locator("[role=status]")).to_be_visible()
    # The status has the focus (autofocus): the download link is the next Tab.
    expect(page.locator("#job-status")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("a[href$='/download']")).to_be_focused()
    with page.expect_download(timeout=60_000) as download_info:
        page.keyboard.press("Enter")
    download = download_info.value
    assert download.suggested_filename.endswith(".zip")
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    with zipfile.ZipFile(target) as bundle:
        assert "data.sav" in bundle.namelist()
