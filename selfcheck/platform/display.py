"""Display preference for low vision: standard, large text, or high contrast (no JavaScript).

A link `?display=large` (or `contrast`, `standard`) on any page sets the cookie `display`, and
every page then carries the class `display-<mode>` on `<html>`; the stylesheet does the rest.
The choice never blocks anything: an unknown value is ignored, and without the cookie the page
is the standard one (which already follows the browser's font size, everything being in rem).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, Response, g, request
from flask_babel import lazy_gettext as _l

PARAM = "display"
COOKIE = "display"
COOKIE_MAX_AGE = 365 * 24 * 3600
STANDARD = "standard"


@dataclass(frozen=True)
class DisplayMode:
    code: str
    label: object  # lazy string, shown in the switcher
    # The classes on <html> (display-<class>): a combined mode carries both of its parts.
    classes: tuple[str, ...] = ()

    @property
    def html_class(self) -> str:
        return " ".join(f"display-{name}" for name in self.classes or (self.code,))


# In the switcher's order; the first is the default. Large text and high contrast combine.
MODES = (
    DisplayMode(STANDARD, _l("Affichage standard")),
    DisplayMode("large", _l("Grands caractères")),
    DisplayMode("contrast", _l("Contraste élevé")),
    DisplayMode(
        "large_contrast",
        _l("Grands caractères et contraste élevé"),
        ("large", "contrast"),
    ),
)
BY_CODE = {mode.code: mode for mode in MODES}
CODES = frozenset(mode.code for mode in MODES)


def _valid(value: str | None) -> str | None:
    return value if value in CODES else None


def current_mode() -> str:
    """The display mode of this request: `?display=`, then the cookie, then standard."""
    if "selfcheck_display" not in g:
        g.selfcheck_display = choose_mode(request.args.get(PARAM), request.cookies.get(COOKIE))
    mode: str = g.selfcheck_display
    return mode


def choose_mode(asked: str | None, cookie: str | None) -> str:
    """`?display=`, then the cookie, then standard: for `current_mode` and for the question
    pages served before Flask (`journey.fast_page`)."""
    return _valid(asked) or _valid(cookie) or STANDARD


def remember_choice(response: Response) -> Response:
    """Keep an explicit choice for the next pages (a preference, nothing personal)."""
    chosen = _valid(request.args.get(PARAM))
    if chosen and request.cookies.get(COOKIE) != chosen:
        response.set_cookie(
            COOKIE,
            chosen,
            max_age=COOKIE_MAX_AGE,
            samesite="Lax",
            httponly=True,
            secure=bool(request.is_secure),
        )
    return response


def init_app(app: Flask) -> None:
    app.after_request(remember_choice)

    @app.context_processor
    def _display_context() -> dict[str, object]:
        mode = current_mode()
        return {
            "display_mode": mode,
            "display_class": BY_CODE[mode].html_class,
            "display_modes": MODES,
        }
