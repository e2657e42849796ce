"""attack8: requests the fast question pages (`journey.fast_page`) must answer as Flask does."""

from __future__ import annotations

import io

import pytest
from flask import Flask

from tests.support import Visitor
from tests.views.test_fast_page import (
    COOKIE,
    _environ,
    _fast_served,
    _layer,
    _run,
    _session_cookie,
    access_lines,  # noqa: F401 (fixture)
    assert_same,
    on_page,  # noqa: F401 (fixture)
)


@pytest.mark.parametrize(
    ("extra_cookies", "headers"),
    [
        ("", {"Accept-Language": "ar"}),
        ("", {"Accept-Language": "en-US,en;q=0.9"}),
        ("", {"Accept-Language": "*"}),
        ("", {"Accept-Language": "xx, zz;q=0"}),
        ("", {"Accept-Language": "fr-CA;q=0.2, ar;q=0.9"}),
        ("selfcheck_lang=en", {"Accept-Language": "ar"}),
        ("selfcheck_lang=bogus", {"Accept-Language": "en"}),
        ("selfcheck_display=large", {}),
        ("selfcheck_display=bogus", {}),
        ("other=\xe9\xff", {}),
        ("", {"Host": "evil.example"}),
    ],
)
def test_attack8_variants_same_on_both_paths(
    visitor: Visitor,
    app: Flask,
    on_page: str,  # noqa: F811
    access_lines: io.StringIO,  # noqa: F811
    extra_cookies: str,
    headers: dict[str, str],
) -> None:
    extra = f"; {extra_cookies}" if extra_cookies else ""
    cookie = f"{COOKIE}={_session_cookie(visitor)}{extra}"
    _fast_served(app, on_page, cookie, access_lines, headers=headers)


def test_attack8_duplicate_session_cookies(
    visitor: Visitor,
    app: Flask,
    on_page: str,  # noqa: F811
    access_lines: io.StringIO,  # noqa: F811
) -> None:
    good = _session_cookie(visitor)
    forged = good[:-2] + ("AA" if good[-2:] != "AA" else "BB")
    for cookie in (
        f"{COOKIE}={good}; {COOKIE}={forged}",
        f"{COOKIE}={forged}; {COOKIE}={good}",
        f'{COOKIE}="{good}"',
    ):
        _fast_served(app, on_page, cookie, access_lines)


def test_attack8_script_name_prefix(
    visitor: Visitor,
    app: Flask,
    on_page: str,  # noqa: F811
    access_lines: io.StringIO,  # noqa: F811
) -> None:
    cookie = f"{COOKIE}={_session_cookie(visitor)}"
    layer = _layer(app)
    environ = _environ(on_page, cookie)
    environ["SCRIPT_NAME"] = "/prefix"
    flask_result = _run(layer.inner, dict(environ), access_lines)
    fast_result = _run(layer, dict(environ), access_lines)
    assert_same(flask_result, fast_result)


def test_attack8_config_changed_after_start_csrf_on_get(
    visitor: Visitor,
    app: Flask,
    on_page: str,  # noqa: F811
    access_lines: io.StringIO,  # noqa: F811
) -> None:
    """Finding: the layer checked `WTF_CSRF_METHODS` (and `SERVER_NAME`) once, with the hooks;
    a config changed after the first page (GET now CSRF-checked) was then not seen, and the
    layer served a 200 where Flask refuses with 400."""
    cookie = f"{COOKIE}={_session_cookie(visitor)}"
    assert _fast_served(app, on_page, cookie, access_lines)
    app.config["WTF_CSRF_METHODS"] = ["GET", "POST"]
    assert not _fast_served(app, on_page, cookie, access_lines)


def test_attack8_trusted_hosts_go_to_flask(
    visitor: Visitor,
    app: Flask,
    on_page: str,  # noqa: F811
    access_lines: io.StringIO,  # noqa: F811
) -> None:
    """Finding: with Flask's `TRUSTED_HOSTS`, Flask refuses a request for another host (400);
    the layer served the page for any Host header."""
    cookie = f"{COOKIE}={_session_cookie(visitor)}"
    assert _fast_served(app, on_page, cookie, access_lines)
    app.config["TRUSTED_HOSTS"] = ["localhost"]
    layer = _layer(app)
    served = layer.served
    environ = _environ(on_page, cookie, headers={"Host": "evil.example"})
    try:
        status = _run(layer, environ, access_lines)[0]
    except Exception:  # Flask's path: its 400 page, whatever becomes of it (see report)
        status = "error"
    assert layer.served == served, status


def test_attack8_a_teardown_hook_turns_the_layer_off(
    visitor: Visitor,
    app: Flask,
    on_page: str,  # noqa: F811
    access_lines: io.StringIO,  # noqa: F811
) -> None:
    """Finding: teardown functions (request and app context) were not among the hooks the
    layer compares, so one added later would have been skipped silently on its pages."""
    cookie = f"{COOKIE}={_session_cookie(visitor)}"
    assert _fast_served(app, on_page, cookie, access_lines)
    seen: list[object] = []
    app.teardown_request_funcs.setdefault(None, []).append(seen.append)
    try:
        assert not _fast_served(app, on_page, cookie, access_lines)
    finally:
        app.teardown_request_funcs[None].pop()
    assert _fast_served(app, on_page, cookie, access_lines)
    app.teardown_appcontext_funcs.append(seen.append)
    try:
        assert not _fast_served(app, on_page, cookie, access_lines)
    finally:
        app.teardown_appcontext_funcs.pop()
    assert _fast_served(app, on_page, cookie, access_lines)
