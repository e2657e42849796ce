"""The beneficiary journey: start, pages, check your answers, done, summary, resume by code."""

from __future__ import annotations

import dataclasses
import functools
import math
import secrets
from collections.abc import Callable
from zoneinfo import ZoneInfo

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
from flask_babel import format_date
from markupsafe import Markup
from sqlalchemy import Connection
from werkzeug.wrappers import Response as HttpResponse

from selfcheck.accounts.permissions import public
from selfcheck.journey import lasting, page_view, reminders, summary
from selfcheck.journey import operations as journey
from selfcheck.journey.forms import UNKNOWN_CODE, CodeForm, ReminderForm, StartForm
from selfcheck.journey.page_cache import EXTENSION_KEY as PAGES_KEY
from selfcheck.journey.page_cache import (
    REQUEST_CODE,
    REQUEST_CODE_SPOKEN,
    REQUEST_CSRF,
    REQUEST_RESPONSE,
    PageCache,
    Template,
    fill,
)
from selfcheck.journey.registry import PageFormFactory
from selfcheck.platform import clock, codes, display, mail, pictograms, security
from selfcheck.platform.db import (
    commit_or_rollback,
    get_db,
    get_session,
    read_connection,
    read_only_session,
)
from selfcheck.platform.errors import ALREADY_SENT_MESSAGE, OTHER_TAB_MESSAGE, render_error
from selfcheck.platform.i18n import select_locale
from selfcheck.platform.models import Beneficiary, Response, Structure
from selfcheck.questionnaire.model import Definition, FormKind, Page, Variable, Wording
from selfcheck.questionnaire.stats import form_stats

blueprint = Blueprint("journey", __name__)

SESSION_RESPONSE = "response_id"
SESSION_PERSON = "beneficiary_id"
# The wording chosen on the start page (standard or easy-read), until a response records it.
SESSION_WORDING = "wording"
WORDING_PARAM = "wording"
ACTIONS = ("next", "back", "pause")
# What a person's session may hold on the journey (with the CSRF secret): anything else (a
# staff sign-in, flashed messages) keeps question pages on Flask's path (`fast_page`).
JOURNEY_SESSION_KEYS = frozenset(
    {"_permanent", SESSION_RESPONSE, SESSION_PERSON, SESSION_WORDING, security.BROWSER_SESSION}
)
# The state a question page's layer in front of Flask (`fast_page`) read before leaving the
# page to Flask's path (not in the page cache yet, a redirect...): (response id, state) in the
# WSGI environ, so that the view does not read it a second time (`_current_state`).
HANDED_STATE = "selfcheck.journey.state"
# The task rows the person was warned about and chose to leave blank (space-separated codes).
CONFIRMED_MISSING = "confirmed_missing"

Rendered = str | tuple[str, int] | HttpResponse


def _definition(wording: Wording | str = Wording.STANDARD) -> Definition:
    """The questionnaire in a wording: same items and codes, standard or easy-read texts."""
    definition: Definition = current_app.extensions["selfcheck.definition"]
    return definition.in_wording(wording)


def _session_wording() -> Wording:
    return journey.wording_of(session.get(SESSION_WORDING))


def _choose_wording() -> None:
    """`?wording=easy` (or standard) on the start page: remembered for this visit."""
    chosen = request.args.get(WORDING_PARAM)
    if chosen in {wording.value for wording in Wording}:
        session[SESSION_WORDING] = chosen


def _forms() -> PageFormFactory:
    factory: PageFormFactory = current_app.extensions["selfcheck.forms"]
    return factory


def _locale() -> str:
    return select_locale()


def _remember(response: Response) -> None:
    # Permanent: the cookie then expires after PERMANENT_SESSION_LIFETIME without a visit
    # (shared computers); answers are saved page by page and the code resumes them.
    session.permanent = True
    session[SESSION_RESPONSE] = response.id
    session[SESSION_PERSON] = response.beneficiary_id
    session[SESSION_WORDING] = journey.wording_of(response.wording).value


