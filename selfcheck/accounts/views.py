"""Staff sign-in, sign-out and password change."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response as HttpResponse

from selfcheck.accounts import auth
from selfcheck.accounts.forms import LoginForm, PasswordChangeForm
from selfcheck.accounts.permissions import Permission, public, requires
from selfcheck.accounts.session import (
    current_staff,
    end_all_sessions,
    has_pending_post,
    sign_in,
    sign_out,
)
from selfcheck.platform import security
from selfcheck.platform.db import commit_or_rollback, get_session

blueprint = Blueprint("staff_auth", __name__, url_prefix="/staff")

Rendered = str | tuple[str, int] | HttpResponse
# One message whatever was wrong, so nobody can learn which e-mails have an account.
BAD_CREDENTIALS = _l("Adresse e-mail ou mot de passe incorrect.")
# Said after too many wrong passwords for an e-mail, whether or not it has an account.
LOCKED = _l(
    "Trop d'essais de mot de passe pour cette adresse : pour protéger le compte, la connexion "
    "est bloquée pendant 15 minutes. Si vous avez oublié votre mot de passe, demandez à "
    "l'administrateur de la plateforme de le réinitialiser."
)


def _safe_next(target: str | None) -> str:
    """Only a path of this site (no scheme, no host): no open redirect. No backslash (some
    browsers read `/\\` as `//`) and no control character (a newline in the Location header
    would fail the sign-in with a 500)."""
    if not target:
        return url_for("backoffice.home")
    if "\\" in target or any(ord(c) < 32 or ord(c) == 127 for c in target):
        return url_for("backoffice.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("backoffice.home")
    return target


@blueprint.route("/login", methods=["GET", "POST"])
@public
def login() -> Rendered:
    form = LoginForm(request.form if request.method == "POST" else None)
    error = None
    status = 422 if request.method == "POST" else 200
    if request.method == "POST":
        security.count_attempt("login_ip", security.client_subject())
    if request.method == "POST" and form.validate():
        email = auth.normalise_email(form.email.data)
        session = get_session()
        outcome = auth.attempt_login(
            session,
            email,
            form.password.data,
            str(current_app.secret_key),
            address=security.client_subject(),
            slow_down=security.slow_down,
        )
        commit_or_rollback(session)  # a wrong password is counted even though it fails
        if outcome.user is not None:
            from selfcheck.accounts import two_factor_views

            return two_factor_views.start(outcome.user, request.args.get("next"))
        if outcome.result is auth.LoginResult.LOCKED:
            error, status = LOCKED, 429
        else:
            error = BAD_CREDENTIALS
    current_staff()  # notices an expired session, to say so
    page = make_response(
        render_template(
            "staff/login.html",
            form=form,
            error=error,
            expired=bool(g.get("staff_session_expired")) or request.args.get("expired") == "1",
            kept=request.args.get("kept") == "1" and has_pending_post(),
            lost=request.args.get("kept") == "0",
        ),
        status,
    )
    if status == 429:
        page.headers["Retry-After"] = str(auth.LOCKOUT_SECONDS)
    return page


@blueprint.post("/logout")
@public
def logout() -> HttpResponse:
    user = current_staff()
    if user is not None:
        # Server-side: the cookie, even copied elsewhere before, no longer opens anything.
        db = get_session()
        end_all_sessions(db, user)
        commit_or_rollback(db)
    sign_out()
    return redirect(url_for("staff_auth.login", signed_out=1))


@blueprint.route("/password", methods=["GET", "POST"])
@requires(Permission.ACCOUNT)
def password() -> Rendered:
    user = current_staff()
    assert user is not None
    form = PasswordChangeForm(request.form if request.method == "POST" else None)
    error = None
    if request.method == "POST" and form.validate():
        # Wrong current passwords are guesses: limited per account (a stolen session must
        # not become a way to find the password itself).
        guess = security.reserve(("password_current", str(user.id)))
        db = get_session()
        try:
            auth.change_password(db, user, form.current.data, form.new.data)
        except auth.AuthError:
            error = _l("Le mot de passe actuel n'est pas le bon.")
        else:
            end_all_sessions(db, user)
            commit_or_rollback(db)
            guess.refund()  # after the commit: on SQLite the counters wait for the write lock
            db.refresh(user)
            sign_in(user)  # stay signed in here; other devices are signed out
            return redirect(url_for("backoffice.home", changed=1))
    status = 422 if request.method == "POST" else 200
    return render_template("staff/password.html", form=form, error=error), status
