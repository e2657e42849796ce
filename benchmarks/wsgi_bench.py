"""WSGI entry point for the benchmarks only: the real app plus a hello-world baseline route.

The baseline lives on the *same* Flask app (same before/after-request hooks, same gunicorn
workers), so "page rate / hello rate" measures what rendering a page costs on top of the
framework. It is registered here, never in the product code.

    SELFCHECK_BENCH_DATABASE_URL=sqlite:////tmp/x/bench.db \
    SELFCHECK_BENCH_INSTANCE_PATH=/tmp/x/instance \
    gunicorn --pythonpath benchmarks wsgi_bench:app

SELFCHECK_BENCH_NO_PAGE_CACHE=1 turns the question-page cache off (journey/page_cache.py), to
measure what it is worth: `SELFCHECK_BENCH_NO_PAGE_CACHE=1 benchmarks/bench_pages.py`.
SELFCHECK_BENCH_NO_FAST_PAGES=1 serves every question page through Flask (journey/fast_page.py
off), likewise.
SELFCHECK_BENCH_SQL_DIR=<dir> counts database round trips per request (sql_counter.py).
SELFCHECK_BENCH_PROFILE_DIR=<dir> profiles each request kind in each worker (profile_worker.py).
SELFCHECK_BENCH_PREPARE_THRESHOLD=N|none sets psycopg's `prepare_threshold` (PostgreSQL: a
statement is prepared on the server at its Nth use on a connection; psycopg's default is 5).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

from selfcheck import create_app
from selfcheck.journey import fast_page, page_cache
from selfcheck.platform import security

HELLO_PATH = "/__bench/hello"
HELLO_BODY = "hello"


def build_app() -> Flask:
    overrides: dict[str, Any] = {}
    database_url = os.environ.get("SELFCHECK_BENCH_DATABASE_URL")
    if database_url:
        overrides["DATABASE_URL"] = database_url
    instance_path = os.environ.get("SELFCHECK_BENCH_INSTANCE_PATH")
    if instance_path:
        overrides["INSTANCE_PATH"] = instance_path
    app = create_app(overrides)
    if os.environ.get("SELFCHECK_BENCH_NO_PAGE_CACHE") == "1":
        app.extensions[page_cache.EXTENSION_KEY].enabled = False
    if os.environ.get("SELFCHECK_BENCH_NO_FAST_PAGES") == "1":
        app.config[fast_page.CONFIG_KEY] = False  # every question page through Flask

    @app.get(HELLO_PATH)
    def bench_hello() -> str:
        return HELLO_BODY

    # The load generators are many people behind one address: the per-address limit on
    # starting a questionnaire (60 an hour) would refuse them. Still counted (same cost),
    # never reached. SELFCHECK_BENCH_KEEP_LIMITS=1 keeps the real limit.
    limits = app.config.get(security.LIMITS_CONFIG, {})
    if limits is not None and os.environ.get("SELFCHECK_BENCH_KEEP_LIMITS") != "1":
        app.config[security.LIMITS_CONFIG] = {**limits, "start_ip": (10**9, 3600)}

    threshold = os.environ.get("SELFCHECK_BENCH_PREPARE_THRESHOLD")
    if threshold is not None:  # psycopg's server-side prepared statements (default: 5th use)
        from sqlalchemy import event

        from selfcheck.platform.db import EXTENSION_KEY as DB_KEY

        prepare = None if threshold == "none" else int(threshold)

        @event.listens_for(app.extensions[DB_KEY].engine, "connect")
        def _prepare(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.prepare_threshold = prepare

    sql_dir = os.environ.get("SELFCHECK_BENCH_SQL_DIR")
    if sql_dir:  # round trips per request (bench_journey.py), see sql_counter.py
        from sql_counter import Counter

        from selfcheck.platform.db import EXTENSION_KEY

        database = app.extensions[EXTENSION_KEY]
        # Every engine with a pool of its own (PostgreSQL's reader: platform/db.py).
        engines = database.engines() if hasattr(database, "engines") else (database.engine,)
        counter = Counter(engines[0], Path(sql_dir), also=engines[1:])
        app.wsgi_app = counter.wrap(app.wsgi_app)  # type: ignore[method-assign]

    profile_dir = os.environ.get("SELFCHECK_BENCH_PROFILE_DIR")
    if profile_dir:  # cProfile by request kind inside each worker, see profile_worker.py
        from profile_worker import Profiles

        whole = os.environ.get("SELFCHECK_BENCH_PROFILE_WHOLE") == "1"
        profiles = Profiles(Path(profile_dir), whole=whole)
        app.wsgi_app = profiles.wrap(app.wsgi_app)  # type: ignore[method-assign]

    from worker_timing import wrap

    app.wsgi_app = wrap(app.wsgi_app)  # type: ignore[method-assign]
    return app


app = build_app()