def _current_response() -> Response | None:
    response_id = session.get(SESSION_RESPONSE)
    if not isinstance(response_id, int):
        return None
    return journey.load_response(get_session(), response_id)


def _current_state(
    *, only_read: bool = False, lock: bool = False, send: bool = False
) -> journey.ResponseState | None:
    """The open response's state. `only_read`: the request reads nothing else from the
    database (a question page view): no ORM session, and on PostgreSQL no transaction, 2 round
    trips instead of 4 (issue 18, docs/performance.md). `lock`: the response's row locked
    until commit (a page save: `journey.save_locked_page`). `send`: locked too, for sending
    the questionnaire (`journey.submit_locked`), whose commit waits for the disk."""
    response_id = session.get(SESSION_RESPONSE)
    if not isinstance(response_id, int):
        return None
    if only_read:
        # Read moments ago for this request by `fast_page`, on the same kind of connection (no
        # transaction), for the response of the same session cookie: the same read.
        handed = request.environ.get(HANDED_STATE)
        if handed is not None and handed[0] == response_id:
            state: journey.ResponseState | None = handed[1]
            return state
        with read_connection() as connection:
            return journey.load_state(connection, response_id)
    if send:
        return journey.lock_state(get_session(), response_id)
    if lock:
        # A page of an open questionnaire: the person can answer it again if a crash of the
        # database loses it, so its commit need not wait for the disk (`db.no_flush_wait`),
        # unless the operator chose otherwise (SELFCHECK_POSTGRES_PAGE_SAVES_WAIT).
        return journey.lock_state(
            get_session(), response_id, no_flush_wait=not get_db().page_saves_wait
        )
    return journey.load_state(get_session(), response_id)


def _current_beneficiary() -> Beneficiary | None:
    person_id = session.get(SESSION_PERSON)
    if not isinstance(person_id, int):
        return None
    return get_session().get(Beneficiary, person_id)


def _no_session() -> HttpResponse:
    return redirect(url_for("journey.enter_code", expired=1))


@blueprint.get("/")
@public
def home() -> Rendered:
    return render_template("journey/home.html")


@blueprint.route("/s/<slug>", methods=["GET", "POST"])
@public
def start(slug: str) -> Rendered:
    if request.method == "GET":
        return _start_page(slug)
    db = get_session()
    form = StartForm(request.form)
    if not form.validate():
        abort(404 if journey.find_structure(db, slug) is None else 400)
    # The structure and the response already started with this token (a form sent twice),
    # in one statement (issue 18: the start's round trips on PostgreSQL, 9 -> 8).
    structure, resent = journey.find_structure_and_start(db, slug, form.token.data)
    if structure is None:
        abort(404)
    if resent is None and structure.archived_at is not None:
        return _closed(structure)
    if resent is None:
        # A new person each time: limited per address and per browser session, so a bot
        # cannot fill a structure's dashboard (a resent form is not counted).
        security.reserve(
            ("start_ip", security.client_subject()),
            ("start_session", security.browser_session_id()),
        )
    response = journey.start_response(
        db,
        _definition(),
        structure,
        FormKind(form.form.data),
        _locale(),
        form.token.data,
        wording=form.chosen_wording,
        token_unused=resent is None,
    )
    commit_or_rollback(db)
    _remember(response)
    return redirect(url_for("journey.question", page_code=_first_page(response)))


