"""Requests per second of a questionnaire page against a hello-world route of the same server.

Run from the repository root:

    .venv/bin/python benchmarks/bench_pages.py            # 3 rounds of 10 s per target
    .venv/bin/python benchmarks/bench_pages.py --quick    # 1 round of 3 s, for a smoke check

What it does, in one run:

1. builds a throw-away SQLite database (migrations + the demo structure + a few demo
   respondents) in a temporary directory;
2. starts gunicorn (sync workers) on 127.0.0.1 and a free port, serving
   `benchmarks/wsgi_bench.py`: the real app plus `/__bench/hello` on the same app; and a
   second gunicorn with the same settings serving `benchmarks/wsgi_bare.py`, a bare Flask
   hello-world app (the baseline: issue 18 asks for it, not a route inside the app);
3. starts a "before" and a "retro" questionnaire through the real start form (CSRF token,
   signed session cookie) and checks the chosen page answers 200;
4. loads the bare app, the in-app hello, then each page, with the same duration,
   connections and Cookie header, interleaved over several rounds, and keeps the median
   rate of each target;
5. prints a Markdown table and writes JSON to `benchmarks/results/` (git-ignored).

The goal is a ratio measured in the same run, never an absolute figure: page rate at least
half the bare Flask hello-world rate. Missing the goal is reported, not an error: the exit
status is 1 only when the benchmark itself failed (server did not start, page not 200,
failed requests).

All traffic goes to 127.0.0.1, bounded in time (duration x rounds x targets + warm-ups).
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import importlib.metadata
import json
import os
import platform
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
HOST = "127.0.0.1"
HELLO_PATH = "/__bench/hello"  # keep in sync with wsgi_bench.HELLO_PATH
SESSION_COOKIE = "selfcheck_session"
GOAL_RATIO = 0.5
MAX_DURATION = 60.0
MAX_CONNECTIONS = 64
MAX_ROUNDS = 10
READY_TIMEOUT = 30.0
BUSY_LOAD = 0.5
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
if str(BENCH_DIR) not in sys.path:  # benchmarks/common.py, when imported as a module
    sys.path.insert(0, str(BENCH_DIR))

if str(ROOT) not in sys.path:  # so `selfcheck` imports when run as a plain script
    sys.path.insert(0, str(ROOT))


class BenchError(RuntimeError):
    """The benchmark could not measure (as opposed to: it measured a missed goal)."""


# --- results ------------------------------------------------------------------------------


@dataclass
class Sample:
    """One timed run of one target."""

    rps: float
    requests: int
    errors: int
    p50_ms: float | None
    p99_ms: float | None
    bytes_per_request: float | None = None
    # A worker of the server was replaced during the round (gunicorn's `max_requests`: a new
    # worker builds the app again, seconds of CPU inside a 6 s round): see `measure`.
    restarted: bool = False


@dataclass
class Target:
    name: str
    path: str
    cookie: str
    samples: list[Sample] = field(default_factory=list)
    port: int | None = None  # another server (the bare Flask app); None: the app's

    def median(self, attribute: str) -> float | None:
        values: list[float] = [
            value for s in self.samples if (value := getattr(s, attribute)) is not None
        ]
        return statistics.median(values) if values else None


@dataclass
class PageInfo:
    name: str
    form: str
    page: str
    bytes: int
    gzip_bytes: int
    radios: int
    keep_alive: bool


# --- database and server ------------------------------------------------------------------


def heaviest_screen(form: str) -> str:
    """The web screen of `form` with the most answer inputs (radios and boxes), the first in
    the form's order among equals: the before form's `p_tasks_device` (3 tasks, 15 radios);
    the retrospective form's `p_tasks_procedures_before` (its screens group pages and ask
    each question once per moment, before and today: 5 questions, 25 radios, since the
    layout of issue 12; its pages, such as `p_tasks_device`, are no longer screens of
    their own there and answer 404)."""
    from selfcheck.journey.operations import page_variables
    from selfcheck.questionnaire import load_definition
    from selfcheck.questionnaire.loader import DEFAULT_DEFINITION
    from selfcheck.questionnaire.model import FormKind

    definition = load_definition(DEFAULT_DEFINITION)
    kind = FormKind(form)

    def inputs(screen: Any) -> int:
        return sum(len(variable.item.options) for variable in page_variables(screen, kind, {}))

    return str(max(definition.screens(kind), key=inputs).code)


def prepare_database(directory: Path, respondents: int) -> str:
    """Migrated SQLite database with the demo structure and `respondents` demo people."""
    from sqlalchemy.orm import Session

    from selfcheck.demo import demo_structure, generate_demo
    from selfcheck.platform import migrate
    from selfcheck.platform.db import make_engine
    from selfcheck.questionnaire import load_definition
    from selfcheck.questionnaire.loader import DEFAULT_DEFINITION

    url = f"sqlite:///{directory / 'bench.db'}"
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        with Session(engine, expire_on_commit=False) as session:
            demo_structure(session)
            session.commit()
            if respondents:
                generate_demo(session, load_definition(DEFAULT_DEFINITION), respondents)
                session.commit()
    finally:
        engine.dispose()
    return url


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """gunicorn with sync workers on 127.0.0.1; stopped by its own process group id."""

    def __init__(
        self,
        workdir: Path,
        database_url: str,
        workers: int,
        module: str = "wsgi_bench:app",
        worker_class: str = "sync",
        threads: int = 1,
    ) -> None:
        self.port = free_port()
        self.workers = workers
        self.log_path = workdir / f"gunicorn-{module.split(':')[0]}.log"
        env = dict(os.environ)
        env.update(
            {
                "SELFCHECK_BENCH_DATABASE_URL": database_url,
                "SELFCHECK_BENCH_INSTANCE_PATH": str(workdir / "instance"),
                "SELFCHECK_SECRET_KEY": secrets.token_urlsafe(32),
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p
                ),
            }
        )
        self.command = [
            sys.executable,
            "-m",
            "gunicorn",
            # The production settings (as gunicorn would read them from the working directory
            # anyway), for the app and the bare app alike: worker recycling, logging.
            "-c",
            str(ROOT / "gunicorn.conf.py"),
            "--worker-class",
            worker_class,
            "--threads",
            str(threads),
            "--workers",
            str(workers),
            "--bind",
            f"{HOST}:{self.port}",
            "--pythonpath",
            str(BENCH_DIR),
            "--log-level",
            "warning",
            "--timeout",
            "30",
            module,
        ]
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us, and we stop gunicorn cleanly
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"gunicorn exited with {self.process.returncode}\n{self.log()}")
            try:
                status, _headers, body = request(self.port, "GET", HELLO_PATH)
            except OSError:
                time.sleep(0.2)
                continue
            if status == 200 and body == b"hello":
                return
            raise BenchError(f"hello route answered {status}: {body[:200]!r}\n{self.log()}")
        raise BenchError(f"gunicorn not ready after {READY_TIMEOUT:.0f} s\n{self.log()}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def worker_pids(self) -> frozenset[int]:
        """The master's children (Linux /proc; empty elsewhere): a change between two
        readings means a worker was replaced (recycled after `max_requests`, or crashed)."""
        pid = self.process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        except OSError:
            return frozenset()
        return frozenset(int(child) for child in children.split())

    def log(self) -> str:
        from common import log_tail

        return log_tail(self.log_path, self._log, 40)

    def stop(self) -> None:
        from common import stop_process_group

        stop_process_group(self.process, self._log, 15)


# --- HTTP helpers -------------------------------------------------------------------------


def request(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def session_cookie(headers: http.client.HTTPMessage) -> str | None:
    for value in headers.get_all("Set-Cookie") or []:
        pair = value.split(";", 1)[0].strip()
        if pair.startswith(SESSION_COOKIE + "="):
            return pair
    return None


def start_questionnaire(port: int, slug: str, form: str) -> str:
    """Go through the real start page and form; return the Cookie header of the session."""
    status, headers, body = request(port, "GET", f"/s/{slug}")
    if status != 200:
        raise BenchError(f"GET /s/{slug} answered {status}")
    found = CSRF_RE.search(body.decode("utf-8"))
    cookie = session_cookie(headers)
    if found is None or cookie is None:
        raise BenchError("start page has no csrf_token input or no session cookie")
    fields = {"csrf_token": found.group(1), "form": form, "token": secrets.token_urlsafe(24)}
    status, headers, body = request(
        port,
        "POST",
        f"/s/{slug}",
        headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
        body=urllib.parse.urlencode(fields).encode("ascii"),
    )
    started = session_cookie(headers)
    if status != 302 or started is None:
        raise BenchError(f"POST /s/{slug} (form={form}) answered {status}: {body[:300]!r}")
    return started


def inspect_page(port: int, name: str, form: str, page: str, cookie: str) -> PageInfo:
    status, headers, body = request(port, "GET", f"/q/{page}", headers={"Cookie": cookie})
    if status != 200:
        raise BenchError(f"GET /q/{page} ({form}) answered {status}, expected 200")
    if session_cookie(headers) is not None:
        print(f"note: GET /q/{page} rewrites the session cookie", file=sys.stderr)
    return PageInfo(
        name=name,
        form=form,
        page=page,
        bytes=len(body),
        gzip_bytes=len(gzip.compress(body, compresslevel=6)),
        radios=body.count(b'type="radio"'),
        keep_alive=(headers.get("Connection") or "").lower() != "close",
    )


# --- load generators ----------------------------------------------------------------------

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}
_UNITS_BYTES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if found is None:
        raise BenchError(f"cannot read wrk latency {text!r}")
    return float(found.group(1)) * _UNITS_MS[found.group(2)]


def parse_wrk(output: str) -> Sample:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in [\d.]+\w+, ([\d.]+)(B|KB|MB|GB|TB) read", output)
    if rps is None or total is None:
        raise BenchError(f"cannot read wrk output:\n{output}")
    percentiles = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)$", output, re.MULTILINE))
    errors = 0
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket_errors:
        # `read` errors are peers closing between requests (sync workers close each
        # connection); they are counted by wrk but are not failed requests.
        errors += int(socket_errors.group(1)) + int(socket_errors.group(3))
        errors += int(socket_errors.group(4))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if bad:
        errors += int(bad.group(1))
    requests = int(total.group(1))
    read = float(total.group(2)) * _UNITS_BYTES[total.group(3)]
    return Sample(
        rps=float(rps.group(1)),
        requests=requests,
        errors=errors,
        p50_ms=_ms(percentiles["50"]) if "50" in percentiles else None,
        p99_ms=_ms(percentiles["99"]) if "99" in percentiles else None,
        bytes_per_request=read / requests if requests else None,
    )


class Wrk:
    name = "wrk"

    def __init__(self, executable: str, threads: int, connections: int) -> None:
        self.executable = executable
        self.threads = threads
        self.connections = connections
        version = subprocess.run(
            [executable, "-v"], capture_output=True, text=True, timeout=10, check=False
        )
        self.version = (version.stdout + version.stderr).splitlines()[0].split(" [")[0]

    def run(self, port: int, target: Target, duration: float) -> Sample:
        command = [
            self.executable,
            f"-t{self.threads}",
            f"-c{self.connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "--latency",
            "-H",
            f"Cookie: {target.cookie}",
            f"http://{HOST}:{port}{target.path}",
        ]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=duration + 30, check=False
        )
        if done.returncode != 0:
            raise BenchError(f"wrk failed ({done.returncode}): {done.stderr}")
        return parse_wrk(done.stdout)

    def close(self) -> None:
        pass


@dataclass
class ClientResult:
    ok: int
    errors: int
    elapsed: float
    latencies: list[float]


def _python_client(port: int, path: str, cookie: str, duration: float) -> ClientResult:
    """One client process: sequential keep-alive GETs for `duration` seconds."""
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    latencies: list[float] = []
    ok = errors = 0
    started = time.perf_counter()
    deadline = started + duration
    while (before := time.perf_counter()) < deadline:
        try:
            connection.request("GET", path, headers={"Cookie": cookie})
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                ok += 1
            else:
                errors += 1
        except (OSError, http.client.HTTPException):
            errors += 1
            connection.close()  # request() reopens it
        latencies.append(time.perf_counter() - before)
    connection.close()
    return ClientResult(ok, errors, time.perf_counter() - started, latencies)


class PythonGenerator:
    """Fallback when wrk is absent: one process per connection (no GIL contention)."""

    name = "python"

    def __init__(self, connections: int) -> None:
        self.connections = connections
        self.version = f"http.client, {connections} processes, Python {platform.python_version()}"
        self.pool = ProcessPoolExecutor(max_workers=connections)

    def run(self, port: int, target: Target, duration: float) -> Sample:
        futures = [
            self.pool.submit(_python_client, port, target.path, target.cookie, duration)
            for _ in range(self.connections)
        ]
        parts = [f.result(timeout=duration + 30) for f in futures]
        latencies = sorted(x for part in parts for x in part.latencies)
        ok = sum(part.ok for part in parts)

        def percentile(q: float) -> float | None:
            if not latencies:
                return None
            return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

        return Sample(
            rps=sum(part.ok / part.elapsed for part in parts),
            requests=ok,
            errors=sum(part.errors for part in parts),
            p50_ms=percentile(0.50),
            p99_ms=percentile(0.99),
        )

    def close(self) -> None:
        self.pool.shutdown()


Generator = Wrk | PythonGenerator


def make_generator(choice: str, connections: int) -> Generator:
    executable = shutil.which("wrk")
    if choice == "wrk" and executable is None:
        raise BenchError("--generator wrk: wrk is not installed (apt-get install wrk)")
    if choice in ("auto", "wrk") and executable is not None:
        return Wrk(executable, threads=min(2, connections), connections=connections)
    return PythonGenerator(connections)


# --- the run ------------------------------------------------------------------------------


def load_average() -> float | None:
    """1-minute load average: other processes sharing the CPU make the figures noisy."""
    try:
        return float(Path("/proc/loadavg").read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return None


def machine() -> dict[str, Any]:
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "gunicorn": importlib.metadata.version("gunicorn"),
    }


def measure(
    server: Server,
    generator: Generator,
    targets: list[Target],
    pages: dict[str, PageInfo],
    duration: float,
    warmup: float,
    rounds: int,
    others: tuple[Server, ...] = (),
) -> None:
    if warmup > 0:
        for target in targets:
            print(f"warm-up {target.name} ({warmup:g} s)", flush=True)
            generator.run(target.port or server.port, target, warmup)
    by_port = {other.port: other for other in (server, *others)}
    for number in range(1, rounds + 1):
        for target in targets:
            serving = by_port.get(target.port or server.port, server)
            workers = serving.worker_pids()
            sample = generator.run(target.port or server.port, target, duration)
            if not server.alive():
                raise BenchError(f"gunicorn died during the run\n{server.log()}")
            sample.restarted = bool(workers) and serving.worker_pids() != workers
            target.samples.append(sample)
            print(
                f"round {number}/{rounds} {target.name:<12} {sample.rps:9.1f} req/s"
                f"  p50 {_fmt(sample.p50_ms)} ms  p99 {_fmt(sample.p99_ms)} ms"
                f"  errors {sample.errors}"
                + ("  (a worker was recycled during this round)" if sample.restarted else ""),
                flush=True,
            )
            check_sample(target, sample, pages.get(target.name))


def check_sample(target: Target, sample: Sample, page: PageInfo | None) -> None:
    """Failed requests or redirects would make a rate meaningless: stop instead."""
    if sample.requests == 0:
        raise BenchError(f"{target.name}: no request completed")
    if sample.errors > 0.001 * sample.requests:
        raise BenchError(f"{target.name}: {sample.errors} failed of {sample.requests} requests")
    # wrk counts 3xx as success: a lost session (redirect to /code) would look like a
    # tiny fast page. Bytes per request below the page body means it was not the page.
    if page and sample.bytes_per_request and sample.bytes_per_request < 0.95 * page.bytes:
        raise BenchError(
            f"{target.name}: {sample.bytes_per_request:.0f} bytes per response, "
            f"the page has {page.bytes}: responses were not the page (redirect?)"
        )


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _ratios(median: float, rounds: list[float]) -> str:
    if len(rounds) < 2:
        return f"{median:.2f}"
    return f"{median:.2f} ({', '.join(f'{r:.2f}' for r in rounds)})"


def report(
    info: dict[str, Any],
    targets: list[Target],
    pages: dict[str, PageInfo],
) -> dict[str, Any]:
    hello = targets[0]  # the bare Flask app
    hello_rps = hello.median("rps") or 0.0
    # Each round measures hello and the pages back to back: the ratio within a round cancels
    # slow drifts of the machine (other processes, CPU frequency); keep the median of those.
    round_ratios = {
        t.name: [p.rps / h.rps for p, h in zip(t.samples, hello.samples, strict=True) if h.rps]
        for t in targets[1:]
    }
    ratios = {name: statistics.median(values) for name, values in round_ratios.items()}
    ratio_of_medians = {t.name: (t.median("rps") or 0.0) / hello_rps for t in targets[1:]}
    passed = all(ratio >= GOAL_RATIO for name, ratio in ratios.items() if name != "hello")
    rounds = len(hello.samples)
    load = info["load_average"]

    lines = [
        f"Machine: {info['machine']['cpu']}, {info['machine']['cores']} cores, "
        f"Python {info['machine']['python']}, gunicorn {info['machine']['gunicorn']} "
        f"({info['config']['workers']} {info['config']['worker_class']} workers, "
        f"{info['config']['threads']} thread(s) each)",
        f"Load: {info['generator']}, {info['config']['connections']} connections, "
        f"{info['config']['duration']:g} s x {rounds} round(s) per target, "
        f"{info['config']['warmup']:g} s warm-up",
        f"1-min load average before/after: {_fmt(load['before'])} / {_fmt(load['after'])}"
        + (" (busy machine: figures are noisy)" if (load["before"] or 0) > BUSY_LOAD else ""),
        "",
        "| target | path | req/s (median) | p50 ms | p99 ms | target / bare Flask (per round) "
        f"| goal >= "
        f"{GOAL_RATIO:g} |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for target in targets:
        ratio = ratios.get(target.name)
        verdict = "" if ratio is None else ("PASS" if ratio >= GOAL_RATIO else "FAIL")
        if target.name == "hello":
            verdict = "information"
        lines.append(
            f"| {target.name} | `{target.path}` | {_fmt(target.median('rps'), 1)} "
            f"| {_fmt(target.median('p50_ms'))} | {_fmt(target.median('p99_ms'))} "
            f"| {'1 (baseline)' if ratio is None else _ratios(ratio, round_ratios[target.name])} "
            f"| {verdict} |"
        )
    lines += [
        "",
        "| page | form | radios | bytes | gzip bytes (information) |",
        "|---|---|---:|---:|---:|",
    ]
    for page in pages.values():
        lines.append(
            f"| `/q/{page.page}` | {page.form} | {page.radios} | {page.bytes} | {page.gzip_bytes} |"
        )
    lines += [
        "",
        f"Result: {'PASS' if passed else 'FAIL'} — "
        + ", ".join(f"{name} {ratio:.2f}x bare Flask" for name, ratio in ratios.items())
        + f" (goal >= {GOAL_RATIO:g}).",
    ]
    markdown = "\n".join(lines)
    print()
    print(markdown)
    return {
        **info,
        "targets": {
            t.name: {
                "path": t.path,
                "samples": [asdict(s) for s in t.samples],
                "rps_median": t.median("rps"),
                "p50_ms_median": t.median("p50_ms"),
                "p99_ms_median": t.median("p99_ms"),
            }
            for t in targets
        },
        "pages": {name: asdict(page) for name, page in pages.items()},
        "ratios": ratios,
        "round_ratios": round_ratios,
        "ratio_of_medians": ratio_of_medians,
        "goal_ratio": GOAL_RATIO,
        "passed": passed,
        "markdown": markdown,
    }


def summary_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The contract's rows (benchmarks/common.py): each page against hello-world."""
    from common import row

    hello = result["targets"]["bare"]["rps_median"]
    rows = []
    for name, ratio in result["ratios"].items():
        if name == "hello":
            rows.append(
                row(
                    "hello-world route inside the app, req/s",
                    result["targets"][name]["rps_median"],
                    "req/s",
                    database="sqlite",
                    baseline="bare Flask app, same gunicorn settings",
                    baseline_value=hello,
                    ratio=ratio,
                    goal="information",
                    met=None,
                )
            )
            continue
        page = result["pages"][name]
        rows.append(
            row(
                f"questionnaire page /q/{page['page']}, {page['form']} form "
                f"({page['radios']} radios), req/s",
                result["targets"][name]["rps_median"],
                "req/s",
                database="sqlite",
                baseline="bare Flask app, same gunicorn settings",
                baseline_value=hello,
                ratio=ratio,  # median of the per-round ratios, not the ratio of the medians
                goal=f">= {GOAL_RATIO:g}x hello-world",
                met=ratio >= GOAL_RATIO,
            )
        )
    return rows


