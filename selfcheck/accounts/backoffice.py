"""The staff home and the audit trail; the paper, entry and follow-up screens have their own
blueprints under /staff."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from werkzeug.wrappers import Response as HttpResponse

from selfcheck.accounts import audit_trail as trail
from selfcheck.accounts.permissions import (
    Permission,
    has_permission,
    requires,
    visible_structure_ids,
    without_code_argument,
)
from selfcheck.accounts.session import current_staff
from selfcheck.platform import audit
from selfcheck.platform.db import get_session
from selfcheck.platform.models import Role, Structure
from selfcheck.questionnaire.model import Definition

blueprint = Blueprint("backoffice", __name__, url_prefix="/staff")


@dataclass(frozen=True)
class StaffLink:
    endpoint: str
    permission: Permission
    title: object  # lazy string
    text: object


# The staff home's tiles, in order. A screen appears when its endpoint exists and the person
# has its permission.
STAFF_LINKS = (
    StaffLink(
        "followup.index",
        Permission.BACKOFFICE,
        _l("Suivi des personnes"),
        _l("Qui a rempli le questionnaire de départ, qui doit encore remplir celui de fin."),
    ),
    StaffLink(
        "printing.index",
        Permission.ENTER,
        _l("Imprimer des questionnaires"),
        _l("Questionnaires papier, avec ou sans code, en gros caractères si besoin."),
    ),
    StaffLink(
        "entry.index",
        Permission.ENTER,
        _l("Saisir un questionnaire papier"),
        _l("Taper les réponses d'un questionnaire papier, au clavier."),
    ),
    StaffLink(
        "entry.second_entries",
        Permission.SECOND_ENTRY,
        _l("Double saisie"),
        _l("Saisir une seconde fois, sans voir la première saisie."),
    ),
    StaffLink(
        "entry.discrepancies",
        Permission.RESOLVE,
        _l("Écarts de saisie"),
        _l("Comparer les deux saisies et choisir la bonne réponse ; taux d'écart."),
    ),
    StaffLink(
        "entry.settings",
        Permission.MANAGE_STRUCTURE,
        _l("Réglages de la structure"),
        _l(
            "Part des questionnaires saisis deux fois, délai avant le questionnaire de fin, "
            "double authentification de l'équipe."
        ),
    ),
    StaffLink(
        "admin.team_page",
        Permission.MANAGE_STRUCTURE,
        _l("Équipe et affiche"),
        _l("Inviter des collègues, changer un rôle, désactiver un compte ; l'affiche du lien."),
    ),
    StaffLink(
        "admin.structures",
        Permission.ADMINISTER,
        _l("Structures"),
        _l("Créer, renommer, archiver les lieux de médiation."),
    ),
    StaffLink(
        "admin.staff",
        Permission.ADMINISTER,
        _l("Comptes"),
        _l("Évaluation, coordination, administration : inviter, périmètres, désactiver."),
    ),
    StaffLink(
        "backoffice.audit_trail",
        Permission.AUDIT,
        _l("Journal des modifications"),
        _l("Qui a créé, modifié, résolu ou supprimé quoi, et quand."),
    ),
    StaffLink(
        "evaluator.dashboard",
        Permission.EVALUATE,
        _l("Indicateurs et exports"),
        _l("Tableau de bord et données anonymisées."),
    ),
    StaffLink(
        "two_factor.enrol",
        Permission.ACCOUNT,
        _l("Double authentification"),
        _l("Un code de votre téléphone en plus du mot de passe."),
    ),
)


@blueprint.get("/")
@requires(Permission.ACCOUNT)
def home() -> str:
    user = current_staff()
    assert user is not None
    links = [
        link
        for link in STAFF_LINKS
        if link.endpoint in current_app.view_functions and has_permission(user, link.permission)
    ]
    return render_template(
        "staff/home.html", user=user, links=links, changed=request.args.get("changed") == "1"
    )


@blueprint.before_request
def _no_code_in_the_address() -> HttpResponse | None:
    """`?person=<code>` (the trail's filter before round 23): the trail without it."""
    found: HttpResponse | None = without_code_argument("backoffice.audit_trail", "person")
    return found


@blueprint.route("/audit", methods=["GET", "POST"])
@requires(Permission.AUDIT)
def audit_trail() -> tuple[str, int] | HttpResponse:
    """The audit trail. Its filter form is a POST answered by a redirect to an address that
    names the person by id: a person's code never goes into an address (docs/security.md)."""
    user = current_staff()
    assert user is not None
    db = get_session()
    scope = None
    if Role(user.role) is not Role.PLATFORM_ADMIN:
        scope = visible_structure_ids(user, list(db.scalars(select(Structure))))
    authors = audit.authors(db, scope)
    posted = request.method == "POST"
    filters = trail.read_filters(db, request.form if posted else request.args, scope, authors)
    address: dict[str, Any] = filters.address
    if posted and not filters.errors:
        return redirect(url_for("backoffice.audit_trail", **address))
    total = audit.count(db, scope, filters.chosen)
    pages = trail.pages_for(total)
    page = min(filters.page, pages)
    views = audit.events(
        db, scope, limit=trail.PAGE_SIZE, offset=trail.PAGE_SIZE * (page - 1), chosen=filters.chosen
    )
    definition: Definition = current_app.extensions["selfcheck.definition"]
    lines = trail.Describer(db, definition).lines(views)
    kept = address
    html = render_template(
        "staff/audit.html",
        lines=lines,
        total=total,
        page=page,
        pages=pages,
        beyond=filters.page > pages,
        asked_page=filters.page,
        typed=filters.typed,
        kept=kept,
        errors=filters.errors,
        authors=authors,
        actions=sorted(trail.ACTION_LABELS.items(), key=lambda pair: str(pair[1])),
    )
    return html, 400 if filters.errors else 200
