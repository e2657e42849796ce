"""Typing paper forms in, blind double entry, differences and structure settings (/staff/entry).

Thin: each view parses the request, calls the entry operations, commits once and renders.
Problems the operations report (EntryError) become a clear message with the right status,
never a 500.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_date, gettext, ngettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as HttpResponse

from selfcheck.accounts import structure_admin
from selfcheck.accounts.permissions import (
    Permission,
    has_permission,
    requires,
    visible_structure_ids,
    without_code_argument,
)
from selfcheck.accounts.session import current_staff, take_pending_post
from selfcheck.entry import resolution
from selfcheck.entry.forms import OpenByCodeForm, OpenWithoutCodeForm, SettingsForm
from selfcheck.entry.lookup import EntryError, load_paper_response, open_entry, open_uncoded
from selfcheck.entry.rates import discrepancy_rates, set_followup_reminder, update_settings
from selfcheck.entry.resolution import (
    discrepancy_views,
    load_resolution,
    parse_resolution,
    pending_resolutions,
)
from selfcheck.entry.saving import SaveResult, save_entry
from selfcheck.entry.screen import build_screen
from selfcheck.entry.second import (
    QueueState,
    load_second_entry,
    save_second_entry,
    second_entry_queue,
    second_entry_values,
    start_second_entry,
)
from selfcheck.entry.values import Answers, Values, not_typed_errors, parse_values
from selfcheck.journey import operations as journey
from selfcheck.journey.forms import CODE_MESSAGES
from selfcheck.platform import clock, codes, security
from selfcheck.platform.db import commit_or_rollback, get_session
from selfcheck.platform.i18n import select_locale
from selfcheck.platform.labels import FORM_LABELS
from selfcheck.platform.models import Beneficiary, Response, SecondEntry, StaffUser, Structure
from selfcheck.questionnaire.model import FORM_RULES, NO_ANSWER, Definition, FormKind

blueprint = Blueprint("entry", __name__, url_prefix="/staff/entry")

Rendered = str | tuple[str, int] | HttpResponse

# reason -> (status, message). Codes' own problems use the code messages of the journey.
PROBLEMS: Mapping[str, tuple[int, object]] = {
    "unknown_code": (
        422,
        _l("Ce code n'existe pas. Vérifiez chaque caractère sur le questionnaire papier."),
    ),
    # A structure the staff member may not see: said as for one that does not exist.
    "other_structure": (404, _l("Cette structure n'existe pas.")),
    "already_entered": (
        409,
        _l("Ce questionnaire est déjà saisi pour ce code. Rien n'a été créé en double."),
    ),
    "answered_online": (
        409,
        _l("Cette personne a déjà rempli ce questionnaire en ligne. Rien n'a été créé en double."),
    ),
    "in_progress_online": (
        409,
        _l(
            "Cette personne a commencé ce questionnaire en ligne : elle peut le finir avec son "
            "code. Rien n'a été créé en double."
        ),
    ),
    "after_without_before": (
        409,
        _l(
            "Ce code n'a pas de questionnaire de départ. Saisissez d'abord le questionnaire de "
            "départ, ou choisissez le questionnaire rétrospectif."
        ),
    ),
    "retro_with_pair": (
        409,
        _l("Ce code a déjà un questionnaire de départ : choisissez le questionnaire de fin."),
    ),
    "followup_without_end": (
        409,
        _l(
            "Ce code n'a pas encore de questionnaire de fin envoyé : le questionnaire de suivi "
            "vient après lui. Saisissez d'abord le questionnaire de fin."
        ),
    ),
    "followup_not_planned": (
        409,
        _l(
            "Cette structure ne prévoit pas de second questionnaire de suivi : choisissez le "
            "questionnaire de suivi. Rien n'a été enregistré."
        ),
    ),
    "pair_with_retro": (
        409,
        _l(
            "Ce code a déjà un questionnaire rétrospectif : il n'a pas de questionnaire de "
            "départ ni de fin."
        ),
    ),
    "not_found": (404, _l("Cette saisie n'existe pas.")),
    "not_paper": (
        409,
        _l("Ce questionnaire a été rempli en ligne par la personne : il ne se saisit pas ici."),
    ),
    "blind": (
        403,
        _l(
            "Vous faites la seconde saisie de ce questionnaire : la première saisie vous reste "
            "cachée jusqu'à la fin de la vôtre."
        ),
    ),
    "own_entry": (
        403,
        _l(
            "Vous avez saisi ou corrigé ce questionnaire : la seconde saisie doit être faite par "
            "une autre personne."
        ),
    ),
    "second_entry_not_wanted": (
        409,
        _l("Ce questionnaire n'a pas été tiré au sort pour une seconde saisie."),
    ),
    "second_entry_taken": (
        409,
        _l("Une autre personne fait déjà la seconde saisie de ce questionnaire."),
    ),
    "second_entry_done": (409, _l("La seconde saisie de ce questionnaire est déjà terminée.")),
    "second_entry_not_started": (
        409,
        _l("Commencez la seconde saisie depuis la liste des questionnaires à saisir deux fois."),
    ),
    "second_entry_not_done": (409, _l("La seconde saisie de ce questionnaire n'est pas finie.")),
    "bad_settings": (422, _l("Ces réglages ne sont pas possibles.")),
}
EMPTY_CODE = _l("Tapez le code écrit sur le questionnaire, ou scannez son QR code.")
FORM_NAMES = FORM_LABELS
ENTRY_ACTIONS = ("save", "finish")


def _definition() -> Definition:
    definition: Definition = current_app.extensions["selfcheck.definition"]
    return definition


def _user() -> StaffUser:
    user = current_staff()
    assert user is not None  # @requires ran first
    return user


def _visible_structures(user: StaffUser) -> list[Structure]:
    structures = list(get_session().scalars(select(Structure).order_by(Structure.name)))
    allowed = set(visible_structure_ids(user, structures))
    return [s for s in structures if s.id in allowed]


def _structure_by_id(raw: str) -> Structure | None:
    if not (raw.isascii() and raw.isdigit() and len(raw) < 10):
        return None
    return get_session().get(Structure, int(raw))


def _problem(error: EntryError) -> tuple[int, str]:
    if error.reason == "invalid_code" and error.problem is not None:
        message = EMPTY_CODE if error.problem is codes.CodeProblem.EMPTY else None
        return 422, str(message or CODE_MESSAGES[error.problem])
    if error.reason == "followup_not_open" and error.opens_on is not None:
        return 409, gettext(
            "Le questionnaire de suivi de ce code ne s'ouvre que le %(date)s : des réponses "
            "données avant ne diraient pas ce qui est resté. Rien n'a été enregistré. "
            "Saisissez-le à partir de cette date.",
            date=format_date(error.opens_on, "long"),
        )
    status, message = PROBLEMS.get(error.reason, (409, PROBLEMS["not_found"][1]))
    return status, str(message)


# Problems of the double-entry workflow (not started, taken, done…): back to the list, with
# the message, rather than an error page.
WORKFLOW = frozenset(
    {
        "second_entry_not_wanted",
        "second_entry_taken",
        "second_entry_done",
        "second_entry_not_started",
        "second_entry_not_done",
    }
)


def _problem_page(
    error: EntryError, back: str | None = None, redirect_queue: bool = False
) -> Rendered:
    status, message = _problem(error)
    if redirect_queue and back and error.reason in WORKFLOW:
        flash(message)
        return redirect(back)
    link = None
    if error.response is not None and error.reason in ("already_entered",):
        link = url_for("entry.form", response_id=error.response.id)
    return render_template(
        "staff/entry_problem.html",
        message=message,
        link=link,
        back=back or url_for("entry.index"),
    ), status


def _languages() -> list[str]:
    languages: tuple[str, ...] = current_app.config["SELFCHECK_LANGUAGES"]
    return list(languages)


def _paper_locale(chosen: str | None) -> str:
    return chosen if chosen in _languages() else select_locale()


# --- find or create ------------------------------------------------------------------------


@blueprint.before_request
def _no_code_in_the_address() -> HttpResponse | None:
    """`?code=<code>` (a person's page link before round 23): the page without it."""
    found: HttpResponse | None = without_code_argument("entry.index", "code")
    return found


@blueprint.route("/", methods=["GET", "POST"])
@requires(Permission.ENTER)
def index() -> Rendered:
    user = _user()
    by_code = OpenByCodeForm(request.form if request.form.get("action") == "code" else None)
    if request.method == "GET" and request.args.get("person"):
        # From a person's page: their database id, never their code (docs/security.md).
        found = _person_of(user, request.args.get("person", ""))
        by_code.code.data = found.code if found is not None else None
    without = OpenWithoutCodeForm(request.form if request.form.get("action") == "new" else None)
    context: dict[str, Any] = {"by_code": by_code, "without": without}
    if request.method == "POST":
        action = request.form.get("action")
        if action == "code":
            return _open_by_code(user, by_code, context)
        if action == "new":
            return _open_without_code(user, without, context)
        abort(400)
    return _render_index(user, context)


def _person_of(user: StaffUser, raw: str) -> Beneficiary | None:
    """The person with this id (as the address writes it) that `user` may see, else None."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10:
        return None
    return journey.find_person_by_id(get_session(), user, int(raw))


def _render_index(user: StaffUser, context: dict[str, Any], status: int = 200) -> Rendered:
    structures = _visible_structures(user) if user.structure_id is None else []
    return render_template(
        "staff/entry_index.html",
        token=secrets.token_urlsafe(24),
        structures=structures,
        current=select_locale(),
        form_names=FORM_NAMES,
        # Every form can be typed for a code; only the forms that start a journey without one.
        by_code_kinds=tuple(kind.value for kind in FormKind),
        new_kinds=tuple(kind.value for kind, rule in FORM_RULES.items() if rule.opens_code),
        **context,
    ), status


def _open_by_code(user: StaffUser, form: OpenByCodeForm, context: dict[str, Any]) -> Rendered:
    if not form.validate():
        context["form_error"] = form.form.errors[0]
        return _render_index(user, context, 422)
    guess = security.reserve_staff_code_lookup(user.id, user.structure_id)
    try:
        response = open_entry(
            get_session(),
            _definition(),
            user,
            form.code.data or "",
            FormKind(form.form.data),
            _paper_locale(form.lang.data),
            journey.wording_of(form.wording.data),
            clock.now(),
            clock.zone_in(current_app.config),
        )
    except EntryError as error:
        if error.reason != "unknown_code":
            guess.refund()  # a typo or a code of one's own: not a guess
        status, message = _problem(error)
        context["code_error"] = message
        if error.reason == "already_entered" and error.response is not None:
            context["existing"] = error.response
        return _render_index(user, context, status)
    commit_or_rollback(get_session())
    guess.refund()
    return redirect(url_for("entry.form", response_id=response.id))


def _open_without_code(
    user: StaffUser, form: OpenWithoutCodeForm, context: dict[str, Any]
) -> Rendered:
    if not form.validate():
        problems = form.form.errors or form.token.errors
        context["new_error"] = problems[0]
        return _render_index(user, context, 422)
    db = get_session()
    structure = user.structure
    if structure is None:
        structure = _structure_by_id(form.structure.data or "")
        if structure is None:
            context["new_error"] = gettext("Choisissez une structure.")
            return _render_index(user, context, 422)
    try:
        response = open_uncoded(
            db,
            _definition(),
            user,
            structure,
            FormKind(form.form.data),
            _paper_locale(form.lang.data),
            form.token.data,
            journey.wording_of(form.wording.data),
        )
    except EntryError as error:
        status, message = _problem(error)
        context["new_error"] = message
        return _render_index(user, context, status)
    commit_or_rollback(db)
    return redirect(url_for("entry.form", response_id=response.id))


# --- typing a form: the first entry and the blind second one, one handler --------------------


@blueprint.route("/<int:response_id>", methods=["GET", "POST"])
@requires(Permission.ENTER, keep_post=True)
def form(response_id: int) -> Rendered:
    return _typing(response_id, second=False)


@blueprint.route("/second/<int:response_id>", methods=["GET", "POST"])
@requires(Permission.SECOND_ENTRY, keep_post=True)
def second(response_id: int) -> Rendered:
    return _typing(response_id, second=True)


@dataclass(frozen=True)
class _Typed:
    """One paper form being typed: the response, and the blind second entry if it is one."""

    response: Response
    second_entry: SecondEntry | None

    @property
    def second(self) -> bool:
        return self.second_entry is not None

    def stored_values(self) -> Answers:
        if self.second_entry is not None:  # blind: never the first entry's values
            return second_entry_values(self.second_entry)
        return journey.answers_of(self.response)


def _typing(response_id: int, *, second: bool) -> Rendered:
    """GET shows the entry screen, POST saves what was typed (and finishes if asked).

    The same steps for both entries; they differ in what is loaded (the response, or the
    user's own second entry of it), where values are saved, and where the user goes next.
    """
    user = _user()
    db = get_session()
    definition = _definition()
    queue = url_for("entry.second_entries") if second else None
    try:
        typed = _load_typed(db, user, response_id, second)
    except EntryError as error:
        return _problem_page(error, back=queue, redirect_queue=second)
    kind = FormKind(typed.response.form)
    if request.method == "GET":
        pending = take_pending_post(user, request.path)
        if pending is not None:
            parsed = parse_values(definition, kind, pending)
            return _render_typing(typed, parsed.values, parsed.errors, restored=True)
        return _render_typing(typed, typed.stored_values())
    action = request.form.get("action", "save")
    if action not in ENTRY_ACTIONS:
        abort(400)
    parsed = parse_values(definition, kind, request.form)
    if not parsed.valid:
        return _render_typing(typed, parsed.values, parsed.errors, status=422)
    finish = action == "finish"
    # A finished first entry being corrected (a second entry is never "edited": it is typed
    # blind, once, of a form that is always finished).
    edited = typed.response.is_submitted and not second
    try:
        result = _save_typed(db, definition, user, typed, parsed.values, finish)
    except EntryError as error:  # a second entry finished meanwhile (a double click)
        return _problem_page(error, back=queue, redirect_queue=True)
    commit_or_rollback(db)
    if not result.saved:  # a finished form must stay complete
        errors = not_typed_errors(result.missing)
        return _render_typing(typed, parsed.values, errors, status=422)
    if finish and result.missing:
        errors = not_typed_errors(result.missing)
        return _render_typing(typed, typed.stored_values(), errors, status=422, saved=True)
    flash(_saved_message(typed, result, finish, edited))
    if finish and not edited:
        return redirect(queue or url_for("entry.index"))
    return redirect(url_for(_endpoint(second), response_id=typed.response.id))


def _endpoint(second: bool) -> str:
    return "entry.second" if second else "entry.form"


def _load_typed(db: Session, user: StaffUser, response_id: int, second: bool) -> _Typed:
    if second:
        response, second_entry = load_second_entry(db, user, response_id)
        return _Typed(response, second_entry)
    return _Typed(load_paper_response(db, user, response_id), None)


def _save_typed(
    db: Session,
    definition: Definition,
    user: StaffUser,
    typed: _Typed,
    values: Values,
    finish: bool,
) -> SaveResult:
    if typed.second_entry is not None:
        return save_second_entry(
            db, definition, user, typed.response, typed.second_entry, values, finish
        )
    return save_entry(db, definition, user, typed.response, values, finish)


def _saved_message(typed: _Typed, result: SaveResult, finish: bool, edited: bool) -> str:
    code = codes.display(typed.response.beneficiary.code)
    if typed.second_entry is not None:
        if not finish:
            return str(
                gettext("Seconde saisie enregistrée. Vous pourrez la reprendre depuis la liste.")
            )
        differing = typed.second_entry.differing_fields
        if not differing:
            return str(
                gettext(
                    "Seconde saisie du code %(code)s terminée : identique à la première.", code=code
                )
            )
        return str(
            ngettext(
                "Seconde saisie du code %(code)s terminée : %(num)d écart avec la première, "
                "à résoudre par un ou une responsable.",
                "Seconde saisie du code %(code)s terminée : %(num)d écarts avec la première, "
                "à résoudre par un ou une responsable.",
                differing,
                code=code,
            )
        )
    if edited:
        return str(gettext("Modifications enregistrées pour le code %(code)s.", code=code))
    if finish:
        message = str(gettext("Questionnaire du code %(code)s saisi et terminé.", code=code))
        if result.double_entry_wanted:
            message += " " + gettext(
                "Il est tiré au sort pour une seconde saisie, par une autre personne."
            )
        return message
    return str(
        gettext(
            "Saisie enregistrée. Pour la reprendre plus tard, tapez de nouveau le code %(code)s.",
            code=code,
        )
    )


def _render_typing(
    typed: _Typed,
    values: Mapping[str, Sequence[str]],
    errors: Mapping[str, Sequence[str]] | None = None,
    status: int = 200,
    restored: bool = False,
    saved: bool = False,
) -> tuple[str, int]:
    """The one entry screen, for a first entry or a blind second one."""
    definition = _definition()
    response = typed.response
    kind = FormKind(response.form)
    # Blind second entry: only its own values are ever put on the page (see _Typed).
    screen = build_screen(definition, kind, values, errors)
    entered_by = None
    if not typed.second and response.entered_by_id is not None:
        found = get_session().get(StaffUser, response.entered_by_id)
        entered_by = found.email if found else None
    return render_template(
        "staff/entry_form.html",
        screen=screen,
        response=response,
        form_title=definition.titles[kind],
        code=response.beneficiary.code,
        second=typed.second,
        submitted=response.is_submitted and not typed.second,
        entered_by=entered_by,
        action_url=url_for(_endpoint(typed.second), response_id=response.id),
        NO_ANSWER=NO_ANSWER,
        restored=restored,
        saved=saved,
        has_errors=bool(errors),
    ), status


# --- blind second entry: the queue -------------------------------------------------------------


@blueprint.get("/second")
@requires(Permission.SECOND_ENTRY)
def second_entries() -> Rendered:
    user = _user()
    structures = _visible_structures(user)
    ids = [s.id for s in structures]
    lines = second_entry_queue(get_session(), user, ids)
    # Said plainly when no form is drawn because the share is 0 % (the default), with the way
    # to the settings for those who may change it.
    switched_off = [s for s in structures if s.double_entry_percent == 0]
    return render_template(
        "staff/entry_second.html",
        lines=lines,
        form_names=FORM_NAMES,
        states=QueueState,
        switched_off=switched_off,
        all_switched_off=bool(structures) and len(switched_off) == len(structures),
        can_manage=has_permission(user, Permission.MANAGE_STRUCTURE),
    )


@blueprint.post("/second/<int:response_id>/start")
@requires(Permission.SECOND_ENTRY)
def start_second(response_id: int) -> Rendered:
    try:
        start_second_entry(get_session(), _user(), response_id)
    except EntryError as error:
        return _problem_page(error, back=url_for("entry.second_entries"))
    commit_or_rollback(get_session())
    return redirect(url_for("entry.second", response_id=response_id))


# --- differences -------------------------------------------------------------------------------


@blueprint.get("/discrepancies")
@requires(Permission.RESOLVE)
def discrepancies() -> Rendered:
    user = _user()
    ids = [s.id for s in _visible_structures(user)]
    db = get_session()
    definition = _definition()
    return render_template(
        "staff/entry_discrepancies.html",
        rates=discrepancy_rates(db, definition, ids),
        pending=pending_resolutions(db, ids),
        form_names=FORM_NAMES,
    )


@blueprint.route("/discrepancies/<int:response_id>", methods=["GET", "POST"])
@requires(Permission.RESOLVE, keep_post=True)
def resolve(response_id: int) -> Rendered:
    user = _user()
    db = get_session()
    definition = _definition()
    back = url_for("entry.discrepancies")
    try:
        second_entry, response = load_resolution(db, user, response_id)
    except EntryError as error:
        return _problem_page(error, back=back, redirect_queue=True)
    if request.method == "POST":
        chosen, errors = parse_resolution(definition, response, second_entry, request.form)
        if not errors and not chosen:
            errors = {"": [gettext("Choisissez la bonne réponse d'au moins une question.")]}
        if errors:
            return _render_resolve(second_entry, response, request.form, errors, status=422)
        settled = resolution.resolve(db, definition, user, second_entry, response, chosen)
        commit_or_rollback(db)
        flash(
            ngettext(
                "%(num)d écart résolu : la réponse enregistrée est mise à jour.",
                "%(num)d écarts résolus : les réponses enregistrées sont mises à jour.",
                settled,
            )
        )
        if second_entry.resolved_at is not None:
            return redirect(back)
        return redirect(url_for("entry.resolve", response_id=response_id))
    pending = take_pending_post(user, request.path)
    return _render_resolve(second_entry, response, pending, restored=pending is not None)


def _render_resolve(
    second_entry: SecondEntry,
    response: Response,
    posted: MultiDict[str, str] | None = None,
    errors: Mapping[str, Sequence[str]] | None = None,
    status: int = 200,
    restored: bool = False,
) -> tuple[str, int]:
    definition = _definition()
    views = discrepancy_views(definition, response, second_entry, posted, errors)
    return render_template(
        "staff/entry_resolve.html",
        views=views,
        response=response,
        second_entry=second_entry,
        code=response.beneficiary.code,
        form_title=definition.titles[FormKind(response.form)],
        posted=posted or MultiDict(),
        errors=errors or {},
        restored=restored,
        NO_ANSWER=NO_ANSWER,
    ), status


# --- structure settings ------------------------------------------------------------------------


@blueprint.route("/settings", methods=["GET", "POST"])
@requires(Permission.MANAGE_STRUCTURE)
def settings() -> Rendered:
    user = _user()
    structures = _visible_structures(user)
    wanted = request.values.get("structure", "")
    if wanted:
        structure = next((s for s in structures if str(s.id) == wanted), None)
        if structure is None:
            abort(404)  # whether it exists elsewhere or not: no existence oracle
    else:
        own = [s for s in structures if s.id == user.structure_id]
        candidates = own or (structures if len(structures) == 1 else [])
        structure = candidates[0] if candidates else None
    if structure is None:
        return render_template("staff/entry_settings.html", structures=structures, form=None)
    current = {
        "double_entry_percent": str(structure.double_entry_percent),
        "after_due_weeks": str(structure.after_due_weeks),
        "followup_months": str(structure.followup_months),
        "second_followup_months": str(structure.second_followup_months or 0),
    }
    # A setting the post does not carry (an older page) keeps its value; a checkbox is
    # absent when unticked, so it comes from the post alone.
    shown = {
        **current,
        **({"totp_required": "1"} if structure.totp_required else {}),
        **({"followup_reminder": "1"} if structure.followup_reminder else {}),
    }
    form = SettingsForm(
        MultiDict({**current, **request.form.to_dict()})
        if request.method == "POST"
        else MultiDict(shown)
    )
    if request.method == "POST":
        if not form.validate():
            return render_template(
                "staff/entry_settings.html", structures=structures, structure=structure, form=form
            ), 422
        try:
            changed = update_settings(
                get_session(),
                user,
                structure,
                form.double_entry_percent.number,
                form.after_due_weeks.number,
                form.followup_months.number,
                form.second_followup,
            )
            changed |= structure_admin.set_totp_required(
                get_session(), user, structure, bool(form.totp_required.data)
            )
            changed |= set_followup_reminder(
                get_session(), user, structure, bool(form.followup_reminder.data)
            )
        except EntryError as error:
            return _problem_page(error, back=url_for("entry.settings"))
        commit_or_rollback(get_session())
        flash(
            gettext("Réglages enregistrés.")
            if changed
            else gettext("Rien n'a changé : les réglages étaient déjà ceux-là.")
        )
        return redirect(url_for("entry.settings", structure=structure.id))
    return render_template(
        "staff/entry_settings.html", structures=structures, structure=structure, form=form
    )
