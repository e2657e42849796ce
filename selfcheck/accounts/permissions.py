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

from flask import abort, g, redirect, request, session, url_for

from selfcheck.platform.models import Role, StaffUser, Structure

F = TypeVar("F", bound=Callable[..., Any])


class Permission(enum.StrEnum):
    BACKOFFICE = "backoffice"  # the staff home and the follow-up of one's own structure
    ENTER = "enter"  # print paper forms, type them in, download summaries
    SECOND_ENTRY = "second_entry"  # type a form again, blind
    RESOLVE = "resolve"  # settle the differences between two entries
    AUDIT = "audit"  # read the audit trail
    MANAGE_STRUCTURE = "manage_structure"  # double-entry share, after-due delay
    DELETE = "delete"  # delete a response or a whole person (with an audit event)
    ERASE = "erase"  # erase a person at their request (GDPR): nothing of them stays, even audited
    EVALUATE = "evaluate"  # aggregates and anonymised exports (evaluator screens)
    ACCOUNT = "account"  # one's own password
    ADMINISTER = "administer"  # structures and every staff account (platform administrators)


_STRUCTURE_STAFF = {
    Permission.ACCOUNT,
    Permission.BACKOFFICE,
    Permission.ENTER,
    Permission.ERASE,
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


def public(view: F) -> F:
    """Declare a route open to anyone (the beneficiary journey, sign-in, errors)."""
    view.selfcheck_public = True  # type: ignore[attr-defined]
    return view


def requires(permission: Permission, *, keep_post: bool = False) -> Callable[[F], F]:
    """Sign-in page for visitors, 403 for staff without `permission`.

    With `keep_post`, a form posted after the staff session expired is kept (see
    staff_session.keep_pending_post) and given back to the same person after sign-in.
    """

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            from selfcheck.accounts.session import STAFF_ID, current_staff, keep_pending_post

            signed_in_as = session.get(STAFF_ID)  # before current_staff() clears an expiry
            user = current_staff()
            if user is None:
                target = request.full_path.rstrip("?")
                if keep_post and request.method == "POST" and isinstance(signed_in_as, int):
                    kept = keep_pending_post(signed_in_as, request.path, request.form)
                    return redirect(
                        url_for("staff_auth.login", next=target, expired=1, kept=int(kept))
                    )
                # The expired session is cleared by now: the sign-in page says why it shows.
                expired = 1 if g.get("staff_session_expired") else None
                return redirect(url_for("staff_auth.login", next=target, expired=expired))
            if not has_permission(user, permission):
                abort(403)
            return view(*args, **kwargs)

        guarded.selfcheck_permission = permission  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate
