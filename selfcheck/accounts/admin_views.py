"""Administration in the back office: one-time links, the structure's team and poster, and
the platform administrators' structures and staff. Views commit once; operations never do.

Structure administrators manage their own structure (MANAGE_STRUCTURE); platform
administrators manage every structure and account (ADMINISTER). Who may do what to whom is
decided by selfcheck.accounts.team, the same operations the CLI calls.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as HttpResponse

from selfcheck.accounts import invitations, structure_admin, team, totp
from selfcheck.accounts.admin_forms import (
    TERRITORY_LABELS,
    InviteForm,
    SetPasswordForm,
    StructureForm,
)
from selfcheck.accounts.auth import AuthError
from selfcheck.accounts.permissions import Permission, public, requires
from selfcheck.accounts.session import current_staff, sign_out
from selfcheck.accounts.team import TeamError
from selfcheck.platform import mail, security
from selfcheck.platform.db import get_session
from selfcheck.platform.models import Role, StaffUser, Structure

blueprint = Blueprint("admin", __name__, url_prefix="/staff")

Rendered = str | tuple[str, int] | HttpResponse
PER_PAGE = 50

ROLE_LABELS = {
    Role.MEDIATOR.value: _l("Médiateur ou médiatrice"),
    Role.STRUCTURE_ADMIN.value: _l("Responsable de la structure"),
    Role.EVALUATOR.value: _l("Évaluation ou coordination territoriale"),
    Role.PLATFORM_ADMIN.value: _l("Administration de la plateforme"),
}
REASONS = {
    "bad_email": _l("Écrivez une adresse e-mail valide."),
    "structure_required": _l("Choisissez la structure de la personne."),
    "structure_archived": _l("Cette structure est archivée : personne ne peut y être invité."),
    "beyond_your_rights": _l(
        "Ce n'est pas possible : ce rôle ou ce compte est au-delà de vos propres droits."
    ),
    "email_taken": _l("Un compte existe déjà avec cette adresse e-mail."),
    "not_yourself": _l(
        "Vous ne pouvez pas faire cela sur votre propre compte : demandez-le à un autre "
        "administrateur."
    ),
    "last_platform_admin": _l(
        "C'est le dernier administrateur actif de la plateforme : nommez-en un autre d'abord."
    ),
    "role_family": _l(
        "Ce changement de rôle n'est pas possible : invitez la personne avec le nouveau rôle."
    ),
    "inactive": _l("Ce compte est désactivé : réactivez-le d'abord."),
    "grants_are_for_evaluators": _l(
        "Les périmètres et la lecture des réponses libres sont pour les évaluateurs."
    ),
    "one_scope": _l("Choisissez une structure, un département ou une région."),
    "unknown_structure": _l("Cette structure n'existe pas."),
    "bad_department": _l("Écrivez un numéro de département : 01 à 95, 2A, 2B, 971 à 976…"),
    "bad_region": _l("Écrivez un code de région de l'INSEE : 11, 24, 27, 28, 32, 44, 52, 53…"),
    "unknown_grant": _l("Ce périmètre n'existe plus."),
}
# 403: beyond the person's rights; 409: the state of the data forbids it; else 422.
REASON_STATUS = {
    "beyond_your_rights": 403,
    "not_yourself": 403,
    "email_taken": 409,
    "last_platform_admin": 409,
    "inactive": 409,
    "structure_archived": 409,
}
LINK_ERRORS = {
    "unknown": (404, _l("Ce lien n'existe pas. Vérifiez qu'il a été copié en entier.")),
    "used": (410, _l("Ce lien a déjà servi : un lien ne sert qu'une fois.")),
    "expired": (410, _l("Ce lien a expiré : il n'est valable que 72 heures.")),
    "inactive": (410, _l("Ce compte a été désactivé : ce lien ne sert plus.")),
}
LINK_PURPOSES = {
    invitations.Purpose.INVITATION.value: _l("Lien d'invitation"),
    invitations.Purpose.RESET.value: _l("Lien pour choisir un nouveau mot de passe"),
}
DONE = {
    "role": _l("Le rôle est changé."),
    "deactivate": _l("Le compte est désactivé : la personne ne peut plus se connecter."),
    "reactivate": _l("Le compte est réactivé."),
    "reset_2fa": _l(
        "La double authentification est retirée : la personne la configurera de nouveau."
    ),
    "grant": _l("Le périmètre est ajouté."),
    "revoke": _l("Le périmètre est retiré."),
    "free_text": _l("La lecture des réponses libres est changée."),
    "saved": _l("Les changements sont enregistrés."),
    "archive": _l("La structure est archivée : ses données restent."),
    "unarchive": _l("La structure n'est plus archivée."),
}


def _user() -> StaffUser:
    user = current_staff()
    assert user is not None  # guaranteed by @requires
    return user


MAX_PAGE = 1_000_000  # beyond it the offset would overflow the database's integers (500)


def _page() -> int:
    return min(MAX_PAGE, max(0, request.args.get("page", 0, type=int) or 0))


def _link_url(token: str) -> str:
    return security.site_url_for("admin.use_link", token=token)


HOURS = int(invitations.LINK_LIFETIME.total_seconds() // 3600)


def _mail_link(purpose: str, email: str, link: str) -> mail.Outcome:
    if purpose == invitations.Purpose.INVITATION.value:
        subject = _("Votre compte sur Mon parcours numérique")
        first = _("Vous êtes invité·e à utiliser l'espace professionnel de Mon parcours numérique.")
    else:
        subject = _("Choisir un nouveau mot de passe")
        first = _("Quelqu'un a demandé un nouveau mot de passe pour votre compte.")
    body = "\n\n".join(
        (
            first,
            _(
                "Pour choisir votre mot de passe, ouvrez ce lien (il sert une fois, "
                "pendant %(hours)s heures) :",
                hours=HOURS,
            ),
            link,
            _("Si vous n'attendiez pas ce message, ignorez-le : rien ne change sans ce lien."),
        )
    )
    return mail.send(email, subject, body)


def _show_link(purpose: str, token: str, target: StaffUser, wanted: bool = False) -> str:
    link = _link_url(token)
    mailed = _mail_link(purpose, target.email, link).value if wanted else None
    return render_template(
        "staff/admin/link.html",
        title=LINK_PURPOSES[purpose],
        link=link,
        target=target,
        hours=HOURS,
        mailed=mailed,
    )


# --- one-time links: accept an invitation, choose a new password ------------------------------


@blueprint.route("/link/<token>", methods=["GET", "POST"])
@public
def use_link(token: str) -> Rendered:
    db = get_session()
    try:
        link = invitations.find(db, token)
    except invitations.LinkError as error:
        status, message = LINK_ERRORS[error.reason]
        return render_template("staff/admin/link_error.html", message=message), status
    purpose = link.purpose
    email = link.user.email
    form = SetPasswordForm(request.form if request.method == "POST" else None)
    if request.method == "POST" and form.validate():
        try:
            invitations.use(db, token, form.new.data)
        except invitations.LinkError as error:
            db.rollback()
            status, message = LINK_ERRORS[error.reason]
            return render_template("staff/admin/link_error.html", message=message), status
        except AuthError:
            db.rollback()
            form.new.errors = [_l("Le mot de passe doit avoir au moins 12 caractères.")]
        else:
            db.commit()
            sign_out()  # whoever was signed in on this browser: the person signs in now
            return redirect(url_for("staff_auth.login", password_set=1))
    status = 422 if request.method == "POST" else 200
    return render_template(
        "staff/admin/set_password.html", form=form, purpose=purpose, email=email
    ), status


@blueprint.route("/password/forgotten", methods=["GET", "POST"])
@public
def forgotten() -> Rendered:
    """Self-service reset by e-mail (with SMTP only): the same answer whether or not an
    account has this address."""
    from selfcheck.accounts.admin_forms import ForgottenForm
    from selfcheck.accounts.auth import normalise_email

    if not mail.configured():
        return render_template("staff/admin/forgotten.html", form=None, sent=False)
    form = ForgottenForm(request.form if request.method == "POST" else None)
    if request.method == "POST":
        security.count_attempt("login_ip", security.client_ip())
        if form.validate():
            address = normalise_email(form.email.data)
            security.count_attempt("forgotten_account", address)
            db = get_session()
            user = db.scalar(select(StaffUser).where(StaffUser.email == address))
            if user is not None and user.active and invitations.has_password(user):
                token = invitations.issue(db, user, invitations.Purpose.RESET, None)
                db.commit()
                _mail_link(invitations.Purpose.RESET.value, user.email, _link_url(token))
            return render_template("staff/admin/forgotten.html", form=None, sent=True)
    status = 422 if request.method == "POST" else 200
    return render_template("staff/admin/forgotten.html", form=form, sent=False), status


# --- a structure's team ------------------------------------------------------------------


def team_structure(user: StaffUser) -> Structure | None:
    """The structure administrator's own structure; for a platform administrator, the one
    named in ?structure= (None: choose one first)."""
    if team.is_platform_admin(user):
        slug = request.values.get("structure", "")
        if not slug:
            return None
        if "\x00" in slug:  # PostgreSQL refuses it as a parameter: no structure has it
            abort(404)
        found = get_session().scalar(select(Structure).where(Structure.slug == slug))
        if found is None:
            abort(404)
        return found
    if user.structure is None:
        abort(404)
    return user.structure


@blueprint.get("/team/")
@requires(Permission.MANAGE_STRUCTURE)
def team_page() -> Rendered:
    user = _user()
    structure = team_structure(user)
    if structure is None:
        return redirect(url_for("admin.structures"))
    db = get_session()
    return render_template(
        "staff/admin/team.html",
        structure=structure,
        members=team.members(db, structure.id),
        roles=ROLE_LABELS,
        has_password=invitations.has_password,
        retention_months=current_app.config["SELFCHECK_RETENTION_MONTHS"],
        platform=team.is_platform_admin(user),
    )


def _invite_form(user: StaffUser) -> InviteForm:
    form = InviteForm(request.form if request.method == "POST" else None)
    form.role_choices = [(r.value, ROLE_LABELS[r.value]) for r in team.roles_given_by(user)]
    if team.is_platform_admin(user):
        structures = get_session().scalars(
            select(Structure).where(Structure.archived_at.is_(None)).order_by(Structure.name)
        )
        form.structure_choices = [("", "—"), *((s.slug, s.name) for s in structures)]
        if request.method == "GET":
            form.structure.data = request.args.get("structure", "")
    return form


@blueprint.route("/team/invite", methods=["GET", "POST"])
@requires(Permission.MANAGE_STRUCTURE)
def invite() -> Rendered:
    user = _user()
    form = _invite_form(user)
    error: tuple[str, object] | None = None
    status = 200
    if request.method == "POST":
        status = 422
        if form.validate():
            db = get_session()
            role = Role(form.role.data)
            if team.is_platform_admin(user):
                slug = form.structure.data or ""
                found = db.scalar(select(Structure).where(Structure.slug == slug)) if slug else None
                structure_id = found.id if found is not None else None
            else:
                structure_id = user.structure_id
            try:
                target, token = team.invite(db, user, form.email.data, role, structure_id)
            except TeamError as refused:
                db.rollback()
                field = "structure" if refused.reason.startswith("structure") else "email"
                error = (field, REASONS[refused.reason])
                status = REASON_STATUS.get(refused.reason, 422)
            else:
                db.commit()
                wanted = mail.configured() and request.form.get("send") == "1"
                return _show_link(invitations.Purpose.INVITATION.value, token, target, wanted)
    return render_template(
        "staff/admin/invite.html",
        form=form,
        error=error,
        platform=team.is_platform_admin(user),
        can_mail=mail.configured(),
    ), status


def _member(user: StaffUser, user_id: int) -> StaffUser:
    target = get_session().get(StaffUser, user_id)
    if target is None or not team.can_manage(user, target):
        abort(404)  # another structure's staff: as if there were nobody
    return target


def _render_member(
    user: StaffUser, target: StaffUser, error: object | None = None, status: int = 200
) -> Rendered:
    db = get_session()
    structures = {}
    if team.is_platform_admin(user) and Role(target.role) is Role.EVALUATOR:
        structures = {
            s.id: s
            for s in db.scalars(
                select(Structure).where(Structure.archived_at.is_(None)).order_by(Structure.name)
            )
        }
    same_family = (
        team.STRUCTURE_ROLES if Role(target.role) in team.STRUCTURE_ROLES else team.PLATFORM_ROLES
    )
    roles = [r for r in same_family if team.may_give(user, r, target.structure_id)]
    return render_template(
        "staff/admin/member.html",
        target=target,
        roles=[(r.value, ROLE_LABELS[r.value]) for r in roles],
        role_labels=ROLE_LABELS,
        error=error,
        done=DONE.get(request.args.get("done", "")),
        yourself=target.id == user.id,
        platform=team.is_platform_admin(user),
        structures=structures,
        regions=sorted(team.REGIONS),
        has_password=invitations.has_password(target),
        two_factor=totp.enrolled(target),
        scopes=SCOPE_LABELS.items(),
    ), status


MemberAction = Callable[[Session, StaffUser, StaffUser], Rendered | None]


def _set_role(db: Session, user: StaffUser, target: StaffUser) -> Rendered | None:
    wanted = request.form.get("role", "")
    if wanted not in ROLE_LABELS:
        return _render_member(user, target, REASONS["beyond_your_rights"], 422)
    team.set_role(db, user, target, Role(wanted))
    return None


def _set_active(active: bool) -> MemberAction:
    def act(db: Session, user: StaffUser, target: StaffUser) -> None:
        team.set_active(db, user, target, active)

    return act


def _new_link(db: Session, user: StaffUser, target: StaffUser) -> Rendered:
    """The link is shown once, on the page answered now: committed before it is shown."""
    purpose, token = team.new_link(db, user, target)
    db.commit()
    return _show_link(purpose, token, target)


def _reset_two_factor(db: Session, user: StaffUser, target: StaffUser) -> None:
    totp.reset(db, user, target)


class Scope(enum.StrEnum):
    """What a grant of the team page covers: the `scope` radio button posted."""

    DEPARTMENT = "department"
    REGION = "region"
    STRUCTURE = "structure"


# The radio buttons of the team page, in this order (the first is checked).
SCOPE_LABELS: Mapping[Scope, object] = {
    Scope.DEPARTMENT: _l("Un département"),
    Scope.REGION: _l("Une région (tous ses départements)"),
    Scope.STRUCTURE: _l("Une structure"),
}


def _grant_structure(db: Session, user: StaffUser, target: StaffUser, slug: str) -> None:
    # No NUL: PostgreSQL refuses it as a parameter (a 500; attack14), and no address has it.
    if "\x00" in slug:
        raise TeamError("unknown_structure")
    found = db.scalar(select(Structure).where(Structure.slug == slug))
    if found is None:
        raise TeamError("unknown_structure")
    team.add_scope(db, user, target, structure_id=found.id)


def _grant_department(db: Session, user: StaffUser, target: StaffUser, department: str) -> None:
    team.add_scope(db, user, target, department=department)


def _grant_region(db: Session, user: StaffUser, target: StaffUser, region: str) -> None:
    team.add_scope(db, user, target, region=region)


# How each scope is granted, given the value typed beside it.
SCOPE_GRANTS: Mapping[Scope, Callable[[Session, StaffUser, StaffUser, str], None]] = {
    Scope.DEPARTMENT: _grant_department,
    Scope.REGION: _grant_region,
    Scope.STRUCTURE: _grant_structure,
}


def _grant(db: Session, user: StaffUser, target: StaffUser) -> None:
    posted, value = request.form.get("scope", ""), request.form.get("value", "").strip()
    if posted not in SCOPE_GRANTS:
        raise TeamError("one_scope")
    SCOPE_GRANTS[Scope(posted)](db, user, target, value)


def _revoke(db: Session, user: StaffUser, target: StaffUser) -> None:
    grant_id = request.form.get("grant", type=int)
    team.remove_scope(db, user, target, grant_id if grant_id is not None else -1)


def _allow_free_text(db: Session, user: StaffUser, target: StaffUser) -> None:
    team.set_free_text(db, user, target, request.form.get("value") == "1")


# What the team member's page can do, by the `action` posted. An action that answers a page of
# its own returns it; the others return None and the view commits and shows the member again.
MEMBER_ACTIONS: Mapping[str, MemberAction] = {
    "role": _set_role,
    "deactivate": _set_active(False),
    "reactivate": _set_active(True),
    "link": _new_link,
    "reset_2fa": _reset_two_factor,
    "grant": _grant,
    "revoke": _revoke,
    "free_text": _allow_free_text,
}


@blueprint.route("/team/<int:user_id>", methods=["GET", "POST"])
@requires(Permission.MANAGE_STRUCTURE)
def member(user_id: int) -> Rendered:
    user = _user()
    target = _member(user, user_id)
    if request.method == "GET":
        return _render_member(user, target)
    db = get_session()
    action = request.form.get("action", "")
    act = MEMBER_ACTIONS.get(action)
    if act is None:
        abort(400)
    try:
        answered = act(db, user, target)
    except TeamError as refused:
        db.rollback()
        db.refresh(target)
        return _render_member(
            user, target, REASONS[refused.reason], REASON_STATUS.get(refused.reason, 422)
        )
    if answered is not None:
        return answered
    db.commit()
    return redirect(url_for("admin.member", user_id=target.id, done=action))


# --- platform administrators: structures and staff ---------------------------------------


@blueprint.get("/admin/structures")
@requires(Permission.ADMINISTER)
def structures() -> Rendered:
    query = request.args.get("q", "").replace("\x00", "")[:200]  # no NUL: PostgreSQL
    archived = request.args.get("archived") == "1"
    page = _page()
    found, total = structure_admin.search(get_session(), query, archived, page, PER_PAGE)
    return render_template(
        "staff/admin/structures.html",
        structures=found,
        total=total,
        query=query,
        archived=archived,
        page=page,
        pages=max(1, -(-total // PER_PAGE)),
        territories=TERRITORY_LABELS,
    )


def _structure_form(structure: Structure | None) -> StructureForm:
    if request.method == "POST":
        return StructureForm(request.form)
    return StructureForm(obj=structure) if structure is not None else StructureForm()


@blueprint.route("/admin/structures/new", methods=["GET", "POST"])
@requires(Permission.ADMINISTER)
def structure_new() -> Rendered:
    form = _structure_form(None)
    if request.method == "POST" and form.validate():
        db = get_session()
        created = structure_admin.create(
            db, _user(), form.name.data, form.territory_type.data, form.department.data
        )
        db.commit()
        return redirect(url_for("admin.structure", structure_id=created.id, done="saved"))
    status = 422 if request.method == "POST" else 200
    return render_template(
        "staff/admin/structure.html", form=form, structure=None, territories=TERRITORY_LABELS
    ), status


@blueprint.route("/admin/structures/<int:structure_id>", methods=["GET", "POST"])
@requires(Permission.ADMINISTER)
def structure(structure_id: int) -> Rendered:
    db = get_session()
    found = db.get(Structure, structure_id)
    if found is None:
        abort(404)
    action = request.form.get("action", "save") if request.method == "POST" else None
    if action in ("archive", "unarchive"):
        structure_admin.set_archived(db, _user(), found, action == "archive")
        db.commit()
        return redirect(url_for("admin.structure", structure_id=found.id, done=action))
    form = _structure_form(found)
    if request.method == "POST" and form.validate():
        structure_admin.edit(
            db, _user(), found, form.name.data, form.territory_type.data, form.department.data
        )
        db.commit()
        return redirect(url_for("admin.structure", structure_id=found.id, done="saved"))
    status = 422 if request.method == "POST" else 200
    return render_template(
        "staff/admin/structure.html",
        form=form,
        structure=found,
        done=DONE.get(request.args.get("done", "")),
        members=len(team.members(db, found.id)),
        territories=TERRITORY_LABELS,
    ), status


@blueprint.get("/admin/staff")
@requires(Permission.ADMINISTER)
def staff() -> Rendered:
    query = request.args.get("q", "").replace("\x00", "")[:254]  # no NUL: PostgreSQL
    role = request.args.get("role", "")
    page = _page()
    found, total = team.search_staff(get_session(), query, role, page, PER_PAGE)
    return render_template(
        "staff/admin/staff.html",
        people=found,
        total=total,
        query=query,
        role=role,
        roles=ROLE_LABELS,
        page=page,
        pages=max(1, -(-total // PER_PAGE)),
    )
