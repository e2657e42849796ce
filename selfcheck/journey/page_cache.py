"""Rendered question pages, kept per (locale, form, page, visible questions, step, …).

A question page is the same for everyone but for a few per-request values: the CSRF token, the
response id, the person's code, and the person's answers (which options are checked, what was
typed). So it is rendered once with a *marker* in place of each of them, and each request
fills them all in, in one pass (`fill`). One marker scheme for all of them: `marker(name)`,
where a name is `csrf`, `response`, `code` or `code-spoken` for the request (`REQUEST_*`), and
`checked:<input id>` or `value:<variable code>` for the answers (`page_view.build_questions(
placeholders=True)` writes those, `page_view.state_values` gives their values). A *block*
(`block_start(key)` ... `BLOCK_END`) is kept only when its start marker has a value: a "today"
question of the retrospective form carries one block per possible "before" answer. Rendering
macros and translating labels was most of a page's cost (see benchmarks/README.md). Pages
showing errors are rendered afresh, never cached (they are filled the same way).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from markupsafe import escape

T = TypeVar("T")
S = TypeVar("S", str, bytes)

EXTENSION_KEY = "selfcheck.page_cache"

# A marker is its name between two of these: a control character never appears in rendered
# HTML otherwise (the item bank's texts have none, typed answers with one are refused), and
# `fill` replaces every marker before the page leaves the server.
MARK = "\x02"
_MARKERS = re.compile(f"{MARK}([^{MARK}]*){MARK}")


def marker(name: str) -> str:
    return MARK + name + MARK


REQUEST_CSRF = marker("csrf")
REQUEST_RESPONSE = marker("response")
REQUEST_CODE = marker("code")
REQUEST_CODE_SPOKEN = marker("code-spoken")


def checked_marker(input_id: str) -> str:
    """Stands for ` checked` on the option input `input_id`, or for nothing."""
    return marker("checked:" + input_id)


def value_marker(variable_code: str) -> str:
    """Stands for the text typed for `variable_code` (escaped), or for nothing."""
    return marker("value:" + variable_code)


_BLOCK = "block:"
BLOCK_END = marker("/block")
_BLOCK_OPEN = MARK + _BLOCK


def block_start(key: str) -> str:
    """Opens a block (closed by `BLOCK_END`, not nested) that is kept only when `values` gives
    this marker a value: the one "before" answer, of all those rendered, that a person gave."""
    return marker(_BLOCK + key)


def fill(html: str, values: Mapping[str, str]) -> str:
    """Replace every marker of `html` by its value in `values` (keyed by marker, escaped:
    values go into attributes), or by nothing, and keep only the blocks `values` opens. One
    pass: a value is never read as a marker."""
    return Template.parse(html).fill(values)


@dataclass(frozen=True)
class Template:
    """A page cut at its markers once: filling it is then a join of its texts and the
    values, rather than a regular expression over the whole page (21 kB for the heaviest)
    on every request (issue 18, part 5). Same result as `fill(html, values)`.

    `fill_bytes` gives the same page as UTF-8 bytes, joined from texts encoded once
    (`fill(values).encode()` encoded the whole page, 19 kB of non-ASCII text, on every
    request: issue 18, round 18)."""

    texts: tuple[str, ...]  # one more than markers: text, marker, text, …, text
    markers: tuple[str, ...]  # each one whole, as the keys of `values`
    # Made once from the above: each marker's kind, and the texts as UTF-8.
    _kinds: tuple[int, ...] = field(init=False, repr=False, compare=False, hash=False)
    _encoded: tuple[bytes, ...] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        kinds = tuple(
            _END if found == BLOCK_END else _OPEN if found.startswith(_BLOCK_OPEN) else _VALUE
            for found in self.markers
        )
        object.__setattr__(self, "_kinds", kinds)
        object.__setattr__(self, "_encoded", tuple(text.encode() for text in self.texts))

    @classmethod
    def parse(cls, html: str) -> Template:
        pieces = _MARKERS.split(html)  # text, name, text, name, …, text
        return cls(tuple(pieces[0::2]), tuple(marker(name) for name in pieces[1::2]))

    def fill(self, values: Mapping[str, str]) -> str:
        return "".join(self._filled(values, self.texts, _escaped))

    def fill_bytes(self, values: Mapping[str, str]) -> bytes:
        """`fill(values).encode()`, without encoding the whole page on every request."""
        return b"".join(self._filled(values, self._encoded, _escaped_bytes))

    def _filled(
        self, values: Mapping[str, str], texts: tuple[S, ...], escaped: Callable[[str], S]
    ) -> list[S]:
        out = [texts[0]]
        skipping = False
        for found, kind, text in zip(self.markers, self._kinds, texts[1:], strict=True):
            if kind == _END:
                skipping = False
            elif kind == _OPEN:
                skipping = not values.get(found)
            elif not skipping and (value := values.get(found)):
                out.append(escaped(value))
            if not skipping:
                out.append(text)
        return out


# The kinds of marker (`Template._kinds`).
_VALUE, _OPEN, _END = 0, 1, 2


def _escaped(value: str) -> str:
    return str(escape(value))


def _escaped_bytes(value: str) -> bytes:
    return str(escape(value)).encode()


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
        """`build` (e.g. `Template.parse`) of the page rendered for `key`, kept with it."""
        if not self.enabled:
            return build(render())
        built = self._built.get(key)
        if built is None:
            built = build(self.get_or_render(key, render))
            if len(self._built) < self.MAX_ENTRIES:
                self._built[key] = built
        return built  # type: ignore[return-value]

    def built(self, key: Hashable) -> object | None:
        """What `get_or_build` keeps for `key`, if it was built already (else None, never
        rendering: the question pages served before Flask, `journey.fast_page`, have no
        template context to render with)."""
        return self._built.get(key) if self.enabled else None