def _start_page(slug: str) -> Rendered:
    """The start page reads the structure and the open response only: on a bare connection,
    without the ORM session (on PostgreSQL without a transaction: 2 round trips, issue 18)."""
    response_id = session.get(SESSION_RESPONSE)
    with read_connection() as connection:
        structure = journey.find_place(connection, slug)
        state = (
            journey.load_state(connection, response_id)
            if structure is not None and not structure.archived and isinstance(response_id, int)
            else None
        )
    if structure is None:
        abort(404)
    if structure.archived:
        return _closed(structure)
    _choose_wording()
    ongoing = state if state is not None and not state.is_submitted else None
    resume = journey.resume_page(_definition(), ongoing, ongoing.answers) if ongoing else None
    return render_template(
        "journey/start.html",
        minutes=_minutes(),
        structure=structure,
        token=secrets.token_urlsafe(24),
        ongoing=ongoing,
        resume_url=(
            url_for("journey.question", page_code=resume.code)
            if resume
            else url_for("journey.check")
        )
        if ongoing
        else None,
    )


def _closed(structure: Structure | journey.Place) -> Rendered:
    """An archived structure takes no new people (410: the link worked once, on purpose no
    more). Those who already answered there keep their code: they finish a started form,
    answer the 'after' one and see their progress (see `_start_before`)."""
    return render_template("journey/closed.html", structure=structure), 410


def _minutes() -> dict[str, int]:
    """Typical answering time of each form, from the definition (rounded up)."""
    return dict(_minutes_of(_definition()))


@functools.lru_cache(maxsize=8)
def _minutes_of(definition: Definition) -> tuple[tuple[str, int], ...]:
    # Computed once per definition: it was a tenth of the start page's CPU (issue 18).
    return tuple((form.value, math.ceil(form_stats(definition, form).minutes)) for form in FormKind)


def _first_page(response: Response) -> str:
    definition = _definition()
    answers = journey.answers_of(response)
    return journey.visible_pages(definition, FormKind(response.form), answers)[0].code


@blueprint.route("/code", methods=["GET", "POST"])
@public
def enter_code() -> Rendered:
    form = CodeForm(request.form if request.method == "POST" else None)
    expired = request.args.get("expired") == "1"
    if request.method == "GET" or not form.validate():
        status = 422 if request.method == "POST" else 200
        return render_template("journey/code.html", form=form, expired=expired), status
    db = get_session()
    # 429 once this address guessed too much; slowed when the whole platform is guessed at.
    guess = security.reserve_code_lookup()
    try:
        beneficiary = journey.find_beneficiary(db, form.code.data)
    except (journey.UnknownCode, codes.InvalidCode):
        form.code.errors = [UNKNOWN_CODE]
        return render_template("journey/code.html", form=form, expired=False), 422
    guess.refund()  # a valid code is not a guess: it always passes
    return _follow_code(beneficiary)


def _zone() -> ZoneInfo:
    return clock.zone_in(current_app.config)


def _route(beneficiary: Beneficiary) -> journey.CodeRoute:
    return journey.route_for_code(beneficiary, clock.now(), _zone())


def come_back_day(beneficiary: Beneficiary) -> str | None:
    """The day to come back with the code, in words of the current language (or None)."""
    opening = journey.come_back_opening(beneficiary, clock.now(), _zone())
    return format_date(opening.day, "long") if opening is not None else None


def _follow_code(beneficiary: Beneficiary) -> Rendered:
    """Send someone who gave their code where it leads (see journey.route_for_code)."""
    route = _route(beneficiary)
    session[SESSION_PERSON] = beneficiary.id
    session.pop(SESSION_RESPONSE, None)
    return _NEXT_STEP_VIEWS[route.step](route)


def _to_summary(_route: journey.CodeRoute) -> Rendered:
    return redirect(url_for("journey.progress"))


def _to_welcome_back(_route: journey.CodeRoute) -> Rendered:
    return redirect(url_for("journey.welcome_back"))


def _being_typed(_route: journey.CodeRoute) -> Rendered:
    # Two people must not fill in the same form: the paper one is being typed in.
    return render_template("journey/being_typed.html")


