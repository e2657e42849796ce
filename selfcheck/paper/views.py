"""Paper questionnaires and progress summaries as PDF: the print screen, after-forms for the
follow-up list, and the summary for the mediator and for the person."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import date
from typing import Any

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
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response as HttpResponse

from selfcheck.accounts.permissions import Permission, can_access_structure, public, requires
from selfcheck.accounts.session import current_staff
from selfcheck.journey import lasting, schedule, summary
from selfcheck.journey import operations as journey
from selfcheck.journey.views import SESSION_PERSON, SESSION_WORDING
from selfcheck.paper import batch, blank_cache
from selfcheck.paper import operations as paper
from selfcheck.paper.forms import BLANK, PrintForm
from selfcheck.platform import clock, codes, jobs, security
from selfcheck.platform.db import get_session
from selfcheck.platform.errors import render_error
from selfcheck.platform.i18n import select_locale
from selfcheck.platform.models import Beneficiary, StaffUser, Structure
from selfcheck.questionnaire.model import Definition, FormKind, Wording
from selfcheck.site import job_views

blueprint = Blueprint("printing", __name__)

Rendered = str | tuple[str, int] | HttpResponse

# File names: ASCII, no spaces, in French like the rest of the product.
FORM_SLUGS = {
    FormKind.BEFORE: "depart",
    FormKind.AFTER: "fin",
    FormKind.RETRO: "retrospectif",
    FormKind.FOLLOWUP: "suivi-mois",
    FormKind.FOLLOWUP_LATE: "second-suivi",
}
LARGE_SUFFIX = "-gros-caracteres"

NO_STRUCTURE = _l(
    "Votre compte n'est rattaché à aucune structure : les codes ne peuvent pas être créés. "
    "Imprimez des questionnaires sans code."
)
REFUSALS = {
    paper.Refusal.INVALID: _l(
        "%(code)s : ce n'est pas un code valide (vérifiez chaque caractère)."
    ),
    paper.Refusal.UNKNOWN: _l("%(code)s : aucune personne n'a ce code."),
    # Worded as an unknown code: never reveal that a code exists in another structure.
    paper.Refusal.OTHER_STRUCTURE: _l("%(code)s : aucune personne n'a ce code."),
}
NO_CODES = _l("Choisissez au moins une personne dans la liste de suivi.")
NO_FOLLOWUP = (
    _l("Pas de questionnaire de suivi à venir"),
    _l(
        "Cette personne n'a pas encore envoyé de questionnaire de fin, ou elle a déjà répondu "
        "à ses questionnaires de suivi : il n'y a pas de date à lui donner."
    ),
)
NOT_DUE = _l(
    "%(code)s : son questionnaire de suivi n'est pas ouvert (pas encore la date, pas de "
    "questionnaire de fin envoyé, ou déjà répondu)."
)
TOO_MANY_CODES = _l("Vous pouvez imprimer au plus 200 questionnaires à la fois.")


def _too_many_pages(error: paper.TooManyPages) -> str:
    return str(
        gettext(
            "Cela ferait %(pages)d pages : au plus %(max)d pages à la fois. Imprimez moins de "
            "questionnaires, ou en plusieurs fois.",
            pages=error.pages,
            max=paper.MAX_PAGES,
        )
    )


def _definition() -> Definition:
    definition: Definition = current_app.extensions["selfcheck.definition"]
    return definition


def _languages() -> tuple[str, ...]:
    languages: tuple[str, ...] = current_app.config["SELFCHECK_LANGUAGES"]
    return languages


def _user() -> StaffUser:
    user = current_staff()
    assert user is not None  # guaranteed by @requires
    return user


def _site_url() -> str:
    return security.site_url_for("journey.enter_code")


def _pdf(content: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(content, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    # Answers about a person: never kept by a shared browser or a proxy.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _own_structure(user: StaffUser) -> Structure | None:
    """Where fresh codes go: the staff member's structure (platform admins have none)."""
    structure = user.structure
    if structure is not None and can_access_structure(user, structure):
        return structure
    return None


