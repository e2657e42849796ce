"""Follow-up of the beneficiaries: the list (who owes an 'after' form), one person, deletions."""

from __future__ import annotations

from typing import Any, NamedTuple

from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import format_date, gettext
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as HttpResponse

from selfcheck.accounts.permissions import (
    Permission,
    can_access_structure,
    has_permission,
    requires,
    without_code_argument,
)
from selfcheck.accounts.session import current_staff
from selfcheck.accounts.structures import list_structures
from selfcheck.followup import operations as followup
from selfcheck.followup.operations import PersonStatus, Show, Sort
from selfcheck.journey import operations as journey
from selfcheck.journey import schedule
from selfcheck.platform import clock, codes, sealing
from selfcheck.platform.db import commit_or_rollback, get_session
from selfcheck.platform.labels import CHANNEL_LABELS, FORM_LABELS
from selfcheck.platform.models import Beneficiary, StaffUser, Structure, utcnow
from selfcheck.privacy import operations as privacy

# Why a staff member erases a person (recorded in the audit trail, never whom).
ERASURE_REASONS = (
    (privacy.ErasureReason.PERSON_ASKED.value, _l("La personne a demandé l'effacement.")),
    (
        privacy.ErasureReason.CONSENT_WITHDRAWN.value,
        _l("La personne ne veut plus participer."),
    ),
    (
        privacy.ErasureReason.CREATED_BY_MISTAKE.value,
        _l("Ce code a été créé ou saisi par erreur."),
    ),
)

blueprint = Blueprint("followup", __name__, url_prefix="/staff/people")

Rendered = str | tuple[str, int] | HttpResponse

STATUS_LABELS = {
    PersonStatus.NOT_STARTED: _l("Pas encore commencé"),
    PersonStatus.IN_PROGRESS: _l("Questionnaire en cours"),
    PersonStatus.BEFORE_DONE: _l("Départ rempli, fin à faire"),
    PersonStatus.AFTER_PENDING: _l("Fin commencée, pas envoyée"),
    PersonStatus.COMPLETE: _l("Départ et fin remplis"),
    PersonStatus.RETROSPECTIVE: _l("Questionnaire rétrospectif rempli"),
}
# The filter's choices, in the select's order (every `Show` needs one: a test checks it).
SHOW_LABELS = {
    Show.ALL: _l("Toutes les personnes"),
    Show.BEFORE_ONLY: _l("Départ seulement (fin pas encore envoyée)"),
    Show.AFTER_DUE: _l("Questionnaire de fin en retard"),
    Show.FOLLOWUP_DUE: _l("Questionnaire de suivi à faire (ouvert, pas envoyé)"),
    Show.COMPLETE: _l("Départ et fin remplis"),
    Show.NOT_STARTED: STATUS_LABELS[PersonStatus.NOT_STARTED],
    Show.IN_PROGRESS: STATUS_LABELS[PersonStatus.IN_PROGRESS],
    Show.BEFORE_DONE: STATUS_LABELS[PersonStatus.BEFORE_DONE],
    Show.AFTER_PENDING: STATUS_LABELS[PersonStatus.AFTER_PENDING],
    Show.RETROSPECTIVE: STATUS_LABELS[PersonStatus.RETROSPECTIVE],
}
SORT_LABELS = {
    Sort.RECENT: _l("Dernière venue, la plus récente d'abord"),
    Sort.OLDEST: _l("Dernière venue, la plus ancienne d'abord"),
    Sort.FIRST_RECENT: _l("Première venue, la plus récente d'abord"),
    Sort.FIRST_OLDEST: _l("Première venue, la plus ancienne d'abord"),
}
# Where one person stands with their follow-up months later (issue 15), on their page.
FOLLOWUP_STATE_LABELS = {
    schedule.FollowupState.WAITING: _l("Questionnaire de suivi : il s'ouvre le %(date)s."),
    schedule.FollowupState.OPEN: _l(
        "Questionnaire de suivi : ouvert depuis le %(date)s, pas encore envoyé. La personne "
        "y arrive directement avec son code, ou vous pouvez saisir sa version papier."
    ),
    schedule.FollowupState.DONE: _l("Questionnaire de suivi : envoyé."),
}  # FollowupState.NO_END: no end form sent, nothing to say yet
# The printable list holds at most this many people (a few pages of paper per hundred).
PRINT_LIST_MAX = 1000
RESPONSE_STATUS_LABELS = {
    "in_progress": _l("en cours"),
    "submitted": _l("envoyé"),
}
# Other blueprints (paper forms, data entry) may not be installed: links appear when they are.
PRINT_AFTER = "printing.after_forms"
SUMMARY_PDF = "printing.summary_pdf"
ENTRY = "entry.index"
COME_BACK_CARD = "printing.come_back_card"
PRINT_FOLLOWUP = "printing.followup_forms"


