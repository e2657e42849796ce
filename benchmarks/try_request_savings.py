"""Round 21 (req21): the journey's Python savings measured in one process, switched off and on
in turn, so the machine's load weighs on both alike.

    SELFCHECK_BENCH_DATABASE_URL=sqlite:////tmp/x/j.db \\
        benchmarks/boost.sh -15 .venv/bin/python benchmarks/try_request_savings.py --prepare

Whole journeys (try_kinds.py's, the Flask test client, one request at a time) alternate between
the app as it is and the app with the round's savings undone: Flask-WTF's own `protect` (each
token verified afresh) and Jinja's own new-style `_`/`gettext`. The thread CPU of each journey's
requests (`time.thread_time`, the client's form parsing left out) is summed; medians and the
difference are printed, per journey and per request. gunicorn's access record
(`gunicorn_log.QuietAccessLogger`) is outside the app: timed apart, per call.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import MethodType, SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--journeys", type=int, default=30, help="journeys of each kind")
    parser.add_argument("--prepare", action="store_true", help="empty and migrate first")
    args = parser.parse_args()
    url = os.environ.get("SELFCHECK_BENCH_DATABASE_URL", "")
    if args.prepare:
        from bench_journey import prepare_database

        prepare_database(url)

    import jinja2.ext
    import wsgi_bench
    from flask_wtf.csrf import CSRFProtect
    from sqlalchemy import select
    from werkzeug.datastructures import MultiDict

    from selfcheck.platform import i18n
    from selfcheck.platform.db import EXTENSION_KEY
    from selfcheck.platform.models import Structure
    from selfcheck.questionnaire.model import FormKind
    from tests.support import ANSWERS, Visitor, csrf_token, path_of

    app = wsgi_bench.app
    with app.extensions[EXTENSION_KEY].session() as session:
        slug = session.scalar(select(Structure.slug).order_by(Structure.id))
    assert slug is not None, "no structure: run with --prepare"
    csrf = app.extensions["csrf"]
    env = app.jinja_env
    saved = {name: env.globals[name] for name in ("_", "gettext")}

    def savings(on: bool) -> None:
        if on:
            csrf.__dict__.pop("protect", None)
            env.globals.update(saved)
        else:
            csrf.protect = MethodType(CSRFProtect.protect, csrf)
            translator = i18n.Translations()
            env.install_gettext_callables(  # type: ignore[attr-defined]
                translator.gettext, translator.ngettext, newstyle=True
            )
            env.globals["_"] = jinja2.ext._gettext_alias

    def journey() -> tuple[float, int]:
        spent, requests = 0, 0

        def timed(call: Callable[[], Any]) -> Any:
            nonlocal spent, requests
            start = time.thread_time_ns()
            result = call()
            spent += time.thread_time_ns() - start
            requests += 1
            return result

        def post(visitor: Any, url: str, data: Any) -> Any:
            form = MultiDict(data)
            if "csrf_token" not in form:
                form["csrf_token"] = csrf_token(visitor.html)
            return timed(lambda: visitor.client.post(path_of(url), data=form))

        visitor = Visitor(app.test_client())
        timed(lambda: visitor.get(f"/s/{slug}"))
        chosen = next(f for f in visitor.forms() if f.hidden().get("form") == "before")
        response = post(visitor, chosen.action, chosen.hidden())
        answers = ANSWERS[FormKind.BEFORE]
        while response.headers["Location"].startswith("/q/"):
            page_url = response.headers["Location"]
            timed(lambda: visitor.get(page_url))  # noqa: B023
            page = visitor.page_form()
            data = MultiDict(page.hidden())
            for name in page.question_names():
                if name in answers:
                    given = answers[name]
                    data.setlist(name, [given] if isinstance(given, str) else list(given))
            data["action"] = "next"
            response = post(visitor, page_url, data)
            assert response.status_code == 302, response.status_code
        timed(lambda: visitor.get("/check"))
        sending = next(f for f in visitor.forms() if f.action and path_of(f.action) == "/check")
        assert post(visitor, "/check", sending.hidden()).status_code == 302
        timed(lambda: visitor.get("/done"))
        timed(lambda: visitor.get("/summary"))
        return spent / 1e6, requests

    for on in (True, False, True, False):  # warm-up, both ways
        savings(on)
        journey()
    cpu: dict[bool, list[float]] = {True: [], False: []}
    requests = 0
    for _ in range(args.journeys):
        for on in (False, True):
            savings(on)
            spent, requests = journey()
            cpu[on].append(spent)
    savings(True)
    before, after = statistics.median(cpu[False]), statistics.median(cpu[True])
    print(f"{url.split('@')[-1]}: {args.journeys} journeys each way, {requests} requests each")
    print(
        f"worker CPU per journey (median): savings off {before:.2f} ms, on {after:.2f} ms, "
        f"saved {before - after:.2f} ms ({(before - after) / before:.1%}); per request "
        f"{before / requests:.3f} -> {after / requests:.3f} ms"
    )
    pairs = [off - on for off, on in zip(cpu[False], cpu[True], strict=True)]
    print(f"journey pairs (off - on): median {statistics.median(pairs):.2f} ms")
    print(access_record_cost())
    return 0


def access_record_cost() -> str:
    """gunicorn's `Logger.access` against `QuietAccessLogger.access`, per call, with the
    production logging settings and a question page's headers."""
    import runpy

    from gunicorn import glogging
    from gunicorn.config import Config

    from selfcheck.platform.gunicorn_log import QuietAccessLogger

    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    cfg = Config()
    cfg.set("logconfig_dict", settings["logconfig_dict"])
    headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", "19000")]
    headers += [(f"X-Header-{i}", "value") for i in range(9)]
    resp = SimpleNamespace(status="200 OK", headers=headers, sent=19000)
    req = SimpleNamespace(
        headers=[("HOST", "127.0.0.1:8000"), ("COOKIE", "selfcheck_session=" + "a" * 200)],
        uri="/q/x",
        method="GET",
        query="",
        version=(1, 1),
        path="/q/x",
    )
    environ = {
        "REMOTE_ADDR": "127.0.0.1",
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/q/x",
        "PATH_INFO": "/q/x",
        "SERVER_PROTOCOL": "HTTP/1.1",
        **{f"HTTP_X_{i}": "v" for i in range(12)},
    }
    spent = timedelta(milliseconds=3)
    results = []
    for logger in (glogging.Logger(cfg), QuietAccessLogger(cfg)):
        rounds = timeit.repeat(
            lambda logger=logger: logger.access(resp, req, environ, spent), number=3000, repeat=5
        )
        results.append(min(rounds) / 3000 * 1e6)
    return f"gunicorn access record per request: {results[0]:.1f} us, gated {results[1]:.2f} us"


if __name__ == "__main__":
    raise SystemExit(main())
