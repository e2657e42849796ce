"""Public privacy pages: the information notice, and erasing one's own answers by code."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_babel import ngettext
from werkzeug.wrappers import Response as HttpResponse

from selfcheck.accounts.permissions import public
from selfcheck.journey.forms import UNKNOWN_CODE
from selfcheck.journey.views import SESSION_PERSON, SESSION_RESPONSE
from selfcheck.platform import codes, security
from selfcheck.platform.db import commit_or_rollback, get_session
from selfcheck.privacy import operations as privacy
from selfcheck.privacy.forms import ErasureForm

blueprint = Blueprint("privacy", __name__, url_prefix="/privacy")

Rendered = str | tuple[str, int] | HttpResponse


def retention_words(months: int) -> str:
    """'3 ans' for 36 months, '18 mois' for 18."""
    if months % 12 == 0:
        return str(ngettext("%(num)d an", "%(num)d ans", months // 12))
    return str(ngettext("%(num)d mois", "%(num)d mois", months))


@blueprint.get("")
@public
def notice() -> str:
    return render_template(
        "privacy/notice.html",
        retention=retention_words(int(current_app.config["SELFCHECK_RETENTION_MONTHS"])),
        k=int(current_app.config["SELFCHECK_K_ANONYMITY"]),
    )


@blueprint.route("/erase", methods=["GET", "POST"])
@public
def erase() -> Rendered:
    form = ErasureForm(request.form if request.method == "POST" else None)
    if request.method == "GET":
        return render_template("privacy/erase.html", form=form)
    if not form.validate():
        return render_template("privacy/erase.html", form=form), 422
    security.check_code_lookups()  # the same guessing limits as the code entry page
    try:
        privacy.erase_by_code(get_session(), form.code.data)
    except (privacy.UnknownPerson, codes.InvalidCode):
        security.count_unknown_code()
        form.code.errors = [UNKNOWN_CODE]
        return render_template("privacy/erase.html", form=form), 422
    commit_or_rollback(get_session())
    # This browser no longer points at a journey that is gone.
    session.pop(SESSION_RESPONSE, None)
    session.pop(SESSION_PERSON, None)
    return redirect(url_for("privacy.erased"))


@blueprint.get("/erased")
@public
def erased() -> str:
    return render_template("privacy/erased.html")