def _start_before(route: journey.CodeRoute) -> Rendered:
    # A code printed on a paper form: the person answers the same form online instead.
    # Nobody has answered with it yet: a new person, whom an archived structure refuses.
    if route.beneficiary.structure.archived_at is not None:
        return _closed(route.beneficiary.structure)
    response = journey.open_form(
        get_session(),
        _definition(),
        route.beneficiary,
        FormKind.BEFORE,
        _locale(),
        wording=_session_wording(),
    )
    commit_or_rollback(get_session())
    _remember(response)
    return redirect(url_for("journey.question", page_code=_first_page(response)))


def _resume(route: journey.CodeRoute) -> Rendered:
    assert route.response is not None
    _remember(route.response)
    answers = journey.answers_of(route.response)
    page = journey.resume_page(_definition(), route.response, answers)
    if page is None:
        return redirect(url_for("journey.check"))
    return redirect(url_for("journey.question", page_code=page.code))


def _start_followup(route: journey.CodeRoute) -> Rendered:
    # The follow-up is open: the code leads straight to its first page (once per person).
    try:
        response = journey.start_followup(
            get_session(), _definition(), route.beneficiary, _locale(), clock.now(), _zone()
        )
    except journey.JourneyError:
        get_session().rollback()
        return redirect(url_for("journey.come_back"))
    commit_or_rollback(get_session())
    _remember(response)
    return redirect(url_for("journey.question", page_code=_first_page(response)))


def _followup_waiting(_route: journey.CodeRoute) -> Rendered:
    return redirect(url_for("journey.come_back"))


_NEXT_STEP_VIEWS: dict[journey.NextStep, Callable[[journey.CodeRoute], Rendered]] = {
    journey.NextStep.SUMMARY: _to_summary,
    journey.NextStep.START_FOLLOWUP: _start_followup,
    journey.NextStep.FOLLOWUP_WAITING: _followup_waiting,
    journey.NextStep.START_AFTER: _to_welcome_back,
    journey.NextStep.BEING_TYPED: _being_typed,
    journey.NextStep.START_BEFORE: _start_before,
    journey.NextStep.RESUME: _resume,
}


@blueprint.route("/welcome-back", methods=["GET", "POST"])
@public
def welcome_back() -> Rendered:
    """Someone with a submitted 'before' starts the 'after' questionnaire."""
    beneficiary = _current_beneficiary()
    if beneficiary is None:
        return _no_session()
    if _route(beneficiary).step is not journey.NextStep.START_AFTER:
        # An unfinished 'before', a retrospective form or an 'after' already open: no new
        # 'after' form; go where the person's code leads.
        return _follow_code(beneficiary)
    if request.method == "POST":
        response = journey.start_after(get_session(), _definition(), beneficiary, _locale())
        commit_or_rollback(get_session())
        _remember(response)
        return _follow_code(beneficiary)
    return render_template(
        "journey/welcome_back.html",
        beneficiary=beneficiary,
        minutes=_minutes(),
        easy=_reads_easy(beneficiary),
    )


def _reads_easy(beneficiary: Beneficiary) -> bool:
    """The person's wording: the one chosen in this visit, else that of their latest form
    (someone who answered in easy-read and comes back on another device)."""
    chosen = session.get(SESSION_WORDING)
    wording = journey.wording_of(chosen) if chosen else summary.wording_of(beneficiary)
    return wording is Wording.EASY


@blueprint.get("/come-back")
@public
def come_back() -> Rendered:
    """Before the follow-up opens: when to come back with the code (a kind page, 200)."""
    beneficiary = _current_beneficiary()
    if beneficiary is None:
        return _no_session()
    route = _route(beneficiary)
    followup = route.followup
    if route.step is not journey.NextStep.FOLLOWUP_WAITING or followup is None:
        return _follow_code(beneficiary)  # open now, done, or no end form: where it leads
    assert followup.opening is not None
    return render_template(
        "journey/come_back.html",
        code=beneficiary.code,
        day=format_date(followup.opening.day, "long"),
        months=followup.opening.months,
        easy=_reads_easy(beneficiary),
        **_reminder_context(beneficiary, kept=request.args.get("reminder") == "kept"),
    )


