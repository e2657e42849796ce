"""A web worker warmed up for its first paper form, in the background (issue 18, part 3).

The first paper form a process renders costs more than the next ones: WeasyPrint's first use
(its modules, cffi types, fontconfig, the fonts), the user-agent and print stylesheets parsed,
the form's Jinja templates compiled, the pictograms read (BENCHMARKS.md, "One blank paper
form"). Without a warm-up, the first person who asks a fresh worker for a blank form pays it.

`start(app)` renders one blank form in a daemon thread right after the worker has built its
app (gunicorn's `post_worker_init` hook, gunicorn.conf.py), and throws the PDF away: the
worker answers requests meanwhile (a request arriving during the warm-up shares the CPU with
it), and every later form of the process, in any language, wording or size, is a warm one.
It is for processes that serve paper forms on request: never in tests (the app is `testing`),
in debug mode (templates reload), nor in CLI commands, which do not call it. The job worker
is not warmed up either: a batch takes seconds, the cold part is a small share of it, and
the job worker stays lean for exports. `SELFCHECK_PAPER_WARMUP=0` turns it off.

The form it renders is the most asked one: the default language's blank "before" form, in
the standard wording and normal print. When the app keeps blank forms (paper/blank_cache.py)
and knows the address they print (`SELFCHECK_SITE_URL`, or the one the print page kept), the
warm-up renders it for that address and keeps it there, if it is not there yet: after a
deployment, that form is ready a second or two after the first worker starts, before the job
worker's filler (selfcheck/prefill.py) gets to it. Otherwise the PDF is thrown away.
"""

from __future__ import annotations

import gc
import logging
import threading
from pathlib import Path

from flask import Flask, url_for

from selfcheck.paper import blank_cache
from selfcheck.paper import operations as paper
from selfcheck.platform import warmup as background
from selfcheck.questionnaire.model import FormKind

CONFIG_KEY = "SELFCHECK_PAPER_WARMUP"  # app.config, else the environment variable; default on
EXTENSION_KEY = "selfcheck-paper-warmup"  # also the thread's name
# Only printed in the form's footer; the PDF is thrown away.
SITE_URL = "https://selfcheck.invalid/code"

log = logging.getLogger(__name__)


def enabled(app: Flask) -> bool:
    """Whether `start` warms this app up: not in tests or debug mode, nor when turned off."""
    return background.enabled(app, CONFIG_KEY)


def start(app: object) -> threading.Thread | None:
    """Warm `app` up in a background thread (at most once per app); None when not started
    (not a selfcheck app, tests, debug mode, turned off, or already started)."""
    return background.start(app, CONFIG_KEY, EXTENSION_KEY, warm)


def warm(app: Flask) -> float | None:
    """Render one blank "before" form in the default language and throw it away; the seconds
    it took, or None if it failed (logged: a failed warm-up only means a slower first form)."""

    def work() -> None:
        with app.app_context():
            first_form(app)
        # The full collection the render deferred (platform/printing.py) and the one the app's
        # start-up left due: here, not at the start of the first request (about 0.1 s).
        gc.collect()

    return background.timed(work, "paper", "the first paper form will be slower", log)


def first_form(app: Flask) -> bool:
    """Render the default language's blank "before" form (standard wording, normal print),
    and keep it in the app's cache of blank forms when it has one, knows the address the
    form prints and does not hold it yet. Whether it was kept. Needs an app context."""
    locale = str(app.config.get("BABEL_DEFAULT_LOCALE") or "fr")
    renderer = paper.renderer(app)
    copy = paper.Copy(FormKind.BEFORE, locale, None)
    cache = blank_cache.folder(app)
    address = _site_url(app, cache) if cache is not None else None
    if cache is None or address is None:
        renderer.questionnaires([copy], site_url=SITE_URL)
        return False
    name = blank_cache.key(
        renderer, FormKind.BEFORE, locale, large=False, duplex=False, site_url=address
    )
    path = cache / (name + blank_cache.SUFFIX)
    with blank_cache.rendering(path, wait=0) as mine:
        data = renderer.questionnaires([copy], site_url=address)
        if mine and not blank_cache.present(path):
            blank_cache.store(cache, path, data)
            return True
    return False


def _site_url(app: Flask, cache: Path) -> str | None:
    """As `selfcheck.prefill.site_url` (not imported: selfcheck.prefill imports this package)."""
    base = str(app.config.get("SELFCHECK_SITE_URL") or "")
    if base:
        with app.test_request_context(base_url=base):
            return url_for("journey.enter_code", _external=True)
    return blank_cache.remembered_site_url(cache)
