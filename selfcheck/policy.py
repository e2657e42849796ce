"""Who may do what, and on which structures: the one place that decides (no Flask here).

The role -> permission table and the structure scope are pure functions of the staff user;
`selfcheck.accounts.permissions` wraps them in the view decorators (`@requires`, `@public`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from selfcheck.platform.models import Role, StaffUser, Structure


class Permission(enum.StrEnum):
    BACKOFFICE = "backoffice"  # the staff home and the follow-up of one's own structure
    ENTER = "enter"  # print paper forms, type them in, download summaries
    SECOND_ENTRY = "second_entry"  # type a form again, blind
    RESOLVE = "resolve"  # settle the differences between two entries
    AUDIT = "audit"  # read the audit trail
    MANAGE_STRUCTURE = "manage_structure"  # double-entry share, after-due delay
    DELETE = "delete"  # delete a response or a whole person (with an audit event)
    # Erase a person (GDPR): nothing of them stays, even audited. Administrators only: it
    # cannot be undone (docs/security.md, "Erasure").
    ERASE = "erase"
    EVALUATE = "evaluate"  # aggregates and anonymised exports (evaluator screens)
    ACCOUNT = "account"  # one's own password
    ADMINISTER = "administer"  # structures and every staff account (platform administrators)


_STRUCTURE_STAFF = {
    Permission.ACCOUNT,
    Permission.BACKOFFICE,
    Permission.ENTER,
    Permission.SECOND_ENTRY,
}
ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.MEDIATOR: frozenset(_STRUCTURE_STAFF),
    Role.STRUCTURE_ADMIN: frozenset(
        _STRUCTURE_STAFF
        | {
            Permission.RESOLVE,
            Permission.AUDIT,
            Permission.MANAGE_STRUCTURE,
            Permission.DELETE,
            Permission.ERASE,
        }
    ),
    Role.EVALUATOR: frozenset({Permission.ACCOUNT, Permission.EVALUATE}),
    Role.PLATFORM_ADMIN: frozenset(Permission),
}


def has_permission(user: StaffUser | None, permission: Permission) -> bool:
    if user is None or not user.active:
        return False
    return permission in ROLE_PERMISSIONS.get(Role(user.role), frozenset())


def can_access_structure(user: StaffUser, structure: Structure) -> bool:
    """Mediators and structure admins: their own structure; evaluators: their grants."""
    role = Role(user.role)
    if role is Role.PLATFORM_ADMIN:
        return True
    if role is Role.EVALUATOR:
        return any(
            grant.structure_id == structure.id or grant.department == structure.department
            for grant in user.grants
        )
    return user.structure_id == structure.id


def visible_structure_ids(user: StaffUser, structures: list[Structure]) -> list[int]:
    return [s.id for s in structures if can_access_structure(user, s)]


__all__ = [
    "ROLE_PERMISSIONS",
    "Permission",
    "can_access_structure",
    "has_permission",
    "visible_structure_ids",
]
