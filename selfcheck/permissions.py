"""Who may do what, and on which structures: the one place that decides.

Views declare what they need with `@requires(Permission.X)` or `@public`; a test walks the
whole URL map and fails on any route that declares neither. Scope (which structures) is
checked by `can_access_structure`, never re-implemented in views.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, TypeVar

from flask import abort, redirect, request, url_for

from selfcheck.models import Role, StaffUser, Structure

F = TypeVar("F", bound=Callable[..., Any])


class Permission(enum.StrEnum):
    BACKOFFICE = "backoffice"  # the staff home and the follow-up of one's own structure
    ENTER = "enter"  # print paper forms, type them in, download summaries
    SECOND_ENTRY = "second_entry"  # type a form again, blind
    RESOLVE = "resolve"  # settle the differences between two entries
    AUDIT = "audit"  # read the audit trail
    MANAGE_STRUCTURE = "manage_structure"  # double-entry share, after-due delay
    EVALUATE = "evaluate"  # aggregates and anonymised exports (evaluator screens)
    ACCOUNT = "account"  # one's own password


_STRUCTURE_STAFF = {
    Permission.ACCOUNT,
    Permission.BACKOFFICE,
    Permission.ENTER,
    Permission.SECOND_ENTRY,
}
ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.MEDIATOR: frozenset(_STRUCTURE_STAFF),
    Role.STRUCTURE_ADMIN: frozenset(
        _STRUCTURE_STAFF | {Permission.RESOLVE, Permission.AUDIT, Permission.MANAGE_STRUCTURE}
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


def public(view: F) -> F:
    """Declare a route open to anyone (the beneficiary journey, sign-in, errors)."""
    view.selfcheck_public = True  # type: ignore[attr-defined]
    return view


def requires(permission: Permission) -> Callable[[F], F]:
    """Sign-in page for visitors, 403 for staff without `permission`."""

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            from selfcheck.staff_session import current_staff

            user = current_staff()
            if user is None:
                return redirect(url_for("staff_auth.login", next=request.full_path.rstrip("?")))
            if not has_permission(user, permission):
                abort(403)
            return view(*args, **kwargs)

        guarded.selfcheck_permission = permission  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate
