"""Browser tests: a live selfcheck server and Debian's Chromium driven by Playwright.

One app on a temporary SQLite file (or, when SELFCHECK_TEST_DATABASE_URL is set, on a
PostgreSQL database of its own beside the test database, `<name>_browser`, emptied and
migrated at the session's start: the other tests empty every table of theirs after each test,
and under pytest-xdist browser tests and others share a worker), served by werkzeug in a
daemon thread for the whole session, one Chromium for the whole session, and a fresh browser
context (cookies, language, viewport) per test.

No browser is ever downloaded: Chromium must be installed (`apt-get install chromium`); if it
is missing the tests fail with a message saying so, they do not skip.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright
from werkzeug.serving import BaseWSGIServer, make_server

from selfcheck import create_app, demo
from selfcheck.platform import migrate
from tests.browser.routes import install_error_route
from tests.browser.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    AxeAudit,
    ContextFactory,
    Journey,
    LiveServer,
)
from tests.conftest import POSTGRES_URL, postgres_database, reset_postgres


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("browser-app")
    own = postgres_database(POSTGRES_URL, "browser") if POSTGRES_URL else None
    app = create_app(
        {
            "DATABASE_URL": own or f"sqlite:///{folder / 'selfcheck.db'}",
            "INSTANCE_PATH": folder,
            "TESTING": False,
            # One client address signs in many times over the session: no rate limits here
            # (tests/test_security.py and tests/views/test_rate_limits.py cover them).
            "SELFCHECK_RATE_LIMITS": None,
            # The scenes sign in as a platform administrator and an evaluator many times a
            # minute (a TOTP code is accepted once per 30 s): the second factor is played in
            # its own scenes (tests/browser/routes.py, "administration").
            "SELFCHECK_TOTP_REQUIRED": False,
            # Jobs run inside the request: their pages are done when first shown.
            "SELFCHECK_JOBS_URL": "immediate",
        }
    )
    install_error_route(app)  # the error pages no real request reaches (429, 500)
    database = app.extensions["selfcheck.platform.db"]
    if own is not None:
        reset_postgres(database.engine)  # whatever an earlier session left
    migrate.upgrade(database.engine)
    with app.app_context(), database.session() as session:
        demo.generate_demo(session, app.extensions["selfcheck.definition"], respondents=4)
        session.commit()

    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="selfcheck-live", daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", app)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        database.dispose()


# --- the browser ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    driver = sync_playwright().start()
    try:
        yield driver
    finally:
        driver.stop()


MISSING_CHROMIUM = (
    f"Chromium not found at {CHROMIUM}: the browser tests need Debian's Chromium "
    "(apt-get install -y chromium) or SELFCHECK_CHROMIUM=/path/to/chromium. "
    "Never run `playwright install`: no browser is downloaded."
)


@pytest.fixture(scope="session")
def browser(live_server: LiveServer, playwright_driver: Playwright) -> Iterator[Browser | None]:
    """Debian's Chromium, or None when it is missing (each test then fails, see new_context)."""
    # Depends on live_server so that the browser closes its connections before the server stops.
    if not Path(CHROMIUM).is_file():
        yield None
        return
    chromium = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def new_context(live_server: LiveServer, browser: Browser | None) -> Iterator[ContextFactory]:
    """Open browser contexts (French by default), all closed at the end of the test.

    Without Chromium the first call fails the test (a failure, not an error or a skip).
    """
    opened: list[BrowserContext] = []

    def factory(**options: Any) -> BrowserContext:
        if browser is None:
            pytest.fail(MISSING_CHROMIUM, pytrace=False)
        settings: dict[str, Any] = {
            "base_url": live_server.url,
            "locale": "fr-FR",
            "viewport": {"width": 1024, "height": 768},
        }
        settings.update(options)
        context = browser.new_context(**settings)
        # Generous: a wait that times out checks nothing, and a 2-core CI machine under its
        # own test load made 10 s waits fail on pages that then loaded fine.
        context.set_default_timeout(30_000)
        opened.append(context)
        return context

    yield factory
    for context in opened:
        context.close()


@pytest.fixture
def audit() -> AxeAudit:
    return AxeAudit()


@pytest.fixture
def walk(live_server: LiveServer) -> Journey:
    return Journey(live_server)
