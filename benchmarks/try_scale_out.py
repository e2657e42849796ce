"""Try the scale-out recipe of docs/performance.md on one machine, with loopback addresses:
two app instances (gunicorn with gunicorn.conf.py) on 127.0.0.2 and 127.0.0.3, a job
worker (`selfcheck worker`), all on one PostgreSQL database, started at the same moment.

    SELFCHECK_BENCH_POSTGRES_URL=postgresql+psycopg://…@127.0.0.1:5432/<throw-away db> \\
        .venv/bin/python benchmarks/try_scale_out.py

Checks, printed one per line: both instances answer /healthz; a whole journey goes through
each; a questionnaire started on one instance goes on on the other (sessions are signed
cookies, nothing lives in one instance); the job worker is still running and its queue
tables are in PostgreSQL. The database is emptied first: give it one of its own.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
for path in (str(ROOT), str(BENCH_DIR)):
    if path not in sys.path:
        sys.path.insert(0, path)

import bench_journey  # noqa: E402
from bench_journey import Browser, free_port, one_journey, prepare_database  # noqa: E402

HOSTS = ("127.0.0.2", "127.0.0.3")


def on(host: str) -> None:
    """bench_journey's Browser talks to bench_journey.HOST."""
    bench_journey.HOST = host


def main() -> int:
    url = os.environ.get(bench_journey.POSTGRES_ENV)
    if not url:
        print(f"set {bench_journey.POSTGRES_ENV} to a throw-away PostgreSQL database")
        return 2
    prepare_database(url)
    with tempfile.TemporaryDirectory(prefix="scale-out-") as tmp:
        folder = Path(tmp)
        env = dict(os.environ)
        env.update(
            {
                "SELFCHECK_DATABASE_URL": url,
                "SELFCHECK_SECRET_KEY": secrets.token_urlsafe(32),
                "SELFCHECK_JOBS_DIR": str(folder / "jobs"),
                "SELFCHECK_LOG_LEVEL": "WARNING",
                "SELFCHECK_WORKERS": "2",
            }
        )
        port = free_port()
        processes: list[subprocess.Popen[bytes]] = []
        logs = []
        for index, host in enumerate(HOSTS):
            log = (folder / f"app{index + 1}.log").open("wb")
            logs.append(log)
            command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")]
            processes.append(
                subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env={**env, "SELFCHECK_BIND": f"{host}:{port}"},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        worker_log = (folder / "worker.log").open("wb")
        logs.append(worker_log)
        worker = subprocess.Popen(
            [str(Path(sys.executable).parent / "selfcheck"), "worker", "--workers", "1"],
            cwd=ROOT,
            env=env,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        processes.append(worker)
        ok = True
        try:
            for host in HOSTS:
                on(host)
                probe = Browser(port, [])
                deadline = time.monotonic() + 60
                status = 0
                while time.monotonic() < deadline:
                    try:
                        status = probe.request("GET", "/healthz")[0]
                        break
                    except OSError:
                        time.sleep(0.3)
                print(f"{host}:{port} /healthz: {status}")
                ok &= status == 200
            for host in HOSTS:
                on(host)
                browser = Browser(port, [])
                one_journey(browser, time.monotonic() + 120)
                print(f"{host}: whole journey, {len(browser.latencies)} requests: ok")
            on(HOSTS[0])
            browser = Browser(port, [])
            html = browser.request("GET", "/s/demo")[2]
            start = next(
                f for f in bench_journey.parse_forms(html) if ("form", "before") in f.hidden
            )
            status, location, _ = browser.request("POST", start.action, start.hidden)
            on(HOSTS[1])
            status, _, _ = browser.request("GET", location)
            print(f"started on {HOSTS[0]}, {location} on {HOSTS[1]}: {status}")
            ok &= status == 200
            alive = worker.poll() is None
            print(f"job worker running: {alive}")
            from sqlalchemy import create_engine, text

            engine = create_engine(url)
            with engine.connect() as connection:
                tables = connection.execute(
                    text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'huey%'")
                ).scalars()
                names = sorted(tables)
            engine.dispose()
            print(f"queue tables in PostgreSQL: {', '.join(names) or 'none'}")
            ok &= alive and bool(names)
        finally:
            from common import stop_process_group

            for process, log in zip(processes, logs, strict=True):
                stop_process_group(process, log, 20)
            for name in ("app1.log", "app2.log", "worker.log"):
                text_log = (folder / name).read_text(errors="replace")
                errors = [line for line in text_log.splitlines() if '"ERROR"' in line]
                print(f"{name}: {len(errors)} error lines")
                for line in errors[:3]:
                    print("   ", line[:300])
    print("scale-out recipe:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
