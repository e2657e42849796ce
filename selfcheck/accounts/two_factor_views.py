"""Two-factor sign-in pages: the code after the password, and enrolment.

After a right password, an account with a second factor is not signed in yet: the session
holds a pending sign-in (who, when, their password stamp) for PENDING_SECONDS, and the code
page finishes it. Wrong codes count in the sign-in rate limit of that e-mail; a code is never
accepted twice. Accounts that must have a second factor (platform administrators, anyone
who can export data) and have none are sent to enrolment from every staff page.
"""

from __future__ import annotations

import time

from flask import (
    Blueprint,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response as HttpResponse

from selfcheck.accounts import totp
from selfcheck.accounts.admin_forms import CodeForm
from selfcheck.accounts.permissions import Permission, public, requires
from selfcheck.accounts.session import _password_stamp, current_staff, sign_in
from selfcheck.accounts.views import _safe_next
from selfcheck.platform import audit, security
from selfcheck.platform.db import get_session
from selfcheck.platform.models import StaffUser

blueprint = Blueprint("two_factor", __name__, url_prefix="/staff")

Rendered = str | tuple[str, int] | HttpResponse
PENDING = "staff_pending_second_factor"
ENROLMENT = "staff_totp_enrolment"
PENDING_SECONDS = 5 * 60
REQUIRED_CONFIG = "SELFCHECK_TOTP_REQUIRED"
WRONG_CODE = _l("Ce code n'est pas le bon, ou il a déjà servi. Attendez le code suivant.")
# Endpoints open to someone who must enrol and has not yet.
ENROLMENT_OPEN = {"two_factor.enrol", "staff_auth.logout", "staff_auth.password"}


def required(user: StaffUser) -> bool:
    return bool(current_app.config.get(REQUIRED_CONFIG, True)) and totp.required_for(user)


def start(user: StaffUser, next_url: str | None) -> HttpResponse:
    """After a right password: sign in, or ask for the second factor first."""
    if not totp.enrolled(user):
        sign_in(user)
        return redirect(_safe_next(next_url))
    session.pop(PENDING, None)
    session[PENDING] = {
        "user": user.id,
        "at": int(time.time()),
        "stamp": _password_stamp(user),
        "next": _safe_next(next_url),
    }
    return redirect(url_for("two_factor.code"))


def _pending_user() -> tuple[StaffUser, str] | None:
    record = session.get(PENDING)
    if not isinstance(record, dict) or not isinstance(record.get("user"), int):
        return None
    if int(time.time()) - int(record.get("at", 0)) > PENDING_SECONDS:
        session.pop(PENDING, None)
        return None
    user = get_session().get(StaffUser, record["user"])
    if user is None or not user.active or _password_stamp(user) != record.get("stamp"):
        session.pop(PENDING, None)
        return None
    return user, str(record.get("next") or url_for("backoffice.home"))


@blueprint.route("/login/code", methods=["GET", "POST"])
@public
def code() -> Rendered:
    pending = _pending_user()
    if pending is None:
        return redirect(url_for("staff_auth.login", expired=1))
    user, next_url = pending
    form = CodeForm(request.form if request.method == "POST" else None)
    error = None
    if request.method == "POST":
        security.check_attempts("login_account", user.email)
        if form.validate():
            # Counted before the code is checked (one atomic step), handed back when right:
            # parallel guesses cannot all pass a check made before any of them is counted.
            guess = security.reserve(("login_account", user.email))
            db = get_session()
            typed = form.code.data
            secret_key = str(current_app.secret_key)
            if any(c.isalpha() for c in typed):
                right = totp.use_recovery_code(db, user, typed, secret_key)
            else:
                right = totp.verify(db, user, typed, secret_key)
            if right:
                db.commit()
                guess.refund()  # after the commit: on SQLite the counters wait for the lock
                sign_in(user)  # clears the pending sign-in with the rest of the session
                return redirect(next_url)
            db.rollback()
            error = WRONG_CODE
    status = 422 if request.method == "POST" else 200
    return render_template("staff/admin/code.html", form=form, error=error), status


@blueprint.route("/account/two-factor", methods=["GET", "POST"])
@requires(Permission.ACCOUNT)
def enrol() -> Rendered:
    user = current_staff()
    assert user is not None
    db = get_session()
    if totp.enrolled(user):
        return _enrolled(user)
    secret = session.get(ENROLMENT)
    if not isinstance(secret, str) or request.method == "GET":
        secret = totp.new_secret()
        session[ENROLMENT] = secret
    form = CodeForm(request.form if request.method == "POST" else None)
    error = None
    if request.method == "POST" and form.validate():
        codes = totp.confirm_enrolment(
            db, user, secret, form.code.data, str(current_app.secret_key)
        )
        if codes is not None:
            db.commit()
            session.pop(ENROLMENT, None)
            return render_template("staff/admin/recovery_codes.html", codes=codes)
        error = WRONG_CODE
    status = 422 if request.method == "POST" else 200
    return render_template(
        "staff/admin/enrol.html",
        form=form,
        error=error,
        qr=totp.qr_svg(secret, user.email, _("Code QR à scanner avec l'application")),
        secret=totp.grouped(secret),
        must=required(user),
        by_structure=not totp.required_by_role(user),
    ), status


def _enrolled(user: StaffUser) -> Rendered:
    """Enrolled: the state, and new recovery codes for a current code (the old ones go)."""
    db = get_session()
    form = CodeForm(request.form if request.method == "POST" else None)
    error = None
    if request.method == "POST":
        security.check_attempts("login_account", user.email)
        if form.validate():
            guess = security.reserve(("login_account", user.email))
            secret_key = str(current_app.secret_key)
            if totp.verify(db, user, form.code.data, secret_key):
                codes = totp.new_recovery_codes(db, user, secret_key)
                audit.record(
                    db, user, "recovery_codes", audit.Entity.USER, user.id, user.structure_id
                )
                db.commit()
                guess.refund()
                return render_template("staff/admin/recovery_codes.html", codes=codes)
            db.rollback()
            error = WRONG_CODE
    status = 422 if request.method == "POST" else 200
    return render_template(
        "staff/admin/two_factor.html",
        form=form,
        error=error,
        left=totp.recovery_codes_left(db, user),
    ), status


@blueprint.before_app_request
def _enrol_first() -> HttpResponse | None:
    """Staff pages send whoever must have a second factor and has none to enrolment."""
    endpoint = request.endpoint
    if endpoint is None or endpoint in ENROLMENT_OPEN:
        return None
    view = current_app.view_functions.get(endpoint)
    if getattr(view, "selfcheck_permission", None) is None:
        return None  # public pages and static files
    user = current_staff()
    if user is None or totp.enrolled(user) or not required(user):
        return None
    return redirect(url_for("two_factor.enrol"))
