"""Rendered question pages, kept per (locale, form, page, visible questions, step, …).

A question page is the same for everyone but for the person's answers and the CSRF token, so
it is rendered once with placeholders (`page_view.build_questions(placeholders=True)` and
`CSRF_PLACEHOLDER`) and each request only fills them in (`page_view.fill_state`). Rendering
macros and translating labels was most of a page's cost (see benchmarks/README.md). Pages
showing errors are rendered afresh, never cached.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

EXTENSION_KEY = "selfcheck.page_cache"
# A control character cannot appear in rendered HTML otherwise; it never reaches a browser.
CSRF_PLACEHOLDER = "\x02csrf\x02"


class PageCache:
    MAX_ENTRIES = 5_000  # locales x forms x pages x visible-question sets x steps: hundreds

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._store: dict[Hashable, str] = {}

    def get_or_render(self, key: Hashable, render: Callable[[], str]) -> str:
        if not self.enabled:
            return render()
        html = self._store.get(key)
        if html is None:
            html = render()
            if len(self._store) < self.MAX_ENTRIES:
                self._store[key] = html
        return html