def write_json(result: dict[str, Any]) -> Path:
    """benchmarks/results/pages.json (the suite's contract) and a dated copy."""
    from common import machine as common_machine

    RESULTS_DIR.mkdir(exist_ok=True)
    result = {
        "benchmark": "pages",
        **result,
        "machine": {**common_machine(), **result["machine"]},
        "summary": summary_rows(result),
    }
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    (RESULTS_DIR / f"bench_pages-{stamp}.json").write_text(text, encoding="utf-8")
    path = RESULTS_DIR / "pages.json"
    path.write_text(text, encoding="utf-8")
    return path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, help="seconds per measurement (default 10)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per target (default 2)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds, median kept (default 3)")
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s, 1 s warm-up")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections")
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn sync workers (default 2 = cores here)"
    )
    parser.add_argument(
        "--worker-class",
        default="sync",
        choices=("sync", "gthread"),
        help="gunicorn worker class for the app and the bare app alike (default sync, as "
        "gunicorn.conf.py; gthread keeps connections alive, as behind a proxy with keep-alive)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per worker (gthread; default 1)"
    )
    parser.add_argument(
        "--page",
        help="questionnaire screen code, in every form measured (default: the heaviest screen "
        "of each form, `heaviest_screen`)",
    )
    parser.add_argument(
        "--forms", default="before,retro", help="questionnaires to measure the page in"
    )
    parser.add_argument("--respondents", type=int, default=20, help="demo people in the DB")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    args = parser.parse_args(argv)
    quick = args.quick
    args.duration = args.duration if args.duration is not None else (3.0 if quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if quick else 2.0)
    args.rounds = args.rounds if args.rounds is not None else (1 if quick else 3)
    if not 1 <= args.duration <= MAX_DURATION:
        parser.error(f"--duration must be between 1 and {MAX_DURATION:g} s")
    if not 0 <= args.warmup <= MAX_DURATION:
        parser.error("--warmup out of range")
    if not 1 <= args.rounds <= MAX_ROUNDS:
        parser.error(f"--rounds must be between 1 and {MAX_ROUNDS}")
    if not 1 <= args.connections <= MAX_CONNECTIONS:
        parser.error(f"--connections must be between 1 and {MAX_CONNECTIONS}")
    if not 1 <= args.workers <= 16:
        parser.error("--workers must be between 1 and 16")
    args.forms = [f.strip() for f in args.forms.split(",") if f.strip()]
    if not args.forms or not set(args.forms) <= {"before", "retro"}:
        parser.error("--forms takes before and/or retro")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    targets_count = 1 + len(args.forms)
    bound = targets_count * (args.warmup + args.rounds * args.duration)
    print(f"measuring {targets_count} targets, about {bound:.0f} s of load", flush=True)
    load_before = load_average()
    if (load_before or 0) > BUSY_LOAD:
        print(f"warning: load average {load_before:.2f} before the run: the CPU is shared")
    generator: Generator | None = None
    server: Server | None = None
    bare: Server | None = None
    with tempfile.TemporaryDirectory(prefix="selfcheck-bench-") as tmp:
        workdir = Path(tmp)
        try:
            from selfcheck.demo import DEMO_SLUG

            database_url = prepare_database(workdir, args.respondents)
            generator = make_generator(args.generator, args.connections)
            server = Server(
                workdir,
                database_url,
                args.workers,
                "wsgi_bench:app",
                args.worker_class,
                args.threads,
            )
            server.wait_ready()
            bare = Server(
                workdir,
                database_url,
                args.workers,
                "wsgi_bare:app",
                args.worker_class,
                args.threads,
            )
            bare.wait_ready()
            pages: dict[str, PageInfo] = {}
            targets: list[Target] = []
            screens = {form: args.page or heaviest_screen(form) for form in args.forms}
            for form, screen in screens.items():
                cookie = start_questionnaire(server.port, DEMO_SLUG, form)
                name = f"page_{form}"
                pages[name] = inspect_page(server.port, name, form, screen, cookie)
                targets.append(Target(name, f"/q/{screen}", cookie))
            # The in-app hello sends the same Cookie header, so both decode the same session;
            # the baseline is the bare Flask app (same gunicorn settings, same Cookie header).
            targets.insert(0, Target("hello", HELLO_PATH, targets[0].cookie))
            targets.insert(0, Target("bare", HELLO_PATH, targets[0].cookie, port=bare.port))
            info = {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": machine(),
                "generator": f"{generator.name} ({generator.version})",
                "config": {
                    "workers": args.workers,
                    "worker_class": args.worker_class,
                    "threads": args.threads,
                    "connections": args.connections,
                    "duration": args.duration,
                    "warmup": args.warmup,
                    "rounds": args.rounds,
                    "respondents": args.respondents,
                    "page": screens,
                    "forms": args.forms,
                },
            }
            measure(
                server,
                generator,
                targets,
                pages,
                args.duration,
                args.warmup,
                args.rounds,
                others=(bare,),
            )
            info["load_average"] = {"before": load_before, "after": load_average()}
            result = report(info, targets, pages)
            print(f"\nJSON: {write_json(result).relative_to(ROOT)}")
        except BenchError as error:
            print(f"benchmark error: {error}", file=sys.stderr)
            return 1
        finally:
            if server is not None:
                server.stop()
            if bare is not None:
                bare.stop()
            if generator is not None:
                generator.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