def _render_index(
    form: PrintForm, errors: list[tuple[str, str]] | None = None, status: int = 200
) -> tuple[str, int]:
    user = _user()
    return render_template(
        "staff/print.html",
        form=form,
        form_kinds=list(FormKind),
        titles=_definition().titles,
        structure=_own_structure(user),
        errors=errors or [],
        followup_url=url_for("followup.index")
        if "followup.index" in current_app.view_functions
        else None,
        max_copies=paper.MAX_COPIES,
    ), status


@blueprint.get("/staff/print")
@requires(Permission.ENTER)
def index() -> Rendered:
    # The address blank forms print, for the job worker that renders them ahead (it never
    # sees a request; paper/blank_cache.py, selfcheck/prefill.py): a file read once a process.
    blank_cache.remember_site_url(blank_cache.folder(current_app), _site_url())
    return _render_index(PrintForm(languages=_languages(), language=select_locale()))


@blueprint.post("/staff/print")
@requires(Permission.ENTER)
def forms() -> Rendered:
    user = _user()
    form = PrintForm(request.form, languages=_languages())
    if not form.validate():
        errors = [
            (name, str(message)) for name, messages in form.errors.items() for message in messages
        ]
        return _render_index(form, errors, 422)
    kind, locale, large = form.form_kind, form.language.data, bool(form.large.data)
    easy = bool(form.easy.data)
    label = "vierges" if form.kind.data == BLANK else "avec-codes"
    name = f"questionnaires-{FORM_SLUGS[kind]}-{form.count}-{label}-{locale}"
    if easy:
        name += "-facile-a-lire"
    if form.kind.data == BLANK and form.count == 1:  # one blank form: at once (< 0.5 s)
        renderer = paper.renderer(wording=Wording.EASY if easy else Wording.STANDARD)
        try:  # rendered once per form, language, wording, size...: then read (blank_cache)
            content = blank_cache.blank_form(
                renderer,
                kind,
                locale,
                large=large,
                site_url=_site_url(),
                duplex=bool(form.duplex.data),
                cache=blank_cache.folder(current_app),
            )
        except paper.TooManyPages as error:
            return _render_index(form, [("copies", _too_many_pages(error))], 422)
        return _pdf(content, _filename(name, large))
    # A batch: a background job (paper/batch.py), its page shows the progress, then the file.
    structure = None
    if form.kind.data != BLANK:
        structure = _own_structure(user)
        if structure is None:
            return _render_index(form, [("kind", str(NO_STRUCTURE))], 422)
    chosen = batch.params(
        coded=form.kind.data != BLANK,
        structure_id=structure.id if structure is not None else None,
        form=kind,
        locale=locale,
        count=form.count,
        large=large,
        easy=easy,
        duplex=bool(form.duplex.data),
        site_url=_site_url(),
        filename=_filename(name, large),
    )
    return _start_batch(user, chosen, form, "kind")


def _posted_large() -> bool:
    return request.form.get("large") in {"1", "y", "on", "true"}


def _posted_people(user: StaffUser, form: PrintForm) -> list[Beneficiary] | Rendered:
    """The people whose codes the follow-up list posted (`codes`), each in the user's
    structures; or the print page with what is wrong (422): no code, too many, or a refused
    code."""
    raw_codes = [code for code in request.form.getlist("codes") if code.strip()]
    if not raw_codes:
        return _render_index(form, [("codes", str(NO_CODES))], 422)
    if len(raw_codes) > paper.MAX_COPIES:
        return _render_index(form, [("codes", str(TOO_MANY_CODES))], 422)
    people = paper.people_for_codes(get_session(), raw_codes, user)
    if people.refused:
        errors = [("codes", str(REFUSALS[why] % {"code": code})) for code, why in people.refused]
        return _render_index(form, errors, 422)
    return list(people.found)


