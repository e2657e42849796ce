"""selfcheck: measure what digital mediation changes for people."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, request
from jinja2 import ChoiceLoader, FileSystemLoader, PrefixLoader

from selfcheck.accounts.session import current_staff
from selfcheck.journey import page_cache, reminders
from selfcheck.journey.registry import PageFormFactory
from selfcheck.paper import blank_cache
from selfcheck.paper.operations import PRINTABLE_DIR
from selfcheck.platform import db, display, errors, i18n, jobs, log, mail, security, sessions
from selfcheck.platform.config import Settings, beside_the_database
from selfcheck.questionnaire import Moment, load_definition
from selfcheck.questionnaire.loader import DEFAULT_DEFINITION

DEFINITION_KEY = "selfcheck.definition"
FORMS_KEY = "selfcheck.forms"


class SelfcheckFlask(Flask):
    """Flask, remembering `ensure_sync` per function. Flask asks it of every hook and of the
    view on every request (`inspect.iscoroutinefunction` each time: about a fifteenth of a
    bare request in the app, benchmarks/profile_request.py); the answer never changes."""

    SYNC_MAX = 1_000  # functions made per request (after_this_request) are not kept

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        known = self._sync.get(func)
        if known is None:
            known = super().ensure_sync(func)
            if len(self._sync) < self.SYNC_MAX:
                self._sync[func] = known
        return known


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the app. `overrides` (tests) may replace DATABASE_URL and Flask settings."""
    app = SelfcheckFlask(__name__, instance_relative_config=True)
    overrides = dict(overrides or {})
    instance_path = Path(overrides.pop("INSTANCE_PATH", app.instance_path))
    app.instance_path = str(instance_path)  # the commands read it (move-secret-key)
    settings = Settings.from_env(instance_path)
    database_url = overrides.pop("DATABASE_URL", settings.database_url)
    definition_path = overrides.pop("DEFINITION_PATH", DEFAULT_DEFINITION)
    _warn_of_a_key_beside(settings, database_url)
    app.config.from_mapping(settings.flask_config())
    app.config["SELFCHECK_STAFF_IDLE_SECONDS"] = settings.staff_idle_minutes * 60
    # Blank paper forms rendered once, served again (paper/blank_cache.py); "" turns it off.
    app.config[blank_cache.CONFIG_KEY] = (
        settings.paper_cache_dir
        if settings.paper_cache_dir is not None
        else str(instance_path / blank_cache.FOLDER)
    )
    app.config.update(overrides)
    app.config["SELFCHECK_SETTINGS"] = settings

    app.jinja_env.add_extension("jinja2.ext.do")
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    # Templates compare an answer's moment with the enum, never with its value ("pre"), as
    # the printed forms do (paper/operations.py); a global, so imported macros see it too.
    app.jinja_env.globals["Moment"] = Moment
    # Pages may include the print templates' shared parts as "print/…" (one source for a block
    # shown on screen and printed, e.g. the codebook's tables).
    app.jinja_loader = ChoiceLoader(
        [
            FileSystemLoader(Path(app.root_path) / "templates"),
            PrefixLoader({"print": FileSystemLoader(PRINTABLE_DIR)}),
        ]
    )
    app.extensions[DEFINITION_KEY] = load_definition(definition_path)
    app.extensions[FORMS_KEY] = PageFormFactory()
    # Off in debug mode, where templates reload on change.
    app.extensions[page_cache.EXTENSION_KEY] = page_cache.PageCache(enabled=not app.debug)
    database = db.Database(
        database_url,
        settings.sqlite_synchronous,
        pre_ping=settings.postgres_pre_ping,
        synchronous_commit=settings.postgres_synchronous_commit,
        page_saves_wait=settings.postgres_page_saves_wait,
    )
    db.init_app(app, database)
    # Every session of the app keeps the dashboard's facts in step with the answers.
    from selfcheck.evaluation import facts

    facts.install(database.sessions, app.extensions[DEFINITION_KEY], str(app.secret_key))
    # Every writer of a response's answers updates its row in the same transaction (the
    # PostgreSQL page save's optimism relies on it): checked at each commit, raising in tests
    # and debug mode, mended and logged in production (journey/row_guard.py).
    from selfcheck.journey import row_guard

    row_guard.install(database.sessions, strict=app.testing or app.debug)
    i18n.init_app(app, settings.languages)
    display.init_app(app)
    jobs.init_app(app, instance_path, database_url)
    mail.init_app(app)
    reminders.init_app(app)
    security.CheckedCSRFProtect(app)
    errors.init_app(app)
    sessions.init_app(app)
    # Question pages of a person in progress served before Flask (issue 18): installed before
    # security.init_app, whose ProxyFix then wraps it.
    from selfcheck.journey import fast_page

    fast_page.install(app)
    security.init_app(
        app,
        cookie_secure=bool(app.config["SESSION_COOKIE_SECURE"]),
        proxy_hops=settings.proxy_hops,
    )
    log.init_app(app)

    app.url_map.converters["int"] = security.DatabaseInt  # before any route is added
    for blueprint in _blueprints():
        app.register_blueprint(blueprint)

    @app.after_request
    def _no_store(response: Response) -> Response:
        if request.endpoint != "static":
            security.no_store(response)
        return response

    @app.context_processor
    def _staff_context() -> dict[str, object]:
        return {"staff_user": current_staff()}

    return app


def _warn_of_a_key_beside(settings: Settings, database_url: str) -> None:
    """An older instance folder holds its SQLite database and its secret key side by side: a
    copy of the folder can unseal what the database seals. It keeps working (a new key would
    lose every sealed value and session); each start says so until the key is moved."""
    key_file = settings.secret_key_file
    if key_file is not None and beside_the_database(key_file, database_url):
        logging.getLogger("selfcheck.config").warning(
            "the secret key %s sits beside the SQLite database: a copy of that folder can "
            "unseal the reminders' addresses and two-factor secrets and sign sessions. Run "
            "`selfcheck move-secret-key` (the key goes to the user's state folder) or set "
            "SELFCHECK_SECRET_KEY",
            key_file,
        )


def _blueprints() -> list[Blueprint]:
    """Every domain's blueprint, imported here so that importing selfcheck stays light."""
    from selfcheck.accounts import admin_views, backoffice, two_factor_views
    from selfcheck.accounts import views as staff_auth
    from selfcheck.entry import views as entry
    from selfcheck.evaluation import export_views
    from selfcheck.evaluation import views as evaluator
    from selfcheck.followup import views as followup
    from selfcheck.journey import views as journey
    from selfcheck.paper import views as printing
    from selfcheck.privacy import views as privacy
    from selfcheck.site import accessibility, health, job_views, settings

    modules = (journey, staff_auth, backoffice, followup, entry, printing, evaluator)
    others = (export_views, job_views, privacy, health, accessibility, settings)
    admin = (admin_views, two_factor_views)
    return [module.blueprint for module in (*modules, *others, *admin)]
