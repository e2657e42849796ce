"""Managing staff accounts: invite, change a role, deactivate, re-activate, reset links,
evaluators' scope and free-text reading. The back-office pages and the CLI both call these.

Rules kept here, whoever calls:
- nobody gives more than they have: a structure administrator invites and manages mediators
  and administrators of their own structure only; roles without a structure (evaluators,
  platform administrators), grants and free-text reading are for platform administrators;
- nobody changes their own role or deactivates themselves (another administrator does), and
  the last active platform administrator cannot lose that role or be deactivated.
Every act is in the audit trail (never a password, secret or link). Nothing here commits.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from selfcheck.accounts import invitations
from selfcheck.accounts.auth import normalise_email
from selfcheck.platform import audit, visible
from selfcheck.platform.models import Grant, Role, StaffUser, Structure

STRUCTURE_ROLES = (Role.MEDIATOR, Role.STRUCTURE_ADMIN)
PLATFORM_ROLES = (Role.EVALUATOR, Role.PLATFORM_ADMIN)

# INSEE region code -> its departments: a region grant is one grant per department.
REGIONS: dict[str, tuple[str, ...]] = {
    "01": ("971",),
    "02": ("972",),
    "03": ("973",),
    "04": ("974",),
    "06": ("976",),
    "11": ("75", "77", "78", "91", "92", "93", "94", "95"),
    "24": ("18", "28", "36", "37", "41", "45"),
    "27": ("21", "25", "39", "58", "70", "71", "89", "90"),
    "28": ("14", "27", "50", "61", "76"),
    "32": ("02", "59", "60", "62", "80"),
    "44": ("08", "10", "51", "52", "54", "55", "57", "67", "68", "88"),
    "52": ("44", "49", "53", "72", "85"),
    "53": ("22", "29", "35", "56"),
    "75": ("16", "17", "19", "23", "24", "33", "40", "47", "64", "79", "86", "87"),
    "76": ("09", "11", "12", "30", "31", "32", "34", "46", "48", "65", "66", "81", "82"),
    "84": ("01", "03", "07", "15", "26", "38", "42", "43", "63", "69", "73", "74"),
    "93": ("04", "05", "06", "13", "83", "84"),
    "94": ("2A", "2B"),
}


class TeamError(ValueError):
    """A refused act; `reason` is a key the pages turn into a translated message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _role(user: StaffUser | None) -> Role | None:
    return Role(user.role) if user is not None else None


def is_platform_admin(user: StaffUser | None) -> bool:
    """None is the command line (a system administrator): it may do anything."""
    return user is None or (user.active and _role(user) is Role.PLATFORM_ADMIN)


def may_give(actor: StaffUser | None, role: Role, structure_id: int | None) -> bool:
    """Whether `actor` may give `role` in `structure_id` (never more than they have)."""
    if is_platform_admin(actor):
        return True
    assert actor is not None
    return (
        actor.active
        and _role(actor) is Role.STRUCTURE_ADMIN
        and role in STRUCTURE_ROLES
        and structure_id is not None
        and structure_id == actor.structure_id
    )


def can_manage(actor: StaffUser | None, target: StaffUser) -> bool:
    if is_platform_admin(actor):
        return True
    assert actor is not None
    return may_give(actor, Role(target.role), target.structure_id)


def roles_given_by(actor: StaffUser | None) -> tuple[Role, ...]:
    if is_platform_admin(actor):
        return (*STRUCTURE_ROLES, *PLATFORM_ROLES)
    if actor is not None and _role(actor) is Role.STRUCTURE_ADMIN:
        return STRUCTURE_ROLES
    return ()


def active_platform_admins(session: Session) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(StaffUser)
            .where(StaffUser.role == Role.PLATFORM_ADMIN.value, StaffUser.active.is_(True))
        )
        or 0
    )


def _keep_one_platform_admin(session: Session, target: StaffUser) -> None:
    if (
        target.active
        and _role(target) is Role.PLATFORM_ADMIN
        and active_platform_admins(session) <= 1
    ):
        raise TeamError("last_platform_admin")


def _check_manage(actor: StaffUser | None, target: StaffUser) -> None:
    if actor is not None and actor.id == target.id:
        raise TeamError("not_yourself")
    if not can_manage(actor, target):
        raise TeamError("beyond_your_rights")


def invite(
    session: Session,
    actor: StaffUser | None,
    email: str,
    role: Role,
    structure_id: int | None,
) -> tuple[StaffUser, str]:
    """A new account without a password, and its invitation link's token (shown once)."""
    address = normalise_email(email)
    if (
        "@" not in address.strip("@")
        or len(address) > 254
        or any(c.isspace() for c in address)
        or visible.hidden(address)  # shown to other administrators, in lists and the trail
    ):
        raise TeamError("bad_email")
    if role in STRUCTURE_ROLES:
        structure = session.get(Structure, structure_id) if structure_id is not None else None
        if structure is None:
            raise TeamError("structure_required")
        if structure.archived_at is not None:
            raise TeamError("structure_archived")
    else:
        structure_id = None
    if not may_give(actor, role, structure_id):
        raise TeamError("beyond_your_rights")
    if session.scalar(select(func.count()).where(StaffUser.email == address)):
        raise TeamError("email_taken")
    user = StaffUser(
        email=address,
        password_hash=invitations.NO_PASSWORD_YET,
        role=role.value,
        structure_id=structure_id,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor,
        "invite",
        audit.Entity.USER,
        user.id,
        structure_id,
        {"email": address, "role": role.value},
    )
    token = invitations.issue(session, user, invitations.Purpose.INVITATION, actor)
    return user, token


