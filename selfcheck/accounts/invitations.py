"""One-time links: invitations and password resets asked by an administrator.

A link is used once, within LINK_LIFETIME; only the SHA-256 of its random token is stored,
so the database never holds a usable link. It is shown once, on the screen of the person who
asked for it, to hand over by any channel. Issuing a new link for the same person and
purpose voids the older ones. Operations never commit: the view or command does.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from selfcheck.accounts import auth
from selfcheck.platform import audit
from selfcheck.platform.models import OneTimeLink, StaffUser, utcnow

LINK_LIFETIME = timedelta(hours=72)
# The password hash of an invited account that has not chosen its password yet: not an
# argon2 hash, so no password ever matches it.
NO_PASSWORD_YET = "!invited"
TOKEN_BYTES = 32


class Purpose(enum.StrEnum):
    INVITATION = "invitation"
    RESET = "reset"


class LinkError(ValueError):
    """Why a link cannot be used: unknown, used, expired or inactive (account deactivated)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def has_password(user: StaffUser) -> bool:
    return user.password_hash != NO_PASSWORD_YET


def issue(
    session: Session,
    user: StaffUser,
    purpose: Purpose,
    by: StaffUser | None,
    now: datetime | None = None,
) -> str:
    """A new link's token for `user` (older unused links of this purpose are voided)."""
    if not user.active:
        raise LinkError("inactive")
    now = now or utcnow()
    session.execute(
        update(OneTimeLink)
        .where(
            OneTimeLink.user_id == user.id,
            OneTimeLink.purpose == purpose.value,
            OneTimeLink.used_at.is_(None),
        )
        .values(used_at=now)
    )
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        OneTimeLink(
            user_id=user.id,
            purpose=purpose.value,
            token_hash=token_hash(token),
            created_at=now,
            expires_at=now + LINK_LIFETIME,
            created_by_id=by.id if by is not None else None,
        )
    )
    # The trace says a link was made, for whom: never the link.
    audit.record(
        session,
        by,
        f"link_{purpose.value}",
        audit.Entity.USER,
        user.id,
        user.structure_id,
        {"for": user.email},
    )
    return token


def void_all(session: Session, user: StaffUser, now: datetime | None = None) -> None:
    """Every unused link of `user` (any purpose) can no longer be used."""
    session.execute(
        update(OneTimeLink)
        .where(OneTimeLink.user_id == user.id, OneTimeLink.used_at.is_(None))
        .values(used_at=now or utcnow())
    )


def find(session: Session, token: str, now: datetime | None = None) -> OneTimeLink:
    """The usable link of `token`, else LinkError (unknown, used, expired, inactive)."""
    now = now or utcnow()
    if not token or len(token) > 100:
        raise LinkError("unknown")
    link = session.scalar(select(OneTimeLink).where(OneTimeLink.token_hash == token_hash(token)))
    if link is None:
        raise LinkError("unknown")
    if link.used_at is not None:
        raise LinkError("used")
    if _aware(link.expires_at) <= now:
        raise LinkError("expired")
    if not link.user.active:
        raise LinkError("inactive")
    return link


def use(session: Session, token: str, password: str, now: datetime | None = None) -> StaffUser:
    """Set the password through a link, once: the account is unlocked, and signed out on
    every other device (its password changed)."""
    now = now or utcnow()
    link = find(session, token, now)
    new_hash = auth.hash_password(password)  # AuthError when too short or too long
    # Marked used in one statement that only succeeds once, even with two clicks at once.
    marked = session.execute(
        update(OneTimeLink)
        .where(OneTimeLink.id == link.id, OneTimeLink.used_at.is_(None))
        .values(used_at=now),
        execution_options={"synchronize_session": False},
    )
    if getattr(marked, "rowcount", 1) != 1:
        raise LinkError("used")
    user = link.user
    user.password_hash = new_hash
    user.password_changed_at = now
    user.failed_logins = 0
    user.locked_until = None
    audit.record(
        session, user, f"use_{link.purpose}", audit.Entity.USER, user.id, user.structure_id
    )
    return user
