"""A bare Flask hello-world app: the baseline of bench_pages.py (issue 18, part 5).

Nothing of selfcheck: no session, database, locale, security headers or logging hooks. It is
served by a second gunicorn with exactly the same settings as the app, so that "page rate /
bare rate" shows everything the app costs on top of Flask itself, not only the page.

    gunicorn --pythonpath benchmarks wsgi_bare:app
"""

from __future__ import annotations

from flask import Flask
from worker_timing import wrap

HELLO_PATH = "/__bench/hello"  # the same path as wsgi_bench, so the same request line
HELLO_BODY = "hello"

app = Flask(__name__)


@app.get(HELLO_PATH)
def hello() -> str:
    return HELLO_BODY


# SELFCHECK_BENCH_TIMING_DIR: CPU per request inside the worker (worker_timing.py)
app.wsgi_app = wrap(app.wsgi_app)  # type: ignore[method-assign]
