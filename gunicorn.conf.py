"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py` (see docs/DEPLOYMENT.md).

Everything can be changed by environment variables, so the same file serves a laptop, a
systemd unit and a container:

| variable | default | meaning |
|---|---|---|
| SELFCHECK_BIND | 127.0.0.1:8000 | address:port (a container binds 0.0.0.0:8000) |
| SELFCHECK_WORKERS | 2 x cores + 1 (at most 9) | sync worker processes |
| SELFCHECK_TIMEOUT | 300 | seconds a request may take (a batch of 200 paper forms: ~90 s) |
| SELFCHECK_LOG_LEVEL | INFO | DEBUG also shows the health checks |
| SELFCHECK_FORWARDED_ALLOW_IPS | 127.0.0.1 | proxies whose X-Forwarded-Proto gunicorn trusts |
| SELFCHECK_PAPER_WARMUP | 1 | each worker renders one paper form in the background at start |
| SELFCHECK_STATISTICS_WARMUP | 1 | each worker imports SciPy (statistics) in the background |

Logs: one JSON object per line on stdout (selfcheck.platform.log.JsonFormatter) for the app and for
gunicorn itself. gunicorn's own access log is off: it can only print the raw path, which may
hold a person's code; the app writes the access line instead, with the URL rule, status,
duration and request id (logger `selfcheck.request`).
"""

from __future__ import annotations

import multiprocessing
import os


def _env(name: str, default: str) -> str:
    return os.environ.get("SELFCHECK_" + name, default)


wsgi_app = "selfcheck:create_app()"
bind = [_env("BIND", "127.0.0.1:8000")]
worker_class = "sync"
# Also with PostgreSQL, whose round trips leave a worker waiting: on 2 cores 9 workers served
# fewer requests than 5 on both databases (docs/performance.md, part 6, sixth pass).
workers = int(_env("WORKERS", str(min(2 * multiprocessing.cpu_count() + 1, 9))))
timeout = int(_env("TIMEOUT", "300"))
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then (bounded memory growth), not all at the same moment. A new
# worker imports and builds the app again: about 3 s of CPU (SQLAlchemy, Flask, the item
# bank; then, in the background, its first paper form and SciPy: post_worker_init below), which
# every request pays its share of. Every 2,000 requests that was about
# 1.4 ms per request, more than a whole question page (issue 18, docs/performance.md); every
# 50,000 it is about 0.06 ms. The app's caches are bounded (page cache, verified cookies).
max_requests = 50_000
max_requests_jitter = 5_000
forwarded_allow_ips = _env("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Workers' heartbeat files in memory, not on a possibly slow or read-only disk (containers).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
proc_name = "selfcheck"
# gunicorn >= 25 opens a control socket in $HOME by default: the service user has no home
# and nothing uses it (older versions ignore the setting).
control_socket_disable = True


def post_worker_init(worker: object) -> None:
    """Once a worker has built its app: warm it up in background threads while it answers
    requests: its first paper form (selfcheck/paper/warmup.py; SELFCHECK_PAPER_WARMUP=0 turns
    it off) and SciPy for the dashboard's statistics (selfcheck/evaluation/warmup.py;
    SELFCHECK_STATISTICS_WARMUP=0)."""
    from selfcheck.evaluation import warmup as statistics_warmup
    from selfcheck.paper import warmup as paper_warmup

    app = getattr(worker, "wsgi", None)
    paper_warmup.start(app)
    statistics_warmup.start(app)


accesslog = None
# gunicorn's access record is then built only when a handler would write it (an accesslog, a
# syslog, a handler given to gunicorn.access below): not for every request (issue 18).
logger_class = "selfcheck.platform.gunicorn_log.QuietAccessLogger"
errorlog = "-"
loglevel = _env("LOG_LEVEL", "INFO").lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "selfcheck.platform.log.JsonFormatter"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stdout",
        }
    },
    "root": {"level": loglevel.upper(), "handlers": ["stdout"]},
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["stdout"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        # WeasyPrint reports every step of every PDF at INFO.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}
