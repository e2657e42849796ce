"""Locale choice, `lang`/`dir` for <html>, and the language switcher's data.

Order of choice: an explicit `?lang=xx` (remembered in a cookie), the cookie, the browser's
Accept-Language, then the configured default (French, the reference language).

Adding a language is a catalog in translations/<code>/ plus its code in SELFCHECK_LANGUAGES
(translations/README.md). A configured language whose catalog is missing or not compiled yet
shows the French texts (the msgids), never an error; start-up logs a warning.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from flask import Flask, Response, current_app, g, request
from flask_babel import Babel, get_translations
from flask_babel.speaklater import LazyString
from jinja2 import Environment, pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

log = logging.getLogger(__name__)

SOURCE_LANGUAGE = "fr"  # msgids are French, the reference language: it needs no catalog
LANG_PARAM = "lang"
LANG_COOKIE = "selfcheck_lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"

# Each language named in itself, so a person finds theirs whatever the page language.
NATIVE_NAMES = {"fr": "Français", "en": "English", "es": "Español", "ar": "العربية"}


def language_name(code: str) -> str:
    """The language named in itself: NATIVE_NAMES, else CLDR's name (Babel), else the code."""
    if code in NATIVE_NAMES:
        return NATIVE_NAMES[code]
    try:
        name = Locale.parse(code.replace("-", "_")).get_display_name()
    except (ValueError, TypeError, UnknownLocaleError):
        return code
    return name[:1].upper() + name[1:] if name else code


def _languages() -> tuple[str, ...]:
    languages: tuple[str, ...] = current_app.config["SELFCHECK_LANGUAGES"]
    return languages


def select_locale() -> str:
    known: str | None = g.get("selfcheck_locale")  # one look-up of the proxy, not two
    if known is not None:
        return known
    chosen = choose_locale(
        current_app.config,
        request.args.get(LANG_PARAM),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("Accept-Language", ""),
    )
    g.selfcheck_locale = chosen
    return chosen


def choose_locale(
    config: Mapping[str, Any], asked: str | None, cookie: str | None, accept_language: str
) -> str:
    """The order of choice (module docstring), from the request's values: for
    `select_locale` and for the question pages served before Flask (`journey.fast_page`)."""
    languages: tuple[str, ...] = config["SELFCHECK_LANGUAGES"]
    return (
        _valid(asked, languages)
        or _valid(cookie, languages)
        or _best_match(accept_language, tuple(languages))
        or _valid(config.get("BABEL_DEFAULT_LOCALE"), languages)
        or languages[0]
    )


def _valid(code: str | None, languages: tuple[str, ...]) -> str | None:
    return code if code in languages else None


@lru_cache(maxsize=1024)
def _best_match(header: str, languages: tuple[str, ...]) -> str | None:
    """The browser's preferred language among ours. Browsers send the same few headers page
    after page: each is parsed once per worker (bounded), not on every request."""
    if not header:
        return None
    found: str | None = parse_accept_header(header, LanguageAccept).best_match(languages)
    return found


@lru_cache(maxsize=256)
def text_direction(locale: str) -> str:
    """ "rtl" or "ltr", from CLDR through Babel (no hand-kept list of right-to-left languages).

    A code Babel does not know reads left to right, as the French fallback it shows does.
    """
    try:
        direction = Locale.parse(locale.replace("-", "_")).text_direction
    except (ValueError, TypeError, UnknownLocaleError):
        return "ltr"
    return "rtl" if direction == "rtl" else "ltr"


@lru_cache(maxsize=64)
def _list_patterns(locale: str) -> Mapping[str, str]:
    """CLDR's standard list patterns of a language (Babel), French's for an unknown code."""
    try:
        patterns = Locale.parse(locale.replace("-", "_")).list_patterns["standard"]
    except (ValueError, TypeError, KeyError, UnknownLocaleError):
        patterns = Locale.parse(SOURCE_LANGUAGE).list_patterns["standard"]
    return {key: str(patterns[key]) for key in ("start", "middle", "end", "2") if key in patterns}