def _start_batch(
    user: StaffUser, chosen: Mapping[str, Any], form: PrintForm, field: str
) -> Rendered:
    """Queue a print batch and show its progress page; a refused job gives the print page
    again, with the refusal under `field`."""
    session = get_session()
    try:
        job = jobs.enqueue(session, jobs.JobKind.PRINT_BATCH, chosen, user)
    except jobs.JobRefused as refusal:
        session.rollback()
        return _render_index(form, [(field, str(refusal.message))], refusal.status)
    session.commit()
    jobs.dispatch(job)
    return job_views.started(job)


@blueprint.post("/staff/print/after")
@requires(Permission.ENTER)
def after_forms() -> Rendered:
    user = _user()
    large = _posted_large()
    form = PrintForm(languages=_languages(), language=select_locale())
    form.form.data = FormKind.AFTER.value
    people = _posted_people(user, form)
    if not isinstance(people, list):
        return people
    copies = paper.after_copies(people, _languages(), select_locale())
    try:
        content = paper.renderer().questionnaires(copies, large=large, site_url=_site_url())
    except paper.TooManyPages as error:
        return _render_index(form, [("codes", _too_many_pages(error))], 422)
    name = f"questionnaires-{FORM_SLUGS[FormKind.AFTER]}-{len(copies)}-suivi"
    return _pdf(content, _filename(name, large))


@blueprint.post("/staff/print/followup")
@requires(Permission.ENTER)
def followup_forms() -> Rendered:
    """The follow-up forms of the people due (from the follow-up list), as a background job:
    each person's own follow-up (first or second) in the language of their latest answers."""
    user = _user()
    large = _posted_large()
    form = PrintForm(languages=_languages(), language=select_locale())
    form.form.data = FormKind.FOLLOWUP.value
    form.kind.data = BLANK
    people = _posted_people(user, form)
    if not isinstance(people, list):
        return people
    zone = clock.zone_in(current_app.config)
    copies, not_due = [], []
    for person in people:
        state = journey.followup_status(person, clock.now(), zone)
        if state.state is not schedule.FollowupState.OPEN or state.form is None:
            not_due.append(person.code)
            continue
        language = paper.person_locale(person, _languages(), select_locale())
        copies.append(paper.Copy(state.form, language, person.code))
    if not_due:
        errors = [("codes", str(NOT_DUE % {"code": codes.display(code)})) for code in not_due]
        return _render_index(form, errors, 422)
    name = f"questionnaires-{FORM_SLUGS[FormKind.FOLLOWUP]}-{len(copies)}"
    chosen = batch.existing_params(
        copies,
        large=large,
        duplex=False,
        site_url=_site_url(),
        filename=_filename(name, large),
    )
    return _start_batch(user, chosen, form, "codes")


def _staff_person(person_id: int) -> Beneficiary:
    """The person with this database id in the staff member's structures (404 otherwise, as
    for an unknown id). Addressed by id, never by code: the code is a credential and the
    address stays in a shared computer's history (docs/security.md)."""
    person = journey.find_person_by_id(get_session(), _user(), person_id)
    if person is None:
        abort(404)
    return person


@blueprint.get("/staff/people/<int:person_id>/summary.pdf")
@requires(Permission.ENTER)
def summary_pdf(person_id: int) -> HttpResponse:
    """A person's summary for their mediator to hand over, in the person's language."""
    person = _staff_person(person_id)
    result = summary.build_summary(_definition(), person)  # in the person's own wording
    if result is None:  # nothing submitted yet
        abort(404)
    language = paper.person_locale(person, _languages(), select_locale())
    return _summary_response(person, result, language)


@blueprint.get("/staff/people/<int:person_id>/come-back-card.pdf")
@requires(Permission.ENTER)
def come_back_card(person_id: int) -> Rendered:
    """The "come back" card of a person whose follow-up awaits them (code, QR, date, link)."""
    person = _staff_person(person_id)
    come_back_on = _come_back_on(person)
    if come_back_on is None:  # no end form sent yet, or every follow-up answered
        return render_error(409, *NO_FOLLOWUP)
    language = paper.person_locale(person, _languages(), select_locale())
    content = paper.renderer().come_back_card(
        person.code,
        come_back_on,
        _site_url(),
        language,
        structure_name=person.structure.name,
        large=request.args.get("large") == "1",
    )
    return _pdf(content, _filename("carte-revenir", request.args.get("large") == "1"))


