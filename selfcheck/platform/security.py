"""Security headers on every response, and the proxy setting.

The Content-Security-Policy allows no inline script or style at all: every style lives in
static/css/selfcheck.css and the only script (the data-entry keyboard helper) is a file of
this site. tests/test_security.py walks every template for inline style or script.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import logging
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from time import sleep
from typing import Any

from flask import (
    Flask,
    current_app,
    g,
    make_response,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_wtf.csrf import CSRFProtect, generate_csrf, same_origin, validate_csrf
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter, Map
from werkzeug.wrappers import Response as HttpResponse
from wtforms import ValidationError

from selfcheck.platform import ratelimit, sessions
from selfcheck.platform.db import get_db
from selfcheck.platform.models import utcnow

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


class DatabaseInt(IntegerConverter):
    """`<int:…>` in routes: at most a database integer (2^31 - 1), so a longer number in a
    URL is 404, as an unknown id is, not an overflow in the database driver (500)."""

    def __init__(
        self,
        url_map: Map,
        fixed_digits: int = 0,
        min: int | None = None,
        max: int | None = 2**31 - 1,
        signed: bool = False,
    ) -> None:
        super().__init__(url_map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


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
    headers = SecurityHeaders(cookie_secure=cookie_secure)
    app.extensions[HEADERS_KEY] = headers
    app.after_request(headers)


HEADERS_KEY = "selfcheck.security_headers"


def link_arguments(args: Mapping[str, str], *, without: str | None = None) -> dict[str, Any]:
    """A request's query arguments to build a link or redirect with `url_for`, minus `without`
    and minus those that are url_for's own (`_method`, `_external`, `_scheme`, `_anchor`):
    `?_method=POST` made the link fail to build (a 500, before any sign-in check), and
    `_external` or `_scheme` changed where it points."""
    return {key: value for key, value in args.items() if key != without and not key.startswith("_")}


def site_url_for(endpoint: str, **values: Any) -> str:
    """The absolute address of `endpoint` for use outside this request (an e-mail, a printed
    form): on `SELFCHECK_SITE_URL` when it is set, never on the request's `Host` (or a
    proxy's `X-Forwarded-Host`), which the client chooses: a reset link e-mailed on a forged
    host would give its token away (attack13). Unset: the request's own address."""
    base = str(current_app.config.get("SELFCHECK_SITE_URL") or "").rstrip("/")
    if not base:
        return url_for(endpoint, _external=True, **values)
    path = url_for(endpoint, **values)  # under the request's script root
    return base + path[len(request.script_root) :]


class SecurityHeaders:
    """The after-request hook adding the security headers, kept in `app.extensions` so that
    the question pages served before Flask (`journey.fast_page`) add them with the same
    object, in the same order."""

    def __init__(self, *, cookie_secure: bool) -> None:
        wanted = {**HEADERS, **({"Strict-Transport-Security": HSTS} if cookie_secure else {})}
        self._lowered = {name.lower(): (name, value) for name, value in wanted.items()}

    def __call__(self, response: HttpResponse) -> HttpResponse:
        # Headers a view set itself win. One pass over the response's few headers:
        # `headers.setdefault` raised and caught a KeyError per missing header, about a
        # twentieth of a question page (benchmarks/profile_request.py).
        missing = dict(self._lowered)
        for name in response.headers.keys():  # noqa: SIM118 (Headers iterates pairs)
            missing.pop(name.lower(), None)
        for name, value in missing.values():
            response.headers.add(name, value)
        return response


def no_store(response: HttpResponse) -> HttpResponse:
    """Pages carry a person's answers or code: never kept in a shared browser's cache or
    history (the Back button after "finish and clear this screen")."""
    response.headers["Cache-Control"] = "no-store"
    return response


# --- rate limits, as the views use them --------------------------------------------------