def format_list(items: Sequence[object], locale: str, *, open_ended: bool = False) -> Markup:
    """Items joined as the language lists them, each escaped (Markup kept as it is): CLDR's
    standard list through Babel, so "a, b et c" in French and "a وb وc" in Arabic, never a
    Latin comma in a right-to-left text. `open_ended`: every join is a list's first one ("a, b"
    in French, no final "et"), for a thing and its detail ("Question : T01, option 2").

    Babel's own `format_list` formats plain strings; this one keeps the items' HTML safe."""
    parts = [escape(item) for item in items]
    if len(parts) < 2:
        return Markup("").join(parts)
    patterns = _list_patterns(locale)
    start = patterns["start"]
    pattern = start if open_ended else patterns.get("2", patterns["end"])
    if len(parts) == 2:
        return escape(pattern).format(*parts)
    joined = escape(start).format(parts[0], parts[1])
    for part in parts[2:-1]:
        joined = escape(patterns["middle"]).format(joined, part)
    last = start if open_ended else patterns["end"]
    return escape(last).format(joined, parts[-1])


def remember_choice(response: Response) -> Response:
    """Store an explicit language choice, so the next pages keep it."""
    chosen = _valid(request.args.get(LANG_PARAM), _languages())
    if chosen and request.cookies.get(LANG_COOKIE) != chosen:
        response.set_cookie(
            LANG_COOKIE,
            chosen,
            max_age=COOKIE_MAX_AGE,
            samesite="Lax",
            httponly=True,
            secure=bool(request.is_secure or current_app.config.get("SESSION_COOKIE_SECURE")),
        )
    return response


_FRENCH_SPACE_BEFORE = re.compile(r" ([?!:;»])")


def french_typography(text: str) -> str:
    """Non-breaking space before ? ! : ; » and after «, so punctuation never wraps alone."""
    return _FRENCH_SPACE_BEFORE.sub("\u00a0\\1", text).replace("« ", "«\u00a0")


def _typeset(locale: str, text: str) -> str:
    return french_typography(text) if locale.startswith("fr") else text


def plain_lazy_strings(value: object) -> object:
    """Jinja `finalize`: a lazy translation is rendered as a plain string, so it is escaped
    (Flask-Babel's LazyString declares itself safe HTML)."""
    return str(value) if isinstance(value, LazyString) else value


