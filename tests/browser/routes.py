"""Every page of the app, how to reach it with realistic data, and its error states.

The route suite (test_browser_routes.py) plays these scenes in every configured language and
checks each page it reaches. `covered_endpoints()` is compared with `app.url_map`: an endpoint
with no scene and no entry in NOT_PAGES fails the suite with its name, so a new page cannot
escape. The evaluator and export screens (written in parallel) are visited automatically: every
GET route of the blueprints in AUTO_BLUEPRINTS without URL variables is opened as an evaluator
(a route of theirs with variables needs a scene here, like any other).

A scene is a step of a sequence played in one browser tab (a journey, a staff session), so a
scene may rely on the ones before it. `error=True` marks a form error state (its title must
say "Erreur" and its error summary must link to fields); `variant=True` marks a further example
of an error already shown, played in the reference language only (to keep the suite fast).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import Flask, abort
from playwright.sync_api import Page, expect
from sqlalchemy import select

from selfcheck.accounts import auth
from selfcheck.accounts.permissions import public
from selfcheck.journey import operations as journey
from selfcheck.platform import codes
from selfcheck.platform.models import Beneficiary, Channel, Response, Role, StaffUser, utcnow
from selfcheck.questionnaire.model import FormKind
from tests.browser.support import SLUG, Journey, LiveServer

STAFF_PASSWORD = "une phrase assez longue pour les tests"
ACCOUNTS = {
    Role.PLATFORM_ADMIN: "plateforme@routes.invalid",
    Role.STRUCTURE_ADMIN: "responsable@routes.invalid",
    Role.MEDIATOR: "mediatrice@routes.invalid",
    Role.EVALUATOR: "evaluateur@routes.invalid",
}
SECOND_TYPIST = "collegue@routes.invalid"
# Blueprints whose argument-free GET pages are opened automatically, as an evaluator.
AUTO_BLUEPRINTS = frozenset({"evaluator", "exports"})
# Endpoints that are not pages, and where what they answer is checked.
NOT_PAGES = {
    "static": "files (the stylesheet is checked on every page)",
    "journey.leave": "POST only, redirects home (the home page after leaving is a scene)",
    "journey.reminder": "POST only, redirects to the come-back page; its block (offered only "
    "with SMTP configured, which the live server is not) and its errors: "
    "tests/views/test_followup_reminder.py",
    "staff_auth.logout": "POST only, redirects to sign-in (the signed-out page is a scene)",
    "entry.start_second": "POST only, redirects to the second-entry screen (a scene)",
    "printing.summary_pdf": "a PDF: tests/services/test_pdf_accessibility.py",
    "printing.my_summary_pdf": "a PDF: tests/services/test_pdf_accessibility.py",
    "printing.forms": "a PDF on success (tests/services/test_pdf_accessibility.py); its error "
    "state is the scene 'print: no copies'",
    "printing.after_forms": "a PDF on success; its error state is the scene 'print: no codes'",
    "jobs.retry": "POST only, redirects to the new job's page (tests/platform/test_jobs.py)",
    "health.healthz": "JSON for the load balancer: tests/views/test_health.py",
    "evaluator.table_download": "a CSV file: tests/views/test_dashboard.py",
    "evaluator.figure_download": "a CSV file: tests/views/test_dashboard_pages.py",
    "printing.poster": "a PDF: tests/views/test_admin.py (text, A4, the QR code read back)",
    "printing.followup_forms": "POST only: a print job (tests/views/test_followup_journey.py); "
    "its error state is the print page, as the scene 'print: no codes'",
    "printing.come_back_card": "a PDF: tests/views/test_followup_journey.py (text, the QR code "
    "read back, refusals)",
}
ERROR_PAGES = "browser_test.error"  # test-only route: the error pages no request can reach


def install_error_route(app: Flask) -> None:
    """/_test/error/<status>: the error page of any status (e.g. 429, 500) for the checks."""

    @public
    def error(status: int) -> str:
        if status == 500:
            raise RuntimeError("a deliberate error, for the 500 page")
        abort(status)

    app.add_url_rule("/_test/error/<int:status>", ERROR_PAGES, error)


# --- the data ---------------------------------------------------------------------------------


def ensure_accounts(server: LiveServer) -> None:
    """Staff of the demo structure with a known password, and an evaluator granted its
    department (once per server)."""
    database = server.app.extensions["selfcheck.platform.db"]
    with database.session() as session:
        structure = journey.find_structure(session, SLUG)
        assert structure is not None
        wanted = [*ACCOUNTS.items(), (Role.MEDIATOR, SECOND_TYPIST)]
        for role, email in wanted:
            if session.scalar(select(StaffUser).where(StaffUser.email == email)) is not None:
                continue
            in_structure = role in (Role.MEDIATOR, Role.STRUCTURE_ADMIN)
            user = auth.create_user(
                session,
                auth.NewUser(email, role, structure.id if in_structure else None),
                STAFF_PASSWORD,
            )
            session.commit()
            if role is Role.EVALUATOR:
                auth.grant(session, user, department=structure.department)
                session.commit()


def seed_paper_person(
    server: LiveServer, weeks_ago: float = 9, after: bool = True
) -> tuple[str, int, int]:
    """(code, id of the 'before', id of the person: their staff pages' address, never the
    code): a 'before' on paper typed by the mediator `weeks_ago` weeks ago, and an 'after'
    online when `after`."""
    code = server.seed("pre_post" if after else "before_only")
    database = server.app.extensions["selfcheck.platform.db"]
    with database.session() as session:
        mediator = session.scalar(
            select(StaffUser).where(StaffUser.email == ACCOUNTS[Role.MEDIATOR])
        )
        before = session.scalar(
            select(Response)
            .join(Beneficiary)
            .where(Beneficiary.code == code, Response.form == FormKind.BEFORE.value)
        )
        assert before is not None and mediator is not None
        before.channel = Channel.PAPER.value
        before.entered_by_id = mediator.id
        before.entered_at = before.submitted_at = utcnow() - timedelta(weeks=weeks_ago)
        session.commit()
        return code, before.id, before.beneficiary_id


def paper_form_being_typed(server: LiveServer) -> str:
    """A code printed on paper whose 'before' a mediator has started typing in."""
    from selfcheck.entry.lookup import open_entry

    ensure_accounts(server)
    database = server.app.extensions["selfcheck.platform.db"]
    with database.session() as session:
        structure = journey.find_structure(session, SLUG)
        typist = session.scalar(select(StaffUser).where(StaffUser.email == ACCOUNTS[Role.MEDIATOR]))
        assert structure is not None and typist is not None
        (person,) = journey.create_codes(session, structure, 1)
        session.commit()
        code: str = person.code
        open_entry(session, server.definition, typist, code, FormKind.BEFORE, "fr")
        session.commit()
    return code


def unknown_code() -> str:
    """Well formed (right length and check character) but given to nobody."""
    payload = "ZZZZZZZZ"
    return payload + codes.check_character(payload)


# --- playing scenes --------------------------------------------------------------------------


@dataclass
class Visit:
    """One browser tab playing a sequence in one language, with the data it needs."""

    page: Page
    server: LiveServer
    lang: str
    walk: Journey
    data: dict[str, Any] = field(default_factory=dict)

    def goto(self, url: str, status: int | None = None) -> None:
        """Open `url`; it must answer `status`, or below 400 when none is given."""
        response = self.page.goto(url)
        assert response is not None, url
        if status is None:
            assert response.status < 400, f"{url}: {response.status}"
        else:
            assert response.status == status, f"{url}: {response.status}, not {status}"

    def click(self, selector: str) -> None:
        with self.page.expect_navigation():
            self.page.locator(selector).first.click()

    def submit_main_form(self) -> None:
        self.click("main form button[type=submit]")

    def sign_in(self, role: Role | str) -> None:
        email = ACCOUNTS[role] if isinstance(role, Role) else role
        self.page.context.clear_cookies()
        self.goto(f"/staff/login?lang={self.lang}")
        self.page.locator("#email").fill(email)
        self.page.locator("#password").fill(STAFF_PASSWORD)
        self.submit_main_form()
        assert "/staff/login" not in self.page.url, f"{email} could not sign in"

    def post_from_page(self, action: str, fields: dict[str, str]) -> None:
        """Send a form built in the page (with its CSRF token), as a tampered or unusual
        request would be: the error page it gets is then shown and checked."""
        script = """([action, fields]) => {
          const form = document.createElement("form");
          form.method = "post"; form.action = action;
          const token = document.querySelector("input[name=csrf_token]");
          const all = Object.assign({csrf_token: token ? token.value : ""}, fields);
          for (const [name, value] of Object.entries(all)) {
            const input = document.createElement("input");
            input.type = "hidden"; input.name = name; input.value = value;
            form.appendChild(input);
          }
          document.body.appendChild(form);
          form.submit();
        }"""
        with self.page.expect_navigation():
            self.page.evaluate(script, [action, fields])


Reach = Callable[[Visit], None]


@dataclass(frozen=True)
class Scene:
    endpoint: str
    name: str
    reach: Reach
    error: bool = False  # a form error state: "Erreur" title, error summary linked to fields
    variant: bool = False  # another example of an error state: reference language only
    journey: bool = False  # the beneficiary journey: 44 px targets, text at 200 %


@dataclass(frozen=True)
class Sequence:
    name: str
    scenes: tuple[Scene, ...]
    setup: Callable[[Visit], None] = lambda visit: None
    staff: bool = False  # the staff's side: not played in every language (test_browser_routes)


def _journey(endpoint: str, name: str, reach: Reach, **flags: bool) -> Scene:
    return Scene(endpoint, name, reach, journey=True, **flags)


# The beneficiary: 'before' with its errors, pause, check, done, summary; back with the code
# (and its errors), welcome back, 'after', summary; leaving; display options.
def _start_before(v: Visit) -> None:
    v.goto(f"/s/{SLUG}")
    v.walk.start(v.page, "before")


def _next(v: Visit) -> None:
    v.walk.next(v.page)
    expect(v.page.locator(".error-summary")).to_be_visible()


def _pause(v: Visit) -> None:
    v.click("button[name=action][value=pause]")
    assert v.walk.path(v.page) == "/pause"


def _check_with_errors(v: Visit) -> None:
    v.goto("/check")
    v.walk.submit(v.page)
    expect(v.page.locator(".error-summary li").first).to_be_visible()


def _exclusive_choice_error(v: Visit) -> None:
    v.goto("/q/p_devices")
    v.page.locator("#f-DEVICES-smartphone").check()
    v.page.locator("#f-DEVICES-aucun").check()
    _next(v)
    v.page.locator("#f-DEVICES-aucun").uncheck()


def _walk_before(v: Visit) -> None:
    v.goto("/q/p_help")
    v.walk.walk(v.page)  # every question page is checked by the zoom/reflow sweep below


def _done(v: Visit) -> None:
    v.walk.submit(v.page)
    assert v.walk.path(v.page) == "/done"
    v.data["code"] = v.walk.code_on_page(v.page)


def _code_error(typed: str) -> Reach:
    def reach(v: Visit) -> None:
        v.goto("/code")
        v.page.locator("#code").fill(typed)
        v.submit_main_form()
        expect(v.page.locator("#code-error")).to_be_visible()

    return reach


def _welcome_back(v: Visit) -> None:
    v.walk.enter_code(v.page, v.data["code"])
    assert v.walk.path(v.page) == "/welcome-back"


def _number_error(v: Visit) -> None:
    v.submit_main_form()  # "Commencer" on the welcome-back page
    v.goto("/q/p_modality")
    v.page.locator("#f-SESSIONS").fill("beaucoup")
    _next(v)
    v.page.locator("#f-SESSIONS").fill("")


def _after_done(v: Visit) -> None:
    if v.walk.path(v.page) == "/welcome-back":  # the number error (a variant) was skipped
        v.submit_main_form()
    v.goto("/q/p_help")  # the first page of the 'after' form
    v.walk.walk(v.page)
    v.walk.submit(v.page)
    assert v.walk.path(v.page) == "/done"


def _come_back(v: Visit) -> None:
    # The end form is sent: before the follow-up opens, the code says when to come back.
    v.walk.enter_code(v.page, v.data["code"])
    assert v.walk.path(v.page) == "/come-back"


def _leave(v: Visit) -> None:
    v.goto("/summary")
    v.click("form.leave button")
    expect(v.page.locator(".notice")).to_be_visible()


def _other_tab(v: Visit) -> None:
    _start_before(v)
    v.post_from_page(v.page.url, {"response_id": "0", "action": "next"})


BENEFICIARY = Sequence(
    "beneficiary: before, then after",
    (
        _journey("journey.home", "home", lambda v: v.goto("/")),
        _journey(
            "accessibility.statement", "accessibility statement", lambda v: v.goto("/accessibilite")
        ),
        _journey(
            "settings.choose",
            "language and display choice",
            lambda v: v.goto(f"/reglages?next=/s/{SLUG}"),
        ),
        _journey("journey.start", "start page", lambda v: v.goto(f"/s/{SLUG}")),
        _journey("journey.question", "first question", _start_before),
        _journey("journey.question", "required answer missing", _next, error=True),
        _journey("journey.pause", "finish later", _pause),
        _journey("journey.check", "check page, nothing answered", lambda v: v.goto("/check")),
        _journey("journey.check", "check page, answers missing", _check_with_errors, error=True),
        _journey(
            "journey.question",
            "exclusive choice error",
            _exclusive_choice_error,
            error=True,
            variant=True,
        ),
        _journey("journey.check", "check page, all answered", _walk_before),
        _journey("journey.done", "done (before)", _done),
        _journey("journey.progress", "summary: starting point", lambda v: v.goto("/summary")),
        _journey("journey.enter_code", "code page", lambda v: v.goto("/code")),
        _journey("journey.enter_code", "code page: empty", _code_error(""), error=True),
        _journey(
            "journey.enter_code",
            "code page: too short",
            _code_error("K7M-2Q"),
            error=True,
            variant=True,
        ),
        _journey(
            "journey.enter_code",
            "code page: unknown",
            _code_error(unknown_code()),
            error=True,
            variant=True,
        ),
        _journey("journey.welcome_back", "welcome back", _welcome_back),
        _journey(
            "journey.question", "number error (after)", _number_error, error=True, variant=True
        ),
        _journey("journey.done", "done (after)", _after_done),
        _journey("journey.come_back", "come back for the follow-up", _come_back),
        _journey("journey.progress", "summary: before and after", lambda v: v.goto("/summary")),
        _journey(
            "journey.progress", "summary, large text", lambda v: v.goto("/summary?display=large")
        ),
        _journey(
            "journey.progress",
            "summary, high contrast",
            lambda v: v.goto("/summary?display=contrast"),
        ),
        _journey("journey.check", "check page, high contrast", lambda v: v.goto("/check")),
        _journey("journey.home", "home after leaving", _leave),
        _journey(
            "journey.home", "home, standard display again", lambda v: v.goto("/?display=standard")
        ),
    ),
)


def _start_retro(v: Visit) -> None:
    v.goto(f"/s/{SLUG}")
    v.walk.start(v.page, "retro")


def _paired_error(v: Visit) -> None:
    # A "today" screen of the retrospective layout: each question shows the "before" answer.
    v.goto("/q/p_comfort_today")
    _next(v)
    expect(v.page.locator(".error-summary li")).not_to_have_count(0)


def _being_typed(v: Visit) -> None:
    v.walk.enter_code(v.page, paper_form_being_typed(v.server))
    expect(v.page.locator("h1")).to_be_visible()


def _walk_retro(v: Visit) -> None:
    v.goto("/q/p_help?display=standard")
    v.walk.walk(v.page)


RETROSPECTIVE = Sequence(
    "beneficiary: retrospective, and the paper form being typed",
    (
        _journey("journey.question", "retrospective: first question", _start_retro),
        _journey(
            "journey.question", "retrospective today screen with errors", _paired_error, error=True
        ),
        _journey(
            "journey.question",
            "retrospective today screen, large text",
            lambda v: v.goto("/q/p_comfort_today?display=large"),
        ),
        _journey(
            "journey.question",
            "retrospective today screen, high contrast",
            lambda v: v.goto("/q/p_comfort_today?display=contrast"),
        ),
        _journey(
            "journey.check",
            "retrospective: all answered",
            _walk_retro,
        ),
        _journey("journey.done", "done (retrospective)", lambda v: v.walk.submit(v.page)),
        _journey("journey.progress", "summary: retrospective", lambda v: v.goto("/summary")),
        _journey("journey.enter_code", "paper form being typed", _being_typed),
    ),
)


# The follow-up months later (issue 15): the code leads straight to it; its question pages
# (the new ones in every language, the others in the sweep), an error, check, done, and the
# summary with its three points.
def _followup_first(v: Visit) -> None:
    v.data["code"] = v.server.seed_followup_open()
    v.walk.enter_code(v.page, v.data["code"])
    assert v.walk.path(v.page) == "/q/p_help", v.page.url


def _lost_exclusive_error(v: Visit) -> None:
    v.goto("/q/p_lost")
    v.page.locator("#f-LOST-acces").check()
    v.page.locator("#f-LOST-rien").check()
    _next(v)
    v.page.locator("#f-LOST-rien").uncheck()


def _walk_followup(v: Visit) -> None:
    v.goto("/q/p_help")
    visited = v.walk.walk(v.page)
    assert "p_still_use" in visited and "p_age" not in visited, visited


def _followup_done(v: Visit) -> None:
    v.walk.submit(v.page)
    assert v.walk.path(v.page) == "/done"
    assert v.server.forms_of(v.data["code"]).get("followup") == "submitted"


FOLLOWUP = Sequence(
    "beneficiary: the follow-up months later",
    (
        _journey("journey.question", "follow-up: first question", _followup_first),
        _journey("journey.question", "follow-up: required answer missing", _next, error=True),
        _journey(
            "journey.question",
            "follow-up: still using what was learnt",
            lambda v: v.goto("/q/p_still_use"),
        ),
        _journey(
            "journey.question",
            "follow-up: help needed again",
            lambda v: v.goto("/q/p_help_again"),
        ),
        _journey(
            "journey.question",
            "follow-up: what was lost, 'nothing' with another choice",
            _lost_exclusive_error,
            error=True,
        ),
        _journey("journey.check", "follow-up: all answered", _walk_followup),
        _journey("journey.done", "done (follow-up)", _followup_done),
        _journey("journey.progress", "summary: three points", lambda v: v.goto("/summary")),
    ),
)


def _expired_session(v: Visit) -> None:
    v.page.context.clear_cookies(name="selfcheck_session")
    v.goto("/q/p_help")
    assert v.walk.path(v.page) == "/code"
    expect(v.page.locator(".notice")).to_be_visible()


def _csrf_lost(v: Visit) -> None:
    v.goto(f"/s/{SLUG}")
    v.page.context.clear_cookies(name="selfcheck_session")
    with v.page.expect_response(lambda r: r.request.method == "POST") as posted:
        v.page.locator("form:has(input[name=form][value=before]) button").click()
    assert posted.value.status == 400
    v.page.wait_for_load_state("load")


def _too_large(v: Visit) -> None:
    _start_before(v)
    v.post_from_page(v.page.url, {"action": "next", "COMMENT": "x" * 70_000})


def _erase_empty(v: Visit) -> None:
    v.goto("/privacy/erase")
    v.submit_main_form()
    expect(v.page.locator(".error-summary")).to_be_visible()


def _erase_for_real(v: Visit) -> None:
    v.goto("/privacy/erase")
    v.page.locator("#code").fill(v.server.seed("before_only"))
    v.page.locator("#confirm").check()
    v.submit_main_form()
    assert v.walk.path(v.page) == "/privacy/erased"


ERRORS = Sequence(
    "error pages",
    (
        _journey("journey.enter_code", "code page after an expired session", _expired_session),
        _journey(ERROR_PAGES, "400: page expired (CSRF)", _csrf_lost),
        _journey(ERROR_PAGES, "404: unknown address", lambda v: v.goto("/nowhere", 404)),
        _journey(ERROR_PAGES, "404: unknown place", lambda v: v.goto("/s/no-such-place", 404)),
        _journey(ERROR_PAGES, "405: GET on a POST route", lambda v: v.goto("/leave", 405)),
        _journey(ERROR_PAGES, "409: page from another tab", _other_tab),
        _journey(ERROR_PAGES, "413: too large", _too_large),
        _journey(ERROR_PAGES, "429: too many tries", lambda v: v.goto("/_test/error/429", 429)),
        _journey(ERROR_PAGES, "500: our fault", lambda v: v.goto("/_test/error/500", 500)),
        _journey("privacy.notice", "privacy notice", lambda v: v.goto("/privacy")),
        _journey("privacy.erase", "erase my answers", lambda v: v.goto("/privacy/erase")),
        _journey("privacy.erase", "erase: nothing typed", _erase_empty, error=True),
        _journey("privacy.erased", "erase: done", _erase_for_real),
    ),
)


# Staff: sign-in and its errors, every back-office page as a platform administrator, the
# mediator's screens and a 403, the structure administrator's deletion, data entry, double
# entry and discrepancies, settings, password, printing.
def _sign_in_error(email: str, password: str) -> Reach:
    def reach(v: Visit) -> None:
        v.page.context.clear_cookies()
        v.goto(f"/staff/login?lang={v.lang}")
        v.page.locator("#email").fill(email)
        v.page.locator("#password").fill(password)
        v.submit_main_form()
        expect(v.page.locator(".error-summary")).to_be_visible()

    return reach


def _as(role: Role | str, url: str, status: int | None = None) -> Reach:
    def reach(v: Visit) -> None:
        if v.data.get("signed_in") != role:
            v.sign_in(role)
            v.data["signed_in"] = role
        v.goto(url.format(**v.data), status)

    return reach


def _then(*steps: Reach) -> Reach:
    def reach(v: Visit) -> None:
        for step in steps:
            step(v)

    return reach


def _print_batch(v: Visit) -> None:
    """Two blank forms: a background job (run in the request by the test server); its page."""
    v.goto("/staff/print")
    v.page.locator("#kind-blank").check()
    v.page.locator("#copies").fill("2")
    with v.page.expect_navigation(timeout=180_000):  # the job runs in this request here
        v.page.locator("main form[method=post] button[type=submit]").click(timeout=180_000)
    assert "/staff/jobs/" in v.page.url, v.page.url
    v.data["job_id"] = v.page.url.split("?")[0].rstrip("/").rsplit("/", 1)[1]
    expect(v.page.locator("[role=status]")).to_be_visible()


def _job_row(v: Visit, status: str, kind: str = "print_batch", **values: Any) -> None:
    """A job of the signed-in platform administrator in `status`, and its page."""
    from selfcheck.platform.models import Job

    database = v.server.app.extensions["selfcheck.platform.db"]
    job_id = secrets.token_hex(16)
    with database.session() as session:
        user = session.scalars(
            select(StaffUser).where(StaffUser.email == ACCOUNTS[Role.PLATFORM_ADMIN])
        ).one()
        # The waiting job of an earlier language would count against the per-user limit.
        for earlier in session.scalars(
            select(Job).where(Job.user_id == user.id, Job.status.in_(("queued", "running")))
        ):
            earlier.status = "failed"
        session.add(
            Job(
                id=job_id,
                kind=kind,
                user_id=user.id,
                params="{}",
                status=status,
                total=3,
                **values,
            )
        )
        session.commit()
    v.goto(f"/staff/jobs/{job_id}?auto=0")  # no automatic refresh while axe reads the page


def _expired_download(v: Visit) -> None:
    from selfcheck.platform.models import Job

    database = v.server.app.extensions["selfcheck.platform.db"]
    with database.session() as session:
        job = session.get(Job, v.data["job_id"])
        assert job is not None
        job.expires_at = utcnow() - timedelta(seconds=1)
        session.commit()
    v.goto("/staff/jobs/{}/download".format(v.data["job_id"]), 404)


def _fill_and_send(
    values: dict[str, str], selector: str = "main form[method=post] button[type=submit]"
) -> Reach:
    def reach(v: Visit) -> None:
        for field_selector, value in values.items():
            v.page.locator(field_selector).fill(value)
        v.click(selector)

    return reach


def _empty_sign_in(v: Visit) -> None:
    v.goto(f"/staff/login?lang={v.lang}")
    v.submit_main_form()


def _sign_out(v: Visit) -> None:
    v.click(".staff-nav form button")
    v.data.pop("signed_in", None)


def _staff_setup(v: Visit) -> None:
    ensure_accounts(v.server)
    v.data["code"], v.data["before_id"], v.data["person_id"] = seed_paper_person(v.server)
    seed_paper_person(v.server, weeks_ago=10, after=False)  # someone owes an 'after'


def _search(typed: str, sort: str | None = None, status: int | None = None) -> Reach:
    """The follow-up list's search, as a person uses it: the form is a POST (a code never goes
    into an address), answered by a redirect to the list (or the list with its errors)."""

    def reach(v: Visit) -> None:
        _as(Role.PLATFORM_ADMIN, f"/staff/people/?structure={SLUG}")(v)
        v.page.locator("#q").fill(typed)
        if sort is not None:
            v.page.locator("#sort").select_option(sort)
        with v.page.expect_navigation() as navigation:
            v.page.locator("form.filters button[type=submit]").click()
        response = navigation.value
        assert response is not None
        assert response.status == (status or 200), response.status
        assert "q=" not in v.page.url, v.page.url

    return reach


def _delete_response(v: Visit) -> None:
    v.click("main form button[type=submit]")
    expect(v.page.locator(".notice")).to_be_visible()


def _entry_code_error(typed: str) -> Reach:
    def reach(v: Visit) -> None:
        v.goto("/staff/entry/")
        v.page.locator("#code").fill(typed)
        v.submit_main_form()
        expect(v.page.locator("#code-error")).to_be_visible()

    return reach


def _new_paper_form(v: Visit) -> None:
    v.goto("/staff/entry/")
    v.click("form:has(input[value=new]) button[type=submit]")
    expect(v.page.locator("form[data-entry]")).to_be_visible()
    v.data["entry_url"] = v.walk.path(v.page)


def _finish_too_soon(v: Visit) -> None:
    v.page.locator("#f-ASSIST-seul").check()
    v.click("button[value=finish]")


def _typed_form(v: Visit) -> None:
    from tests.browser.test_browser_entry import _finish_paper_form

    code, response_id = _finish_paper_form(v.server, ACCOUNTS[Role.MEDIATOR])
    v.data["typed_code"], v.data["typed_id"] = code, response_id
    v.goto("/staff/entry/")
    v.page.locator("#code").fill(code)
    v.submit_main_form()
    expect(v.page.locator(f"a[href$='/staff/entry/{response_id}']")).to_be_visible()


def _second_entry_done(v: Visit) -> None:
    from selfcheck.entry.second import load_second_entry, save_second_entry
    from tests.browser.test_browser_entry import ON_PAPER, keys_for

    database = v.server.app.extensions["selfcheck.platform.db"]
    with database.session() as session:
        typist = session.scalar(select(StaffUser).where(StaffUser.email == SECOND_TYPIST))
        response = session.get(Response, v.data["typed_id"])
        assert typist is not None and response is not None
        _response, second = load_second_entry(session, typist, v.data["typed_id"])
        answers = {k: ON_PAPER[k] for k, _keys in keys_for(v.server, FormKind.BEFORE, ON_PAPER)}
        answers.update({"ASSIST": ("proche",), "DIPLOMA": ("bac",)})
        save_second_entry(
            session, v.server.definition, typist, response, second, answers, finish=True
        )
        session.commit()


def _resolve_error(v: Visit) -> None:
    v.page.locator("[name='choice-ASSIST'][value=other]").check()
    v.submit_main_form()


def _resolve(v: Visit) -> None:
    v.page.locator("[name='choice-ASSIST'][value=first]").check()
    v.page.locator("[name='choice-DIPLOMA'][value=second]").check()
    v.submit_main_form()


STAFF = Sequence(
    "staff: sign-in, back office, data entry",
    (
        Scene("staff_auth.login", "sign-in", lambda v: v.goto(f"/staff/login?lang={v.lang}")),
        Scene(
            "staff_auth.login",
            "sign-in, empty",
            _empty_sign_in,
            error=True,
        ),
        Scene(
            "staff_auth.login",
            "sign-in, wrong password",
            _sign_in_error(ACCOUNTS[Role.MEDIATOR], "not the password"),
            error=True,
            variant=True,
        ),
        Scene(
            "backoffice.home",
            "staff home (platform administrator)",
            _as(Role.PLATFORM_ADMIN, "/staff/"),
        ),
        Scene(
            "followup.index",
            "follow-up: choose a structure",
            _as(Role.PLATFORM_ADMIN, "/staff/people/"),
        ),
        Scene(
            "followup.index",
            "follow-up list",
            _as(Role.PLATFORM_ADMIN, f"/staff/people/?structure={SLUG}"),
        ),
        Scene(
            "followup.index",
            "follow-up list: after due",
            _as(Role.PLATFORM_ADMIN, f"/staff/people/?structure={SLUG}&show=after_due"),
        ),
        Scene(
            "followup.index",
            "follow-up list: follow-up due, printable",
            _as(
                Role.PLATFORM_ADMIN,
                f"/staff/people/?structure={SLUG}&show=followup_due&print=1",
            ),
        ),
        Scene(
            "followup.index",
            "follow-up: search by part of a code, oldest visit first",
            _search("2", sort="oldest"),
        ),
        Scene(
            "followup.index",
            "follow-up: who owes an after form, printable",
            _as(Role.PLATFORM_ADMIN, f"/staff/people/?structure={SLUG}&show=after_due&print=1"),
        ),
        Scene(
            "followup.index",
            "follow-up: unknown state",
            _as(Role.PLATFORM_ADMIN, f"/staff/people/?structure={SLUG}&show=nonsense", 400),
            error=True,
        ),
        Scene(
            "followup.index",
            "follow-up: a character in no code",
            _search("%", status=400),
            error=True,
        ),
        Scene("followup.person", "person", _as(Role.PLATFORM_ADMIN, "/staff/people/{person_id}")),
        Scene(
            "followup.person",
            "unknown person (404)",
            _as(Role.PLATFORM_ADMIN, "/staff/people/2147483647", 404),
        ),
        Scene(
            "followup.delete_person",
            "delete a person: confirmation",
            _as(Role.PLATFORM_ADMIN, "/staff/people/{person_id}/delete"),
        ),
        Scene(
            "followup.erase_person",
            "erase a person at their request: confirmation",
            _as(Role.PLATFORM_ADMIN, "/staff/people/{person_id}/erase"),
        ),
        Scene("backoffice.audit_trail", "audit trail", _as(Role.PLATFORM_ADMIN, "/staff/audit")),
        Scene(
            "backoffice.audit_trail",
            "audit trail: filtered by action and date",
            _as(Role.PLATFORM_ADMIN, "/staff/audit?action=create&from=2020-01-01"),
        ),
        Scene(
            "backoffice.audit_trail",
            "audit trail: a date that does not exist",
            _as(Role.PLATFORM_ADMIN, "/staff/audit?from=2024-02-30&page=x", 400),
            error=True,
        ),
        Scene("printing.index", "print paper forms", _as(Role.PLATFORM_ADMIN, "/staff/print")),
        Scene(
            "printing.index",
            "print: no copies",
            _then(_as(Role.PLATFORM_ADMIN, "/staff/print"), _fill_and_send({"#copies": "0"})),
            error=True,
        ),
        Scene(
            "printing.index",
            "print: no codes",
            lambda v: v.post_from_page("/staff/print/after", {}),
            error=True,
            variant=True,
        ),
        Scene("jobs.status", "print batch: job page, file ready", _print_batch),
        Scene("jobs.download", "job: download after expiry (404)", _expired_download),
        Scene(
            "jobs.status",
            "job: waiting",
            lambda v: _job_row(v, "running", progress=1, heartbeat_at=utcnow()),
        ),
        Scene("jobs.status", "job: failed", lambda v: _job_row(v, "failed", error="failed")),
        # An export whose worker stopped (its own title and reason); the retries themselves
        # are played keyboard only in tests/browser/test_browser_jobs.py.
        Scene(
            "jobs.status",
            "job: failed export (worker lost)",
            lambda v: _job_row(v, "failed", kind="export", error="worker_lost"),
            variant=True,
        ),
        Scene("staff_auth.password", "password", _as(Role.PLATFORM_ADMIN, "/staff/password")),
        Scene(
            "staff_auth.password",
            "password: errors",
            _fill_and_send({"#current": "not the password", "#new": "court", "#confirm": "autre"}),
            error=True,
        ),
        Scene(
            "staff_auth.password",
            "password: wrong current",
            _fill_and_send(
                {
                    "#current": "not the password",
                    "#new": "une nouvelle phrase secrète",
                    "#confirm": "une nouvelle phrase secrète",
                }
            ),
            error=True,
            variant=True,
        ),
        Scene(
            "staff_auth.login",
            "signed out",
            _sign_out,
        ),
        Scene("backoffice.home", "staff home (mediator)", _as(Role.MEDIATOR, "/staff/")),
        Scene("followup.index", "follow-up list (mediator)", _as(Role.MEDIATOR, "/staff/people/")),
        Scene(
            ERROR_PAGES,
            "403: audit trail refused to a mediator",
            _as(Role.MEDIATOR, "/staff/audit", 403),
        ),
        Scene("entry.index", "entry: find or create", _as(Role.MEDIATOR, "/staff/entry/")),
        Scene("entry.index", "entry: empty code", _entry_code_error(""), error=True),
        Scene(
            "entry.index",
            "entry: unknown code",
            _entry_code_error("ZZZZZZZZZ"),
            error=True,
            variant=True,
        ),
        Scene("entry.form", "entry screen (empty)", _new_paper_form),
        Scene("entry.form", "entry: finish with questions not typed", _finish_too_soon, error=True),
        Scene("entry.index", "entry: form already typed in", _typed_form),
        Scene(
            "entry.form",
            "entry screen of a finished form",
            lambda v: v.goto("/staff/entry/{}".format(v.data["typed_id"])),
        ),
        Scene("entry.second_entries", "second entries", _as(SECOND_TYPIST, "/staff/entry/second")),
        Scene(
            "entry.second",
            "second entry screen",
            lambda v: v.click("form[action$='/second/{}/start'] button".format(v.data["typed_id"])),
        ),
        Scene(
            "followup.person",
            "person (structure administrator)",
            _then(_second_entry_done, _as(Role.STRUCTURE_ADMIN, "/staff/people/{person_id}")),
        ),
        Scene(
            "followup.delete_response",
            "delete a response: confirmation",
            _as(Role.STRUCTURE_ADMIN, "/staff/people/{person_id}/responses/{before_id}/delete"),
        ),
        Scene("followup.person", "person after a deletion", _delete_response),
        Scene(
            "entry.discrepancies",
            "discrepancies and rates",
            _as(Role.STRUCTURE_ADMIN, "/staff/entry/discrepancies"),
        ),
        Scene(
            "entry.resolve",
            "resolve",
            lambda v: v.goto("/staff/entry/discrepancies/{}".format(v.data["typed_id"])),
        ),
        Scene("entry.resolve", "resolve: error", _resolve_error, error=True),
        Scene("entry.discrepancies", "discrepancies after resolving", _resolve),
        Scene("entry.settings", "settings", _as(Role.STRUCTURE_ADMIN, "/staff/entry/settings")),
        Scene(
            "entry.settings",
            "settings: error",
            _fill_and_send({"#double_entry_percent": "150"}),
            error=True,
        ),
        Scene("backoffice.home", "staff home (evaluator)", _as(Role.EVALUATOR, "/staff/")),
    ),
    setup=_staff_setup,
    staff=True,
)


# Administration: a platform administrator creates a structure and invites its administrator,
# who chooses a password through the one-time link and sees the team; the staff list and a
# member's page; two-factor enrolment and the code page (an account of its own, per language).
def _staff_id(v: Visit, email: str) -> int:
    database = v.server.app.extensions["selfcheck.platform.db"]
    with database.session() as session:
        user = session.scalar(select(StaffUser).where(StaffUser.email == email))
        assert user is not None, email
        return user.id


def _admin_setup(v: Visit) -> None:
    ensure_accounts(v.server)
    database = v.server.app.extensions["selfcheck.platform.db"]
    email = f"deux-facteurs-{v.lang}@routes.invalid"
    with database.session() as session:
        structure = journey.find_structure(session, SLUG)
        assert structure is not None
        if session.scalar(select(StaffUser).where(StaffUser.email == email)) is None:
            auth.create_user(
                session, auth.NewUser(email, Role.MEDIATOR, structure.id), STAFF_PASSWORD
            )
            session.commit()
    v.data["two_factor"] = email
    v.data["invited"] = f"nouvelle-{v.lang}-{secrets.token_hex(3)}@routes.invalid"


def _create_structure(v: Visit) -> None:
    v.page.locator("#name").fill(f"Tiers-lieu d'essai {v.lang} {secrets.token_hex(2)}")
    v.page.locator("#territory-rural").check()
    v.page.locator("#department").fill("29")
    v.submit_main_form()
    expect(v.page.locator(".notice")).to_be_visible()
    v.data["structure_url"] = v.walk.path(v.page)


def _invite(v: Visit) -> None:
    v.goto("/staff/team/invite")
    v.page.locator("#email").fill(v.data["invited"])
    v.page.locator("#role-structure_admin").check()
    v.page.locator("#structure").select_option(SLUG)
    v.submit_main_form()
    link = v.page.locator("#one-time-link").input_value()
    assert "/staff/link/" in link
    v.data["link"] = link


def _open_link(v: Visit) -> None:
    v.page.context.clear_cookies()
    v.data.pop("signed_in", None)
    v.goto(f"{v.data['link']}?lang={v.lang}")  # a new browser: the language chosen again


def _choose_password(v: Visit) -> None:
    v.page.locator("#new").fill(STAFF_PASSWORD)
    v.page.locator("#confirm").fill(STAFF_PASSWORD)
    v.submit_main_form()
    assert v.walk.path(v.page) == "/staff/login"
    expect(v.page.locator(".notice")).to_be_visible()


def _archived_start(v: Visit) -> None:
    """Archive the structure created above, then open its start link: a kind page, 410."""
    from selfcheck.platform.models import Structure

    v.goto(v.data["structure_url"])
    v.click("form input[name=action][value=archive] ~ button")
    structure_id = int(v.data["structure_url"].rstrip("/").rsplit("/", 1)[1])
    database = v.server.app.extensions["selfcheck.platform.db"]
    with database.session() as session:
        structure = session.get(Structure, structure_id)
        assert structure is not None and structure.archived_at is not None
        slug = structure.slug
    v.goto(f"/s/{slug}", 410)
    expect(v.page.locator("main a[href='/code']")).to_be_visible()


def _enrol_confirm(v: Visit) -> None:
    import pyotp

    secret = v.page.locator("code.secret-text").inner_text().replace(" ", "")
    v.page.locator("#code").fill(pyotp.TOTP(secret).now())
    v.submit_main_form()
    expect(v.page.locator(".recovery-codes li")).to_have_count(10)


def _code_page(v: Visit) -> None:
    v.page.context.clear_cookies()
    v.data.pop("signed_in", None)
    v.goto(f"/staff/login?lang={v.lang}")
    v.page.locator("#email").fill(v.data["two_factor"])
    v.page.locator("#password").fill(STAFF_PASSWORD)
    v.submit_main_form()
    assert v.walk.path(v.page) == "/staff/login/code"


ADMINISTRATION = Sequence(
    "administration: structures, invitations, team, second factor",
    (
        Scene(
            "admin.structures", "structures", _as(Role.PLATFORM_ADMIN, "/staff/admin/structures")
        ),
        Scene(
            "admin.structures",
            "structures: nothing found",
            lambda v: v.goto("/staff/admin/structures?q=zzzz&archived=1"),
            variant=True,
        ),
        Scene(
            "admin.structure_new", "new structure", lambda v: v.goto("/staff/admin/structures/new")
        ),
        Scene(
            "admin.structure_new",
            "new structure: errors",
            lambda v: v.submit_main_form(),
            error=True,
        ),
        Scene("admin.structure", "structure created", _create_structure),
        Scene("admin.invite", "invite", lambda v: v.goto("/staff/team/invite")),
        Scene("admin.invite", "invite: errors", lambda v: v.submit_main_form(), error=True),
        Scene("admin.invite", "invite: the link, shown once", _invite),
        Scene("admin.use_link", "choose a password", _open_link),
        Scene(
            "admin.use_link",
            "choose a password: errors",
            _fill_and_send({"#new": "court", "#confirm": "autre"}),
            error=True,
        ),
        Scene("staff_auth.login", "password chosen", _choose_password),
        Scene(
            "admin.use_link",
            "a used link (410)",
            lambda v: v.goto(v.data["link"], 410),
        ),
        Scene(
            "admin.team_page",
            "team (the invited administrator)",
            lambda v: _as(v.data["invited"], "/staff/team/")(v),
        ),
        Scene(
            "admin.member",
            "a team member",
            lambda v: v.goto(f"/staff/team/{_staff_id(v, ACCOUNTS[Role.MEDIATOR])}"),
        ),
        Scene("admin.staff", "staff list", _as(Role.PLATFORM_ADMIN, "/staff/admin/staff?q=routes")),
        Scene(
            "admin.member",
            "an evaluator: scope and free text",
            lambda v: v.goto(f"/staff/team/{_staff_id(v, ACCOUNTS[Role.EVALUATOR])}"),
        ),
        Scene("admin.structure", "a structure", lambda v: v.goto(v.data["structure_url"])),
        Scene(
            "journey.start",
            "an archived structure's start link (410)",
            _archived_start,
            journey=True,
        ),
        Scene(
            "two_factor.enrol",
            "two-factor enrolment",
            lambda v: _as(v.data["two_factor"], "/staff/account/two-factor")(v),
        ),
        Scene(
            "two_factor.enrol",
            "two-factor enrolment: wrong code",
            _fill_and_send({"#code": "000000"}),
            error=True,
        ),
        Scene("two_factor.enrol", "recovery codes", _enrol_confirm),
        Scene("two_factor.enrol", "two-factor on", lambda v: v.goto("/staff/account/two-factor")),
        Scene(
            "two_factor.enrol",
            "new recovery codes: wrong code",
            _fill_and_send({"#code": "12345"}),
            error=True,
            variant=True,
        ),
        Scene(
            "admin.forgotten",
            "forgotten password (no e-mail server)",
            lambda v: v.goto("/staff/password/forgotten"),
        ),
        Scene("two_factor.code", "sign-in code", _code_page),
        Scene(
            "two_factor.code",
            "sign-in code: wrong",
            _fill_and_send({"#code": "12345"}),
            error=True,
        ),
    ),
    setup=_admin_setup,
    staff=True,
)

SEQUENCES = (BENEFICIARY, RETROSPECTIVE, FOLLOWUP, ERRORS, STAFF, ADMINISTRATION)


def covered_endpoints(staff: bool = True) -> set[str]:
    """The endpoints the sequences reach (without the staff's side when `staff` is False)."""
    return {
        scene.endpoint
        for sequence in SEQUENCES
        if staff or not sequence.staff
        for scene in sequence.scenes
    }


def auto_pages(app: Flask) -> list[tuple[str, str]]:
    """(endpoint, path) of the argument-free GET routes of AUTO_BLUEPRINTS."""
    found = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        blueprint = rule.endpoint.split(".")[0]
        if blueprint in AUTO_BLUEPRINTS and "GET" in (rule.methods or ()) and not rule.arguments:
            found.append((rule.endpoint, rule.rule))
    return found


def missing_endpoints(app: Flask) -> list[str]:
    """Endpoints of the URL map with no scene, no automatic visit and no NOT_PAGES entry."""
    automatic = {endpoint for endpoint, _path in auto_pages(app)}
    known = covered_endpoints() | set(NOT_PAGES) | automatic
    return sorted({rule.endpoint for rule in app.url_map.iter_rules()} - known)


def stale_entries(app: Flask) -> list[str]:
    """Table entries naming an endpoint the app no longer has."""
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    return sorted((covered_endpoints() | set(NOT_PAGES)) - endpoints)


def error_prefix(app: Flask, lang: str) -> str:
    """How an error page title starts in `lang` ("Erreur", "Error"…), from the catalog."""
    from flask_babel import force_locale, gettext

    with app.test_request_context("/"), force_locale(lang):
        marker = secrets.token_hex(4)
        found = re.match(r"\w+", gettext("Erreur : %(title)s", title=marker))
        assert found, lang
        return found.group(0)
