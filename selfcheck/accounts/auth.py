"""Staff accounts: argon2 password hashes, sign-in without user enumeration, password change.

Beneficiaries never have accounts; these are for mediators, administrators and evaluators.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from selfcheck.platform import ratelimit, visible
from selfcheck.platform.models import Grant, RateLimitHit, Role, StaffUser, Structure, utcnow

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
_HASHER = PasswordHasher()  # stateless: parameters only (RFC 9106 low-memory profile)
# Verified when the e-mail is unknown, so a wrong e-mail takes as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("selfcheck: no such account")
# Lockout: this many wrong passwords for one e-mail from one address (IPv4, or IPv6 /64) in
# a LOCKOUT_SECONDS window refuse that e-mail from that address until the window ends; an
# attacker elsewhere cannot lock the owner out. Beyond ACCOUNT_FAILURES for one e-mail from
# all addresses, every attempt on it is slowed down (never refused): guessing one password
# from a botnet is slowed, and nobody can lock an account for everyone. The same counters
# for e-mails with and without an account, counted in the shared rate-limit table: being
# refused tells nobody whether an account exists.
LOCKOUT_THRESHOLD = 5
LOCKOUT_SECONDS = 15 * 60
ADDRESS_FAILURES = ratelimit.Limit("login-failures", LOCKOUT_THRESHOLD, LOCKOUT_SECONDS)
ACCOUNT_FAILURES = ratelimit.Limit("login-failures-all", 50, 60 * 60)


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
    """The address as kept and looked up. No NUL: PostgreSQL refuses it as a query parameter
    (`POST /staff/login` with `email=%00` was a 500 for anyone; attack14), and no address
    kept has one."""
    return email.replace("\x00", "").strip().lower()


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


def attempt_login(
    session: Session,
    email: str,
    password: str,
    secret: str | bytes,
    now: datetime | None = None,
    address: str = "",
    slow_down: Callable[[], None] | None = None,
) -> LoginOutcome:
    """Sign-in with lockout, telling nobody whether an account exists.

    An unknown e-mail, an inactive account and a wrong password give the same answer after
    the same work (one argon2 verification) and count in the same windowed counters. Each
    attempt is counted before the password is checked (check and count in one atomic
    step: parallel attempts cannot slip past the limit), and handed back when it succeeds.
    The LOCKOUT_THRESHOLD-th wrong password in a window locks the e-mail for this address
    until the window ends; a locked e-mail refuses even the right password.
    """
    now = now or utcnow()
    email = normalise_email(email)
    counters = [
        (ADDRESS_FAILURES, f"{email}\x00{address}"),
        (ACCOUNT_FAILURES, email),
    ]
    here, everywhere = (ratelimit.hit(session, secret, lim, sub, now) for lim, sub in counters)
    if not here.allowed:
        return LoginOutcome(LoginResult.LOCKED)
    if not everywhere.allowed and slow_down is not None:
        slow_down()
    user = session.scalar(select(StaffUser).where(StaffUser.email == email))
    known_hash = user.password_hash if user is not None and user.active else _DUMMY_HASH
    right = _verify(known_hash, password[:MAX_PASSWORD_LENGTH])
    if user is None or not user.active or not right or len(password) > MAX_PASSWORD_LENGTH:
        locked = here.count >= ADDRESS_FAILURES.attempts
        return LoginOutcome(LoginResult.LOCKED if locked else LoginResult.REFUSED)
    for limit, subject in counters:
        ratelimit.refund(session, secret, limit, subject, now)
    if _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = _HASHER.hash(password)
    session.flush()
    return LoginOutcome(LoginResult.SIGNED_IN, user)


def unlock(session: Session, email: str, secret: str | bytes) -> None:
    """Lift the account-wide lockout of `email` (per-address ones end with their window)."""
    session.execute(
        delete(RateLimitHit).where(
            RateLimitHit.key == ratelimit.key_for(secret, ACCOUNT_FAILURES, normalise_email(email))
        )
    )
    session.flush()


def reset_password(session: Session, user: StaffUser, new: str) -> None:
    """Set a new password (administrators, from the command line); signs the account out
    everywhere (see accounts.session)."""
    user.password_hash = hash_password(new)
    user.password_changed_at = utcnow()
    session.flush()


def create_user(session: Session, new: NewUser, password: str) -> StaffUser:
    email = normalise_email(new.email)
    if "@" not in email or len(email) > 254 or visible.hidden(email):
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
