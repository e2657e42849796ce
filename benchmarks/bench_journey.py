"""Load test of the whole beneficiary journey: many people at once, against gunicorn.

Run from the repository root:

    .venv/bin/python benchmarks/bench_journey.py            # 50 users, 30 s per measurement
    .venv/bin/python benchmarks/bench_journey.py --quick    # 10 users, 8 s: smoke check
    SELFCHECK_BENCH_POSTGRES_URL=postgresql+psycopg://... \
        .venv/bin/python benchmarks/bench_journey.py           # SQLite, then PostgreSQL

Each virtual user is a thread with its own cookies, looping over whole journeys: open the
start link, press "start", answer every
page of the "before" form (GET the page, POST its answers), send from the check page, open
the thank-you page and the progress summary. HTML is read like a browser would (CSRF token,
hidden fields, redirects); every answer is the one a real person could give.

Think time: by default none (every user sends its next request as soon as the previous one
is answered), which measures the ceiling: with U users always waiting, Little's law gives a
mean latency of U / throughput, so latency grows with the users whatever the app does.
`--think S` makes each user pause between requests, drawn uniformly between S/2 and 3S/2
(seeded per user), as a person reads and answers a page: then the server sees about
U / (S + latency) requests per second and the latency measured is the app's own. The pause is
counted neither in the latency nor as a request.

Server: gunicorn with the production settings (`gunicorn.conf.py`, sync workers, JSON logs
at WARNING) serving `wsgi_bench.py` (the app plus the `/__bench/hello` baseline route), on
127.0.0.1 only. For each database (a throw-away SQLite file; PostgreSQL when
SELFCHECK_BENCH_POSTGRES_URL is set, whose tables are dropped and migrated again: give it a
database of its own): the hello-world route is loaded by the same users for the same time
(baseline), then the journey. Reported: journeys/s, requests/s (ratio to hello-world),
p50/p95 latency of journey requests, errors (anything but the expected status, or a
connection failure). Bounded in time: users stop at the deadline, abandoning the journey in
progress (not counted); every request has a 30 s timeout.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from common import POSTGRES_ENV, load_average, not_run, row, write_result  # noqa: E402
from sql_counter import COUNTED, TIMES, difference, read_totals, round_trips  # noqa: E402

HOST = "127.0.0.1"
HELLO_PATH = "/__bench/hello"
SLUG = "demo"
REQUEST_TIMEOUT = 30.0
READY_TIMEOUT = 30.0
MAX_USERS = 200
MAX_DURATION = 120.0
MAX_THINK = 60.0
GOAL_RATIO = 0.25
GOAL_P95_MS = 300.0  # issue 18: 200 people at once, p95 <= 300 ms

# One plausible person's "before" answers (the same as tests/support.py BEFORE).
TASKS = ["2", "1", "1", "2", "1", "1", "2", "1", "1", "2", "1", "9", "1", "1", "2"]
ANSWERS: dict[str, tuple[str, ...]] = {
    "ASSIST": ("seul",),
    "AGE": ("soixante_dix_plus",),
    "GENDER": ("feminin",),
    "STATUS": ("retraite",),
    "DIPLOMA": ("brevet",),
    "AREA": ("rural",),
    "INTERNET_HOME": ("oui",),
    "DEVICES": ("smartphone", "tablette"),
    "USE_SMARTPHONE": ("4",),
    "USE_TABLET": ("2",),
    "REASONS": ("utiliser_appareil", "rassurer"),
    "PRESCRIBED": ("personne",),
    "COMFORT": ("1",),
    **{f"T{n:02d}": (value,) for n, value in enumerate(TASKS, start=1)},
}

FORM_RE = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S)
INPUT_RE = re.compile(r"<(?:input|select|textarea|button)\b([^>]*)>")
ATTR_RE = re.compile(r'([a-zA-Z_:-]+)="([^"]*)"')


class BenchError(RuntimeError):
    """The benchmark could not measure."""


# --- HTML and HTTP, as a browser ------------------------------------------------------------


@dataclass
class Form:
    action: str
    hidden: list[tuple[str, str]]
    names: list[str]


def parse_forms(html: str) -> list[Form]:
    forms = []
    for attributes, body in FORM_RE.findall(html):
        action = dict(ATTR_RE.findall(attributes)).get("action", "")
        hidden: list[tuple[str, str]] = []
        names: list[str] = []
        for tag in INPUT_RE.findall(body):
            attrs = dict(ATTR_RE.findall(tag))
            name = attrs.get("name")
            if not name:
                continue
            if attrs.get("type") == "hidden":
                hidden.append((name, unescape(attrs.get("value", ""))))
            elif name not in names:
                names.append(name)
        forms.append(Form(unescape(action), hidden, names))
    return forms


class Browser:
    """Cookies and timed requests of one person (a new connection per request, as gunicorn's
    sync workers close each one). With `think` > 0 it pauses before each request, as a person
    reading the previous page (not timed)."""

    def __init__(
        self,
        port: int,
        latencies: list[float],
        think: float = 0.0,
        seed: int = 0,
        by_kind: dict[str, list[float]] | None = None,
    ) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}
        self.latencies = latencies
        self.by_kind = by_kind  # the same latencies by request kind ("POST /q"), if given
        self.think = think
        self.random = random.Random(seed)

    def pause(self, deadline: float) -> None:
        """Think before the next request; raise Abandon if the deadline comes first."""
        if self.think <= 0:
            return
        wait = self.random.uniform(0.5 * self.think, 1.5 * self.think)
        if time.monotonic() + wait > deadline:
            raise Abandon
        time.sleep(wait)

    def request(
        self, method: str, path: str, fields: list[tuple[str, str]] | None = None
    ) -> tuple[int, str, str]:
        headers = {"Accept-Language": "fr"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if fields is not None:
            body = urllib.parse.urlencode(fields).encode("utf-8")
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.perf_counter()
        connection = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode("utf-8", errors="replace")
            status = response.status
            location = response.headers.get("Location", "")
            for value in response.headers.get_all("Set-Cookie") or []:
                pair = value.split(";", 1)[0]
                name, _, content = pair.partition("=")
                if content and "max-age=0" not in value.lower():
                    self.cookies[name.strip()] = content
                else:
                    self.cookies.pop(name.strip(), None)
        finally:
            connection.close()
        elapsed = time.perf_counter() - started
        self.latencies.append(elapsed)
        if self.by_kind is not None:
            self.by_kind.setdefault(request_kind(method, path), []).append(elapsed)
        return status, urllib.parse.urlsplit(location).path if location else "", text


def request_kind(method: str, path: str) -> str:
    """ "GET /q", "POST /check"...: the method and the path's first segment, as sql_counter.py
    keys its counts (so the client's latencies and the workers' times meet by kind)."""
    return f"{method} /{urllib.parse.urlsplit(path).path.split('/')[1]}"


class Abandon(Exception):
    """The deadline passed in the middle of a journey."""


def expect(status: int, wanted: int, what: str) -> None:
    if status != wanted:
        raise BenchError(f"{what}: {status}, expected {wanted}")


def one_journey(browser: Browser, deadline: float) -> None:
    """Start, answer every page, send, thank-you page, summary."""

    def call(
        method: str, path: str, fields: list[tuple[str, str]] | None = None
    ) -> tuple[int, str, str]:
        browser.pause(deadline)
        if time.monotonic() > deadline:
            raise Abandon
        return browser.request(method, path, fields)

    browser.cookies.clear()
    status, _, html = call("GET", f"/s/{SLUG}")
    expect(status, 200, "start page")
    start = next(f for f in parse_forms(html) if ("form", "before") in f.hidden)
    status, location, _ = call("POST", start.action, start.hidden)
    expect(status, 302, "start")
    pages = 0
    while location.startswith("/q/"):
        status, _, html = call("GET", location)
        expect(status, 200, f"GET {location}")
        form = next(f for f in parse_forms(html) if "action" in f.names)
        fields = list(form.hidden)
        for name in form.names:
            fields.extend((name, value) for value in ANSWERS.get(name, ()))
        fields.append(("action", "next"))
        status, location, _ = call("POST", location, fields)
        expect(status, 302, f"POST page {pages + 1}")
        pages += 1
        if pages > 60:
            raise BenchError("more than 60 pages: the journey loops")
    if location != "/check":
        raise BenchError(f"after the last page: {location!r}, expected /check")
    status, _, html = call("GET", "/check")
    expect(status, 200, "check page")
    send = next(f for f in parse_forms(html) if urllib.parse.urlsplit(f.action).path == "/check")
    status, location, _ = call("POST", "/check", send.hidden)
    expect(status, 302, "send")
    status, _, _ = call("GET", location)
    expect(status, 200, "thank-you page")
    status, _, _ = call("GET", "/summary")
    expect(status, 200, "summary")


@dataclass
class Part:
    """What one client process measured."""

    journeys: int = 0
    requests: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    cpu_seconds: float = 0.0  # CPU time of the client process (all its threads)
    by_kind: dict[str, list[float]] = field(default_factory=dict)  # latencies by request kind


def _user(
    port: int,
    target: str,
    deadline: float,
    part: Part,
    lock: threading.Lock,
    think: float,
    seed: int,
) -> None:
    latencies: list[float] = []
    by_kind: dict[str, list[float]] = {}
    browser = Browser(port, latencies, think, seed, by_kind)
    if think > 0:  # people arrive spread over one think time, not all in the same instant
        time.sleep(browser.random.uniform(0, think))
    journeys = errors = 0
    messages: list[str] = []
    while time.monotonic() < deadline:
        try:
            if target == "hello":
                browser.pause(deadline)
                status, _, _ = browser.request("GET", HELLO_PATH)
                expect(status, 200, "hello")
            else:
                one_journey(browser, deadline)
                journeys += 1
        except Abandon:
            break
        except (BenchError, OSError, StopIteration, http.client.HTTPException) as error:
            errors += 1
            if len(messages) < 3:
                messages.append(f"{type(error).__name__}: {error}")
    with lock:
        part.journeys += journeys
        part.requests += len(latencies)  # every request answered, abandoned journeys too
        part.errors += errors
        part.latencies.extend(latencies)
        part.messages.extend(messages)
        for kind, values in by_kind.items():
            part.by_kind.setdefault(kind, []).extend(values)


def client_process(
    port: int,
    target: str,
    users: int,
    start_at: float,
    duration: float,
    think: float = 0.0,
    first_seed: int = 0,
) -> Part:
    """`users` threads in this process, all starting at `start_at` (time.time())."""
    part = Part()
    lock = threading.Lock()
    time.sleep(max(0.0, start_at - time.time()))
    cpu_before = time.process_time()
    deadline = time.monotonic() + duration
    threads = [
        threading.Thread(
            target=_user, args=(port, target, deadline, part, lock, think, first_seed + n)
        )
        for n in range(users)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=duration + REQUEST_TIMEOUT + 10)
    part.cpu_seconds = time.process_time() - cpu_before
    return part


@dataclass
class Load:
    target: str
    users: int
    duration: float
    journeys: int
    requests: int
    errors: int
    p50_ms: float | None
    p95_ms: float | None
    messages: list[str]
    mean_ms: float | None = None
    think: float = 0.0
    client_cpu: float = 0.0  # CPU seconds of the load tool's processes during the load
    server_cpu: float | None = None  # gunicorn's processes
    postgres_cpu: float | None = None  # every PostgreSQL process (other databases too)

    @property
    def rps(self) -> float:
        return self.requests / self.duration

    requests_per_journey: int = 0
    sql: dict[str, dict[str, int]] = field(default_factory=dict)  # by request kind
    # By request kind: the client's latencies (requests, p50_ms, p95_ms, mean_ms) and, from
    # the workers (sql_counter.py), their wall time, their CPU and their PostgreSQL backends'
    # CPU per request (worker_wall_ms, worker_cpu_ms, backend_cpu_ms) and that CPU's share of
    # the load's (cpu_share).
    kinds: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def add_worker_times(self) -> None:
        """Put the workers' times of `sql` (microseconds, summed) into `kinds`, per request."""
        total = sum(c.get(t, 0) for c in self.sql.values() for t in TIMES[1:]) or 1
        for key, counts in self.sql.items():
            n = counts["requests"]
            entry = self.kinds.setdefault(key, {"requests": None})
            entry["server_requests"] = n
            for name in TIMES:
                entry[name.replace("_us", "_ms")] = counts.get(name, 0) / n / 1000
            entry["cpu_share"] = (counts.get(TIMES[1], 0) + counts.get(TIMES[2], 0)) / total

    @property
    def round_trips(self) -> float | None:
        """Database round trips per request, over the whole journey load."""
        requests = sum(c["requests"] for c in self.sql.values())
        return sum(round_trips(c) for c in self.sql.values()) / requests if requests else None

    @property
    def jps(self) -> float:
        """Whole journeys per second: requests/s over the requests one journey makes (users
        start together and a journey lasts several seconds, so counting the journeys finished
        within the window would be lumpy)."""
        if not self.requests_per_journey:
            return 0.0
        return self.rps / self.requests_per_journey


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def run_load(
    pool: ProcessPoolExecutor,
    processes: int,
    port: int,
    target: str,
    users: int,
    duration: float,
    think: float = 0.0,
) -> Load:
    start_at = time.time() + 1.0  # every process starts its users at the same moment
    shares = [users // processes + (1 if i < users % processes else 0) for i in range(processes)]
    futures = [
        pool.submit(client_process, port, target, share, start_at, duration, think, sum(shares[:i]))
        for i, share in enumerate(shares)
        if share
    ]
    parts = [f.result(timeout=duration + 2 * REQUEST_TIMEOUT + 30) for f in futures]
    latencies = [x for p in parts for x in p.latencies]
    by_kind: dict[str, list[float]] = {}
    for p in parts:
        for kind, values in p.by_kind.items():
            by_kind.setdefault(kind, []).extend(values)
    kinds: dict[str, dict[str, float | None]] = {
        kind: {
            "requests": len(values),
            "p50_ms": percentile(values, 0.50),
            "p95_ms": percentile(values, 0.95),
            "mean_ms": sum(values) / len(values) * 1000,
        }
        for kind, values in sorted(by_kind.items())
    }
    return Load(
        target=target,
        users=users,
        duration=duration,
        journeys=sum(p.journeys for p in parts),
        requests=sum(p.requests for p in parts),
        errors=sum(p.errors for p in parts),
        p50_ms=percentile(latencies, 0.50),
        p95_ms=percentile(latencies, 0.95),
        mean_ms=sum(latencies) / len(latencies) * 1000 if latencies else None,
        messages=[m for p in parts for m in p.messages][:5],
        think=think,
        client_cpu=sum(p.cpu_seconds for p in parts),
        kinds=kinds,
    )


def process_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds (user + system) used so far by each of these processes (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    used: dict[int, float] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return used


def cpu_since(before: dict[int, float], pids: list[int]) -> float:
    """CPU seconds used by `pids` since `before` (a process started since counts whole; one
    that ended since is lost: PostgreSQL backends live as long as the pooled connections)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in process_cpu(pids).items())


def tree(root: int) -> list[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def cpu_line(database: str, load: Load) -> str:
    """Who used the 2 cores during a load: the load tool, gunicorn, PostgreSQL."""
    cores = os.cpu_count() or 1

    def share(seconds: float | None) -> str:
        if seconds is None:
            return "not measured"
        return f"{seconds:.1f} s ({seconds / load.duration:.2f} cores)"

    return (
        f"{database}: CPU during the {load.target} load ({load.duration:g} s, {cores} cores): "
        f"load tool {share(load.client_cpu)}, gunicorn {share(load.server_cpu)}, "
        f"PostgreSQL {share(load.postgres_cpu)} (every PostgreSQL process of the machine)"
    )


# --- database and server --------------------------------------------------------------------


def prepare_database(url: str) -> None:
    """Empty the database, migrate it, add the demo structure (link /s/demo)."""
    from sqlalchemy import MetaData
    from sqlalchemy.orm import Session

    from selfcheck.demo import demo_structure
    from selfcheck.platform import migrate
    from selfcheck.platform.db import make_engine

    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            reflected = MetaData()
            reflected.reflect(connection)
            reflected.drop_all(connection)
        migrate.upgrade(engine)
        with Session(engine) as session:
            demo_structure(session)
            session.commit()
    finally:
        engine.dispose()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """gunicorn with gunicorn.conf.py on 127.0.0.1 (own process group, stopped with it)."""

    def __init__(
        self, workdir: Path, database_url: str, workers: int | None, profile: Path | None = None
    ) -> None:
        self.port = free_port()
        self.log_path = workdir / f"gunicorn-{self.port}.log"
        self.sql_dir = workdir / f"sql-{self.port}"
        self.sql_dir.mkdir()
        env = dict(os.environ)
        env.update(
            {
                "SELFCHECK_BENCH_DATABASE_URL": database_url,
                "SELFCHECK_BENCH_INSTANCE_PATH": str(workdir / "instance"),
                "SELFCHECK_SECRET_KEY": secrets.token_urlsafe(32),
                "SELFCHECK_BIND": f"{HOST}:{self.port}",
                "SELFCHECK_LOG_LEVEL": "WARNING",
                "SELFCHECK_BENCH_SQL_DIR": str(self.sql_dir),
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(ROOT), str(BENCH_DIR), env.get("PYTHONPATH", "")) if p
                ),
            }
        )
        if workers:
            env["SELFCHECK_WORKERS"] = str(workers)
        if profile is not None:  # cProfile by request kind in each worker (profile_worker.py)
            env["SELFCHECK_BENCH_PROFILE_DIR"] = str(profile)
        command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")]
        command += ["--timeout", "60", "wsgi_bench:app"]
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        probe = Browser(self.port, [])
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"gunicorn exited with {self.process.returncode}\n{self.log()}")
            try:
                status, _, _ = probe.request("GET", "/healthz")
            except OSError:
                time.sleep(0.2)
                continue
            if status == 200:
                return
            raise BenchError(f"/healthz answered {status}\n{self.log()}")
        raise BenchError(f"gunicorn not ready after {READY_TIMEOUT:.0f} s\n{self.log()}")

    def log(self) -> str:
        from common import log_tail

        return log_tail(self.log_path, self._log, 30)

    def stop(self) -> None:
        from common import stop_process_group

        stop_process_group(self.process, self._log, 20)


# --- report ---------------------------------------------------------------------------------


def measure_database(
    database: str, url: str, workdir: Path, args: argparse.Namespace, pool: ProcessPoolExecutor
) -> tuple[Load, Load, Load | None, str]:
    prepare_database(url)
    profile = None
    if args.profile is not None:
        profile = (args.profile / database).resolve()
        profile.mkdir(parents=True, exist_ok=True)
        for old in profile.glob("*.prof"):
            old.unlink()
    server = Server(workdir, url, args.workers, profile)
    try:
        server.wait_ready()
        probe = Browser(server.port, [])
        one_journey(probe, time.monotonic() + 60)
        per_journey = len(probe.latencies)
        # Warm-up: every worker imports, compiles its templates and fills its page cache.
        run_load(pool, args.processes, server.port, "journey", min(args.users, 10), 3.0)
        think = f", think {args.think:g} s" if args.think else ", no think time"
        load = f"{args.users} users{think}, {args.duration:g} s"
        servers = tree(server.process.pid)

        def measured(target: str, think: float = args.think) -> Load:
            server_before, postgres_before = process_cpu(servers), process_cpu(postgres_pids())
            result = run_load(
                pool, args.processes, server.port, target, args.users, args.duration, think
            )
            result.server_cpu = cpu_since(server_before, servers)
            if database == "postgresql":
                result.postgres_cpu = cpu_since(postgres_before, postgres_pids())
            print(cpu_line(database, result), flush=True)
            return result

        print(f"{database}: hello-world, {load}", flush=True)
        hello = measured("hello")
        print(f"{database}: journey, {load}", flush=True)
        before = read_totals(server.sql_dir)
        journey = measured("journey")
        if server.process.poll() is not None:
            raise BenchError(f"gunicorn died during the run\n{server.log()}")
        journey.requests_per_journey = per_journey
        journey.sql = difference(read_totals(server.sql_dir), before)
        journey.add_worker_times()
        print(sql_table(database, journey.sql), flush=True)
        print(kinds_table(database, journey), flush=True)
        paused = None
        if args.also_think:
            # The same people on the same server, now pausing as people do: the latency of
            # the app itself, where the load above measured the ceiling (issue 18, goal 2).
            print(f"{database}: journey, {args.users} users, think {args.also_think:g} s")
            before = read_totals(server.sql_dir)
            paused = measured("journey", args.also_think)
            paused.requests_per_journey = per_journey
            paused.sql = difference(read_totals(server.sql_dir), before)
            paused.add_worker_times()
            print(kinds_table(database, paused), flush=True)
        return hello, journey, paused, server.log()
    finally:
        server.stop()


def summary_rows(database: str, hello: Load, journey: Load) -> list[dict[str, Any]]:
    users = journey.users
    think = f", think {journey.think:g} s" if journey.think else ""
    hello_name = f"hello-world route, {users} users{think}"
    rows = [
        row(
            f"journey load: requests/s ({users} users{think})",
            journey.rps,
            "req/s",
            database=database,
            baseline=hello_name,
            baseline_value=hello.rps,
            goal=f">= {GOAL_RATIO:g}x hello-world",
        ),
        row(
            f"journey load: whole journeys/s ({journey.requests_per_journey} requests each)",
            journey.jps,
            "journeys/s",
            database=database,
            goal="information",
        ),
        row(
            "journey load: p50 latency",
            journey.p50_ms,
            "ms",
            database=database,
            baseline=f"{hello_name}, p50",
            baseline_value=hello.p50_ms,
            goal="information",
        ),
        row(
            "journey load: p95 latency",
            journey.p95_ms,
            "ms",
            database=database,
            baseline=f"{hello_name}, p95",
            baseline_value=hello.p95_ms,
            goal=f"<= {GOAL_P95_MS:g} ms",
            met=journey.p95_ms is not None and journey.p95_ms <= GOAL_P95_MS,
        ),
        row(
            "journey load: errors",
            float(journey.errors),
            "errors",
            database=database,
            goal="0",
            met=journey.errors == 0,
        ),
    ]
    rows.append(
        row(
            "journey load: database round trips per request",
            journey.round_trips,
            "round trips",
            database=database,
            goal="information (fewer is better)",
        )
    )
    if not journey.think and journey.rps > 0:
        typical = typical_journey_seconds()
        # A closed loop: every user always waiting, so the requests/s are the server's
        # saturation throughput and, by Little's law, the mean latency is users / throughput
        # whatever the code does (issue 18, goal 2: docs/performance.md, part 6).
        rows.append(
            row(
                "journey load: mean latency (no pauses: Little's law, users / requests/s)",
                journey.mean_ms,
                "ms",
                database=database,
                baseline="users / requests/s",
                baseline_value=users / journey.rps * 1000,
                goal="information",
            )
        )
        rows.append(
            row(
                "journey load: people answering at once at the form's typical pace that the "
                f"saturation throughput serves ({typical:g} s per journey)",
                journey.rps * typical / (journey.requests_per_journey or 1),
                "people",
                database=database,
                goal="information",
            )
        )
    ratio = rows[0]["ratio"]
    rows[0]["met"] = ratio is not None and ratio >= GOAL_RATIO
    return rows


def typical_journey_seconds() -> float:
    """The "before" form at its typical pace, as the start page announces it to people
    (`form_stats`: 5 s a page plus each item's typical answering time, from the item bank)."""
    from selfcheck.questionnaire import load_definition
    from selfcheck.questionnaire.model import FormKind
    from selfcheck.questionnaire.stats import form_stats

    return float(form_stats(load_definition(), FormKind.BEFORE).seconds_typical)


def paused_rows(database: str, paused: Load) -> list[dict[str, Any]]:
    """The second journey load of `--also-think`: the same users pausing between pages."""
    name = f"journey load with pauses ({paused.users} users, think {paused.think:g} s)"
    return [
        row(f"{name}: requests/s", paused.rps, "req/s", database=database, goal="information"),
        row(f"{name}: p50 latency", paused.p50_ms, "ms", database=database, goal="information"),
        row(
            f"{name}: p95 latency",
            paused.p95_ms,
            "ms",
            database=database,
            goal=f"<= {GOAL_P95_MS:g} ms",
            met=paused.p95_ms is not None and paused.p95_ms <= GOAL_P95_MS,
        ),
        row(
            f"{name}: errors",
            float(paused.errors),
            "errors",
            database=database,
            goal="0",
            met=paused.errors == 0,
        ),
    ]


def sql_table(database: str, sql: dict[str, dict[str, int]]) -> str:
    """Round trips per request of each kind (statements, BEGIN, COMMIT, ROLLBACK, pings), and
    the statements compiled afresh or not cacheable (not round trips: CPU of the worker)."""
    lines = [
        f"{database}: database round trips per request (during the journey load)",
        "| request | requests | round trips | statements | begins | commits | rollbacks | pings "
        "| compiled | uncached |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, counts in sorted(sql.items()):
        n = counts["requests"]
        per = [counts.get(kind, 0) / n for kind in COUNTED]
        lines.append(
            f"| {key} | {n} | {round_trips(counts) / n:.2f} | "
            + " | ".join(f"{value:.2f}" for value in per)
            + " |"
        )
    return "\n".join(lines)


def kinds_table(database: str, load: Load) -> str:
    """Latency by request kind as the load tool saw it (queueing included), and what each
    request cost inside the workers: wall time from the WSGI call to the end of the request,
    the worker's CPU, its PostgreSQL backends' CPU (sql_counter.py), and the kind's share of
    the CPU (worker + backends) of the load."""
    think = f", think {load.think:g} s" if load.think else ", no pauses"
    lines = [
        f"{database}: latency and cost by request kind ({load.users} users{think})",
        "| request | requests | p50 ms | p95 ms | mean ms | worker wall ms | worker CPU ms "
        "| backend CPU ms | CPU share |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def ms(value: float | None) -> str:
        return "" if value is None else f"{value:.2f}"

    for key, entry in sorted(load.kinds.items()):
        share = entry.get("cpu_share")
        lines.append(
            f"| {key} | {entry.get('requests') or 0:.0f} | {ms(entry.get('p50_ms'))} "
            f"| {ms(entry.get('p95_ms'))} | {ms(entry.get('mean_ms'))} "
            f"| {ms(entry.get('worker_wall_ms'))} | {ms(entry.get('worker_cpu_ms'))} "
            f"| {ms(entry.get('backend_cpu_ms'))} "
            f"| {'' if share is None else f'{share:.0%}'} |"
        )
    return "\n".join(lines)


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| figure | database | value | baseline | ratio | goal | met |",
        "|---|---|---:|---|---:|---|---|",
    ]
    for r in rows:
        value = "not run" if r["value"] is None else f"{r['value']:,.1f} {r['unit']}"
        baseline = (
            "" if r["baseline"] is None else f"{r['baseline']}: {r['baseline_value'] or 0:,.1f}"
        )
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
        met = {True: "yes", False: "**no**", None: ""}[r["met"]]
        lines.append(
            f"| {r['figure']} | {r['database']} | {value} | {baseline} | {ratio} "
            f"| {r['goal']} | {met} |"
        )
    return "\n".join(lines)


def postgres_connection(url: str | None) -> str | None:
    """How the app reaches PostgreSQL: a Unix socket (`?host=/var/run/postgresql`) or TCP."""
    if not url:
        return None
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    host = parsed.query.get("host") or parsed.host or ""
    host = host if isinstance(host, str) else host[0]
    return "unix socket" if host.startswith("/") or not host else f"tcp {host}"


def comparison_rows(details: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 18: PostgreSQL at least as fast as SQLite in the same run (requests/s of the
    journey load, both measured by this run, one after the other)."""
    if not {"sqlite", "postgresql"} <= details.keys():
        return []
    sqlite_rps = details["sqlite"]["journey"]["rps"]
    postgres_rps = details["postgresql"]["journey"]["rps"]
    return [
        row(
            "journey load: PostgreSQL requests/s against SQLite's (same run)",
            postgres_rps,
            "req/s",
            database="postgresql",
            baseline="SQLite, same run",
            baseline_value=sqlite_rps,
            goal=">= 1x SQLite",
            met=sqlite_rps > 0 and postgres_rps >= sqlite_rps,
        )
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="10 users, 8 s per measurement")
    parser.add_argument("--users", type=int, help="virtual users at once (default 50)")
    parser.add_argument("--duration", type=float, help="seconds per measurement (default 30)")
    parser.add_argument(
        "--processes", type=int, default=2, help="client processes (threads in each)"
    )
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: gunicorn.conf.py)")
    parser.add_argument("--databases", default="sqlite,postgresql", help="which to measure")
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="mean seconds each user pauses before a request, as a person reading a page "
        "(default 0: no pause, the ceiling)",
    )
    parser.add_argument(
        "--also-think",
        type=float,
        default=0.0,
        help="after the journey load, load the journey again with this mean pause (seconds) "
        "before each request: the p95 with people pausing, in the same run (default: not run)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="cProfile each request kind inside the workers, written into DIR/<database>/ "
        "(warm-up and hello-world load included; read with profile_worker.py DIR/<database>)",
    )
    args = parser.parse_args(argv)
    args.users = args.users or (10 if args.quick else 50)
    args.duration = args.duration or (8.0 if args.quick else 30.0)
    if not 1 <= args.users <= MAX_USERS:
        parser.error(f"--users must be between 1 and {MAX_USERS}")
    if not 1 <= args.duration <= MAX_DURATION:
        parser.error(f"--duration must be between 1 and {MAX_DURATION:g} s")
    if not 0 <= args.think <= MAX_THINK:
        parser.error(f"--think must be between 0 and {MAX_THINK:g} s")
    if not 0 <= args.also_think <= MAX_THINK:
        parser.error(f"--also-think must be between 0 and {MAX_THINK:g} s")
    if not 1 <= args.processes <= 16:
        parser.error("--processes must be between 1 and 16")
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    if not set(args.databases) <= {"sqlite", "postgresql"}:
        parser.error("--databases takes sqlite and/or postgresql")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = load_average()
    rows: list[dict[str, Any]] = []
    details: dict[str, Any] = {}
    postgres_url = os.environ.get(POSTGRES_ENV)
    with (
        tempfile.TemporaryDirectory(prefix="selfcheck-journey-") as tmp,
        ProcessPoolExecutor(max_workers=args.processes) as pool,
    ):
        workdir = Path(tmp)
        try:
            for database in args.databases:
                if database == "postgresql" and not postgres_url:
                    for figure, unit, goal in (
                        ("journey load: requests/s", "req/s", f">= {GOAL_RATIO:g}x hello-world"),
                        ("journey load: p95 latency", "ms", f"<= {GOAL_P95_MS:g} ms"),
                        ("journey load: errors", "errors", "0"),
                    ):
                        rows.append(not_run(figure, unit, goal, database, f"{POSTGRES_ENV} unset"))
                    continue
                url = postgres_url if database == "postgresql" else f"sqlite:///{workdir}/j.db"
                assert url is not None
                hello, journey, paused, _log = measure_database(database, url, workdir, args, pool)
                for load in (hello, journey, paused):
                    if load is None:
                        continue
                    think = f" (think {load.think:g} s)" if load.think else ""
                    print(
                        f"  {load.target}{think}: {load.rps:,.1f} req/s, {load.jps:,.2f} "
                        f"journeys/s, p50 {load.p50_ms or 0:.1f} ms, mean {load.mean_ms or 0:.1f} "
                        f"ms, p95 {load.p95_ms or 0:.1f} ms, errors {load.errors} {load.messages}",
                        flush=True,
                    )
                rows += summary_rows(database, hello, journey)
                if paused is not None:
                    rows += paused_rows(database, paused)
                details[database] = {
                    "hello": {**hello.__dict__, "rps": hello.rps},
                    "journey": {**journey.__dict__, "rps": journey.rps, "jps": journey.jps},
                    "journey_with_think_time": None
                    if paused is None
                    else {**paused.__dict__, "rps": paused.rps, "jps": paused.jps},
                    "completed_journeys_in_window": journey.journeys,
                }
        except BenchError as error:
            print(f"benchmark error: {error}", file=sys.stderr)
            return 1
    rows += comparison_rows(details)
    table = markdown(rows)
    print("\n" + table)
    path = write_result(
        "journey",
        rows,
        config={
            "users": args.users,
            "duration_s": args.duration,
            "client_processes": args.processes,
            "workers": args.workers or "gunicorn.conf.py default (2 x cores + 1)",
            "think_time_s": args.think,
            "also_think_time_s": args.also_think or None,
            "postgres_connection": postgres_connection(postgres_url),
        },
        load_average={"before": load_before, "after": load_average()},
        details=details,
        markdown=table,
    )
    print(f"\nJSON: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
