"""Staff accounts: argon2 password hashes, sign-in without user enumeration, password change.

Beneficiaries never have accounts; these are for mediators, administrators and evaluators.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from selfcheck.platform import ratelimit
from selfcheck.platform.models import Grant, Role, StaffUser, Structure, utcnow

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
_HASHER = PasswordHasher()  # stateless: parameters only (RFC 9106 low-memory profile)
# Verified when the e-mail is unknown, so a wrong e-mail takes as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("selfcheck: no such account")
# Account lockout: this many wrong passwords in a row lock the account for LOCKOUT_SECONDS.
LOCKOUT_THRESHOLD = 5
LOCKOUT_SECONDS = 15 * 60
# The same lockout, mirrored for e-mails without an account, so that being locked out does
# not tell whether an account exists (counted in the shared rate-limit table).
UNKNOWN_ACCOUNT_FAILURES = ratelimit.Limit("login-unknown", LOCKOUT_THRESHOLD, LOCKOUT_SECONDS)


class AuthError(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class NewUser:
    email: str
    role: Role
    structure_id: int | None = None


def normalise_email(email: str) -> str:
    return email.strip().lower()


def hash_password(password: str) -> str:
    check_password_rules(password)
    return _HASHER.hash(password)


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError("password_too_short")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AuthError("password_too_long")


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(session: Session, email: str, password: str) -> StaffUser | None:
    """The active account with this e-mail and password, else None (same cost either way)."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return None
    user = session.scalar(select(StaffUser).where(StaffUser.email == normalise_email(email)))
    if user is None or not user.active:
        _verify(_DUMMY_HASH, password)
        return None
    if not _verify(user.password_hash, password):
        return None
    if _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = _HASHER.hash(password)
        session.flush()
    return user


class LoginResult(enum.Enum):
    SIGNED_IN = "signed_in"
    REFUSED = "refused"  # wrong e-mail or password: one answer for both
    LOCKED = "locked"  # too many wrong passwords for this e-mail (account or not)


@dataclass(frozen=True)
class LoginOutcome:
    result: LoginResult
    user: StaffUser | None = None


def _aware(moment: datetime) -> datetime:
    # SQLite gives naive UTC datetimes back, PostgreSQL aware ones.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def is_locked(user: StaffUser, now: datetime) -> bool:
    return user.locked_until is not None and _aware(user.locked_until) > now


def attempt_login(
    session: Session,
    email: str,
    password: str,
    secret: str | bytes,
    now: datetime | None = None,
) -> LoginOutcome:
    """Sign-in with lockout, telling nobody whether an account exists.

    An unknown e-mail, an inactive account and a wrong password give the same answer after
    the same work (one argon2 verification); after LOCKOUT_THRESHOLD wrong passwords in a
    row, the e-mail is locked for LOCKOUT_SECONDS, whether or not it has an account; a locked
    account refuses even the right password.
    """
    now = now or utcnow()
    address = normalise_email(email)
    user = session.scalar(select(StaffUser).where(StaffUser.email == address))
    if user is None or not user.active:
        _verify(_DUMMY_HASH, password[:MAX_PASSWORD_LENGTH])
        if not ratelimit.peek(session, secret, UNKNOWN_ACCOUNT_FAILURES, address, now).allowed:
            return LoginOutcome(LoginResult.LOCKED)
        failures = ratelimit.hit(session, secret, UNKNOWN_ACCOUNT_FAILURES, address, now)
        locked = failures.count >= LOCKOUT_THRESHOLD
        return LoginOutcome(LoginResult.LOCKED if locked else LoginResult.REFUSED)
    right = _verify(user.password_hash, password[:MAX_PASSWORD_LENGTH])
    right = right and len(password) <= MAX_PASSWORD_LENGTH
    if is_locked(user, now):
        return LoginOutcome(LoginResult.LOCKED)
    if not right:
        # One atomic increment: parallel wrong passwords are all counted.
        failed = session.execute(
            update(StaffUser)
            .where(StaffUser.id == user.id)
            .values(failed_logins=StaffUser.failed_logins + 1)
            .returning(StaffUser.failed_logins),
            execution_options={"synchronize_session": "fetch"},
        ).scalar_one()
        locked = failed >= LOCKOUT_THRESHOLD
        if locked:
            user.locked_until = now + timedelta(seconds=LOCKOUT_SECONDS)
            user.failed_logins = 0
        session.flush()
        return LoginOutcome(LoginResult.LOCKED if locked else LoginResult.REFUSED)
    user.failed_logins = 0
    user.locked_until = None
    if _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = _HASHER.hash(password)
    session.flush()
    return LoginOutcome(LoginResult.SIGNED_IN, user)


def unlock(session: Session, user: StaffUser) -> None:
    user.failed_logins = 0
    user.locked_until = None
    session.flush()


def reset_password(session: Session, user: StaffUser, new: str) -> None:
    """Set a new password (administrators, from the command line); unlocks the account and
    signs it out everywhere."""
    user.password_hash = hash_password(new)
    user.password_changed_at = utcnow()
    user.failed_logins = 0
    user.locked_until = None
    session.flush()


def create_user(session: Session, new: NewUser, password: str) -> StaffUser:
    email = normalise_email(new.email)
    if "@" not in email or len(email) > 254:
        raise AuthError("bad_email")
    if new.role in (Role.MEDIATOR, Role.STRUCTURE_ADMIN):
        if new.structure_id is None or session.get(Structure, new.structure_id) is None:
            raise AuthError("structure_required")
    elif new.structure_id is not None:
        raise AuthError("no_structure_for_role")
    if session.scalar(select(func.count()).where(StaffUser.email == email)):
        raise AuthError("email_taken")
    user = StaffUser(
        email=email,
        password_hash=hash_password(password),
        role=new.role.value,
        structure_id=new.structure_id,
    )
    session.add(user)
    session.flush()
    return user


def change_password(session: Session, user: StaffUser, current: str, new: str) -> None:
    if not _verify(user.password_hash, current):
        raise AuthError("wrong_password")
    user.password_hash = hash_password(new)
    user.password_changed_at = utcnow()
    session.flush()


def grant(
    session: Session,
    user: StaffUser,
    structure_id: int | None = None,
    department: str | None = None,
) -> Grant:
    """Let an evaluator see one structure or a whole department."""
    if user.role != Role.EVALUATOR.value:
        raise AuthError("grants_are_for_evaluators")
    if (structure_id is None) == (department is None):
        raise AuthError("one_scope")
    found = Grant(structure_id=structure_id, department=department)
    user.grants.append(found)  # through the relationship: `user.grants` is current at once
    session.flush()
    return found