# Name -> limit. Code entry and self-erasure share the code counters: both look a code up.
# The arithmetic behind these numbers is in docs/security.md, "Rate limits".
LIMITS: dict[str, ratelimit.Limit] = {
    "login_ip": ratelimit.Limit("login-ip", 30, 15 * 60),
    # Wrong second-factor codes (reached only with the right password, so nobody can lock
    # an account they do not hold). Nothing reachable without the password may count here.
    "login_account": ratelimit.Limit("login-account", 10, 15 * 60),
    # Forgotten-password requests for one e-mail (anyone may post them): their own counter,
    # so that they bound the e-mails sent without locking the owner out of the code page.
    "forgotten_account": ratelimit.Limit("forgotten-account", 10, 15 * 60),
    # Unknown codes (well-formed, check character right) per client address (an IPv6 /64),
    # and for the whole platform. Beyond the platform-wide one, every code look-up (valid or
    # not) is slowed down, never refused: a botnet cannot lock people out.
    "code_ip": ratelimit.Limit("code-ip", 10, 10 * 60),
    "code_all": ratelimit.Limit("code-all", 500, 60 * 60),
    # Staff typing codes that match nobody they may see: per staff member and per structure.
    "staff_code_user": ratelimit.Limit("staff-code-user", 30, 10 * 60),
    "staff_code_structure": ratelimit.Limit("staff-code-structure", 100, 10 * 60),
    # Wrong current passwords on the password-change page, per account.
    "password_current": ratelimit.Limit("password-current", 5, 15 * 60),
    # Anonymous resources: summary PDFs per address and per browser session; people created
    # from a structure's link (/s/<slug>) per address and per browser session.
    "summary_pdf_ip": ratelimit.Limit("summary-pdf-ip", 30, 10 * 60),
    "summary_pdf_session": ratelimit.Limit("summary-pdf-session", 10, 10 * 60),
    "start_ip": ratelimit.Limit("start-ip", 60, 60 * 60),
    "start_session": ratelimit.Limit("start-session", 10, 60 * 60),
}
LIMITS_CONFIG = "SELFCHECK_RATE_LIMITS"  # tests: {"code_ip": (2, 600), ...}; None: off
# Seconds every code look-up waits once the platform-wide limit is reached (0: no wait).
SLOWDOWN_CONFIG = "SELFCHECK_CODE_SLOWDOWN_SECONDS"
DEFAULT_SLOWDOWN_SECONDS = 2.0


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


