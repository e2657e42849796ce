"""Pictograms: small local SVG files (static/img/pictograms/<name>.svg), never remote.

Named in the item bank (a page's or an option's `pictogram:`). They are decoration: the words
beside them always carry the meaning, so they are hidden from assistive technology.
- On screen, `inline(name)` puts the SVG itself in the page (no extra request, no script,
  allowed by the content security policy; `aria-hidden`, not focusable).
- On paper, `printed(name)` draws it as a background (WeasyPrint tags it as an artifact, not a
  figure without alternative text), as the easy-read form does for page pictograms.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from markupsafe import Markup

PICTOGRAMS_DIR = Path(__file__).resolve().parent.parent / "static" / "img" / "pictograms"
_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def path(name: str) -> Path | None:
    """The file of a pictogram, or None when the name is not a shipped pictogram."""
    if not _NAME.match(name):
        return None
    found = PICTOGRAMS_DIR / f"{name}.svg"
    return found if found.is_file() else None


@cache
def _svg(name: str) -> str:
    found = path(name)
    if found is None:
        return ""
    text = _COMMENT.sub("", found.read_text(encoding="utf-8")).strip()
    # Sized by CSS (.picto); hidden from assistive technology whatever the file says.
    text = re.sub(r'\s(width|height|aria-hidden|focusable)="[^"]*"', "", text, count=4)
    return text.replace("<svg ", '<svg class="picto" aria-hidden="true" focusable="false" ', 1)


def inline(name: str | None) -> Markup:
    """The SVG of `name` for a web page, or nothing."""
    return Markup(_svg(name)) if name else Markup("")


def printed(name: str | None) -> Markup:
    """The pictogram of `name` for a printed page (a background), or nothing."""
    found = path(name) if name else None
    if found is None:
        return Markup("")
    return Markup('<span class="picto" style="background-image: url(\'{}\')"></span>').format(
        found.as_uri()
    )
