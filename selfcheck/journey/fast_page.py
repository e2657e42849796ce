"""Question pages served before Flask: `GET /q/<page>` of a person in progress (issue 18).

Why. The heaviest question page was 0.29-0.34x a bare Flask hello-world app under gunicorn,
and five passes of trimming showed that Flask's own machinery around the view (request and
app contexts, URL matching, the session interface, eight hooks) costs about as much as the
whole margin left to reach 0.5x (docs/performance.md, "Request overhead", third and sixth
passes). A person answering a questionnaire asks for that page again and again, with the
same cookie, and it is almost always already in the page cache: that one case is served
here, by a WSGI layer in front of Flask, doing only what that page needs.

What it does, each step with the function Flask's path uses, so that there is one copy of
each rule (`tests/views/test_fast_page.py` compares both paths byte for byte):

- the session cookie checked by `RefreshingSessionInterface.read` (signature and age, the
  worker's verified cookies), and not served here when `refresh_due` says the cookie must be
  sent again; a cookie verified before is checked for its age by `verified_at` and what the
  page needs of its session kept (`_JourneySession`), not parsed on every request;
- the locale and display mode chosen by `i18n.choose_locale` and `display.choose_mode`;
- one SELECT of the state (`journey.read_state`, `load_state`'s read) on the reading engine
  of `platform.db.read_connection` (a pooled connection, no ORM session, no transaction; on
  SQLite without listeners not even a `Connection` around it);
- the cached page (`views.page_key`), filled by `views.page_values` with the CSRF token
  Flask's path signed for this session (`security.signed_page_csrf_token`), joined as UTF-8
  bytes (`Template.fill_bytes`: the bytes werkzeug would encode);
- the headers of the after-request hooks, in their order: `security.no_store`, `log.tag`
  (request id), the `security.SecurityHeaders` hook, the session interface's `save_session`
  (`Vary: Cookie`), made once per process by those functions (`_Head`: per request only the
  request id and the length differ); then the access line by `log.access_line`.

A page left to Flask after the state was read (not cached yet, a redirect...) hands the state
to Flask's view in the WSGI environ (`views.HANDED_STATE`): one SELECT per request either way.

Everything else falls through to the Flask app, unchanged: another method or path, any query
string (a language or display choice sets a cookie; `return_to`), no cookie or one that is
invalid, expired or due for re-sending, a session holding anything but the journey's keys
(staff, second factor, flashed messages), no state or a submitted one, a screen that is
unknown or hidden (404, redirect), a page not in the cache yet, no signed CSRF token yet, and
any exception. The layer turns itself off when the app's hooks are not the ones it replays
(a hook added later is then never skipped silently), when a Flask signal has receivers, when the
config asks Flask for host checks (`SERVER_NAME`, `TRUSTED_HOSTS`) or a CSRF check of GET
(read on every request), or with `SELFCHECK_FAST_PAGES = False`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask
from flask import signals as flask_signals
from werkzeug.http import parse_cookie

from selfcheck.journey import operations as journey
from selfcheck.journey import views
from selfcheck.journey.page_cache import EXTENSION_KEY as PAGES_KEY
from selfcheck.journey.page_cache import PageCache, Template
from selfcheck.platform import db, display, i18n, log, security, sessions
from selfcheck.questionnaire.model import Definition, FormKind, Page

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

EXTENSION_KEY = "selfcheck.fast_pages"
CONFIG_KEY = "SELFCHECK_FAST_PAGES"
DEFINITION_KEY = "selfcheck.definition"
ENDPOINT = "journey.question"
RULE = "/q/<page_code>"
# A screen code (item bank: lower case, digits, underscores); anything else goes to Flask.
PATH = re.compile(r"/q/([a-z0-9_]+)\Z")
# A Cookie header kept parsed only when a browser's could be it: the session (~300 bytes),
# the language and display, a few of the site's others (`_remember_cookies`).
COOKIE_HEADER_MAX_LENGTH = 2048
COOKIE_HEADER_MAX_COOKIES = 16

# The hooks Flask runs for this page, and what the layer does in their place:
BEFORE_HOOKS = (
    "selfcheck.platform.log:init_app.<locals>._start",  # request id, start time: done here
    "flask_wtf.csrf:CSRFProtect.init_app.<locals>.csrf_protect",  # GET: nothing (checked)
    "selfcheck.accounts.two_factor_views:_enrol_first",  # a public page: nothing
)
AFTER_HOOKS = (  # as registered (Flask runs them last first)
    "selfcheck.platform.i18n:remember_choice",  # nothing without ?lang=
    "selfcheck.platform.display:remember_choice",  # nothing without ?display=
    "selfcheck.platform.security:SecurityHeaders",  # the same object
    "selfcheck.platform.log:init_app.<locals>._log",  # log.tag, log.access_line
    "selfcheck:create_app.<locals>._no_store",  # security.no_store
)
# Run at teardown by Flask: closes the request's ORM session, which the layer never opens.
TEARDOWN_HOOKS = ("selfcheck.platform.db:_close_session",)
# Flask's signals the layer does not send: with a receiver, everything goes to Flask.
SIGNALS = (
    flask_signals.request_started,
    flask_signals.request_finished,
    flask_signals.request_tearing_down,
    flask_signals.got_request_exception,
    flask_signals.appcontext_pushed,
    flask_signals.appcontext_popped,
    flask_signals.appcontext_tearing_down,
)

_log = logging.getLogger(__name__)


def _name(hook: Callable[..., Any]) -> str:
    named = hook if hasattr(hook, "__qualname__") else type(hook)
    return f"{named.__module__}:{named.__qualname__}"


class FastQuestionPages:
    """The WSGI layer (module docstring). `inner` is Flask's own `wsgi_app`."""

    def __init__(self, app: Flask, inner: WSGIApplication) -> None:
        self.app = app
        self.inner = inner
        self.served = 0  # pages served here (tests, benchmarks)
        self._hooks_seen: tuple[object, ...] = ()
        self._hooks_ok = False
        # blinker's receiver dicts, changed in place by connect and disconnect.
        self._receivers = tuple(signal.receivers for signal in SIGNALS)
        # Cookie header -> its cookies (the first value of each name, as werkzeug's `get`):
        # a person sends the same header page after page (bounded as the verified cookies).
        self._cookies: dict[str, dict[str, str]] = {}
        # Verified session cookie -> what a page needs of its session (`_remember_session`).
        self._sessions: dict[str, _JourneySession] = {}
        # The response's status and headers, made once by the after-request hooks (`_head`).
        self._head: _Head | None = None
        # (definition id, form, screen) -> (that definition, its step): `_step_of`.
        self._steps: dict[tuple[int, FormKind, str], tuple[Definition, tuple[int, int]]] = {}

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if (
            environ.get("REQUEST_METHOD") == "GET"
            and not environ.get("QUERY_STRING")
            and (found := PATH.match(environ.get("PATH_INFO", "")))
        ):
            started = time.perf_counter()
            try:
                response = self._serve(environ, found.group(1), started)
            except Exception:  # Flask's path answers it, with its error pages and logs
                _log.debug("question page left to Flask", exc_info=True)
                response = None
            if response is not None:
                self.served += 1
                return response(environ, start_response)
        return self.inner(environ, start_response)

    def enabled(self) -> bool:
        app = self.app
        config = app.config
        if (
            not config.get(CONFIG_KEY, True)
            or app.debug
            # Read on every request, as Flask and Flask-WTF do (a change after the first page
            # is seen): no host to check or match, no CSRF check of a GET.
            or config.get("SERVER_NAME") is not None
            or config.get("TRUSTED_HOSTS")
            or "GET" in config["WTF_CSRF_METHODS"]
        ):
            return False
        if any(self._receivers) and any(next(s.receivers_for(app), None) for s in SIGNALS):
            return False
        hooks = (
            *app.before_request_funcs.get(None, ()),
            *app.after_request_funcs.get(None, ()),
            *app.before_request_funcs.get("journey", ()),
            *app.after_request_funcs.get("journey", ()),
            *app.url_value_preprocessors.get(None, ()),
            *app.url_value_preprocessors.get("journey", ()),
            *app.teardown_request_funcs.get(None, ()),
            *app.teardown_request_funcs.get("journey", ()),
            *app.teardown_appcontext_funcs,
            app.session_interface,
        )
        if hooks != self._hooks_seen:  # checked again whenever they change
            self._hooks_seen = hooks
            self._hooks_ok = self._replays(app)
        return self._hooks_ok

    @staticmethod
    def _replays(app: Flask) -> bool:
        """Whether the app runs exactly the hooks this layer replays, for exactly this page."""
        before = tuple(_name(hook) for hook in app.before_request_funcs.get(None, ()))
        after = tuple(_name(hook) for hook in app.after_request_funcs.get(None, ()))
        rules = [rule.rule for rule in app.url_map.iter_rules(ENDPOINT)]
        return (
            before == BEFORE_HOOKS
            and after == AFTER_HOOKS
            and not app.before_request_funcs.get("journey")
            and not app.after_request_funcs.get("journey")
            and not app.url_value_preprocessors.get(None)
            and not app.url_value_preprocessors.get("journey")
            and isinstance(app.session_interface, sessions.RefreshingSessionInterface)
            and isinstance(app.extensions.get(security.HEADERS_KEY), security.SecurityHeaders)
            and rules == [RULE]
            and not app.teardown_request_funcs.get(None)
            and not app.teardown_request_funcs.get("journey")
            and tuple(_name(hook) for hook in app.teardown_appcontext_funcs) == TEARDOWN_HOOKS
        )

    def _serve(self, environ: WSGIEnvironment, page_code: str, started: float) -> _Served | None:
        """The page, or None for Flask to answer (module docstring)."""
        app = self.app
        if not self.enabled():
            return None
        interface = app.session_interface
        assert isinstance(interface, sessions.RefreshingSessionInterface)
        header = environ.get("HTTP_COOKIE", "")
        known = self._cookies.get(header)
        cookies = known if known is not None else dict(parse_cookie(header).items())
        value = cookies.get(interface.get_cookie_name(app))
        if not value:
            return None
        csrf_field = app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
        # A cookie verified before: its age checked by the interface (`verified_at`), what
        # this page needs of its session kept (`_JourneySession`), not parsed again.
        journey_session = self._sessions.get(value)
        signed_at = None
        if journey_session is not None and journey_session.csrf_field == csrf_field:
            signed_at = interface.verified_at(app, value)
        session: sessions.TimedSession | None = None
        if signed_at is None or journey_session is None:
            session = interface.read(app, value)
            if session is None or session.modified:
                return None  # refused (tampered with, expired...)
            journey_session = _JourneySession.of(session, csrf_field)
            if journey_session is None:
                return None  # staff, second factor, flashed messages...: Flask's path
            signed_at = session.signed_at
        if interface.refresh_due(app, journey_session.permanent, signed_at):
            return None  # its cookie is to be sent again: Flask's path
        csrf_token = security.signed_page_csrf_token(app, journey_session.csrf_secret)
        if csrf_token is None:
            return None
        response_id = journey_session.response_id
        if known is None:
            self._remember_cookies(header, cookies)
        if session is not None:
            self._remember_session(value, journey_session)
        locale = i18n.choose_locale(
            app.config, None, cookies.get(i18n.LANG_COOKIE), environ.get("HTTP_ACCEPT_LANGUAGE", "")
        )
        mode = display.choose_mode(None, cookies.get(display.COOKIE))
        # The engine of `db.read_connection` (which needs an app context): one SELECT on a
        # pooled connection, on PostgreSQL without a transaction (`journey.read_state`).
        database: db.Database = app.extensions[db.EXTENSION_KEY]
        state = journey.read_state(database.reader, response_id)
        # Whatever follows, Flask's view (if the page falls through) reads no second time.
        environ[views.HANDED_STATE] = (response_id, state)
        if state is None or state.is_submitted:
            return None
        definition: Definition = app.extensions[DEFINITION_KEY].in_wording(state.wording)
        page = definition.screen(state.form, page_code)
        if page is None or not journey.visible_items(page, state.form, state.answers):
            return None  # 404, or a redirect to where the person should be
        step = self._step_of(definition, state.form, page)
        variables = journey.page_variables(page, state.form, state.answers)
        key = views.page_key(
            state, page, variables, step, return_to=False, locale=locale, display_mode=mode
        )
        cache: PageCache = app.extensions[PAGES_KEY]
        template = cache.built(key)
        if not isinstance(template, Template):
            return None  # rendering needs Flask's template context
        # UTF-8 bytes from texts encoded once (`Template.fill_bytes`): the same bytes as
        # `fill(...).encode()`, which werkzeug does on Flask's path.
        body = template.fill_bytes(views.page_values(state, page, variables, csrf_token))

        # The after-request hooks' work, made once per process (`_head`), the request id and
        # the length filled in; then the access line by `log.access_line`.
        head = self._head
        if head is None or head.hooks is not self._hooks_seen:
            if session is None:
                session = interface.read(app, value)
                if session is None:
                    return None
            head = self._head = _Head.made(app, interface, session, environ, self._hooks_seen)
        request_id = log.new_request_id(environ.get("HTTP_X_REQUEST_ID", ""))
        headers = head.filled(request_id, len(body))
        log.access_line(
            app.config,
            request_id=request_id,
            method="GET",
            route=RULE,
            endpoint=ENDPOINT,
            status=head.status_code,
            started=started,
            remote_addr=environ.get("REMOTE_ADDR"),
        )
        return _Served(head.status, headers, body)

    def _step_of(self, definition: Definition, form: FormKind, page: Page) -> tuple[int, int]:
        """`views.step_of`, found once per screen: it walks every screen of the form, and
        depends only on the definition (kept whole by the app), the form and the screen."""
        key = (id(definition), form, page.code)
        found = self._steps.get(key)
        if found is None or found[0] is not definition:
            found = self._steps[key] = (definition, views.step_of(definition, form, page))
        return found[1]

    def _remember_session(self, value: str, journey_session: _JourneySession) -> None:
        """Keep what a page needs of the session in cookie `value`, once it has verified
        and been found to be a journey's (bounded as the verified cookies; the cookie's
        signature and age are still checked by the interface on every request). Only a cookie
        the interface remembers too (`sessions.plain`: not one padded to 8 KB, attack16)."""
        if not sessions.plain(value):
            return
        if len(self._sessions) >= sessions.VERIFIED_MAX:
            del self._sessions[next(iter(self._sessions))]  # the oldest
        self._sessions[value] = journey_session

    def _remember_cookies(self, header: str, cookies: dict[str, str]) -> None:
        """Keep a Cookie header parsed (each name's first value, as `parse_cookie(...).items()`
        gives) once its session cookie has been verified, never before: any client could
        otherwise fill the cache with large headers of many cookies (about 140 KB each, 580 MB
        a worker: attack10, round 17). Nor a header larger than a browser's or of many
        cookies: one journey's valid cookie beside 1,600 tiny ones, a name changed each time,
        was verified and kept all the same (attack16)."""
        if len(header) > COOKIE_HEADER_MAX_LENGTH or len(cookies) > COOKIE_HEADER_MAX_COOKIES:
            return  # parsed again next time
        if len(self._cookies) >= sessions.VERIFIED_MAX:
            del self._cookies[next(iter(self._cookies))]  # the oldest
        self._cookies[header] = cookies


class _JourneySession:
    """What a question page needs of a person's session (its cookie verified): whether it
    is permanent (`refresh_due`), the response id and the CSRF secret. Only a session holding
    nothing but the journey's keys and the CSRF secret (`csrf_field`) is one."""

    __slots__ = ("csrf_field", "csrf_secret", "permanent", "response_id")

    def __init__(self, csrf_field: str, permanent: bool, response_id: int, csrf_secret: object):
        self.csrf_field = csrf_field
        self.permanent = permanent
        self.response_id = response_id
        self.csrf_secret = csrf_secret

    @classmethod
    def of(cls, session: sessions.TimedSession, csrf_field: str) -> _JourneySession | None:
        if not set(session) <= {*views.JOURNEY_SESSION_KEYS, csrf_field}:
            return None
        response_id = session.get(views.SESSION_RESPONSE)
        if not isinstance(response_id, int):
            return None
        return cls(csrf_field, session.permanent, response_id, session.get(csrf_field))


class _Served:
    """A page as WSGI answers it: what werkzeug's `Response.__call__` would send."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def __call__(self, _environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response(self.status, self.headers)
        return [self.body]


# Stand-ins while the headers are made: a request id as `log.new_request_id` makes them, and a
# body whose length is found again in Content-Length.
_MADE_ID = "0" * 32
_MADE_BODY = b"0" * 12345


class _Head:
    """The status and headers of a page served here, made by the after-request hooks once:
    `security.no_store`, `log.tag`, the `security.SecurityHeaders` hook, the session
    interface's `save_session`, in the order Flask runs them (AFTER_HOOKS, last first), on
    a response of the app's own class, and werkzeug's `get_wsgi_response`. Per request only
    the request id (`X-Request-ID`) and the body's length (`Content-Length`) differ: none
    of these functions reads anything else of the request, and the session of every page
    served here is in the same case (read, not modified, not empty, its cookie not to be
    sent again: `save_session` adds `Vary: Cookie` and nothing else). Made again when the
    app's hooks change (`FastQuestionPages.enabled`)."""

    def __init__(
        self,
        hooks: tuple[object, ...],
        status: str,
        status_code: int,
        headers: list[tuple[str, str]],
        id_at: int,
        length_at: int,
    ) -> None:
        self.hooks = hooks
        self.status = status
        self.status_code = status_code
        self.headers = headers
        self.id_at = id_at
        self.length_at = length_at

    @classmethod
    def made(
        cls,
        app: Flask,
        interface: sessions.RefreshingSessionInterface,
        session: sessions.TimedSession,
        environ: WSGIEnvironment,
        hooks: tuple[object, ...],
    ) -> _Head:
        response = app.response_class(_MADE_BODY, status=200)
        security.no_store(response)
        log.tag(response, _MADE_ID)
        app.extensions[security.HEADERS_KEY](response)
        # Read, as Flask's request context marks a session the view reads (Flask >= 3.1.3):
        # `save_session` then adds `Vary: Cookie`, and sets no cookie (checked by `_serve`).
        session.accessed = True
        interface.save_session(app, session, response)
        _iter, status, headers = response.get_wsgi_response(environ)
        names = [name.lower() for name, _value in headers]
        id_at = names.index(log.REQUEST_ID_HEADER.lower())
        length_at = names.index("content-length")
        if headers[id_at][1] != _MADE_ID or headers[length_at][1] != str(len(_MADE_BODY)):
            raise ValueError("unexpected headers")  # never seen: Flask's path answers
        return cls(hooks, status, response.status_code, headers, id_at, length_at)

    def filled(self, request_id: str, length: int) -> list[tuple[str, str]]:
        headers = self.headers.copy()
        headers[self.id_at] = (headers[self.id_at][0], request_id)
        headers[self.length_at] = (headers[self.length_at][0], str(length))
        return headers


def install(app: Flask) -> None:
    """Put the layer in front of Flask's `wsgi_app` (inside ProxyFix, installed after it, so
    that the client's address and scheme are already the proxy's)."""
    layer = FastQuestionPages(app, app.wsgi_app)
    app.extensions[EXTENSION_KEY] = layer
    app.wsgi_app = layer  # type: ignore[method-assign]