def address_subject(address: str) -> str:
    """What per-address limits count: an IPv4 address, or the /64 of an IPv6 address (one
    home or phone gets a whole /64, so counting single IPv6 addresses counts nothing)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def client_subject() -> str:
    return address_subject(client_ip())


BROWSER_SESSION = "rl_session"


def browser_session_id() -> str:
    """A random id kept in this browser's session cookie, for per-session limits (a client
    that drops its cookies is still counted per address)."""
    found = session.get(BROWSER_SESSION)
    if not isinstance(found, str):
        found = secrets.token_urlsafe(16)
        session[BROWSER_SESSION] = found
    return found


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


@dataclass
class Reservation:
    """Attempts counted before the work they limit (check and count in one atomic step),
    handed back with `refund` when the attempt turns out not to count."""

    hits: list[tuple[ratelimit.Limit, str, datetime]] = field(default_factory=list)
    slowed: bool = False

    def refund(self) -> None:
        if not self.hits:
            return
        with get_db().session() as session:
            for found, subject, at in self.hits:
                ratelimit.refund(session, _secret(), found, subject, at)
        self.hits.clear()


def reserve(*limits: tuple[str, str], soft: frozenset[str] = frozenset()) -> Reservation:
    """Count one attempt against each (limit name, subject); raise RateLimited (taking them
    all back) when one of them is over, except the `soft` ones, which set `slowed`."""
    reservation = Reservation()
    refused: ratelimit.Decision | None = None
    counted = [
        (name, found, subject) for name, subject in limits if (found := limit(name)) is not None
    ]
    now = utcnow()
    with get_db().session() as session:
        # Every counter in one statement (one round trip on PostgreSQL, issue 18).
        decisions = ratelimit.hit_all(
            session, _secret(), [(found, subject) for _name, found, subject in counted], now
        )
    for (name, found, subject), decision in zip(counted, decisions, strict=True):
        reservation.hits.append((found, subject, now))
        if decision.allowed:
            continue
        log.warning("rate limit %s reached (%s attempts)", found.name, decision.count)
        if name in soft:
            reservation.slowed = True
        elif refused is None:
            refused = decision
    if refused is not None:
        reservation.refund()
        raise ratelimit.RateLimited(refused.retry_after)
    return reservation


def slow_down() -> None:
    """The platform-wide brake: wait before a code look-up, whatever the code."""
    seconds = float(current_app.config.get(SLOWDOWN_CONFIG, DEFAULT_SLOWDOWN_SECONDS))
    if seconds > 0:
        sleep(seconds)


def reserve_code_lookup() -> Reservation:
    """Before looking a typed code up (code page, self-erasure).

    One guess is counted for this address and for the platform in one atomic step each. An
    address over its limit gets 429 for any code (it cannot tell valid from unknown); over
    the platform-wide limit, the look-up waits (`slow_down`), valid or not, and is never
    refused. The caller refunds the reservation when the code is valid: valid codes never
    use up anyone's allowance.
    """
    reservation = reserve(
        ("code_ip", client_subject()), ("code_all", "*"), soft=frozenset({"code_all"})
    )
    if reservation.slowed:
        slow_down()
    return reservation


def reserve_staff_code_lookup(user_id: int, structure_id: int | None) -> Reservation:
    """Before a staff member looks a typed code up: refunded when the code is one of theirs."""
    structure = "none" if structure_id is None else str(structure_id)
    return reserve(("staff_code_user", str(user_id)), ("staff_code_structure", structure))


# --- CSRF tokens on question pages ---------------------------------------------------------

CSRF_TOKENS_KEY = "selfcheck.csrf_tokens"
CSRF_TOKENS_MAX = 4096  # per worker


def page_csrf_token() -> str:
    """Flask-WTF's signed CSRF token, signed once per session secret in each worker.

    `generate_csrf` signs the session's secret again on every page (a key derivation, an HMAC,
    zlib and base64: about a fifteenth of a question page). With no time limit on the token
    (WTF_CSRF_TIME_LIMIT None: the journey has none, RGAA 2.2.1) a token signed earlier for
    the same secret is exactly as valid, so it is kept and given again. With a time limit,
    every page signs a new one, as Flask-WTF does.
    """
    config = current_app.config
    field_name = config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    raw = session.get(field_name)
    if config.get("WTF_CSRF_TIME_LIMIT") is not None or not isinstance(raw, str):
        return str(generate_csrf())
    signed: dict[tuple[object, str], str] = current_app.extensions.setdefault(CSRF_TOKENS_KEY, {})
    key = _csrf_key(current_app, raw)
    token = signed.get(key)
    if token is None:
        token = str(generate_csrf())
        if len(signed) >= CSRF_TOKENS_MAX:
            del signed[next(iter(signed))]
        signed[key] = token
    setattr(g, field_name, token)  # as generate_csrf does: the same token for the request
    return token


def _csrf_key(app: Flask, raw: str) -> tuple[object, str]:
    return (app.config.get("WTF_CSRF_SECRET_KEY") or app.secret_key, raw)


def signed_page_csrf_token(app: Flask, raw: object) -> str | None:
    """The token `page_csrf_token` gave earlier for the session's CSRF secret `raw`, or None
    (none yet, or tokens with a time limit): for the question pages served before Flask
    (`journey.fast_page`), which leave the signing to Flask's path."""
    if app.config.get("WTF_CSRF_TIME_LIMIT") is not None or not isinstance(raw, str):
        return None
    signed: dict[tuple[object, str], str] = app.extensions.get(CSRF_TOKENS_KEY, {})
    return signed.get(_csrf_key(app, raw))


# --- CSRF tokens checked once per worker ----------------------------------------------------