def _reminder_context(
    beneficiary: Beneficiary, form: ReminderForm | None = None, kept: bool = False
) -> dict[str, object]:
    """What the reminder block of the done and come-back pages shows (journey/reminders)."""
    offered = reminders.may_leave(beneficiary, mail.configured(), clock.now(), _zone())
    return {
        "reminder_offered": offered,
        "reminder_form": form or ReminderForm(),
        "reminder_kept": kept or (offered and reminders.has_reminder(get_session(), beneficiary)),
    }


@blueprint.post("/reminder")
@public
def reminder() -> Rendered:
    """Leave one e-mail address, with consent, for a single reminder when the follow-up opens.

    Bad input (box unticked, not one plain address): the come-back page again with the
    message, 422, nothing stored. The address is never logged nor audited."""
    beneficiary = _current_beneficiary()
    if beneficiary is None:
        return _no_session()
    route = _route(beneficiary)
    followup = route.followup
    if route.step is not journey.NextStep.FOLLOWUP_WAITING or followup is None:
        return _follow_code(beneficiary)
    if not reminders.may_leave(beneficiary, mail.configured(), clock.now(), _zone()):
        return redirect(url_for("journey.come_back"))
    form = ReminderForm(request.form)
    assert followup.opening is not None
    if not form.validate():
        return render_template(
            "journey/come_back.html",
            code=beneficiary.code,
            day=format_date(followup.opening.day, "long"),
            months=followup.opening.months,
            easy=_reads_easy(beneficiary),
            **_reminder_context(beneficiary, form),
        ), 422
    try:
        reminders.leave(
            get_session(),
            beneficiary,
            form.email.data,
            _locale(),
            security.site_url_for("journey.enter_code"),
            smtp_configured=mail.configured(),
            now=clock.now(),
            zone=_zone(),
        )
    except reminders.ReminderRefused:
        get_session().rollback()
        return redirect(url_for("journey.come_back"))
    commit_or_rollback(get_session())
    return redirect(url_for("journey.come_back", reminder="kept"))


@blueprint.route("/q/<page_code>", methods=["GET", "POST"])
@public
def question(page_code: str) -> Rendered:
    posted = request.method == "POST"
    response_id = session.get(SESSION_RESPONSE)
    if posted and isinstance(response_id, int) and get_db().engine.dialect.name == "postgresql":
        # PostgreSQL: the state read without a transaction nor a lock, and the page saved by
        # one statement committed on its own if the response's row is still the one read
        # (`journey.save_read_page`): 2 round trips instead of 4 (issue 18).
        with read_connection() as connection:
            state = journey.read_state_to_save(connection, response_id)
            shown = _question(page_code, state, connection)
        if shown is not None:
            return shown
        # The row changed in between (a save from another tab, a sending, a paper entry):
        # read again and saved under the row's lock, as SQLite does.
    shown = _question(page_code, _current_state(only_read=not posted, lock=posted))
    assert shown is not None  # only a save on a read state finds its row changed
    return shown


def _question(
    page_code: str, state: journey.ResponseState | None, saving: Connection | None = None
) -> Rendered | None:
    """The question page for `state`, or its save (POST). `saving`: the connection the state
    was read on by `journey.read_state_to_save`, where the page is saved; None when it must be
    read again (the response's row changed since)."""
    posted = request.method == "POST"
    if state is None:
        return _no_session()
    if state.is_submitted:
        return redirect(url_for("journey.done"))
    definition = _definition(state.wording)
    page = definition.screen(state.form, page_code)
    if page is None:
        abort(404)
    answers = state.answers
    if not journey.visible_items(page, state.form, answers):
        # A "which ones?" page whose question does not apply: go where the person should be.
        resume = journey.resume_page(definition, state, answers)
        return redirect(
            url_for("journey.question", page_code=resume.code)
            if resume
            else url_for("journey.check")
        )
    if posted:
        return _save_page(definition, state, page, saving)
    return _render_page(definition, state, page)


