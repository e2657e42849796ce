"""Signed-cookie sessions that are re-sent only when they change or are getting old.

Flask re-signs and re-sends a permanent session's cookie on every response
(SESSION_REFRESH_EACH_REQUEST), so that it expires PERMANENT_SESSION_LIFETIME after the
last visit. Signing and compressing it was about an eighth of a question page's time
(benchmarks/profile_request.py). Here an unchanged session is re-sent only when its cookie
was signed more than `REFRESH_AFTER` ago: the session still ends between
PERMANENT_SESSION_LIFETIME - REFRESH_AFTER and PERMANENT_SESSION_LIFETIME after the last
page (1 h 55 to 2 h), and a changed session is always sent.

Checking a cookie's signature (a key derivation and an HMAC), then base64 and zlib, cost about
a tenth of a question page again, for the same cookie page after page. Each worker keeps the
cookies it has verified, with their signing time and their content as JSON text: the same
cookie is then only checked for age and parsed (every request gets its own session objects).
The memory is bounded (`VERIFIED_MAX`) and is forgotten when the secret key changes. Only a
cookie in the plain form itsdangerous writes is remembered (`plain`): its base64 decoding
drops any other character, so one valid cookie padded with them up to the 8 KB header line
would be 4096 different entries of 8 KB (attack16).
"""

from __future__ import annotations

import re
import time

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from itsdangerous import BadSignature, URLSafeTimedSerializer

REFRESH_AFTER = 5 * 60  # seconds
VERIFIED_MAX = 4096  # cookies remembered per worker (a few hundred bytes each)
PLAIN_MAX_LENGTH = 4093  # Flask's MAX_COOKIE_SIZE: what browsers keep
# itsdangerous's form: [.]payload.timestamp.signature, URL-safe base64 without padding.
PLAIN_COOKIE = re.compile(r"\.?[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+")


def plain(value: str, max_length: int = PLAIN_MAX_LENGTH) -> bool:
    """Whether `value` (a cookie, a CSRF token) is in the form itsdangerous signs, at most
    `max_length` characters: the only form remembered."""
    return len(value) <= max_length and PLAIN_COOKIE.fullmatch(value) is not None


class TimedSession(SecureCookieSession):
    """A cookie session that knows when its cookie was signed (0: new or unreadable)."""

    signed_at: float = 0.0


class RefreshingSessionInterface(SecureCookieSessionInterface):
    session_class = TimedSession

    def __init__(self) -> None:
        self._keys: tuple[object, ...] = ()
        self._serializer: URLSafeTimedSerializer | None = None
        # cookie value -> (time it was signed, its content as tagged JSON text)
        self._verified: dict[str, tuple[float, str]] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        """One serializer per secret key (Flask builds a new one for every request)."""
        keys = (app.secret_key, *(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        if keys != self._keys:
            self._keys = keys
            self._serializer = super().get_signing_serializer(app)
            self._verified.clear()
        return self._serializer

    def open_session(self, app: Flask, request: Request) -> TimedSession | None:
        if self.get_signing_serializer(app) is None:
            return None
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return self.session_class()
        return self.read(app, value) or self.session_class()

    def read(self, app: Flask, value: str) -> TimedSession | None:
        """The session in cookie `value`, or None when it is tampered with, expired or
        unreadable (or the app has no secret key). The one check of a cookie, for Flask's
        `open_session` and for the question pages served before Flask
        (`journey.fast_page`)."""
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        max_age = int(app.permanent_session_lifetime.total_seconds())
        known = self._verified.get(value)
        if known is not None:
            signed_at, text = known
            if not _within(signed_at, max_age):
                return None
            session = self.session_class(self.serializer.loads(text))
            session.signed_at = signed_at
            return session
        try:
            data, signed = serializer.loads(value, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return None
        session = self.session_class(data)
        session.signed_at = signed.timestamp()
        if not plain(value):
            return session  # valid, verified again next time
        if len(self._verified) >= VERIFIED_MAX:
            del self._verified[next(iter(self._verified))]  # the oldest
        self._verified[value] = (session.signed_at, self.serializer.dumps(dict(data)))
        return session

    def verified_at(self, app: Flask, value: str) -> float | None:
        """When cookie `value` was signed, if `read` has verified it before and it is still
        within its age: what `read` checks of a cookie it knows, without parsing the session
        again (None: not known, expired, or no secret key; `read` decides). For the question
        pages served before Flask, which keep what they need of a verified session."""
        if self.get_signing_serializer(app) is None:
            return None
        known = self._verified.get(value)
        if known is None:
            return None
        max_age = int(app.permanent_session_lifetime.total_seconds())
        return known[0] if _within(known[0], max_age) else None

    def should_set_cookie(self, app: Flask, session: SessionMixin) -> bool:
        if session.modified:
            return True
        return self.refresh_due(app, session.permanent, getattr(session, "signed_at", 0.0))

    def refresh_due(self, app: Flask, permanent: bool, signed_at: float) -> bool:
        """Whether an unchanged session (`permanent` or not) signed at `signed_at` is to be
        sent again (module docstring)."""
        if not (permanent and app.config["SESSION_REFRESH_EACH_REQUEST"]):
            return False
        return time.time() - signed_at >= REFRESH_AFTER


def _within(signed_at: float, max_age: int) -> bool:
    """A cookie signed at `signed_at` is still valid (as itsdangerous's `max_age`)."""
    return 0 <= time.time() - signed_at <= max_age


def init_app(app: Flask) -> None:
    app.session_interface = RefreshingSessionInterface()