def new_link(session: Session, actor: StaffUser | None, target: StaffUser) -> tuple[str, str]:
    """(purpose, token): a password reset link, or a new invitation for someone who never
    chose a password."""
    _check_manage(actor, target)
    if not target.active:
        raise TeamError("inactive")
    purpose = (
        invitations.Purpose.RESET
        if invitations.has_password(target)
        else invitations.Purpose.INVITATION
    )
    return purpose.value, invitations.issue(session, target, purpose, actor)


def set_role(session: Session, actor: StaffUser | None, target: StaffUser, role: Role) -> None:
    _check_manage(actor, target)
    current = Role(target.role)
    if role is current:
        return
    same_family = {role, current} <= set(STRUCTURE_ROLES) or {role, current} <= set(PLATFORM_ROLES)
    if not same_family:
        raise TeamError("role_family")
    if not may_give(actor, role, target.structure_id):
        raise TeamError("beyond_your_rights")
    if current is Role.PLATFORM_ADMIN:
        _keep_one_platform_admin(session, target)
    target.role = role.value
    if role is not Role.EVALUATOR:
        target.grants.clear()
        target.can_read_free_text = False
    audit.record(
        session,
        actor,
        "role",
        audit.Entity.USER,
        target.id,
        target.structure_id,
        {"role": {"old": current.value, "new": role.value}},
    )


def set_active(session: Session, actor: StaffUser | None, target: StaffUser, active: bool) -> None:
    """Deactivate (signed out at once, links void) or re-activate an account; nothing of
    what they typed is deleted."""
    _check_manage(actor, target)
    if target.active == active:
        return
    if not active:
        _keep_one_platform_admin(session, target)
        # Its unused links die with it: a re-activation does not bring an old link back.
        invitations.void_all(session, target)
    target.active = active
    audit.record(
        session,
        actor,
        "reactivate" if active else "deactivate",
        audit.Entity.USER,
        target.id,
        target.structure_id,
    )


def _platform_only(actor: StaffUser | None, target: StaffUser) -> None:
    if not is_platform_admin(actor):
        raise TeamError("beyond_your_rights")
    if _role(target) is not Role.EVALUATOR:
        raise TeamError("grants_are_for_evaluators")


def add_scope(
    session: Session,
    actor: StaffUser | None,
    target: StaffUser,
    *,
    structure_id: int | None = None,
    department: str | None = None,
    region: str | None = None,
) -> list[Grant]:
    """Let an evaluator (or territorial coordinator) see a structure, a department or a
    region (its departments); grants already held are not repeated."""
    _platform_only(actor, target)
    departments: tuple[str, ...] = ()
    if sum(x is not None for x in (structure_id, department, region)) != 1:
        raise TeamError("one_scope")
    if structure_id is not None and session.get(Structure, structure_id) is None:
        raise TeamError("unknown_structure")
    if department is not None:
        from selfcheck.accounts.structures import DEPARTMENT

        department = department.strip().upper()
        if not DEPARTMENT.match(department):
            raise TeamError("bad_department")
        departments = (department,)
    if region is not None:
        if region not in REGIONS:
            raise TeamError("bad_region")
        departments = REGIONS[region]
    held = {(g.structure_id, g.department) for g in target.grants}
    wanted = (
        [(structure_id, None)] if structure_id is not None else [(None, d) for d in departments]
    )
    added = []
    for scope_structure, scope_department in wanted:
        if (scope_structure, scope_department) in held:
            continue
        found = Grant(structure_id=scope_structure, department=scope_department)
        target.grants.append(found)
        added.append(found)
    audit.record(
        session,
        actor,
        "grant",
        audit.Entity.USER,
        target.id,
        structure_id,
        {"structure": structure_id, "departments": list(departments), "region": region},
    )
    return added


def remove_scope(
    session: Session, actor: StaffUser | None, target: StaffUser, grant_id: int
) -> None:
    _platform_only(actor, target)
    found = next((g for g in target.grants if g.id == grant_id), None)
    if found is None:
        raise TeamError("unknown_grant")
    target.grants.remove(found)
    audit.record(
        session,
        actor,
        "revoke",
        audit.Entity.USER,
        target.id,
        found.structure_id,
        {"structure": found.structure_id, "department": found.department},
    )


def set_free_text(
    session: Session, actor: StaffUser | None, target: StaffUser, allowed: bool
) -> None:
    _platform_only(actor, target)
    if target.can_read_free_text == allowed:
        return
    target.can_read_free_text = allowed
    audit.record(
        session,
        actor,
        "free_text",
        audit.Entity.USER,
        target.id,
        None,
        {"can_read_free_text": {"old": not allowed, "new": allowed}},
    )


def members(session: Session, structure_id: int) -> list[StaffUser]:
    return list(
        session.scalars(
            select(StaffUser)
            .where(StaffUser.structure_id == structure_id)
            .order_by(StaffUser.active.desc(), StaffUser.email)
        )
    )


def search_staff(
    session: Session, query: str, role: str | None, page: int, per_page: int = 50
) -> tuple[list[StaffUser], int]:
    """(one page of staff whose e-mail contains `query`, of `role` if given; total)."""
    where = []
    if query.strip():
        where.append(StaffUser.email.contains(normalise_email(query), autoescape=True))
    if role in {r.value for r in Role}:
        where.append(StaffUser.role == role)
    total = session.scalar(select(func.count()).select_from(StaffUser).where(*where)) or 0
    found = session.scalars(
        select(StaffUser)
        .where(*where)
        .order_by(StaffUser.email)
        .limit(per_page)
        .offset(page * per_page)
    )
    return list(found), total
