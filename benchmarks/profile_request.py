"""Where the time of one request of the heaviest question page goes (cProfile, in process).

Run from the repository root:

    .venv/bin/python benchmarks/profile_request.py                 # 300 requests, retro form
    .venv/bin/python benchmarks/profile_request.py --requests 1000 --form before --sql
    .venv/bin/python benchmarks/profile_request.py --time     # no profiler: microseconds

The app runs as gunicorn runs it (the WSGI callable, no test client shortcuts), on a
throw-away SQLite database built like bench_pages.py builds it. One person starts the chosen
questionnaire through the real start form, then the page is requested `--requests` times
with the same Cookie header under cProfile. Printed: the functions with the most own time
and the most cumulative time, grouped by the per-request stages (session cookie, database
session, locale, security headers, rate limits, page cache, template), and with `--sql` the
SQL statements per request (SQLAlchemy `before_cursor_execute` event).

`--time` measures instead, without the profiler, the microseconds per request of the bare
Flask hello-world app (`wsgi_bare.py`, bench_pages' baseline), of a hello route inside the
app and of the page, in interleaved rounds (median): the in-process part of bench_pages'
ratio, without gunicorn, the network and the load generator. The page is also timed through
Flask's own path (without the layer of `journey/fast_page.py` that serves it before Flask).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import secrets
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
for path in (str(ROOT), str(BENCH_DIR)):
    if path not in sys.path:
        sys.path.insert(0, path)

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')

# Substrings of a function's file or name: which stage of the request it belongs to.
STAGES = {
    "session cookie": ("sessions.py", "itsdangerous"),
    "database session": ("sqlalchemy",),
    "locale": ("flask_babel", "babel/", "i18n.py"),
    "security headers": ("security.py",),
    "rate limits": ("ratelimit.py",),
    "page cache": ("page_cache.py", "page_view.py"),
    "templates": ("jinja2", "templates/"),
    "forms (WTForms)": ("wtforms", "flask_wtf"),
    "logging": ("logging/", "log.py"),
}


def call(
    app: Any, method: str, path: str, cookie: str = "", body: bytes = b""
) -> tuple[str, list[tuple[str, str]], bytes]:
    """One request through the WSGI callable, as gunicorn would send it."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
    }
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    if body:
        environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], _exc: Any = None) -> Any:
        started["status"], started["headers"] = status, headers
        return lambda _data: None

    chunks = app(environ, start_response)
    data = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    return started["status"], started["headers"], data


def session_cookie(headers: list[tuple[str, str]]) -> str:
    for name, value in headers:
        if name.lower() == "set-cookie" and value.startswith("selfcheck_session="):
            return value.split(";", 1)[0]
    raise SystemExit("no session cookie")


HELLO = "/__bench/hello"


def _time(app: Any, path: str, cookie: str, requests: int, rounds: int) -> int:
    """Microseconds per request, median of `rounds` interleaved rounds, no profiler."""
    from wsgi_bare import app as bare

    targets = {"bare Flask": (bare, HELLO), "hello in the app": (app, HELLO), path: (app, path)}
    layer = app.extensions.get("selfcheck.fast_pages")  # journey/fast_page.py, if installed
    if layer is not None:
        # The same page through Flask's own path (the layer's `inner`), for comparison.
        targets[f"{path} through Flask"] = (layer.inner, path)
        served = layer.served
    times: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, (target, where) in targets.items():
            began = time.perf_counter()
            for _ in range(requests):
                call(target, "GET", where, cookie)
            times[name].append((time.perf_counter() - began) / requests * 1e6)
    if layer is not None:
        print(f"served before Flask: {layer.served - served} of {requests * rounds} page requests")
    base = statistics.median(times["bare Flask"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<24} {median:8.1f} us per request  ({median / base:.2f}x bare Flask)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--form", default="retro", choices=("before", "retro"))
    parser.add_argument("--page", help="screen code (default: the form's heaviest)")
    parser.add_argument("--sql", action="store_true", help="count SQL statements per request")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--time", action="store_true", help="time, no profile (see above)")
    parser.add_argument("--rounds", type=int, default=5, help="with --time")
    args = parser.parse_args()

    from bench_pages import heaviest_screen, prepare_database
    from sqlalchemy import event

    from selfcheck import create_app
    from selfcheck.demo import DEMO_SLUG
    from selfcheck.platform import log
    from selfcheck.platform.db import EXTENSION_KEY

    with tempfile.TemporaryDirectory(prefix="selfcheck-profile-") as tmp:
        url = prepare_database(Path(tmp), 5)
        app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": Path(tmp) / "instance"})
        app.add_url_rule(HELLO, "bench_hello", lambda: "hello")
        # As in gunicorn (gunicorn.conf.py): the JSON access line of every request is written.
        sink = open(os.devnull, "w")  # noqa: SIM115 (open for the whole run)
        log.configure("INFO", sink)
        status, headers, body = call(app, "GET", f"/s/{DEMO_SLUG}")
        found = CSRF_RE.search(body.decode())
        assert found, status
        cookie = session_cookie(headers)
        form = {"csrf_token": found.group(1), "form": args.form, "token": secrets.token_urlsafe()}
        status, headers, body = call(
            app, "POST", f"/s/{DEMO_SLUG}", cookie, urllib.parse.urlencode(form).encode()
        )
        cookie = session_cookie(headers)
        path = f"/q/{args.page or heaviest_screen(args.form)}"
        status, _headers, body = call(app, "GET", path, cookie)
        if not status.startswith("200"):
            raise SystemExit(f"GET {path}: {status}")
        statements: list[str] = []
        engine = app.extensions[EXTENSION_KEY].engine
        if args.sql:
            event.listen(
                engine, "before_cursor_execute", lambda *a: statements.append(a[2].split()[0])
            )
        for _ in range(20):  # warm-up: caches filled as in a worker that has served a while
            call(app, "GET", path, cookie)
        statements.clear()
        if args.time:
            return _time(app, path, cookie, args.requests, args.rounds)
        profile = cProfile.Profile()
        began = time.perf_counter()
        profile.enable()
        for _ in range(args.requests):
            call(app, "GET", path, cookie)
        profile.disable()
        seconds = time.perf_counter() - began
    print(
        f"{args.requests} x GET {path} ({args.form}): {seconds / args.requests * 1000:.2f} ms "
        f"per request under cProfile, {len(body):,} bytes"
    )
    if args.sql:
        kinds: dict[str, int] = {}
        for verb in statements:
            kinds[verb] = kinds.get(verb, 0) + 1
        print(f"SQL statements per request: {len(statements) / args.requests:.2f} {kinds}")
    stats = pstats.Stats(profile)
    total = sum(entry[2] for entry in stats.stats.values())  # type: ignore[attr-defined]
    own: dict[str, float] = dict.fromkeys(STAGES, 0.0)
    for (filename, _line, name), entry in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{filename}:{name}"
        for stage, needles in STAGES.items():
            if any(needle in where for needle in needles):
                own[stage] += entry[2]
                break
    print("\nown time by stage (share of the whole request):")
    for stage, value in sorted(own.items(), key=lambda kv: -kv[1]):
        print(f"  {stage:<20} {value / total:6.1%}")
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).strip_dirs().sort_stats(order).print_stats(args.top)
        print(out.getvalue().split("\n", 6)[-1] if order == "tottime" else out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
