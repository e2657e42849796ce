"""Rendered question pages, kept per (locale, form, page, visible questions, step, …).

A question page is the same for everyone but for the person's answers and the CSRF token, so
it is rendered once with placeholders (`page_view.build_questions(placeholders=True)` and
`CSRF_PLACEHOLDER`) and each request only fills them in (`page_view.PageTemplate`). Rendering
macros and translating labels was most of a page's cost (see benchmarks/README.md). Pages
showing errors are rendered afresh, never cached.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import TypeVar

from markupsafe import escape

T = TypeVar("T")

EXTENSION_KEY = "selfcheck.page_cache"
# Per-request values of a cached page. A control character cannot appear in rendered HTML
# otherwise, and `fill_request` replaces them all before the page leaves the server.
CSRF_PLACEHOLDER = "\x02csrf\x02"
RESPONSE_PLACEHOLDER = "\x02response\x02"
CODE_PLACEHOLDER = "\x02code\x02"
CODE_SPOKEN_PLACEHOLDER = "\x02code-spoken\x02"


def fill_request(html: str, values: Mapping[str, str]) -> str:
    """Replace the per-request placeholders (values are escaped: they go into attributes)."""
    for placeholder, value in values.items():
        html = html.replace(placeholder, str(escape(value)))
    return html


class PageCache:
    MAX_ENTRIES = 5_000  # locales x forms x pages x visible-question sets x steps: hundreds

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._store: dict[Hashable, str] = {}
        self._built: dict[Hashable, object] = {}

    def get_or_render(self, key: Hashable, render: Callable[[], str]) -> str:
        if not self.enabled:
            return render()
        html = self._store.get(key)
        if html is None:
            html = render()
            if len(self._store) < self.MAX_ENTRIES:
                self._store[key] = html
        return html

    def get_or_build(
        self, key: Hashable, render: Callable[[], str], build: Callable[[str], T]
    ) -> T:
        """`build` (e.g. `PageTemplate.parse`) of the page rendered for `key`, kept with it."""
        if not self.enabled:
            return build(render())
        built = self._built.get(key)
        if built is None:
            built = build(self.get_or_render(key, render))
            if len(self._built) < self.MAX_ENTRIES:
                self._built[key] = built
        return built  # type: ignore[return-value]