class Translations:
    """Template gettext with French typography, memoised per (locale, text): the one translator
    of every Jinja environment (the app's, and the print one of `platform.printing`).

    Catalogs are compiled before start-up and never change while the app runs, so a looked-up
    string can be kept. Flask-Babel resolves its context three times per lookup, which made
    translation the largest cost of a questionnaire page (see benchmarks/README.md).

    `locale` says whose language: the request's (`select_locale`, the web pages, the default)
    or the one in force (`printing.forced_locale`, so that `force_locale` prints a form in
    English from a French page). `escape`: the web pages escape what translators and
    questionnaire authors wrote, as Jinja's new-style gettext marks what it returns as safe HTML.
    """

    MAX_ENTRIES = 20_000  # msgids are finite; the bound only guards against misuse

    def __init__(self, locale: Callable[[], str] = select_locale, *, escape: bool = True) -> None:
        self._locale = locale
        self._escape = escape
        self._cache: dict[tuple[str, str], str] = {}

    def _finish(self, locale: str, text: str) -> str:
        typeset = _typeset(locale, text)
        return escape(typeset) if self._escape else typeset

    def gettext(self, text: str) -> str:
        locale = self._locale()
        key = (locale, text)
        found = self._cache.get(key)
        if found is None:
            found = self._finish(locale, get_translations().ugettext(text))
            if len(self._cache) < self.MAX_ENTRIES:
                self._cache[key] = found
        return found

    def ngettext(self, singular: str, plural: str, number: int) -> str:
        translated = get_translations().ungettext(singular, plural, number)
        return self._finish(self._locale(), translated)

    def format_list(self, items: Sequence[object], *, open_ended: bool = False) -> Markup:
        """Templates' `format_list(items)`: `format_list` in this translator's language."""
        return format_list(items, self._locale(), open_ended=open_ended)

    def install(self, env: Environment) -> None:
        env.install_gettext_callables(  # type: ignore[attr-defined]
            self.gettext, self.ngettext, newstyle=True
        )
        # Jinja's `_` resolves "gettext" and calls it through `Context.call`, which calls this
        # translator through `Context.call` again, then marks and formats the text: three
        # calls (each checking how to pass the context) and a `Markup % {}` for every `_()`
        # of a page, about 30 us each, some 200 a journey (issue 18, docs/performance.md,
        # req21). The same steps in one call, the finished text kept per (locale, text,
        # autoescape) when there is nothing to format in.
        fast = self._template_gettext()
        env.globals["gettext"] = fast
        env.globals["_"] = _alias_of(fast)
        env.globals["format_list"] = self.format_list
        env.finalize = plain_lazy_strings

    def _template_gettext(self) -> Callable[..., str]:
        finished: dict[tuple[str, str, bool], str] = {}

        @pass_context
        def gettext(context: Context, string: str, /, **variables: Any) -> str:
            """Jinja's new-style gettext (`jinja2.ext._make_new_gettext`) of this translator."""
            autoescape = bool(context.eval_ctx.autoescape)
            if variables:
                return _formatted(self.gettext(string), autoescape, variables)
            key = (self._locale(), string, autoescape)
            found = finished.get(key)
            if found is None:
                found = _formatted(self.gettext(string), autoescape, variables)
                if len(finished) < self.MAX_ENTRIES:
                    finished[key] = found
            return found

        return gettext


def _formatted(text: str, autoescape: bool, variables: dict[str, Any]) -> str:
    """What Jinja's new-style gettext makes of a translated text: marked safe when the
    template escapes, and always formatted (`%%` becomes `%`, variables escaped)."""
    marked: str = Markup(text) if autoescape else text
    return marked % variables


def _alias_of(gettext: Callable[..., str]) -> Callable[..., Any]:
    @pass_context
    def alias(context: Context, /, *args: Any, **kwargs: Any) -> Any:
        """Jinja's `_` (`jinja2.ext._gettext_alias`): the context's "gettext", called directly
        when it is the app's (a template variable of that name would shadow it)."""
        found = context.resolve_or_missing("gettext")
        if found is gettext:
            return gettext(context, *args, **kwargs)
        return context.call(context.resolve("gettext"), *args, **kwargs)

    return alias


def missing_catalogs(languages: tuple[str, ...], directory: Path = TRANSLATIONS_DIR) -> list[str]:
    """Languages that would silently show French: no compiled catalog (see scripts/setup)."""
    return [
        code
        for code in languages
        if code != SOURCE_LANGUAGE
        and not (directory / code / "LC_MESSAGES" / "messages.mo").exists()
    ]


def init_app(app: Flask, languages: tuple[str, ...]) -> None:
    for code in missing_catalogs(languages):
        log.warning("no compiled translations for %r: run scripts/translations compile", code)
    app.config["SELFCHECK_LANGUAGES"] = languages
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR))
    Babel(app, locale_selector=select_locale)
    Translations().install(app.jinja_env)
    app.after_request(remember_choice)

    @app.context_processor
    def _language_context() -> dict[str, object]:
        locale = select_locale()
        return {
            "html_lang": locale.replace("_", "-"),
            "html_dir": text_direction(locale),
            "languages": [(code, language_name(code)) for code in _languages()],
            # Each language's own direction, for its link (<a lang="ar" dir="rtl">).
            "language_dir": {code: text_direction(code) for code in _languages()},
            "current_language": locale,
        }
