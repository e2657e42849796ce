"""Staff accounts: argon2 password hashes, sign-in without user enumeration, password change.

Beneficiaries never have accounts; these are for mediators, administrators and evaluators.
"""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from selfcheck.models import Grant, Role, StaffUser, Structure, utcnow

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
_HASHER = PasswordHasher()  # stateless: parameters only (RFC 9106 low-memory profile)
# Verified when the e-mail is unknown, so a wrong e-mail takes as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("selfcheck: no such account")


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
        session.commit()
    return user


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
    session.commit()
    return user


def change_password(session: Session, user: StaffUser, current: str, new: str) -> None:
    if not _verify(user.password_hash, current):
        raise AuthError("wrong_password")
    user.password_hash = hash_password(new)
    user.password_changed_at = utcnow()
    session.commit()


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
    session.commit()
    return found
