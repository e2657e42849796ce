"""Outgoing e-mail, when an SMTP server is configured (SELFCHECK_SMTP_HOST and friends).

Used for invitations and self-service password resets; without SMTP, the same links are
shown on screen to be handed over. Sent synchronously: the app has no job queue.
"""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from typing import Any

from flask import current_app

log = logging.getLogger(__name__)
CONFIG_KEY = "SELFCHECK_SMTP"
TIMEOUT_SECONDS = 10


def _settings() -> dict[str, Any]:
    found: dict[str, Any] = current_app.config.get(CONFIG_KEY) or {}
    return found


def configured() -> bool:
    return bool(_settings().get("host"))


def send(to: str, subject: str, body: str) -> bool:
    """Send a plain-text message; False (and a log line, without the body) when it fails."""
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