def _posted_for_another_response(response_id: int) -> bool:
    """A page sent from another tab, where a different questionnaire was open."""
    return request.form.get("response_id") != str(response_id)


def _other_tab() -> Rendered:
    return render_error(409, *OTHER_TAB_MESSAGE)


def _save_page(
    definition: Definition,
    state: journey.ResponseState,
    page: Page,
    saving: Connection | None = None,
) -> Rendered | None:
    """Save the page: with `lock_state` and `save_locked_page` in the request's transaction,
    or on `saving` (PostgreSQL, `journey.save_read_page`: None when the response's row
    changed since the state was read, nothing written)."""
    action = request.form.get("action", "next")
    if action not in ACTIONS:
        abort(400)
    if _posted_for_another_response(state.id):
        return _other_tab()
    answers = state.answers
    variables = journey.page_variables(page, state.form, answers)
    values, errors = _forms().validate(variables, request.form)
    if errors and action == "next":
        shown = {v.code: request.form.getlist(v.code) for v in variables}
        return _render_page(definition, state, page, shown, errors, status=422)
    # Going back or pausing keeps whatever is valid and leaves the rest as it was.
    keep = {
        code: answers.get(code, ()) if code in errors else value for code, value in values.items()
    }
    if state.row_version is not None:
        assert saving is not None
        written = journey.save_read_page(
            saving, definition, state, page, keep, no_flush_wait=not get_db().page_saves_wait
        )
        if written is None:
            return None
        answers = written
    else:
        # The state was read with the row locked: saved without reading anything more.
        answers = journey.save_locked_page(get_session(), definition, state, page, keep)
        commit_or_rollback(get_session())
    if action == "next":
        missing = journey.unanswered_task_rows(page, state.form, answers)
        confirmed = set(request.form.get(CONFIRMED_MISSING, "").split())
        if missing and not {v.code for v in missing} <= confirmed:
            # Warn once, naming the rows; the same gaps sent again go on.
            saved = dataclasses.replace(state, answers=answers)
            return _render_page(definition, saved, page, missing=missing)
    if action == "pause":
        return redirect(url_for("journey.pause"))
    if action == "back":
        previous = journey.neighbour_page(definition, state.form, page.code, answers, -1)
        target = (
            url_for("journey.question", page_code=previous.code)
            if previous
            else url_for("journey.start", slug=state.structure_slug)
        )
        return redirect(target)
    following = journey.neighbour_page(definition, state.form, page.code, answers, 1)
    if request.form.get("return_to") == "check":
        if following is not None and journey.is_new_follow_up(following, state.form, answers):
            # "Yes" now opens "which ones?": ask it before going back to the check page.
            return redirect(
                url_for("journey.question", page_code=following.code, return_to="check")
            )
        return redirect(url_for("journey.check"))
    if following is None:
        return redirect(url_for("journey.check"))
    return redirect(url_for("journey.question", page_code=following.code))


def step_of(definition: Definition, form: FormKind, page: Page) -> tuple[int, int]:
    """« Étape n sur N » that never changes halfway: a page asked only after a given answer
    ("which ones?") shares the step of the page before it and is not counted in N."""
    step = total = 0
    for candidate in definition.screens(form):
        if any(item.show_if is None for item in candidate.items_for(form)):
            total += 1
        if candidate.code == page.code:
            step = max(total, 1)
    return step, total


PageKey = tuple[object, ...]


def page_key(
    state: journey.ResponseState,
    page: Page,
    variables: tuple[Variable, ...],
    step: tuple[int, int],
    *,
    return_to: bool,
    locale: str,
    display_mode: str,
) -> PageKey:
    """The page cache's key of a question page without errors: what makes the rendered page
    differ (the rest is filled per request, `page_values`). `variables`: the page's
    (`journey.page_variables`). For `_render_page` and for the pages served before Flask
    (`journey.fast_page`)."""
    return (
        locale,
        state.wording,
        state.form,
        page.code,
        tuple(v.code for v in variables),
        *step,
        return_to,
        display_mode,
    )


