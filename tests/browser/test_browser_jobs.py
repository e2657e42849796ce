"""The job pages' unhappy ends, as a mediator sees them: a print batch that failed, an export
that failed, a file asked for after its expiry. In French and Arabic, at a desktop width and at
320 px: axe-core and the route suite's page checks (structure, targets, reflow); the message in
plain words, said once; then, keyboard only and with JavaScript off, the button that asks again
makes a new file (the test server runs jobs inside the request).

Round 20's users' pass never reached these states (the demo's worker was busy); the route
suite (routes.py) plays them too, in every language.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from playwright.sync_api import Page, ViewportSize, expect
from sqlalchemy import select

from selfcheck.platform.db import Database
from selfcheck.platform.models import Job, Role, StaffUser, utcnow
from tests.browser import checks
from tests.browser.support import AxeAudit, ContextFactory, LiveServer
from tests.browser.test_browser_backoffice import ACCOUNTS, ensure_accounts, sign_in

pytestmark = pytest.mark.browser

LANGUAGES = ["fr", "ar"]
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": checks.REFLOW_WIDTH, "height": 640}
SLOW = 180_000  # ms: signing in (a slow password hash) and printing on a shared busy machine


def _database(server: LiveServer) -> Database:
    database: Database = server.app.extensions["selfcheck.platform.db"]
    return database


def _print_two_blanks(page: Page) -> str:
    """A real batch (two blank forms: one alone is sent at once, no job) through the print
    page; its job's id."""
    page.goto("/staff/print")
    page.locator("#kind-blank").check()
    page.locator("#copies").fill("2")
    with page.expect_navigation(timeout=180_000):  # the job runs in this request here
        page.locator("main form[method=post] button[type=submit]").click(timeout=180_000)
    assert "/staff/jobs/" in page.url, page.url
    expect(page.locator("[role=status]")).to_contain_text("Votre fichier est prêt")
    return page.url.split("?")[0].rstrip("/").rsplit("/", 1)[1]


def _failed_copy(server: LiveServer, done_id: str, kind: str, error: str) -> str:
    """A failed job of the mediator with the parameters of `done_id` (so that asking again
    really prints), or with none for an export (shown only)."""
    with _database(server).session() as session:
        done = session.get(Job, done_id)
        assert done is not None
        user = session.scalars(
            select(StaffUser).where(StaffUser.email == ACCOUNTS[Role.MEDIATOR])
        ).one()
        job_id = secrets.token_hex(16)
        session.add(
            Job(
                id=job_id,
                kind=kind,
                user_id=user.id,
                params=done.params if kind == done.kind else "{}",
                status="failed",
                error=error,
                total=3,
                progress=1,
                finished_at=utcnow(),
            )
        )
        session.commit()
    return job_id


def _expire(server: LiveServer, job_id: str) -> None:
    with _database(server).session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.expires_at = utcnow() - timedelta(seconds=1)
        session.commit()


def _look(page: Page, lang: str, audit: AxeAudit, name: str) -> list[str]:
    """axe-core at a desktop width and at 320 px, and the route suite's page checks."""
    found = []
    for size in (DESKTOP, PHONE):
        page.set_viewport_size(size)
        audit.check(page, f"{name} at {size['width']} px")
    page.set_viewport_size(DESKTOP)
    found += [f"{name}: {p}" for p in checks.page_problems(page, lang, None, 24, zoom=True)]
    return found


def _tab_to(page: Page, selector: str, limit: int = 40) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.locator(f"{selector}:focus").count():
            return
    raise AssertionError(f"{selector} never got the focus with Tab on {page.url}")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_failed_and_expired_job_pages(
    lang: str, live_server: LiveServer, new_context: ContextFactory, audit: AxeAudit
) -> None:
    ensure_accounts(live_server)
    page = new_context().new_page()
    page.set_default_timeout(SLOW)
    sign_in(page, Role.MEDIATOR)
    done_id = _print_two_blanks(page)
    page.goto(f"/?lang={lang}")
    problems: list[str] = []

    # A print batch that failed: the reason, once, in words, and the button to try again.
    failed = _failed_copy(live_server, done_id, "print_batch", "failed")
    page.goto(f"/staff/jobs/{failed}")
    status = page.locator("[role=status]")
    expect(status).to_be_focused()  # the news first, for the keyboard and screen readers
    said = status.inner_text()
    if lang == "fr":
        assert said.strip() == "La préparation du fichier a échoué. Rien n'a été enregistré."
    problems += _look(page, lang, audit, "failed print batch")
    assert page.locator("main form button[type=submit]").count() == 1

    # An export whose worker stopped: its own title and reason.
    lost = _failed_copy(live_server, done_id, "export", "worker_lost")
    page.goto(f"/staff/jobs/{lost}")
    if lang == "fr":
        expect(page.locator("h1")).to_have_text("Export anonymisé")
        expect(page.locator("[role=status]")).to_contain_text("le serveur a redémarré")
    problems += _look(page, lang, audit, "failed export")

    # The file asked for after its expiry: 404, why, and the button to ask again.
    _expire(live_server, done_id)
    response = page.goto(f"/staff/jobs/{done_id}/download")
    assert response is not None and response.status == 404
    if lang == "fr":
        expect(page.locator("[role=status]")).to_contain_text("Ce fichier a été supprimé")
    problems += _look(page, lang, audit, "download after expiry")
    page.goto(f"/staff/jobs/{done_id}")
    problems += _look(page, lang, audit, "expired job")
    page.context.close()
    audit.assert_clean()
    assert not problems, "\n".join(problems)

    # Keyboard only, JavaScript off: asking again makes a new file, from either page.
    quiet = new_context(java_script_enabled=False).new_page()
    quiet.set_default_timeout(SLOW)
    sign_in(quiet, Role.MEDIATOR)
    quiet.goto(f"/?lang={lang}")
    for job_id in (failed, done_id):
        quiet.goto(f"/staff/jobs/{job_id}")
        _tab_to(quiet, "main form button[type=submit]")
        with quiet.expect_navigation(timeout=180_000):
            quiet.keyboard.press("Enter")
        new_id = quiet.url.split("?")[0].rstrip("/").rsplit("/", 1)[1]
        assert new_id != job_id, quiet.url
        expect(quiet.locator("main a.button[href$='/download']")).to_be_visible()
    quiet.context.close()
