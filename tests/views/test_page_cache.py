"""The question-page cache: each person sees their own answers, no placeholder ever leaks."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask import Flask

from selfcheck.journey.page_cache import (
    EXTENSION_KEY,
    MARK,
    PageCache,
    checked_marker,
    fill,
    marker,
    value_marker,
)
from selfcheck.platform.models import Structure
from tests.support import Visitor, csrf_token

MARKERS = (MARK, "\x00", "\x01")  # the one marker character, and the two of former schemes


def _checked(html: str, name: str) -> list[str]:
    return re.findall(rf'name="{name}" value="([^"]+)" checked', html)


def test_two_people_on_the_same_page_see_their_own_answers(
    app: Flask, new_visitor: Callable[[], Visitor], structure: Structure
) -> None:
    alice, bob = new_visitor(), new_visitor()
    for person, answer in ((alice, "seul"), (bob, "proche")):
        started = person.start(structure.slug)
        person.get(started.headers["Location"])
        assert person.answer({"ASSIST": [answer]}).status_code == 302
    for person, answer in ((alice, "seul"), (bob, "proche")):
        page = person.get("/q/p_help")
        assert page.status_code == 200
        assert _checked(person.html, "ASSIST") == [answer]
        assert not any(marker in person.html for marker in MARKERS)
    cache: PageCache = app.extensions[EXTENSION_KEY]
    assert cache.enabled and len(cache._store) >= 1  # the second person was served from it


def test_each_page_gets_a_fresh_csrf_token_that_works(
    new_visitor: Callable[[], Visitor], structure: Structure
) -> None:
    person = new_visitor()
    started = person.start(structure.slug)
    person.get(started.headers["Location"])
    token = csrf_token(person.html)
    assert token and MARK not in token
    assert person.answer({"ASSIST": ["mediateur"]}).status_code == 302


def test_typed_values_are_filled_and_escaped(
    new_visitor: Callable[[], Visitor], structure: Structure
) -> None:
    # A number and a free text: the 'after' form asks both (the light retro form does not).
    code = new_visitor().complete(structure.slug)
    person = new_visitor()
    person.follow(person.enter_code(code))
    person.follow(person.post("/welcome-back"))
    person.answer({"ASSIST": ["seul"]})
    person.get("/q/p_modality")
    assert person.answer({"SESSIONS": ["12"], "MODALITY": ["collectif"]}).status_code == 302
    person.get("/q/p_comment")
    text = 'Merci <b>"beaucoup"</b> & à bientôt'
    assert person.answer({"COMMENT": [text]}).status_code == 302
    person.get("/q/p_modality")
    assert 'value="12"' in person.html
    assert _checked(person.html, "MODALITY") == ["collectif"]
    person.get("/q/p_comment")
    assert "Merci &lt;b&gt;&#34;beaucoup&#34;&lt;/b&gt; &amp; à bientôt" in person.html
    assert not any(marker in person.html for marker in MARKERS)


def test_pages_with_errors_are_rendered_afresh_and_never_cached(
    app: Flask, new_visitor: Callable[[], Visitor], structure: Structure
) -> None:
    person = new_visitor()
    started = person.start(structure.slug)
    person.get(started.headers["Location"])
    cache: PageCache = app.extensions[EXTENSION_KEY]
    before = len(cache._store)
    wrong = person.answer({"ASSIST": ["tampered"]})
    assert wrong.status_code == 422
    assert len(cache._store) == before
    html = wrong.get_data(as_text=True)
    assert 'id="error-summary"' in html
    assert not any(marker in html for marker in MARKERS)


def test_a_disabled_cache_renders_every_time() -> None:
    calls: list[int] = []
    cache = PageCache(enabled=False)
    for _ in range(3):
        assert cache.get_or_render("key", lambda: str(calls.append(1) or "page")) == "page"
    assert len(calls) == 3
    enabled = PageCache()
    for _ in range(3):
        enabled.get_or_render("key", lambda: str(calls.append(1) or "page"))
    assert len(calls) == 4


def test_fill_replaces_every_marker_in_one_pass() -> None:
    html = (
        f'<input value="{marker("csrf")}"><input{checked_marker("f-A-1")}>'
        f'<input{checked_marker("f-A-2")}><input value="{value_marker("T")}">'
        f'<input value="{value_marker("U")}">'
    )
    values = {
        marker("csrf"): "token",
        checked_marker("f-A-2"): " checked",
        # A typed text that looks like a marker stays text: it is never read again.
        value_marker("T"): f'{marker("csrf")} <b>"x"</b>',
    }
    assert fill(html, values) == (
        '<input value="token"><input><input checked>'
        f'<input value="{MARK}csrf{MARK} &lt;b&gt;&#34;x&#34;&lt;/b&gt;"><input value="">'
    )
