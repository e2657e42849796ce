"""Signed-cookie sessions that are re-sent only when they change or are getting old.

Flask re-signs and re-sends a permanent session's cookie on every response
(SESSION_REFRESH_EACH_REQUEST), so that it expires PERMANENT_SESSION_LIFETIME after the
last visit. Signing and compressing it was about an eighth of a question page's time
(benchmarks/profile_request.py). Here an unchanged session is re-sent only when its cookie
was signed more than `REFRESH_AFTER` ago: the session still ends between
PERMANENT_SESSION_LIFETIME - REFRESH_AFTER and PERMANENT_SESSION_LIFETIME after the last
page (1 h 55 to 2 h), and a changed session is always sent.
"""

from __future__ import annotations

import time

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from itsdangerous import BadSignature

REFRESH_AFTER = 5 * 60  # seconds


class TimedSession(SecureCookieSession):
    """A cookie session that knows when its cookie was signed (0: new or unreadable)."""

    signed_at: float = 0.0


class RefreshingSessionInterface(SecureCookieSessionInterface):
    session_class = TimedSession

    def open_session(self, app: Flask, request: Request) -> TimedSession | None:
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return self.session_class()
        max_age = int(app.permanent_session_lifetime.total_seconds())
        try:
            data, signed_at = serializer.loads(value, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        session = self.session_class(data)
        session.signed_at = signed_at.timestamp()
        return session

    def should_set_cookie(self, app: Flask, session: SessionMixin) -> bool:
        if session.modified:
            return True
        if not (session.permanent and app.config["SESSION_REFRESH_EACH_REQUEST"]):
            return False
        signed_at = getattr(session, "signed_at", 0.0)
        return time.time() - signed_at >= REFRESH_AFTER


def init_app(app: Flask) -> None:
    app.session_interface = RefreshingSessionInterface()
