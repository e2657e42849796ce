"""The optional, consented follow-up reminder (issue 15): one e-mail address, one message.

A structure may offer it (`Structure.followup_reminder`, off by default, set on its settings
screen). At the end of the end form, or on the come-back page, a person whose follow-up is
not open yet may tick an unticked consent box and leave ONE e-mail address. It is stored in
its own table (`FollowupReminder`), linked to the person's id only: never in the answers, the
exports, the codebook or the backups, never written to the logs or the audit trail.

It is deleted:
- once the reminder is sent (the background job below);
- when the follow-up is done (journey.operations.submit, entry.saving, and here if a
  follow-up was sent some other way);
- when the person is deleted, erased or purged (followup/operations.py, privacy/operations.py);
- when the structure stops offering reminders (its address is no longer used for anything).

Sending: `send_due` is a huey task (registered by `init_app` on the app's queue, run every
hour by the worker, and queued by `selfcheck reminders send`). It finds the reminders whose
follow-up is open and sends each through the platform's SMTP server (platform/mail.deliver,
in the worker: the address never sits in the queue's storage). Each reminder is its own
transaction: the row is deleted, the message sent, then committed, so a message the server
accepted is never sent twice; if sending fails, the row stays (rolled back) for the next run.
"""

from __future__ import annotations

import enum
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, current_app
from flask_babel import force_locale, format_date, gettext
from huey import crontab  # type: ignore[import-untyped]
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from selfcheck.journey import operations as journey
from selfcheck.journey import schedule
from selfcheck.platform import clock, jobs, mail, sealing
from selfcheck.platform.db import Database
from selfcheck.platform.models import Beneficiary, FollowupReminder, Structure

log = logging.getLogger(__name__)

TASK_NAME = "selfcheck.send_reminders"
EXTENSION_KEY = "selfcheck.journey.reminders"
# The address is kept sealed under the app's secret key (attack15): someone holding the
# database file alone could otherwise read it beside the person's id, so beside their code
# and every answer. The column holds 254 characters, so a sealed address of at most 178
# bytes (far above any address in use; the standard's 254 would need a wider column).
COLUMN_LENGTH = 254
MAX_LENGTH = 178
_PURPOSE = b"selfcheck: follow-up reminder address"
# One plain address: something@domain.tld, no spaces, no second address, no display name.
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


class ReminderRefused(Exception):
    """Why no reminder may be left now: `reason` is a key, the words are in the view."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def clean_address(typed: str) -> str | None:
    """The address, trimmed, if it is one plain e-mail address; None otherwise."""
    address = typed.strip()
    if not address or len(address.encode()) > MAX_LENGTH or not _ADDRESS.match(address):
        return None
    local, _, domain = address.partition("@")
    if len(local) > 64 or ".." in address or local.startswith(".") or local.endswith("."):
        return None
    if any(label.startswith("-") or label.endswith("-") for label in domain.split(".")):
        return None
    return address


def offered(structure: Structure, smtp_configured: bool) -> bool:
    """Does this structure offer the reminder (and can the platform send it)?"""
    return bool(structure.followup_reminder) and smtp_configured and structure.archived_at is None


def may_leave(
    beneficiary: Beneficiary, smtp_configured: bool, now: datetime, zone: ZoneInfo
) -> bool:
    """A reminder makes sense: offered, and the person's follow-up is not open yet."""
    if not offered(beneficiary.structure, smtp_configured):
        return False
    state = journey.followup_status(beneficiary, now, zone)
    return state.state is schedule.FollowupState.WAITING


def has_reminder(session: Session, beneficiary: Beneficiary) -> bool:
    found = session.scalar(
        select(FollowupReminder.id).where(FollowupReminder.beneficiary_id == beneficiary.id)
    )
    return found is not None


def leave(
    session: Session,
    beneficiary: Beneficiary,
    typed: str,
    locale: str,
    link: str,
    *,
    smtp_configured: bool,
    now: datetime,
    zone: ZoneInfo,
) -> FollowupReminder:
    """Keep one address for the person's reminder (a second one replaces the first).

    Raises ReminderRefused("not_offered") when the structure does not offer it or the
    follow-up is already open or done, ReminderRefused("bad_address") for anything but one
    plain address. Nothing is audited or logged: the address must not be kept anywhere else.
    Never commits.
    """
    if not may_leave(beneficiary, smtp_configured, now, zone):
        raise ReminderRefused("not_offered")
    address = clean_address(typed)
    if address is None:
        raise ReminderRefused("bad_address")
    reminder = session.scalar(
        select(FollowupReminder).where(FollowupReminder.beneficiary_id == beneficiary.id)
    )
    if reminder is None:
        reminder = FollowupReminder(beneficiary_id=beneficiary.id, created_at=now)
        session.add(reminder)
    reminder.email = seal_address(address)
    reminder.locale = locale[:8]
    reminder.link = link[:500]
    session.flush()
    return reminder


def seal_address(address: str) -> str:
    """The address as stored: sealed under the app's secret key (platform/sealing.py)."""
    return sealing.seal(address, str(current_app.secret_key), _PURPOSE)


def address_of(reminder: FollowupReminder) -> str:
    """The reminder's address (one stored before sealing, as it is)."""
    return sealing.unseal(reminder.email, str(current_app.secret_key), _PURPOSE)


def seal_older(session: Session) -> int:
    """Seal the addresses kept before they were sealed (the first sending run after the
    upgrade does it, every hour in the worker). How many. Never commits."""
    older = session.scalars(
        select(FollowupReminder).where(~FollowupReminder.email.startswith(sealing.SEALED))
    ).all()
    for reminder in older:
        reminder.email = seal_address(reminder.email)
    session.flush()
    return len(older)


def forget_for_structure(session: Session, structure: Structure) -> int:
    """The structure stopped offering reminders: its people's addresses go. Never commits."""
    people = select(Beneficiary.id).where(Beneficiary.structure_id == structure.id)
    result = session.execute(
        delete(FollowupReminder).where(FollowupReminder.beneficiary_id.in_(people)),
        execution_options={"synchronize_session": False},
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- sending ---------------------------------------------------------------------------------


class Outcome(enum.StrEnum):
    SENT = "sent"
    FAILED = "failed"  # kept for the next run
    FORGOTTEN = "forgotten"  # the follow-up is done or no longer offered: deleted unsent
    WAITING = "waiting"  # not open yet


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    forgotten: int = 0
    waiting: int = 0

    def add(self, outcome: Outcome) -> None:
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)


def message(reminder: FollowupReminder, opening: schedule.Opening) -> tuple[str, str]:
    """(subject, body) in the person's language. Neither the code nor any answer is in it."""
    with force_locale(reminder.locale or "fr"):
        subject = gettext("Votre questionnaire de suivi est ouvert")
        body = "\n\n".join(
            (
                gettext("Bonjour,"),
                gettext(
                    "Vous avez demandé à être prévenu : depuis le %(day)s, quelques questions "
                    "(moins de 5 minutes) vous attendent pour voir ce que vous avez gardé de "
                    "votre accompagnement au numérique.",
                    day=format_date(opening.day, "long"),
                ),
                gettext("Revenez ici avec votre code personnel : %(link)s", link=reminder.link),
                gettext(
                    "Ce message est le seul que vous recevrez. Votre adresse a été effacée "
                    "dès son envoi."
                ),
            )
        )
    return str(subject), str(body)


def _one(session: Session, reminder_id: int, now: datetime, zone: ZoneInfo) -> Outcome:
    # Locked (PostgreSQL): two runs at once send it once.
    reminder = session.get(FollowupReminder, reminder_id, with_for_update=True)
    if reminder is None:
        return Outcome.FORGOTTEN  # taken by another run
    person = reminder.beneficiary
    state = journey.followup_status(person, now, zone)
    if state.state is schedule.FollowupState.WAITING:
        return Outcome.WAITING
    opening = state.opening
    if (
        state.state is not schedule.FollowupState.OPEN
        or opening is None
        or not offered(person.structure, mail.configured())
    ):
        session.delete(reminder)
        return Outcome.FORGOTTEN
    to = address_of(reminder)
    if clean_address(to) != to:
        # Sealed under another secret key (SELFCHECK_SECRET_KEY changed since): unreadable.
        session.delete(reminder)
        log.warning("reminders: an address sealed under another secret key, deleted unsent")
        return Outcome.FORGOTTEN
    subject, body = message(reminder, opening)
    session.delete(reminder)
    session.flush()
    if not mail.deliver(to, subject, body):  # logs the failure's kind, never the address
        raise _NotSent
    return Outcome.SENT


class _NotSent(Exception):
    pass


def send_due(
    database: Database, now: datetime | None = None, zone: ZoneInfo | None = None
) -> SendReport:
    """Send every reminder whose follow-up is open, each in a transaction of its own."""
    now = now or clock.now()
    zone = zone or clock.zone_in(current_app.config)
    report = SendReport()
    with database.session() as session:
        if seal_older(session):
            session.commit()
        ids = list(session.scalars(select(FollowupReminder.id).order_by(FollowupReminder.id)))
    for reminder_id in ids:
        with database.session() as session:
            try:
                outcome = _one(session, reminder_id, now, zone)
            except _NotSent:
                session.rollback()
                outcome = Outcome.FAILED
            else:
                session.commit()
        report.add(outcome)
    if report.sent or report.failed or report.forgotten:
        log.info(
            "reminders: %d sent, %d not sent (kept), %d deleted unsent",
            report.sent,
            report.failed,
            report.forgotten,
        )
    return report


def init_app(app: Flask) -> None:
    """Register the task on the app's queue (after jobs.init_app): hourly in the worker, and
    queued by `selfcheck reminders send`."""
    huey = jobs.queue(app).huey
    database: Database = app.extensions["selfcheck.platform.db"]

    def run() -> None:
        with app.app_context():
            send_due(database)

    app.extensions[EXTENSION_KEY] = huey.task(name=TASK_NAME)(run)
    huey.periodic_task(crontab(minute="7"), name=f"{TASK_NAME}.hourly")(run)


def queue_sending(app: Flask | None = None) -> None:
    """Queue one run of `send_due` for the worker (in immediate mode: run it now)."""
    (app or current_app).extensions[EXTENSION_KEY]()
