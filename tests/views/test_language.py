"""Language: ?lang= (remembered in a cookie), then the cookie, Accept-Language, the default."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from selfcheck.platform.db import Database
from selfcheck.platform.i18n import LANG_COOKIE, NATIVE_NAMES, text_direction
from selfcheck.platform.models import Structure
from tests.support import Visitor, html_lang, responses, text_of


def lang_of(client: FlaskClient, url: str = "/", **kwargs: object) -> tuple[str, str]:
    page = client.get(url, **kwargs)
    assert page.status_code == 200
    return html_lang(text_of(page))


def test_default_is_french_left_to_right(client: FlaskClient) -> None:
    assert lang_of(client) == ("fr", "ltr")


def test_accept_language_english(client: FlaskClient) -> None:
    assert lang_of(client, headers={"Accept-Language": "en-GB,en;q=0.9"}) == ("en", "ltr")
    assert lang_of(client, headers={"Accept-Language": "de,en;q=0.5,fr;q=0.9"}) == ("fr", "ltr")
    assert lang_of(client, headers={"Accept-Language": "de"}) == ("fr", "ltr")


def test_lang_parameter_sets_a_cookie_that_is_remembered(client: FlaskClient) -> None:
    page = client.get("/?lang=en", headers={"Accept-Language": "fr"})
    assert html_lang(text_of(page)) == ("en", "ltr")
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith(f"{LANG_COOKIE}=en;")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=31536000" in cookie
    # Next pages keep English without the parameter, even with a French browser.
    assert lang_of(client, "/code", headers={"Accept-Language": "fr"}) == ("en", "ltr")
    assert client.get_cookie(LANG_COOKIE) is not None
    again = client.get("/?lang=en")
    assert "Set-Cookie" not in again.headers  # already remembered
    assert lang_of(client, "/?lang=fr") == ("fr", "ltr")
    assert lang_of(client, "/") == ("fr", "ltr")


def test_language_cookie_is_secure_over_https(app: Flask) -> None:
    page = app.test_client().get("/?lang=en", base_url="https://selfcheck.example")
    assert "; Secure" in page.headers["Set-Cookie"]
    plain = app.test_client().get("/?lang=en")
    assert "Secure" not in plain.headers["Set-Cookie"]


def test_unknown_language_is_ignored(client: FlaskClient) -> None:
    page = client.get("/?lang=xx")
    assert html_lang(text_of(page)) == ("fr", "ltr")
    assert "Set-Cookie" not in page.headers
    client.set_cookie(LANG_COOKIE, "klingon")
    assert lang_of(client, headers={"Accept-Language": "en"}) == ("en", "ltr")


def test_language_switcher_lists_languages_in_their_own_names(client: FlaskClient) -> None:
    html = text_of(client.get("/?lang=en"))
    assert '<a href="?lang=fr" lang="fr" dir="ltr" hreflang="fr">Français</a>' in html
    assert 'lang="en" dir="ltr" hreflang="en" aria-current="true">English</a>' in html
    assert '<a href="?lang=ar" lang="ar" dir="rtl" hreflang="ar">العربية</a>' in html


def test_error_pages_are_in_the_chosen_language(client: FlaskClient) -> None:
    page = client.get("/nowhere?lang=en")
    assert page.status_code == 404
    assert html_lang(text_of(page)) == ("en", "ltr")


def test_the_response_records_the_locale(
    new_visitor: Callable[[], Visitor], structure: Structure, database: Database
) -> None:
    english = new_visitor()
    english.follow(english.start(structure.slug, lang="en"))
    french = new_visitor()
    french.follow(french.start(structure.slug))
    assert [r.locale for r in responses(database)] == ["en", "fr"]


@pytest.mark.parametrize(
    ("locale", "direction"),
    [
        ("fr", "ltr"),
        ("en", "ltr"),
        ("ar", "rtl"),
        ("fa_IR", "rtl"),
        ("he", "rtl"),
        ("ur", "rtl"),
        ("ps", "rtl"),  # Pashto: in no hand-kept list, CLDR knows it
        ("pt-BR", "ltr"),
        ("not-a-language", "ltr"),
    ],
)
def test_text_direction(locale: str, direction: str) -> None:
    assert text_direction(locale) == direction


def test_right_to_left_language_sets_dir_rtl(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SELFCHECK_LANGUAGES", "fr,en,ar")
    client = make_app().test_client()
    assert lang_of(client, "/?lang=ar") == ("ar", "rtl")
    assert NATIVE_NAMES["ar"] in text_of(client.get("/"))


def test_configured_default_language_when_the_browser_says_nothing(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SELFCHECK_LANGUAGES", "en,fr")
    monkeypatch.setenv("SELFCHECK_DEFAULT_LANGUAGE", "fr")
    client = make_app().test_client()
    assert lang_of(client) == ("fr", "ltr")
    assert lang_of(client, headers={"Accept-Language": "en"}) == ("en", "ltr")
