"""Error pages: our template, a plain-words message, the right status, no stack trace."""

from __future__ import annotations

import logging
from collections.abc import Callable

import flask
import pytest
from flask import Flask, abort

from selfcheck.platform import errors
from tests.support import html_lang, words


@pytest.fixture
def app_with_faults(make_app: Callable[..., Flask]) -> Flask:
    app = make_app()

    def boom() -> str:
        raise RuntimeError("secret internal detail")

    def forbidden() -> str:
        abort(403)

    def teapot() -> str:
        abort(418)

    def limited() -> str:
        abort(429)

    app.add_url_rule("/boom", view_func=boom)
    app.add_url_rule("/forbidden", view_func=forbidden)
    app.add_url_rule("/teapot", view_func=teapot)
    app.add_url_rule("/limited", view_func=limited)
    return app


def test_unexpected_exception_gives_our_500_page_and_is_logged(
    app_with_faults: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="selfcheck.platform.errors"):
        page = app_with_faults.test_client().get("/boom")
    assert page.status_code == 500
    html = words(page)
    assert "Un problème est survenu de notre côté" in html
    assert "secret internal detail" not in html
    assert "Traceback" not in html
    assert html_lang(html) == ("fr", "ltr")
    assert any(
        record.exc_info and "secret internal detail" in str(record.exc_info[1])
        for record in caplog.records
    )


@pytest.mark.parametrize(
    ("url", "status", "title"),
    [
        ("/forbidden", 403, "Accès refusé"),
        ("/limited", 429, "Trop d'essais"),
        ("/teapot", 418, "Nous n'avons pas compris la demande"),  # unknown 4xx: generic text
    ],
)
def test_http_errors_use_our_page(
    app_with_faults: Flask, url: str, status: int, title: str
) -> None:
    page = app_with_faults.test_client().get(url)
    assert page.status_code == status
    html = words(page)
    assert f"<h1>{title}</h1>" in html
    assert f"Code d'erreur : {status}" in html
    assert 'href="/"' in html


def test_redirects_are_not_turned_into_error_pages(app_with_faults: Flask) -> None:
    page = app_with_faults.test_client().get("/summary")
    assert page.status_code == 302


@pytest.mark.parametrize("path", ["/", "/privacy/erase", "/staff/login", "/nowhere", "/boom"])
@pytest.mark.parametrize(("lang", "title"), [("fr", "Nous n'avons pas compris la demande")])
def test_an_untrusted_host_gets_our_400_page_not_a_500(
    make_app: Callable[..., Flask], path: str, lang: str, title: str
) -> None:
    # Found by attack8: with Flask's TRUSTED_HOSTS, a request for another host is refused
    # before routing (400), and the error page, whose layout builds addresses (url_for),
    # failed: a 500 instead. Now the same words, bare.
    app = make_app(TRUSTED_HOSTS=["localhost"])
    client = app.test_client()
    page = client.get(path, headers={"Host": "evil.example", "Accept-Language": lang})
    assert page.status_code == 400
    html = words(page)
    assert f"<h1>{title}</h1>" in html
    assert "Code d'erreur : 400" in html
    assert html_lang(html) == (lang, "ltr")
    assert "evil.example" not in html
    assert client.get("/", headers={"Host": "localhost"}).status_code == 200


def test_an_untrusted_host_page_is_translated(make_app: Callable[..., Flask]) -> None:
    app = make_app(TRUSTED_HOSTS=["localhost"])
    page = app.test_client().get(
        "/?lang=en", headers={"Host": "evil.example", "Accept-Language": "en"}
    )
    assert page.status_code == 400
    html = words(page)
    assert html_lang(html)[0] == "en"
    assert "Nous n'avons pas compris" not in html


def test_an_error_page_whose_layout_fails_is_shown_bare(
    app_with_faults: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = flask.render_template

    def layout_broken(name: str, **context: object) -> str:
        if name == "errors/error.html":
            raise RuntimeError("layout broken")
        return real(name, **context)

    monkeypatch.setattr(errors, "render_template", layout_broken)
    page = app_with_faults.test_client().get("/forbidden")
    assert page.status_code == 403
    assert "<h1>Accès refusé</h1>" in words(page)
