"""The language and display choice page: one compact link in the header of a phone screen
leads here, and each choice goes straight back to the page the person came from (no
JavaScript; `?lang=` and `?display=` are remembered by platform/i18n.py and display.py)."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from selfcheck.accounts.permissions import public

blueprint = Blueprint("settings", __name__)


def safe_next(value: str | None) -> str:
    """A path on this site to go back to: never another site (no //host, no scheme). No
    control character either: browsers drop a tab or a newline anywhere in a link, so
    `/<tab>/evil.example` (which does not start with `//` here) became `//evil.example` once
    clicked, and every link of the page led to another site (attack15)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "/"
    return value.split("?", 1)[0].split("#", 1)[0]


@blueprint.get("/reglages")
@public
def choose() -> str:
    return render_template("site/settings.html", back=safe_next(request.args.get("next")))
