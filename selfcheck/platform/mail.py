"""Outgoing e-mail, when an SMTP server is configured (SELFCHECK_SMTP_HOST and friends).

Used for invitations and self-service password resets; without SMTP, the same links are
shown on screen to be handed over.

Messages are sent by the background worker (platform/jobs.py, huey), never inside the web
request: a slow or unreachable SMTP server does not hold the page, it is tried again
(RETRIES times, RETRY_SECONDS apart), and "mot de passe oublié" answers as fast for an
unknown address as for a known one. What this costs: until the worker takes it (seconds),
the queued message sits in the queue's storage (the instance folder's jobs-queue.db, or the
PostgreSQL database, whose deleted rows stay on disk until vacuumed). Its address and body
(the one-time link, which works once for 72 hours) are sealed there under the app's secret
key (platform/sealing.py; attack16: a copy of the database files gave a staff account's
link), unsealed by the worker; the worker logs a failure by its kind, never the message.
With SELFCHECK_JOBS_URL=immediate (tests), the message is sent in the request and the page
can tell whether it left.
"""

from __future__ import annotations

import enum
import logging
import smtplib
from email.message import EmailMessage
from typing import Any

from flask import Flask, current_app

from selfcheck.platform import jobs, sealing

log = logging.getLogger(__name__)
CONFIG_KEY = "SELFCHECK_SMTP"
EXTENSION_KEY = "selfcheck.platform.mail"
TASK_NAME = "selfcheck.send_mail"
TIMEOUT_SECONDS = 10
RETRIES = 3
RETRY_SECONDS = 120


class Outcome(enum.StrEnum):
    QUEUED = "queued"  # handed to the worker
    SENT = "sent"  # sent in the request (immediate mode)
    FAILED = "failed"  # not sent (immediate mode), or SMTP not configured


class NotSent(Exception):
    """Raised in the worker so that huey tries again; the message is not in it."""


def _settings() -> dict[str, Any]:
    found: dict[str, Any] = current_app.config.get(CONFIG_KEY) or {}
    return found


def configured() -> bool:
    return bool(_settings().get("host"))


def init_app(app: Flask) -> None:
    """Register the sending task on the app's queue (after jobs.init_app): the worker built
    from the same app knows it."""
    huey = jobs.queue(app).huey

    def send_now(to: str, subject: str, body: str) -> None:
        with app.app_context():
            if not deliver(_unsealed(to), subject, _unsealed(body)):
                raise NotSent("smtp")

    app.extensions[EXTENSION_KEY] = huey.task(
        name=TASK_NAME, retries=RETRIES, retry_delay=RETRY_SECONDS
    )(send_now)


def send(to: str, subject: str, body: str) -> Outcome:
    """Queue a plain-text message for the worker (sent at once in immediate mode)."""
    if not configured():
        return Outcome.FAILED
    task = current_app.extensions[EXTENSION_KEY]
    result = task(_sealed(to), subject, _sealed(body))
    if not jobs.queue().huey.immediate:
        return Outcome.QUEUED
    try:
        if result is not None:
            result.get()
    except Exception:  # huey's TaskException: delivery failed (already logged)
        return Outcome.FAILED
    return Outcome.SENT


_PURPOSE = b"selfcheck: queued mail"


def _sealed(text: str) -> str:
    """`text` as the queue keeps it (module docstring): never readable without the key."""
    return sealing.seal(text, str(current_app.secret_key), _PURPOSE)


def _unsealed(text: str) -> str:
    """`_sealed`'s inverse (a message queued before sealing: as it is)."""
    return sealing.unseal(text, str(current_app.secret_key), _PURPOSE)


def deliver(to: str, subject: str, body: str) -> bool:
    """Send a plain-text message now; False (and a log line, without the body) on failure."""
    settings = _settings()
    if not settings.get("host"):
        return False
    message = EmailMessage()
    message["From"] = settings["from"]
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    try:
        with smtplib.SMTP(settings["host"], int(settings["port"]), timeout=TIMEOUT_SECONDS) as smtp:
            if settings.get("starttls"):
                smtp.starttls()
            if settings.get("user"):
                smtp.login(settings["user"], settings["password"])
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as error:
        # Never the body: it holds a one-time link.
        log.warning("e-mail not sent (%s)", type(error).__name__)
        return False
    return True
