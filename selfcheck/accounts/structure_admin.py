"""Platform administrators' acts on structures: create, edit, archive (never delete).

Audited; nothing here commits (the page or command does).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from selfcheck.accounts.structures import add_structure, edit_structure
from selfcheck.accounts.team import TeamError, is_platform_admin
from selfcheck.platform import audit
from selfcheck.platform.models import StaffUser, Structure, utcnow
from selfcheck.policy import Permission, can_access_structure, has_permission


def _check(actor: StaffUser | None) -> None:
    if not is_platform_admin(actor):
        raise TeamError("beyond_your_rights")


def create(
    session: Session, actor: StaffUser | None, name: str, territory_type: str, department: str
) -> Structure:
    _check(actor)
    structure = add_structure(session, name, territory_type, department)
    audit.record(
        session,
        actor,
        "create",
        audit.Entity.STRUCTURE,
        structure.id,
        structure.id,
        {"name": structure.name, "territory_type": territory_type, "department": department},
    )
    return structure


def edit(
    session: Session,
    actor: StaffUser | None,
    structure: Structure,
    name: str,
    territory_type: str,
    department: str,
) -> None:
    _check(actor)
    changes = edit_structure(session, structure, name, territory_type, department)
    if changes:
        audit.record(
            session, actor, "edit", audit.Entity.STRUCTURE, structure.id, structure.id, changes
        )


def set_archived(
    session: Session, actor: StaffUser | None, structure: Structure, archived: bool
) -> None:
    """Archived: hidden from the lists, no new invitations; every answer and account stays."""
    _check(actor)
    if (structure.archived_at is not None) == archived:
        return
    structure.archived_at = utcnow() if archived else None
    audit.record(
        session,
        actor,
        "archive" if archived else "unarchive",
        audit.Entity.STRUCTURE,
        structure.id,
        structure.id,
    )


def set_totp_required(
    session: Session, actor: StaffUser | None, structure: Structure, required: bool
) -> bool:
    """Require (or not) a second factor of every staff member of `structure`; True if it
    changed. Its administrators, platform administrators and the command line (None) only.
    Those of the team without one are sent to enrolment at their next page."""
    allowed = actor is None or (
        has_permission(actor, Permission.MANAGE_STRUCTURE)
        and can_access_structure(actor, structure)
    )
    if not allowed:
        raise TeamError("beyond_your_rights")
    if structure.totp_required == required:
        return False
    structure.totp_required = required
    audit.record(
        session,
        actor,
        "edit",
        audit.Entity.STRUCTURE,
        structure.id,
        structure.id,
        {"totp_required": {"old": [str(not required)], "new": [str(required)]}},
    )
    return True


def search(
    session: Session, query: str, archived: bool, page: int, per_page: int = 50
) -> tuple[list[Structure], int]:
    """(one page of structures whose name, slug or department contains `query`; total)."""
    where: list[ColumnElement[bool]] = [
        Structure.archived_at.is_not(None) if archived else Structure.archived_at.is_(None)
    ]
    text = query.strip()
    if text:
        where.append(
            Structure.name.icontains(text, autoescape=True)
            | Structure.slug.icontains(text, autoescape=True)
            | (Structure.department == text.upper())
        )
    total = session.scalar(select(func.count()).select_from(Structure).where(*where)) or 0
    found = session.scalars(
        select(Structure)
        .where(*where)
        .order_by(Structure.name)
        .limit(per_page)
        .offset(page * per_page)
    )
    return list(found), total
