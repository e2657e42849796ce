"""The signed-in staff member: kept in the signed session cookie, with idle and absolute expiry.

A session ends after SELFCHECK_STAFF_IDLE_MINUTES without a request (default 30), after
12 hours in any case, and at once when the password changes (on any device). The cookie
also holds the account's session generation, checked against the database on every staff
request: signing out, changing the password and an administrator's "sign out everywhere"
(`selfcheck staff sign-out-everywhere`) raise it, so a copied cookie is dead at once.
"""

from __future__ import annotations

import json
import time
import zlib
from datetime import UTC

from flask import current_app, g, session
from sqlalchemy import update
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from selfcheck.platform.db import get_session
from selfcheck.platform.models import StaffUser

STAFF_ID = "staff_id"
SIGNED_IN_AT = "staff_signed_in_at"
LAST_SEEN = "staff_last_seen"
PASSWORD_STAMP = "staff_password_stamp"
GENERATION = "staff_generation"
ABSOLUTE_SECONDS = 12 * 3600
# A form posted after the session expired, kept in the signed cookie until the same person
# signs in again (permissions.requires(..., keep_post=True)). Bounded: a cookie holds ~4 kB.
PENDING_POST = "pending_post"
PENDING_POST_MAX_BYTES = 2000  # compressed, as the cookie stores it


def _password_stamp(user: StaffUser) -> str:
    # SQLite gives naive UTC datetimes back, PostgreSQL aware ones (in the connection's time
    # zone): compare the UTC wall-clock value. Microseconds, so that a change made in the same
    # second as a sign-in elsewhere still signs that device out.
    changed = user.password_changed_at
    if changed.tzinfo is not None:
        changed = changed.astimezone(UTC)
    return changed.replace(tzinfo=None).isoformat(timespec="microseconds")


def sign_in(user: StaffUser) -> None:
    # A fresh session: nothing from before sign-in (a beneficiary's journey) carries over,
    # except a form kept when the session expired, and only into its owner's session:
    # another account signing in on this browser does not carry its answers (attack13).
    pending = session.get(PENDING_POST)
    session.clear()
    if isinstance(pending, dict) and pending.get("user") == user.id:
        session[PENDING_POST] = pending
    now = int(time.time())
    session[STAFF_ID] = user.id
    session[SIGNED_IN_AT] = now
    session[LAST_SEEN] = now
    session[PASSWORD_STAMP] = _password_stamp(user)
    session[GENERATION] = user.session_generation


def end_all_sessions(db: Session, user: StaffUser) -> None:
    """Revoke every session of `user`, on every device (one atomic increment; the caller
    commits)."""
    db.execute(
        update(StaffUser)
        .where(StaffUser.id == user.id)
        .values(session_generation=StaffUser.session_generation + 1),
        execution_options={"synchronize_session": "fetch"},
    )


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
            g.staff_expired_id = staff_id  # whose form a later check may keep (keep_post)
            sign_out()
        else:
            found = get_session().get(StaffUser, staff_id)
            stamp_ok = (
                found is not None
                and _password_stamp(found) == session.get(PASSWORD_STAMP)
                and found.session_generation == session.get(GENERATION)
            )
            if found is not None and found.active and stamp_ok:
                user = found
                if now - session.get(LAST_SEEN, 0) > 60:  # refresh at most once a minute
                    session[LAST_SEEN] = now
            else:
                sign_out()
    g.staff_user = user
    return user


def keep_pending_post(user_id: int, path: str, form: MultiDict[str, str]) -> bool:
    """Keep the fields of a form posted to `path` after `user_id`'s session expired.

    The CSRF token is not kept (a fresh page gets a fresh one). Returns False, keeping
    nothing, when the fields would not fit in the session cookie.
    """
    fields = [[name, value] for name, value in form.items(multi=True) if name != "csrf_token"]
    record = {"user": user_id, "path": path, "fields": fields}
    packed = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
    if len(zlib.compress(packed)) > PENDING_POST_MAX_BYTES:
        session.pop(PENDING_POST, None)
        return False
    session[PENDING_POST] = record
    return True


def has_pending_post() -> bool:
    return isinstance(session.get(PENDING_POST), dict)


def take_pending_post(user: StaffUser, path: str) -> MultiDict[str, str] | None:
    """The fields kept for `path`, once, if `user` is the person who typed them."""
    record = session.get(PENDING_POST)
    if not isinstance(record, dict) or record.get("path") != path:
        return None
    session.pop(PENDING_POST)
    if record.get("user") != user.id or not isinstance(record.get("fields"), list):
        return None
    kept: MultiDict[str, str] = MultiDict()
    for pair in record["fields"]:
        if isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair):
            kept.add(pair[0], pair[1])
    return kept
