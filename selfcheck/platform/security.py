"""Security headers on every response, and the proxy setting.

The Content-Security-Policy allows no inline script or style at all: every style lives in
static/css/selfcheck.css and the only script (the data-entry keyboard helper) is a file of
this site. tests/test_security.py walks every template for inline style or script.
"""

from __future__ import annotations

import logging
import math

from flask import Flask, Response, current_app, make_response, render_template, request
from flask_babel import gettext as _
from flask_babel import ngettext
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response as HttpResponse

from selfcheck.platform import ratelimit
from selfcheck.platform.db import get_db

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    )
)
# Features the app never uses: denied, so an injected frame or script cannot ask for them.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "camera",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
    )
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # Flask-WTF checks a same-origin Referer on HTTPS
    "Permissions-Policy": PERMISSIONS_POLICY,
    "Cross-Origin-Opener-Policy": "same-origin",
    "X-Frame-Options": "DENY",  # for browsers that predate frame-ancestors
}
# Two years, subdomains included: only sent when the site is served over HTTPS only.
HSTS = "max-age=63072000; includeSubDomains"


def init_app(app: Flask, *, cookie_secure: bool, proxy_hops: int) -> None:
    """Add the headers to every response; trust `proxy_hops` reverse proxies' X-Forwarded-*."""
    if proxy_hops > 0:
        # request.remote_addr (rate limits) and the scheme then come from the proxies'
        # X-Forwarded-For / -Proto, counted from the right: set exactly the number of proxies
        # in front of the app, or clients could forge their address.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxy_hops, x_proto=proxy_hops, x_host=proxy_hops
        )

    app.register_error_handler(ratelimit.RateLimited, rate_limited_page)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if cookie_secure:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response


# --- rate limits, as the views use them --------------------------------------------------

# Name -> limit. Code entry and self-erasure share the code counters: both look a code up.
# The arithmetic behind these numbers is in docs/security.md, "Guessing a code".
LIMITS: dict[str, ratelimit.Limit] = {
    "login_ip": ratelimit.Limit("login-ip", 30, 15 * 60),
    "login_account": ratelimit.Limit("login-account", 10, 15 * 60),
    # Unknown codes (well-formed, check character right) per client address, and for the
    # whole platform: a botnet of many addresses still gets CODE_ALL an hour at most.
    "code_ip": ratelimit.Limit("code-ip", 10, 10 * 60),
    "code_all": ratelimit.Limit("code-all", 500, 60 * 60),
}
LIMITS_CONFIG = "SELFCHECK_RATE_LIMITS"  # tests: {"code_ip": (2, 600), ...}; None: off


def limit(name: str) -> ratelimit.Limit | None:
    """The limit called `name`, as configured (None when rate limits are switched off)."""
    overrides = current_app.config.get(LIMITS_CONFIG, {})
    if overrides is None:
        return None
    base = LIMITS[name]
    if name in overrides:
        attempts, window = overrides[name]
        return ratelimit.Limit(base.name, attempts, window)
    return base


def client_ip() -> str:
    """The client's address (behind SELFCHECK_PROXY_HOPS proxies: from X-Forwarded-For)."""
    return request.remote_addr or "unknown"


def _secret() -> str:
    return str(current_app.secret_key)


def count_attempt(name: str, subject: str) -> None:
    """Count one attempt against limit `name`; raise RateLimited beyond it."""
    found = limit(name)
    if found is None:
        return
    with get_db().session() as session:
        decision = ratelimit.hit(session, _secret(), found, subject)
    if not decision.allowed:
        # For the operators (an attack shows here); the name of the limit, no address.
        log.warning("rate limit %s reached (%s attempts)", found.name, decision.count)
        raise ratelimit.RateLimited(decision.retry_after)


def check_attempts(name: str, subject: str) -> None:
    """Raise RateLimited if limit `name` is used up, without counting an attempt."""
    found = limit(name)
    if found is None:
        return
    with get_db().session() as session:
        decision = ratelimit.peek(session, _secret(), found, subject)
    if not decision.allowed:
        raise ratelimit.RateLimited(decision.retry_after)


def rate_limited_page(error: ratelimit.RateLimited) -> HttpResponse:
    minutes = max(1, math.ceil(error.retry_after / 60))
    body = render_template(
        "errors/error.html",
        status=429,
        title=_("Trop d'essais"),
        message=ngettext(
            "Vous avez fait trop d'essais. Pour votre sécurité, attendez %(num)d minute "
            "avant de réessayer.",
            "Vous avez fait trop d'essais. Pour votre sécurité, attendez %(num)d minutes "
            "avant de réessayer.",
            minutes,
        ),
    )
    response = make_response(body, 429)
    response.headers["Retry-After"] = str(error.retry_after)
    return response


def check_code_lookups() -> None:
    """Before looking a typed code up: refuse when this address, or everyone, guessed too much."""
    check_attempts("code_ip", client_ip())
    check_attempts("code_all", "*")


def count_unknown_code() -> None:
    """A well-formed code that matches nobody: one more guess for this address and overall."""
    count_attempt("code_ip", client_ip())
    count_attempt("code_all", "*")
