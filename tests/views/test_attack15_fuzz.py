"""attack15: every form of every page, as every role, posted back malformed.

Each GET route of the URL map is opened as each role (and as a person with a questionnaire
open); every POST form on the page is then sent back with a valid CSRF token and, in turn:
bytes that are not UTF-8 in each field, each field repeated with another value, a NUL in each
field, 5,000-character values, no field at all, and the body as text/plain or as multipart.
None may be a server error (on SQLite and on PostgreSQL).

The per-field variants go to two fields of each form drawn at random (the seed is in the
failure's message; `SELFCHECK_FUZZ_SEED` replays it): every field of every form took about
3 minutes a database, too much for CI's budget, and a fresh draw each run still reaches every
field over time. `SELFCHECK_FUZZ_FULL=1` sends them to every field.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from urllib.parse import urlencode, urlsplit

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from selfcheck.questionnaire.model import FormKind
from tests.support import HtmlForm, Visitor, parse_forms
from tests.views.test_access_matrix import (
    ANONYMOUS,
    ROLES,
    World,
    routes,
    world,  # noqa: F401 (a fixture)
)

# Forms that end the session or sign out everywhere: sent last, once.
SKIPPED_ACTIONS = ("/staff/logout",)
FIELDS_DRAWN = 2  # per form, for the per-field variants (all with SELFCHECK_FUZZ_FULL=1)


def _fields(form: HtmlForm) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for item in form.inputs:
        if not item.name:
            continue
        if item.type in {"radio", "checkbox"} and not item.checked:
            continue
        if item.tag == "button":
            continue
        pairs.append((item.name, item.value))
    buttons = [(i.name, i.value) for i in form.inputs if i.tag == "button" and i.name]
    return pairs + buttons[:1]


def _variants(
    pairs: list[tuple[str, str]], draw: random.Random
) -> Iterator[tuple[str, bytes, str]]:
    token = [(n, v) for n, v in pairs if n == "csrf_token"]
    others = [(n, v) for n, v in pairs if n != "csrf_token"]
    if os.environ.get("SELFCHECK_FUZZ_FULL") == "1":
        chosen = set(range(len(others)))
    else:
        chosen = set(draw.sample(range(len(others)), min(FIELDS_DRAWN, len(others))))
    form = "application/x-www-form-urlencoded"

    def encode(items: list[tuple[str, str | bytes]]) -> bytes:
        return urlencode(items).encode()

    yield "nothing", encode(list(token)), form
    for index, (name, _value) in enumerate(others):
        if index not in chosen:
            continue
        bad: list[tuple[str, str | bytes]] = list(token)
        for other, (n, v) in enumerate(others):
            bad.append((n, b"\xff\xfe\xc3(" + v.encode() if other == index else v))
        yield f"not utf-8 in {name}", encode(bad), form
        doubled: list[tuple[str, str | bytes]] = [*token, *others, (name, "autre"), (name, "")]
        yield f"{name} repeated", encode(doubled), form
        nul: list[tuple[str, str | bytes]] = [*token]
        nul += [(n, v + "\x00" if other == index else v) for other, (n, v) in enumerate(others)]
        yield f"NUL in {name}", encode(nul), form
    long: list[tuple[str, str | bytes]] = [*token, *((n, "9" * 5000) for n, _v in others)]
    yield "5,000 characters", encode(long), form
    body = encode([*token, *others])
    yield "as text/plain", body, "text/plain"
    yield "as JSON", body, "application/json"
    yield "bad multipart", body, "multipart/form-data; boundary=xyz"
    yield "non-UTF-8 charset", body, "application/x-www-form-urlencoded; charset=latin-1"


def _client(place: World, role: str) -> FlaskClient:
    if role == "person":
        client = place.app.test_client()
        visitor = Visitor(client)
        visitor.start(place.home.slug, FormKind.BEFORE.value)
        return client
    client, _token = place.client(role)
    return client


@pytest.mark.slow  # minutes: every page and every form of each role
@pytest.mark.parametrize("role", [*ROLES, "person"])
def test_attack15_every_form_posted_back_malformed_is_never_a_500(
    world: World,  # noqa: F811
    role: str,
) -> None:
    seed = int(os.environ.get("SELFCHECK_FUZZ_SEED") or random.randrange(2**32))
    draw = random.Random(seed)
    problems: list[str] = []
    posted = 0
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for rule in routes(world.app):
        if "GET" not in (rule.methods or ()):
            continue
        url = world.url(rule, world.home, role if role != "person" else ANONYMOUS)
        client = _client(world, role)
        page = client.get(url, buffered=True)
        if page.status_code >= 500:
            problems.append(f"GET {url}: {page.status_code}")
        if page.mimetype != "text/html" or page.status_code != 200:
            continue
        for form in parse_forms(page.get_data(as_text=True)):
            if form.method != "post":
                continue
            action = form.action or url
            path = urlsplit(action).path
            pairs = _fields(form)
            key = (path, tuple(sorted(n for n, _v in pairs)))
            if path in SKIPPED_ACTIONS or key in seen:
                continue
            seen.add(key)
            for what, body, content_type in _variants(pairs, draw):
                answer: TestResponse = _client(world, role).post(
                    action, data=body, content_type=content_type, buffered=True
                )
                posted += 1
                if answer.status_code >= 500:
                    problems.append(f"{role}: POST {action} ({what}): {answer.status_code}")
            if role != "person":
                world.cookies.pop(role, None)  # a form may have ended the session
    assert posted > 0
    assert not problems, f"SELFCHECK_FUZZ_SEED={seed}\n" + "\n".join(problems)