CSRF_VERIFIED_KEY = "selfcheck.csrf_verified"
CSRF_VERIFIED_MAX = 4096  # per worker, as the signed tokens and the verified cookies
# A token as Flask-WTF signs it (~91 characters: base64 of the secret, time, signature).
# itsdangerous's base64 drops characters outside its alphabet, so a token padded with them
# (up to the form's 64 KB) is the same valid token: only the plain form is remembered, or
# 4096 padded copies of one token would pin ~256 MB in a worker (attack16).
CSRF_TOKEN_MAX_LENGTH = 256
csrf_log = logging.getLogger("flask_wtf.csrf")  # Flask-WTF's logger: the same log lines


class CheckedCSRFProtect(CSRFProtect):  # type: ignore[misc]
    """Flask-WTF's protection, a token already verified by this worker not verified again.

    Every form post (16 a journey: each page saved, the start, the sending) verified its signed
    token afresh: `validate_csrf` derives the key, checks the HMAC, decodes base64 and JSON
    (about 100 us). With no time limit on the token (WTF_CSRF_TIME_LIMIT None, as the journey
    has, RGAA 2.2.1) a token whose signature was good once is good for ever, and what it holds
    never changes; so the worker keeps token -> the session secret it holds (per signing key,
    bounded), and a token seen again is compared with the session's secret exactly as
    `validate_csrf` compares it (`hmac.compare_digest`). A token not seen yet, a missing
    one, a time limit configured or a changed key: `validate_csrf` as before, with its errors
    and log lines. Everything else is Flask-WTF's `protect` step by step (1.3: exemptions,
    methods, the token found in the form or headers, the HTTPS referrer check, `g.csrf_valid`):
    `tests/test_security.py` pins its source."""

    def protect(self, apply_exemptions: bool = False) -> None:
        if apply_exemptions:
            if not request.endpoint:
                return
            if self._is_exempt():
                return
        config = current_app.config
        if request.method not in config["WTF_CSRF_METHODS"]:
            return
        try:
            _validate_csrf_once(self._get_csrf_token())
        except ValidationError as error:
            csrf_log.info(error.args[0])
            self._error_response(error.args[0])
        if request.is_secure and config["WTF_CSRF_SSL_STRICT"]:
            if not request.referrer:
                self._error_response("The referrer header is missing.")
            good_referrer = f"https://{request.host}/"
            if not same_origin(request.referrer, good_referrer):
                self._error_response("The referrer does not match the host.")
        g.csrf_valid = True  # mark this request as CSRF valid


def _plain_token(token: str) -> bool:
    """Whether `token` is in the form Flask-WTF signs it (the only form remembered)."""
    return sessions.plain(token, CSRF_TOKEN_MAX_LENGTH)


def _validate_csrf_once(token: str | None) -> None:
    """`validate_csrf(token)`, its signature checked once per worker (`CheckedCSRFProtect`)."""
    config = current_app.config
    field_name = config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    secret_key = config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key
    if (
        not token
        or not isinstance(token, str)
        or not field_name
        or not secret_key
        or config.get("WTF_CSRF_TIME_LIMIT", 3600) is not None
    ):
        validate_csrf(token)  # its own errors (missing, expired, ...)
        return
    verified: dict[tuple[object, str], str] = current_app.extensions.setdefault(
        CSRF_VERIFIED_KEY, {}
    )
    held = verified.get((secret_key, token))
    if held is None:
        validate_csrf(token)  # raises unless the signature is good and the secrets match
        held = session[field_name]  # what the token holds: `validate_csrf` found them equal
        if isinstance(held, str) and _plain_token(token):
            if len(verified) >= CSRF_VERIFIED_MAX:
                # The oldest out; another thread may change the dict meanwhile.
                with contextlib.suppress(StopIteration, RuntimeError):
                    verified.pop(next(iter(verified)), None)
            verified[(secret_key, token)] = held
        return
    # As `validate_csrf`, in its order, for a token whose signature was good.
    if field_name not in session:
        raise ValidationError("The CSRF session token is missing.")
    raw = session[field_name]
    if not isinstance(raw, str) or not hmac.compare_digest(raw, held):
        raise ValidationError("The CSRF tokens do not match.")
