"""View guards over the policy: the routes declare what they need, `selfcheck.policy` decides.

Views declare what they need with `@requires(Permission.X)` or `@public`; a test walks the
whole URL map and fails on any route that declares neither. Scope (which structures) is
checked by `can_access_structure` (in `selfcheck.policy`), never re-implemented in views.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import unquote_plus

from flask import abort, g, redirect, request, session, url_for

from selfcheck.platform import codes, security
from selfcheck.policy import (
    ROLE_PERMISSIONS,
    Permission,
    can_access_structure,
    has_permission,
    visible_structure_ids,
)

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "ROLE_PERMISSIONS",
    "Permission",
    "can_access_structure",
    "has_permission",
    "public",
    "reads_as_a_code",
    "requires",
    "visible_structure_ids",
    "without_code_argument",
]


def without_code_argument(endpoint: str, name: str) -> Any:
    """For a blueprint's `before_request`: a GET (or HEAD, attack23) of `endpoint` whose
    query string has `name` (a person's code, in an address from before round 23) is sent
    to the same address without it, before any sign-in check (whose `next=` would copy the
    code into the sign-in page's address). None otherwise: the request goes on. No staff
    address holds a code (docs/security.md, "No code in a staff address")."""
    if request.endpoint != endpoint or request.method not in ("GET", "HEAD"):
        return None
    if name not in request.args:
        return None
    return redirect(url_for(endpoint, **security.link_arguments(request.args, without=name)))


_PIECES = re.compile(r"[/?&=;#]")


def reads_as_a_code(address: str) -> bool:
    """Whether a piece of `address` (a path segment, a query argument's name or value, read
    as a browser decodes it) is a person's code as /code reads one (`codes.normalise`:
    spaces, dashes, dots, case, O/I/L). The sign-in page's `next=` then leaves the address
    out (attack23): an old address whose code is all digits (1 code in about 35,000) matches
    `/staff/people/<int:person_id>`, and a HEAD was not redirected without `?q=`."""
    decoded = unquote_plus(unquote_plus(address))
    for piece in _PIECES.split(decoded):
        try:
            codes.normalise(piece)
        except codes.InvalidCode:
            continue
        return True
    return False


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

            # Before current_staff() clears an expiry (or from g, if a hook called it first).
            signed_in_as = session.get(STAFF_ID, g.get("staff_expired_id"))
            user = current_staff()
            if user is None:
                target: str | None = request.full_path.rstrip("?")
                if target is not None and reads_as_a_code(target):
                    target = None  # an address from before round 23: no code in `next=`
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
