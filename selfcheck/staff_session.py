"""The signed-in staff member: kept in the signed session cookie, with idle and absolute expiry.

A session ends after SELFCHECK_STAFF_IDLE_MINUTES without a request (default 30), after
12 hours in any case, and at once when the password changes (on any device).
"""

from __future__ import annotations

import time

from flask import current_app, g, session

from selfcheck.db import get_session
from selfcheck.models import StaffUser

STAFF_ID = "staff_id"
SIGNED_IN_AT = "staff_signed_in_at"
LAST_SEEN = "staff_last_seen"
PASSWORD_STAMP = "staff_password_stamp"
ABSOLUTE_SECONDS = 12 * 3600


def _password_stamp(user: StaffUser) -> str:
    # SQLite gives naive datetimes back, PostgreSQL aware ones: compare the wall-clock value.
    return user.password_changed_at.replace(tzinfo=None).isoformat(timespec="seconds")


def sign_in(user: StaffUser) -> None:
    # A fresh session: nothing from before sign-in (a beneficiary's journey) carries over.
    session.clear()
    now = int(time.time())
    session[STAFF_ID] = user.id
    session[SIGNED_IN_AT] = now
    session[LAST_SEEN] = now
    session[PASSWORD_STAMP] = _password_stamp(user)


def sign_out() -> None:
    session.clear()
    g.pop("staff_user", None)


def _expired(now: int) -> bool:
    idle = int(current_app.config.get("SELFCHECK_STAFF_IDLE_SECONDS", 30 * 60))
    last_seen = int(session.get(LAST_SEEN, 0))
    signed_in_at = int(session.get(SIGNED_IN_AT, 0))
    return now - last_seen > idle or now - signed_in_at > ABSOLUTE_SECONDS


def current_staff() -> StaffUser | None:
    """The signed-in, active staff member of this request, or None (and an expired session)."""
    if "staff_user" in g:
        cached: StaffUser | None = g.staff_user
        return cached
    user = None
    staff_id = session.get(STAFF_ID)
    now = int(time.time())
    if isinstance(staff_id, int):
        if _expired(now):
            g.staff_session_expired = True
            sign_out()
        else:
            found = get_session().get(StaffUser, staff_id)
            stamp_ok = found is not None and _password_stamp(found) == session.get(PASSWORD_STAMP)
            if found is not None and found.active and stamp_ok:
                user = found
                if now - session.get(LAST_SEEN, 0) > 60:  # refresh at most once a minute
                    session[LAST_SEEN] = now
            else:
                sign_out()
    g.staff_user = user
    return user
