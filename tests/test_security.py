"""Security headers, the strict CSP and the templates it forces, cookies, CSRF on every POST."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from werkzeug.routing import IntegerConverter, Rule

from selfcheck.accounts.permissions import public
from selfcheck.platform import security
from selfcheck.platform.models import Structure
from tests.support import Visitor

TEMPLATES = Path(__file__).resolve().parent.parent / "selfcheck" / "templates"
# Blocked by the CSP (style-src 'self', script-src 'self'): an inline <style> or <script>
# element, a style="" attribute (also on SVG elements), an on…="" handler, a javascript: URL.
INLINE = {
    "style element": re.compile(r"<style\b", re.I),
    "style attribute": re.compile(r"\sstyle\s*=", re.I),
    "inline script": re.compile(r"<script\b(?![^>]*\bsrc=)", re.I),
    "event handler attribute": re.compile(r"<[^>]*\son[a-z]+\s*=", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


def served_templates() -> list[Path]:
    """Every template served as HTML (the printable/ folder, PDFs only, lives elsewhere)."""
    found = sorted(TEMPLATES.rglob("*.html"))
    assert len(found) > 20
    return found


def test_no_template_has_inline_style_or_script() -> None:
    problems = [
        f"{path.relative_to(TEMPLATES)}:{text[: match.start()].count(chr(10)) + 1}: {what}"
        for path in served_templates()
        for text in [path.read_text(encoding="utf-8")]
        for what, pattern in INLINE.items()
        for match in pattern.finditer(text)
    ]
    assert problems == []


@pytest.mark.parametrize(
    ("html", "what"),
    [
        ('<p style="color: red">', "style attribute"),
        ('<rect width="3" style="fill: red"/>', "style attribute"),
        ("<style>p { color: red }</style>", "style element"),
        ("<script>alert(1)</script>", "inline script"),
        ('<button onclick="go()">', "event handler attribute"),
        ('<a href="javascript:go()">', "javascript: URL"),
    ],
)
def test_the_template_check_finds_each_kind(html: str, what: str) -> None:
    assert INLINE[what].search(html)
    assert not INLINE["inline script"].search('<script src="/static/js/entry.js" defer></script>')


def test_security_headers_on_pages_errors_and_static_files(
    client: FlaskClient, structure: Structure
) -> None:
    for url in (
        "/",
        f"/s/{structure.slug}",
        "/code",
        "/staff/login",
        "/nowhere",
        "/static/css/selfcheck.css",
    ):
        response = client.get(url)
        headers = response.headers
        assert headers["Content-Security-Policy"] == (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
        ), url
        assert "unsafe-inline" not in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert "camera=()" in headers["Permissions-Policy"]
        assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert headers["X-Frame-Options"] == "DENY"
        assert "Strict-Transport-Security" not in headers  # not without HTTPS
        response.close()


def test_hsts_when_cookies_are_secure(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SELFCHECK_COOKIE_SECURE", "1")
    response = make_app().test_client().get("/")
    assert response.headers["Strict-Transport-Security"] == security.HSTS
    assert "max-age=63072000" in security.HSTS


def _set_cookies(response_headers: list[str], name: str) -> str:
    found = [value for value in response_headers if value.startswith(name + "=")]
    assert found, f"no {name} cookie set"
    return found[-1]


def test_session_and_language_cookies_are_httponly_lax(visitor: Visitor) -> None:
    visitor.get("/code?lang=en")  # a page with a form: the session holds a CSRF secret
    headers = visitor.last.headers.getlist("Set-Cookie") if visitor.last else []
    for name in ("selfcheck_session", "selfcheck_lang"):
        cookie = _set_cookies(headers, name)
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie
        assert "Secure" not in cookie


def test_cookies_are_secure_when_configured(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SELFCHECK_COOKIE_SECURE", "1")
    client = make_app().test_client()
    # Over plain HTTP in the test client: the setting alone makes both cookies Secure.
    response = client.get("/code?lang=en")
    headers = response.headers.getlist("Set-Cookie")
    for name in ("selfcheck_session", "selfcheck_lang"):
        cookie = _set_cookies(headers, name)
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def _sample_url(app: Flask, rule: Rule) -> str:
    """The rule's URL with any well-typed arguments (CSRF is checked before they matter)."""
    values: dict[str, object] = {
        name: 1 if isinstance(converter, IntegerConverter) else "abc"
        for name, converter in rule._converters.items()
    }
    with app.test_request_context():
        return url_for(rule.endpoint, **values)


def test_every_post_route_refuses_a_missing_csrf_token(app: Flask) -> None:
    """Whatever the route and the role, a POST without its token is a clear 400 page and
    changes nothing (CSRFProtect runs before any view)."""
    checked = []
    for rule in app.url_map.iter_rules():
        if "POST" not in (rule.methods or ()):
            continue
        url = _sample_url(app, rule)
        client = app.test_client()
        client.get("/code")  # a session with a CSRF secret: only the token is missing
        response = client.post(url, data={"code": "K7M2QX9RT"})
        page = response.get_data(as_text=True)
        assert response.status_code == 400, (url, response.status_code)
        assert "Votre page a expiré" in page, url
        assert "Rechargez la page" in page or "rechargez la page" in page, url
        checked.append(rule.endpoint)
    assert len(checked) >= 10
    assert {"staff_auth.login", "journey.enter_code"} <= set(checked)


def test_a_wrong_csrf_token_is_refused_too(visitor: Visitor) -> None:
    visitor.get("/code")
    response = visitor.post("/code", {"code": "K7M2QX9RT", "csrf_token": "forged"})
    assert response.status_code == 400
    assert "Votre page a expiré" in response.get_data(as_text=True)


def test_client_address_from_the_proxy_only_when_configured(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    def seen(app: Flask) -> str:
        captured: list[str] = []

        @app.get("/__ip")
        @public
        def _ip() -> str:
            captured.append(security.client_ip())
            return "ok"

        app.test_client().get(
            "/__ip",
            headers={"X-Forwarded-For": "203.0.113.7"},
            environ_base={"REMOTE_ADDR": "10.0.0.1"},
        )
        return captured[0]

    assert seen(make_app()) == "10.0.0.1"  # a forged header changes nothing by default
    monkeypatch.setenv("SELFCHECK_PROXY_HOPS", "1")
    assert seen(make_app()) == "203.0.113.7"
