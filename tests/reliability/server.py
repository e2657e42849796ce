"""The real server for fault tests: gunicorn, sync workers, 127.0.0.1, a free port, its own
process group (so SIGKILL reaches the master and every worker at once).

Also a minimal HTTP browser (one cookie, CSRF token read from the pages) that walks the
beneficiary journey and says when a submission was acknowledged.
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from werkzeug.datastructures import MultiDict

from tests.support import parse_forms

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]
COOKIE = "selfcheck_session"
READY_TIMEOUT = 30.0
# The person's code as every question page shows it (K7M-2QX-9RT).
CODE_RE = re.compile(r'class="code-(?:reminder|box)__code"><span [^>]*>([0-9A-Z-]{11})</span>')


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """`gunicorn "selfcheck:create_app()"` on a database URL; start, kill, stop."""

    def __init__(self, workdir: Path, database_url: str, workers: int = 2) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "SELFCHECK_DATABASE_URL": database_url,
            "SELFCHECK_SECRET_KEY": secrets.token_urlsafe(32),
        }
        self.command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--worker-class",
            "sync",
            "--workers",
            str(workers),
            "--bind",
            f"{HOST}:{self.port}",
            "--log-level",
            "warning",
            "--timeout",
            "30",
            "selfcheck:create_app()",
        ]
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = (self.workdir / f"gunicorn-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killpg reaches every worker
        )
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}\n{self.log()}")
            try:
                status, _headers, _body = request(self.port, "GET", "/")
            except OSError:
                time.sleep(0.1)
                continue
            if status == 200:
                return
            raise RuntimeError(f"GET / answered {status}\n{self.log()}")
        raise RuntimeError(f"gunicorn not ready after {READY_TIMEOUT:.0f} s\n{self.log()}")

    def log(self) -> str:
        path = self.workdir / f"gunicorn-{self.starts}.log"
        return path.read_text(encoding="utf-8", errors="replace")[-4000:]

    def kill(self) -> None:
        """SIGKILL to the whole process group: no worker gets to finish or clean up."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        _wait_group_gone(self.process.pid)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        except ProcessLookupError:
            pass
        _wait_group_gone(self.process.pid)


def _wait_group_gone(group: int) -> None:
    """Workers are reparented when the master dies: wait until none is left."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def request(
    port: int,
    method: str,
    path: str,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=20)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


class Refused(Exception):
    """The server answered something the journey does not expect."""


@dataclass
class Browser:
    """One person on one device, over real HTTP."""

    port: int
    cookie: str | None = None
    posted: dict[str, tuple[str, ...]] = field(default_factory=dict)
    code: str | None = None

    def get(self, path: str) -> tuple[int, str, str]:
        return self._send("GET", path, None)

    def post(self, path: str, data: MultiDict[str, str]) -> tuple[int, str, str]:
        body = urllib.parse.urlencode(list(data.items(multi=True))).encode("utf-8")
        return self._send("POST", path, body)

    def _send(self, method: str, path: str, body: bytes | None) -> tuple[int, str, str]:
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
        if self.cookie:
            headers["Cookie"] = self.cookie
        status, answered, content = request(self.port, method, path, headers, body)
        for value in answered.get_all("Set-Cookie") or []:
            pair = value.split(";", 1)[0].strip()
            if pair.startswith(COOKIE + "="):
                self.cookie = pair
        location = urllib.parse.urlsplit(answered.get("Location", "")).path
        return status, location, content.decode("utf-8")

    def journey(self, slug: str, answers: Mapping[str, Sequence[str]]) -> str:
        """Start, answer every page, send; return the person's code once acknowledged."""
        status, _location, html = self.get(f"/s/{slug}")
        if status != 200:
            raise Refused(f"GET /s/{slug}: {status}")
        start = next(f for f in parse_forms(html) if f.hidden().get("form") == "before")
        status, location, _html = self.post(f"/s/{slug}", MultiDict(start.hidden()))
        if status != 302:
            raise Refused(f"POST /s/{slug}: {status}")
        while location.startswith("/q/"):
            status, _ignored, html = self.get(location)
            if status != 200:
                raise Refused(f"GET {location}: {status}")
            found = CODE_RE.search(html)
            if found is None:
                raise Refused(f"GET {location}: no code on the page")
            self.code = found.group(1).replace("-", "")
            form = next(f for f in parse_forms(html) if any(i.name == "action" for i in f.inputs))
            data = MultiDict(form.hidden())
            for name in form.question_names():
                for value in answers.get(name, ()):
                    data.add(name, value)
                if name in answers:
                    self.posted[name] = tuple(answers[name])
            data["action"] = "next"
            status, next_location, _html = self.post(location, data)
            if status != 302:
                raise Refused(f"POST {location}: {status}")
            location = next_location
        if location != "/check":
            raise Refused(f"after the pages: {location}")
        status, _ignored, html = self.get("/check")
        form = next(f for f in parse_forms(html) if f.action and f.action.endswith("/check"))
        # "Send" pressed twice (a double click): two connections at once, which gunicorn may
        # give to its two worker processes. Both must say "sent"; the response is sent once.
        answers_sent: list[tuple[int, str] | BaseException] = []

        def send() -> None:
            try:
                status, location, _html = self.post("/check", MultiDict(form.hidden()))
                answers_sent.append((status, location))
            except BaseException as exc:  # re-raised below, in the client's thread
                answers_sent.append(exc)

        both = [threading.Thread(target=send) for _ in range(2)]
        for thread in both:
            thread.start()
        for thread in both:
            thread.join(timeout=30)
        if all(isinstance(answer, BaseException) for answer in answers_sent):
            raise answers_sent[0]  # type: ignore[misc]
        for answer in answers_sent:
            if not isinstance(answer, BaseException) and answer != (302, "/done"):
                raise Refused(f"POST /check: {answer}")
        assert self.code is not None
        return self.code  # acknowledged: the person was told "sent" (at least once)