@blueprint.before_request
def _no_code_in_the_address() -> HttpResponse | None:
    """`?q=<code>` (the search before round 23): the list without it, even signed out."""
    found: HttpResponse | None = without_code_argument("followup.index", "q")
    return found


def _user() -> StaffUser:
    user = current_staff()
    assert user is not None  # @requires saw to it
    return user


def _endpoint(name: str) -> bool:
    return name in current_app.view_functions


def _chosen_structure(user: StaffUser) -> Structure | None:
    """?structure=<slug> (platform administrators choose), else the user's own structure."""
    slug = request.args.get("structure")
    if slug:
        found = journey.find_structure(get_session(), slug)
        if found is None or not can_access_structure(user, found):
            abort(404)
        return found
    return user.structure


def _person(person_id: int) -> Beneficiary:
    """The person with this database id in a structure the user may see; 404 otherwise.

    The staff pages address people by their id, never by their code: a code is a credential
    (typed at /code it opens the person's answers) and a shared computer's browser history
    keeps every address (docs/security.md)."""
    person = journey.find_person_by_id(get_session(), _user(), person_id)
    if person is None:
        abort(404)
    return person


def _labels() -> dict[str, object]:
    return {
        "status_labels": STATUS_LABELS,
        "form_labels": FORM_LABELS,
        "channel_labels": CHANNEL_LABELS,
        "response_status_labels": RESPONSE_STATUS_LABELS,
    }


def _page_number(raw: str | None) -> int | None:
    """The page asked for: 1 when none; None when it is not a whole number from 1."""
    if raw is None or raw == "":
        return 1
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or int(raw) < 1:
        return None
    return int(raw)


class ListQuery(NamedTuple):
    """What the list's query string asks for, each bad value replaced by its default."""

    show: Show
    sort: Sort
    typed: str  # the code searched for, as typed (shown again in the form)
    search: str  # its normalised part ("" when none, or unreadable)
    page: int


def _read_query(errors: dict[str, str], source: MultiDict[str, str], typed: str = "") -> ListQuery:
    """The list's filters, from the query string or the search form (`source`) and the code
    searched for (`typed`, never in an address). Bad input is said plainly in `errors` (above
    the list, which then shows what it can: never a 500)."""
    show = Show.lookup(source.get("show"))
    if show is None:
        errors["show"] = gettext("Ce choix n'existe pas : choisissez dans la liste.")
        show = Show.ALL
    sort = Sort.lookup(source.get("sort"))
    if sort is None:
        errors["sort"] = gettext("Cet ordre n'existe pas : choisissez dans la liste.")
        sort = Sort.RECENT
    typed = typed.strip()
    try:
        search = codes.normalise_part(typed)
    except codes.InvalidCode as error:
        search = ""
        errors["q"] = (
            gettext("Un code a au plus 9 caractères : tapez-en moins.")
            if error.problem is codes.CodeProblem.LENGTH
            else gettext(
                "Un code n'a que des chiffres et des lettres (sans I, L, O ni U) : "
                "vérifiez ce que vous avez tapé."
            )
        )
    page = _page_number(source.get("page"))
    if page is None:
        errors["page"] = gettext("Le numéro de page doit être un nombre entier à partir de 1.")
        page = 1
    return ListQuery(show, sort, typed, search, page)


# The code searched for is kept in the staff member's session (sealed under the app's secret
# key), never in an address: the search form is a POST, answered by a redirect to the list
# with `search=1` (pagination, the printable version and reloading keep it).
SEARCH_KEY = "people_search"
_SEARCH_PURPOSE = b"selfcheck: people search"


