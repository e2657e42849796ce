"""Two-factor sign-in: time-based codes (TOTP, RFC 6238, with pyotp) and recovery codes.

- Required for platform administrators and for anyone who can export data (the evaluator
  screens), and for all the staff of a structure that asks for it (its settings); optional
  for everyone else.
- Enrolment shows a QR code and the secret as text, and keeps the secret only once a first
  code from the app is confirmed; then ten single-use recovery codes are shown, once.
- A code is accepted in the current 30-second step or the one either side, and never twice
  (the last accepted step is kept): a code seen over a shoulder cannot be replayed.
- Recovery codes are kept as HMAC-SHA256 with the app's secret key, and the TOTP secret
  sealed under a key derived from it (`seal`): a copy of the database or of a backup alone
  gives neither, so a stolen backup plus a password does not pass the second factor.
Nothing here commits.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import secrets
import time

import pyotp
import segno
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from selfcheck.accounts.permissions import Permission, has_permission
from selfcheck.platform import audit, sealing
from selfcheck.platform.models import RecoveryCode, Role, StaffUser, utcnow

ISSUER = "selfcheck"
STEP_SECONDS = 30
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i


def required_for(user: StaffUser) -> bool:
    """Platform administrators and whoever can export data must use a second factor, and
    the staff of a structure that requires one (its setting `totp_required`)."""
    return required_by_role(user) or required_by_structure(user)


def required_by_role(user: StaffUser) -> bool:
    return Role(user.role) is Role.PLATFORM_ADMIN or has_permission(user, Permission.EVALUATE)


def required_by_structure(user: StaffUser) -> bool:
    return user.structure is not None and user.structure.totp_required


def enrolled(user: StaffUser) -> bool:
    return user.totp_secret is not None


SEALED = sealing.SEALED  # a sealed secret's prefix; a value without it was stored before sealing
_PURPOSE = b"selfcheck: totp secret"


def seal(secret: str, secret_key: str | bytes) -> str:
    """`secret` as stored: XORed with an HMAC-SHA256 key stream (the app's secret key, a
    random nonce), so the database alone does not give it (platform/sealing.py)."""
    return sealing.seal(secret, secret_key, _PURPOSE)


def unseal(stored: str, secret_key: str | bytes) -> str:
    """The secret of a stored value (`seal`'s inverse; an unsealed value as it is). Under
    another secret key: not a secret at all (matching_step then matches nothing)."""
    return sealing.unseal(stored, secret_key, _PURPOSE)


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_svg(secret: str, email: str, title: str) -> str:
    """The enrolment QR code as inline SVG (no style, no script: the CSP allows it)."""
    qr = segno.make(provisioning_uri(secret, email), error="m", micro=False)
    svg: str = qr.svg_inline(scale=5, border=4, title=title, svgclass="qr-enrol")
    return svg


def grouped(secret: str) -> str:
    """The secret in groups of four, for typing by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _clean(code: str) -> str:
    return "".join(code.split()).replace("-", "")


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step (current one or either neighbour) whose code is `code`, else None."""
    code = _clean(code)
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int((now if now is not None else time.time()) // STEP_SECONDS)
    for step in (current - 1, current, current + 1):
        try:
            expected = totp.at(step * STEP_SECONDS)
        except (binascii.Error, ValueError):  # not a base32 secret (another secret key)
            return None
        if hmac.compare_digest(expected, code):
            return step
    return None


def verify(
    session: Session,
    user: StaffUser,
    code: str,
    secret_key: str | bytes,
    now: float | None = None,
) -> bool:
    """A right code not used before: accepted once, its step remembered."""
    if user.totp_secret is None:
        return False
    secret = unseal(user.totp_secret, secret_key)
    step = matching_step(secret, code, now)
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        return False
    # Conditional update: two requests with the same code cannot both pass.
    values: dict[str, object] = {"totp_last_step": step}
    if not user.totp_secret.startswith(SEALED):  # stored before sealing: sealed now
        values["totp_secret"] = seal(secret, secret_key)
    moved = session.execute(
        update(StaffUser)
        .where(
            StaffUser.id == user.id,
            (StaffUser.totp_last_step.is_(None)) | (StaffUser.totp_last_step < step),
        )
        .values(**values),
        execution_options={"synchronize_session": False},
    )
    if getattr(moved, "rowcount", 1) != 1:
        return False
    user.totp_last_step = step
    if "totp_secret" in values:
        user.totp_secret = str(values["totp_secret"])
    return True


def _recovery_hash(secret_key: str | bytes, code: str) -> str:
    key = secret_key.encode() if isinstance(secret_key, str) else secret_key
    return hmac.new(key, _clean(code).lower().encode(), hashlib.sha256).hexdigest()


def new_recovery_codes(session: Session, user: StaffUser, secret_key: str | bytes) -> list[str]:
    """Ten new codes (shown once); the old ones stop working."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    made = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        made.append(f"{raw[:5]}-{raw[5:]}")
        session.add(RecoveryCode(user_id=user.id, code_hash=_recovery_hash(secret_key, raw)))
    return made


def use_recovery_code(
    session: Session, user: StaffUser, code: str, secret_key: str | bytes
) -> bool:
    wanted = _recovery_hash(secret_key, code)
    found = session.scalar(
        select(RecoveryCode).where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == wanted,
            RecoveryCode.used_at.is_(None),
        )
    )
    if found is None:
        return False
    used = session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.id == found.id, RecoveryCode.used_at.is_(None))
        .values(used_at=utcnow()),
        execution_options={"synchronize_session": False},
    )
    if getattr(used, "rowcount", 1) != 1:
        return False
    audit.record(session, user, "recovery_code", audit.Entity.USER, user.id, user.structure_id)
    return True


def recovery_codes_left(session: Session, user: StaffUser) -> int:
    return len(
        list(
            session.scalars(
                select(RecoveryCode.id).where(
                    RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
                )
            )
        )
    )


def confirm_enrolment(
    session: Session,
    user: StaffUser,
    secret: str,
    code: str,
    secret_key: str | bytes,
    now: float | None = None,
) -> list[str] | None:
    """Keep `secret` once `code` proves the app has it; the recovery codes, else None."""
    step = matching_step(secret, code, now)
    if step is None:
        return None
    user.totp_secret = seal(secret, secret_key)
    user.totp_last_step = step
    codes = new_recovery_codes(session, user, secret_key)
    audit.record(session, user, "enrol_2fa", audit.Entity.USER, user.id, user.structure_id)
    return codes


def reset(session: Session, actor: StaffUser | None, target: StaffUser) -> None:
    """Remove someone's second factor (lost phone): they enrol again at next sign-in.

    Platform administrators for anyone, structure administrators for their team."""
    from selfcheck.accounts.team import TeamError, can_manage

    if actor is not None and actor.id == target.id:
        raise TeamError("not_yourself")
    if not can_manage(actor, target):
        raise TeamError("beyond_your_rights")
    target.totp_secret = None
    target.totp_last_step = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == target.id))
    audit.record(session, actor, "reset_2fa", audit.Entity.USER, target.id, target.structure_id)