@blueprint.get("/summary.pdf")
@public
def my_summary_pdf() -> HttpResponse:
    """The person's own summary, from the code remembered in their session (as /summary).

    Anyone can ask for it: limited per address and per browser session, and rendered once
    per person, language, size and version of their answers (then served from a cache).
    """
    security.reserve(
        ("summary_pdf_ip", security.client_subject()),
        ("summary_pdf_session", security.browser_session_id()),
    )
    person_id = session.get(SESSION_PERSON)
    person = get_session().get(Beneficiary, person_id) if isinstance(person_id, int) else None
    if person is None:
        return redirect(url_for("journey.enter_code", expired=1))
    chosen = session.get(SESSION_WORDING)  # as /summary: this visit's wording, else the form's
    wording = journey.wording_of(chosen) if chosen else None
    result = summary.build_summary(_definition(), person, wording)
    if result is None:
        return redirect(url_for("journey.enter_code"))
    return _summary_response(person, result, select_locale())


# Rendered summaries, by person, language, size, day and version of the answers: a PDF
# costs ~0.4 s of CPU, so asking again for the same one costs nothing. Bounded, per process.
SUMMARY_CACHE_SIZE = 64
_summary_cache: OrderedDict[tuple[object, ...], bytes] = OrderedDict()
_summary_lock = threading.Lock()


def _data_version(person: Beneficiary) -> tuple[object, ...]:
    return tuple((r.id, r.status, str(r.updated_at)) for r in person.responses)


def _come_back_on(person: Beneficiary) -> date | None:
    """The day this person's next follow-up opens (None when none awaits them)."""
    opening = journey.come_back_opening(person, clock.now(), clock.zone_in(current_app.config))
    return opening.day if opening is not None else None


def _summary_response(person: Beneficiary, result: summary.Summary, language: str) -> HttpResponse:
    large = request.args.get("large") == "1"
    today = date.today()
    come_back_on = _come_back_on(person)
    key = (person.id, person.code, language, large, today, come_back_on, _data_version(person))
    with _summary_lock:
        content = _summary_cache.get(key)
        if content is not None:
            _summary_cache.move_to_end(key)
    if content is None:
        content = paper.renderer().summary(
            result,
            person.code,
            language,
            large=large,
            site_url=_site_url(),
            today=today,
            come_back_on=come_back_on,
            lasting=lasting.build_lasting(_definition(), person, result.wording),
        )
        with _summary_lock:
            _summary_cache[key] = content
            while len(_summary_cache) > SUMMARY_CACHE_SIZE:
                _summary_cache.popitem(last=False)
    # No code in the file name: it stays in the Downloads folder of shared computers.
    return _pdf(content, _filename(f"progres-{today.isoformat()}", large))


def _filename(stem: str, large: bool) -> str:
    return stem + (LARGE_SUFFIX if large else "") + ".pdf"


@blueprint.get("/staff/team/poster.pdf")
@requires(Permission.MANAGE_STRUCTURE)
def poster() -> HttpResponse:
    """The structure's start-link poster (A4, QR code, short instructions in its languages)."""
    from selfcheck.accounts.admin_views import team_structure
    from selfcheck.paper import poster as posters

    structure = team_structure(_user())
    if structure is None:
        return redirect(url_for("admin.structures"))
    large = request.args.get("large") == "1"
    link = security.site_url_for("journey.start", slug=structure.slug)
    content = posters.render(current_app, structure, link, large=large)
    response = HttpResponse(content, mimetype="application/pdf")
    suffix = "-gros-caracteres" if large else ""
    response.headers["Content-Disposition"] = (
        f'attachment; filename="affiche-{structure.slug}{suffix}.pdf"'
    )
    return response