def _hold_search(structure: Structure, typed: str) -> None:
    """Remember the code (or part) searched for in `structure` ("": forget it)."""
    if not typed:
        session.pop(SEARCH_KEY, None)
        return
    value = f"{structure.id}:{typed}"
    session[SEARCH_KEY] = sealing.seal(value, str(current_app.secret_key), _SEARCH_PURPOSE)


def _held_search(structure: Structure) -> str:
    """The code searched for in `structure` when the address asks for it (`search=1`)."""
    stored = session.get(SEARCH_KEY)
    if request.args.get("search") != "1" or not isinstance(stored, str):
        return ""
    try:
        value = sealing.unseal(stored, str(current_app.secret_key), _SEARCH_PURPOSE)
    except ValueError:  # not base64 (never written so by the server)
        return ""
    structure_id, _, typed = value.partition(":")
    return typed if structure_id == str(structure.id) else ""


@blueprint.route("/", methods=["GET", "POST"])
@requires(Permission.BACKOFFICE)
def index() -> Rendered:
    user = _user()
    db = get_session()
    structure = _chosen_structure(user)
    if structure is None:
        if request.method == "POST":
            abort(404)
        structures = [s for s in list_structures(db) if can_access_structure(user, s)]
        return render_template("staff/followup_choose.html", structures=structures)
    errors: dict[str, str] = {}
    if request.method == "POST":
        query = _read_query(errors, request.form, request.form.get("q", "")[:40])
        _hold_search(structure, query.search and query.typed)
        if not errors:
            args = _list_args(query.show, query.sort, query.search)
            return redirect(_list_url(user, structure, **args))
    else:
        query = _read_query(errors, request.args, _held_search(structure))
    return _render_list(structure, query, errors)


def _render_list(structure: Structure, query: ListQuery, errors: dict[str, str]) -> Rendered:
    """The list (or its printable version) of `structure` as `query` asks, with `errors` said
    above it (400)."""
    db = get_session()
    show, sort, typed, search, page = query
    # The printable list; with a bad value, the screen with its form says what to correct.
    printable = request.args.get("print") == "1" and not errors
    listing = followup.list_people(
        db,
        structure,
        show,
        page,
        search=search,
        sort=sort,
        page_size=PRINT_LIST_MAX if printable else None,
        now=clock.now(),
        zone=clock.zone_in(current_app.config),
    )
    beyond = listing.requested_page > listing.pages
    params = {
        "structure": request.args.get("structure") or None,
        **_list_args(show, sort, search),
    }
    if printable:
        return render_template(
            "staff/followup_print.html",
            structure=structure,
            listing=listing,
            show=show,
            search=typed,
            part=search,
            sort=sort,
            show_labels=SHOW_LABELS,
            sort_labels=SORT_LABELS,
            params=params,
            limit=PRINT_LIST_MAX,
            printed_on=utcnow(),
            errors=errors,
            **_labels(),
        )
    can_print = _endpoint(PRINT_AFTER)
    due_codes = (
        followup.after_due_codes(db, structure, limit=followup.PRINT_BATCH)
        if can_print and listing.after_due
        else []
    )
    html = render_template(
        "staff/followup.html",
        structure=structure,
        structure_arg=request.args.get("structure") or None,
        listing=listing,
        show=show,
        shows=list(Show),
        show_labels=SHOW_LABELS,
        sort=sort,
        sort_labels=SORT_LABELS,
        search=typed,
        part=search,
        params=params,
        errors=errors,
        beyond=beyond,
        print_url=url_for(PRINT_AFTER) if can_print else None,
        due_codes=due_codes,
        **_followup_due(structure),
        **_labels(),
    )
    return html, 400 if errors else 200


def _list_args(show: Show, sort: Sort, search: str) -> dict[str, str | None]:
    """The list's address arguments for these filters: never the code searched for."""
    return {
        "show": show.value if show is not Show.ALL else None,
        "search": "1" if search else None,
        "sort": sort.value if sort is not Sort.RECENT else None,
    }


def _followup_due(structure: Structure) -> dict[str, object]:
    """The follow-up months later (issue 15): who is due, overdue, done; print those due."""
    overview = followup.followup_overview(
        get_session(), structure, clock.now(), clock.zone_in(current_app.config)
    )
    return {
        "followup_due": overview,
        "followup_print_url": url_for(PRINT_FOLLOWUP) if _endpoint(PRINT_FOLLOWUP) else None,
        "followup_months": structure.followup_months,
    }