def _request_values(state: journey.ResponseState, csrf_token: str) -> dict[str, str]:
    return {
        REQUEST_CSRF: csrf_token,
        REQUEST_RESPONSE: str(state.id),
        REQUEST_CODE: codes.display(state.code),
        REQUEST_CODE_SPOKEN: codes.spoken(state.code),
    }


def page_values(
    state: journey.ResponseState, page: Page, variables: tuple[Variable, ...], csrf_token: str
) -> dict[str, str]:
    """What fills a cached page's markers for this request and this person."""
    answers = page_view.state_values(page, state.form, state.answers, variables)
    return _request_values(state, csrf_token) | answers


def _render_page(
    definition: Definition,
    state: journey.ResponseState,
    page: Page,
    shown: dict[str, list[str]] | None = None,
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
    missing: tuple[Variable, ...] = (),
) -> Rendered:
    step, total = step_of(definition, state.form, page)
    return_to = request.values.get("return_to") == "check"
    context = {
        "page": page,
        "form_title": definition.titles[state.form],
        "step": step,
        "total": total,
        "has_errors": bool(errors),
        "return_to": return_to,
        "easy": state.wording is Wording.EASY,
        "missing": missing,
        "confirmed_missing": " ".join(v.code for v in missing),
    }
    placeholders = {
        "csrf_value": REQUEST_CSRF,
        "response_id": REQUEST_RESPONSE,
        "code_display": REQUEST_CODE,
        "code_spoken": REQUEST_CODE_SPOKEN,
    }
    if errors or missing:
        per_request = _request_values(state, security.page_csrf_token())
        questions = page_view.build_questions(
            definition, state.form, page, state.answers, shown, errors or {}
        )
        html = render_template(
            "journey/question.html", questions=questions, **placeholders, **context
        )
        return fill(html, per_request), status
    # Same page for everyone but the request's values and the answers: render once with
    # markers, fill them all per request.
    variables = journey.page_variables(page, state.form, state.answers)
    key = page_key(
        state,
        page,
        variables,
        (step, total),
        return_to=return_to,
        locale=_locale(),
        display_mode=display.current_mode(),
    )

    def render() -> str:
        questions = page_view.build_questions(
            definition, state.form, page, state.answers, placeholders=True
        )
        return render_template(
            "journey/question.html", questions=questions, **placeholders, **context
        )

    cache: PageCache = current_app.extensions[PAGES_KEY]
    values = page_values(state, page, variables, security.page_csrf_token())
    # Cut at its markers once per cached page, then filled by a join (no regular expression
    # over the whole page on every request).
    return cache.get_or_build(key, render, Template.parse).fill(values), status


@blueprint.route("/check", methods=["GET", "POST"])
@public
def check() -> Rendered:
    posted = request.method == "POST"
    # Shown: the state on a bare connection, as a question page (1 round trip on PostgreSQL
    # instead of 4); sent: the state read with the response's row locked, which
    # `journey.submit_locked` sends without reading anything again (issue 18).
    found = _current_state(only_read=not posted, send=posted)
    if found is None:
        return _no_session()
    if found.is_submitted:
        return redirect(url_for("journey.done"))
    definition = _definition(found.wording)
    form_kind = found.form
    answers = found.answers
    missing = journey.missing_required(definition, form_kind, answers)
    if posted and _posted_for_another_response(found.id):
        return _other_tab()
    if posted and not missing:
        journey.submit_locked(get_session(), definition, found)
        commit_or_rollback(get_session())
        return redirect(url_for("journey.done"))
    status = 422 if posted else 200
    return render_template(
        "journey/check.html",
        sections=page_view.answers_by_page(definition, form_kind, answers),
        missing=missing if posted else [],
        form_title=definition.titles[form_kind],
        response_id=found.id,
    ), status


