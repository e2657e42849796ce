"""The fast page layer keeps parsed Cookie headers only once their session cookie verified
(attack10 on page17, round 17).

It used to remember the parsed cookies of every distinct Cookie header it saw, up to
`sessions.VERIFIED_MAX` (4096) per worker, BEFORE anything was verified: any client, without
a session, sending GET /q/<anything> with a distinct Cookie header added an entry. A header of
~8 KB (gunicorn's limit_request_field_size) made of 1,600 tiny cookies costs ~140 KB once
parsed (header + dict), so 4096 such requests pinned ~580 MB in each worker until it was
recycled (max_requests 50,000).
"""

from __future__ import annotations

import io
import itertools
import string

from flask import Flask

from tests.support import Visitor
from tests.views.test_fast_page import _environ, _layer, _run, access_lines, on_page

__all__ = ["access_lines", "on_page"]  # the fixtures, used here


def _big_cookie_header(i: int) -> str:
    names = ("".join(p) for p in itertools.product(string.ascii_letters, repeat=2))
    parts: list[str] = [f"zz{i}=1;"]
    size = len(parts[0])
    for name in names:
        part = f"{name}=1;"
        if size + len(part) > 8000:
            break
        parts.append(part)
        size += len(part)
    return "".join(parts)


def test_unverified_cookie_headers_are_not_remembered_without_bound(
    visitor: Visitor, app: Flask, on_page: str, access_lines: io.StringIO
) -> None:
    layer = _layer(app)
    before = dict(layer._cookies)
    for i in range(64):
        _run(layer, _environ(on_page, _big_cookie_header(i)), access_lines)
    added = [header for header in layer._cookies if header not in before]
    remembered = sum(len(header) for header in added) + sum(
        len(layer._cookies[header]) * 64 for header in added
    )
    # 64 anonymous requests must not pin megabytes (x 4096 / 64 in a worker).
    assert remembered < 64 * 1024, f"{len(added)} headers, ~{remembered // 1024} KB kept"