@blueprint.get("/<int:person_id>")
@requires(Permission.BACKOFFICE)
def person(person_id: int) -> Rendered:
    user = _user()
    found = _person(person_id)
    has_submitted = any(r.is_submitted for r in found.responses)
    standing = journey.followup_status(found, clock.now(), clock.zone_in(current_app.config))
    label = FOLLOWUP_STATE_LABELS.get(standing.state)
    opening = standing.opening
    return render_template(
        "staff/followup_person.html",
        person=found,
        responses=followup.responses_of(get_session(), found),
        can_delete=has_permission(user, Permission.DELETE),
        can_erase=has_permission(user, Permission.ERASE),
        summary_pdf_url=(
            url_for(SUMMARY_PDF, person_id=found.id)
            if _endpoint(SUMMARY_PDF) and has_submitted
            else None
        ),
        entry_url=url_for(ENTRY, person=found.id) if _endpoint(ENTRY) else None,
        come_back_card_url=(
            url_for(COME_BACK_CARD, person_id=found.id)
            if _endpoint(COME_BACK_CARD)
            and journey.come_back_opening(found, clock.now(), clock.zone_in(current_app.config))
            is not None
            else None
        ),
        followup_url=_list_url(user, found.structure),
        deleted=request.args.get("deleted"),
        followup_standing=(
            str(label) % {"date": format_date(opening.day, "long") if opening else ""}
            if label is not None
            else None
        ),
        **_labels(),
    )


@blueprint.route("/<int:person_id>/responses/<int:response_id>/delete", methods=["GET", "POST"])
@requires(Permission.DELETE)
def delete_response(person_id: int, response_id: int) -> Rendered:
    found = _person(person_id)
    response = followup.find_response(found, response_id)
    if response is None:
        abort(404)
    if request.method == "POST":
        form = response.form
        followup.delete_response(get_session(), _user(), response)
        commit_or_rollback(get_session())
        return redirect(url_for("followup.person", person_id=found.id, deleted=form))
    return render_template(
        "staff/followup_delete.html",
        person=found,
        response=response,
        answers=sum(len(values) for values in journey.answers_of(response).values()),
        **_labels(),
    )


def _list_url(user: StaffUser, structure: Structure, **flags: Any) -> str:
    """The follow-up list of `structure`, named in the address only when it is not the user's
    own; `flags` say what was just done (deleted=1, erased=1)."""
    return url_for(
        "followup.index",
        structure=structure.slug if user.structure_id != structure.id else None,
        **flags,
    )


@blueprint.route("/<int:person_id>/delete", methods=["GET", "POST"])
@requires(Permission.DELETE)
def delete_person(person_id: int) -> Rendered:
    user = _user()
    found = _person(person_id)
    if request.method == "POST":
        structure = found.structure
        followup.delete_person(get_session(), user, found)
        commit_or_rollback(get_session())
        return redirect(_list_url(user, structure, deleted=1))
    return render_template(
        "staff/followup_delete.html", person=found, response=None, answers=None, **_labels()
    )


@blueprint.route("/<int:person_id>/erase", methods=["GET", "POST"])
@requires(Permission.ERASE)
def erase_person(person_id: int) -> Rendered:
    """The person asked their mediator to erase them (GDPR): unlike a deletion, the audit
    trail keeps neither their code nor their answers."""
    user = _user()
    found = _person(person_id)
    error = None
    if request.method == "POST":
        try:
            reason = privacy.ErasureReason(request.form.get("reason", ""))
        except ValueError:
            reason = None
        if reason is None or reason is privacy.ErasureReason.PERSON_ONLINE:
            error = gettext("Choisissez pourquoi cette personne est effacée.")
            return render_template(
                "staff/followup_erase.html",
                person=found,
                reasons=ERASURE_REASONS,
                error=error,
                **_labels(),
            ), 422
        structure = found.structure
        privacy.erase_by_code(get_session(), found.code, by=user, reason=reason)
        commit_or_rollback(get_session())
        privacy.scrub_storage(get_session())
        return redirect(_list_url(user, structure, erased=1))
    return render_template(
        "staff/followup_erase.html", person=found, reasons=ERASURE_REASONS, error=error, **_labels()
    )