@blueprint.get("/done")
@public
def done() -> Rendered:
    read_only_session()  # only reads: no transaction on PostgreSQL (2 round trips fewer)
    response_id = session.get(SESSION_RESPONSE)
    response = (
        journey.load_sent_page_response(get_session(), response_id)
        if isinstance(response_id, int)
        else None
    )
    if response is None or not response.is_submitted:
        return _no_session() if response is None else redirect(url_for("journey.check"))
    return render_template(
        "journey/done.html",
        response=response,
        code=response.beneficiary.code,
        come_back=come_back_day(response.beneficiary),
        **_reminder_context(response.beneficiary),
    )


@blueprint.get("/pause")
@public
def pause() -> Rendered:
    response = _current_response()
    if response is None:
        return _no_session()
    resume = journey.resume_page(_definition(), response, journey.answers_of(response))
    return render_template(
        "journey/pause.html",
        code=response.beneficiary.code,
        resume_url=url_for("journey.question", page_code=resume.code)
        if resume
        else url_for("journey.check"),
    )


@blueprint.get("/summary")
@public
def progress() -> Rendered:
    read_only_session()  # only reads: no transaction on PostgreSQL (2 round trips fewer)
    person_id = session.get(SESSION_PERSON)
    # The person, structure, responses and answers in 2 statements, not 4 (issue 18).
    beneficiary = (
        journey.load_person(get_session(), person_id) if isinstance(person_id, int) else None
    )
    if beneficiary is None:
        return _no_session()
    # The person's wording: the one chosen in this visit, else that of their latest form.
    chosen = session.get(SESSION_WORDING)
    wording = journey.wording_of(chosen) if chosen else None
    result = summary.build_summary(_definition(), beneficiary, wording)
    if result is None:
        return redirect(url_for("journey.enter_code"))
    return render_template(
        "journey/summary.html",
        summary=result,
        code=beneficiary.code,
        easy=result.easy,
        come_back=come_back_day(beneficiary),
        lasting=lasting.build_lasting(_definition(), beneficiary, wording),
    )


@blueprint.post("/leave")
@public
def leave() -> HttpResponse:
    """Forget this person on this device (shared library PCs)."""
    session.clear()
    return redirect(url_for("journey.home", left=1))


@blueprint.errorhandler(journey.JourneyError)
def _journey_error(error: journey.JourneyError) -> Rendered:
    """A save or submit that raced another (second tab, double click): never a 500."""
    if error.reason == "already_submitted":
        return render_error(409, *ALREADY_SENT_MESSAGE)
    return render_error(409, *OTHER_TAB_MESSAGE)


@blueprint.app_context_processor
def _wording_context() -> dict[str, object]:
    """`easy`: the journey's own key sentences are shown in their easy-read wording."""
    if request.blueprint != blueprint.name:
        return {"easy": False}  # staff pages: never read the beneficiary's session
    return {"easy": _session_wording() is Wording.EASY}


@blueprint.app_template_filter("code_display")
def _code_display(code: str) -> str:
    return codes.display(code)


@blueprint.app_template_filter("code_isolated")
def _code_isolated(code: str) -> Markup:
    """The code, shown, in a `<bdi>` for a sentence or a heading: in right-to-left text a code
    whose group of digits comes first ("056-KMV-SKY") was drawn reversed ("KMV-SKY-056")."""
    return Markup("<bdi>{}</bdi>").format(codes.display(code))


@blueprint.app_template_filter("code_spoken")
def _code_spoken(code: str) -> str:
    return codes.spoken(code)


# The medium's drawing functions of the shared blocks (templates/summary/, macros/questions):
# the PDF registers its own (paper/operations.py).
blueprint.add_app_template_global(pictograms.inline, "pictogram")
blueprint.add_app_template_global(summary.web_bars, "rung_bars")
