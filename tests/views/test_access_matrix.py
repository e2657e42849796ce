"""The role matrix: every route of the app, requested by every role, allowed or denied.

1. Every endpoint declares who may use it (`@public` or `@requires(Permission.X)`); a route
   that declares neither fails here, `static` being the only exception.
2. Every route x role (anonymous, mediator, structure administrator, evaluator, platform
   administrator), with realistic arguments: visitors are sent to sign in, staff without the
   permission get 403, staff with it get the page (never a 500).
3. Scope: staff of one structure, and an evaluator granted one department, get 404/403 on
   the people, responses and structures of another.

The routes are read from `app.url_map`, and URL arguments come from `ARGUMENTS` by variable
name, so screens added later are covered without touching this file. A route whose variable
is missing there fails with a message saying which name to add.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from selfcheck.accounts.permissions import ROLE_PERMISSIONS, Permission, public, requires
from selfcheck.accounts.structures import create_structure
from selfcheck.journey import operations as journey
from selfcheck.platform.db import Database
from selfcheck.platform.models import (
    Channel,
    EntryDiscrepancy,
    Role,
    SecondEntry,
    SecondEntryAnswer,
    Structure,
    utcnow,
)
from selfcheck.questionnaire.model import Definition, FormKind
from tests.staff import PASSWORD, Account, add_staff
from tests.support import AFTER, BEFORE, csrf_token, fill_and_submit, path_of, submitted

ANONYMOUS = "anonymous"
ROLES = [ANONYMOUS, *(role.value for role in Role)]
EXEMPT = {"static"}
LOGIN = "/staff/login"
SESSION_COOKIE = "selfcheck_session"
IGNORED_METHODS = {"HEAD", "OPTIONS"}
# Allowed answers to a GET by a role that has the permission, besides 2xx/3xx: the state of
# the data forbids the action ("this second entry is already done"), not the role; 422: the
# evaluator screens show nothing when fewer than k people are in scope (k-anonymity).
BUSINESS_STATES = {409, 422}


# --- 1. declarations ---------------------------------------------------------------------------


def undeclared_endpoints(app: Flask) -> list[str]:
    """Endpoints whose view is neither `@public` nor `@requires(...)`."""
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in EXEMPT:
            continue
        view = app.view_functions[rule.endpoint]
        if not (
            getattr(view, "selfcheck_public", False)
            or isinstance(getattr(view, "selfcheck_permission", None), Permission)
        ):
            missing.append(rule.endpoint)
    return sorted(set(missing))


def test_every_route_declares_who_may_use_it(app: Flask) -> None:
    assert undeclared_endpoints(app) == []
    for endpoint, view in app.view_functions.items():
        both = getattr(view, "selfcheck_public", False) and hasattr(view, "selfcheck_permission")
        assert not both, f"{endpoint} is both public and protected"


def test_a_route_without_a_declaration_fails(make_app: Callable[..., Flask]) -> None:
    throwaway = make_app()

    def forgotten() -> str:
        return "anyone can see this"

    def declared() -> str:
        return "staff only"

    def open_page() -> str:
        return "anyone, on purpose"

    throwaway.add_url_rule("/staff/forgotten", "forgotten", forgotten)
    throwaway.add_url_rule("/staff/declared", "declared", requires(Permission.AUDIT)(declared))
    throwaway.add_url_rule("/open", "open_page", public(open_page))
    assert undeclared_endpoints(throwaway) == ["forgotten"]

    # The decorator must be below the route: above it, the registered view is unguarded.
    def wrong_order() -> str:
        return "unguarded"

    throwaway.add_url_rule("/staff/wrong-order", "wrong_order", wrong_order)
    requires(Permission.AUDIT)(wrong_order)  # too late: the URL map has the bare function
    assert undeclared_endpoints(throwaway) == ["forgotten", "wrong_order"]


# --- the world the routes are requested in --------------------------------------------------------


@dataclass
class Place:
    """One structure and a person of it with a before and an after form (before on paper)."""

    structure_id: int
    slug: str
    department: str
    code: str
    response_id: int  # the 'before' form, typed from paper, typed again blind, one difference
    after_id: int
    fresh_code: str  # a code printed on paper, nothing typed yet
    member_id: int  # a mediator of the structure (its administrators manage them)
    person_id: int  # the person's database id: their staff pages' address (never the code)


def make_place(
    session: Session,
    definition: Definition,
    structure: Structure,
    typist: Account,
    second_typist: Account,
) -> Place:
    """Typed by two people who are not among the roles under test (whose own typing would
    make the second entry "not yours", a business rule, not an access rule)."""
    before = submitted(session, definition, structure, FormKind.BEFORE)
    before.channel = Channel.PAPER.value
    before.entered_by_id = typist.id
    before.entered_at = utcnow()
    before.double_entry_wanted = True
    second = SecondEntry(
        response_id=before.id,
        entered_by_id=second_typist.id,
        completed_at=utcnow(),
        compared_fields=len(BEFORE),
        differing_fields=1,
    )
    second.answers.extend(
        SecondEntryAnswer(variable=variable, value=value)
        for variable, values in BEFORE.items()
        for value in (values if variable != "COMFORT" else ("2",))
    )
    second.discrepancies.append(
        EntryDiscrepancy(variable="COMFORT", first_value='["1"]', second_value='["2"]')
    )
    session.add(second)
    session.commit()
    after = journey.start_after(session, definition, before.beneficiary, "fr")
    session.commit()
    fill_and_submit(session, definition, after, AFTER)
    (fresh,) = journey.create_codes(session, structure, 1)
    session.commit()
    return Place(
        structure.id,
        structure.slug,
        structure.department,
        before.beneficiary.code,
        before.id,
        after.id,
        fresh.code,
        typist.id,
        before.beneficiary.id,
    )


# URL variable -> its value in a place. Add a line here when a route has a new variable.
ARGUMENTS: dict[str, Callable[[Place], Any]] = {
    "slug": lambda p: p.slug,
    "person_id": lambda p: p.person_id,
    "response_id": lambda p: p.response_id,
    "structure_id": lambda p: p.structure_id,
    "department": lambda p: p.department,
    "page_code": lambda p: "p_help",
    "form": lambda p: FormKind.BEFORE.value,
    "filename": lambda p: "css/selfcheck.css",
    "table": lambda p: "age",
    "figure": lambda p: "headline",
    "user_id": lambda p: p.member_id,
    "token": lambda p: "a-link-that-was-never-made",
}
# Variables whose value belongs to the person asking (a background job is its owner's only):
# one per account, made by `own_job`.
OWN = {"job_id"}
# Variables that point at one structure's data: the scope checks swap them for another's.
SCOPED = {"slug", "person_id", "response_id", "structure_id", "department", "user_id"}
# What a POST-only route receives besides a valid CSRF token.
POST_FIELDS: dict[str, Callable[[Place], list[str]]] = {
    "codes": lambda p: [p.code],
    "code": lambda p: [p.code],
}


@dataclass
class World:
    app: Flask
    home: Place  # structure A, department 44: where the staff work
    away: Place  # structure B, department 75
    accounts: dict[str, Account] = field(default_factory=dict)
    cookies: dict[str, tuple[str, str]] = field(default_factory=dict)  # role -> (cookie, csrf)
    jobs: dict[str, str] = field(default_factory=dict)  # role -> a finished job of theirs

    def url(self, rule: Rule, place: Place, role: str = ANONYMOUS) -> str:
        values = {}
        for name in sorted(rule.arguments):
            if name in OWN:
                values[name] = self.jobs.get(role, "0" * 32)
                continue
            if name not in ARGUMENTS:
                pytest.fail(
                    f"route {rule.rule} ({rule.endpoint}) has a URL variable {name!r}: "
                    f"add a realistic value for it to ARGUMENTS in {__name__}",
                    pytrace=False,
                )
            values[name] = ARGUMENTS[name](place)
        with self.app.test_request_context():
            return url_for(rule.endpoint, **values)

    def client(self, role: str) -> tuple[FlaskClient, str]:
        """A new client holding `role`'s session (signed in once), and its CSRF token.

        A fresh client per request: a route that signs out or changes the session (logout)
        does not change what the next route sees.
        """
        if role not in self.cookies:
            client = self.app.test_client()
            if role != ANONYMOUS:
                account = self.accounts[role]
                page = client.get(LOGIN)
                response = client.post(
                    LOGIN,
                    data={
                        "email": account.email,
                        "password": PASSWORD,
                        "csrf_token": csrf_token(page.get_data(as_text=True)),
                    },
                )
                assert response.status_code == 302, f"{role} could not sign in"
            page = client.get(LOGIN)  # a page with a form: the session gets a CSRF secret
            cookie = client.get_cookie(SESSION_COOKIE)
            assert cookie is not None
            self.cookies[role] = (cookie.value, csrf_token(page.get_data(as_text=True)))
        value, token = self.cookies[role]
        client = self.app.test_client()
        client.set_cookie(SESSION_COOKIE, value)
        return client, token

    def request(self, role: str, rule: Rule, place: Place) -> tuple[str, TestResponse]:
        methods = set(rule.methods or ()) - IGNORED_METHODS
        url = self.url(rule, place, role)
        client, token = self.client(role)
        if "GET" in methods:
            return f"GET {url}", client.get(url, buffered=True)  # a file download: closed
        data: dict[str, Any] = {"csrf_token": token}
        data.update({name: make(place) for name, make in POST_FIELDS.items()})
        response = client.post(url, data=data)
        if rule.endpoint in SESSION_ENDING:
            # Signing out revokes the session server-side: the cookie kept here is dead.
            self.cookies.pop(role, None)
        return f"POST {url}", response


@pytest.fixture
def world(
    app: Flask,
    database: Database,
    db_session: Session,
    definition: Definition,
    structure: Structure,
) -> World:
    paris = create_structure(db_session, "France Services Paris 11", "urbain", "75")
    db_session.commit()
    accounts = {
        Role.MEDIATOR.value: add_staff(database, Role.MEDIATOR, structure),
        Role.STRUCTURE_ADMIN.value: add_staff(database, Role.STRUCTURE_ADMIN, structure),
        Role.EVALUATOR.value: add_staff(database, Role.EVALUATOR, departments=("44",)),
        Role.PLATFORM_ADMIN.value: add_staff(database, Role.PLATFORM_ADMIN),
        "mediator_away": add_staff(database, Role.MEDIATOR, paris),
    }

    def typists(where: Structure) -> tuple[Account, Account]:
        return (
            add_staff(database, Role.MEDIATOR, where, email=f"typist-1@{where.slug}.example"),
            add_staff(database, Role.MEDIATOR, where, email=f"typist-2@{where.slug}.example"),
        )

    home = make_place(db_session, definition, structure, *typists(structure))
    away = make_place(db_session, definition, paris, *typists(paris))
    jobs = {role: own_job(app, db_session, account) for role, account in accounts.items()}
    return World(app, home, away, accounts, jobs=jobs)


def own_job(app: Flask, session: Session, account: Account) -> str:
    """A finished background job of `account`, its file in place (platform/jobs.py)."""
    from selfcheck.platform import jobs
    from selfcheck.platform.models import Job

    job_id = f"{account.id:032x}"
    folder = jobs.queue(app).results / job_id
    folder.mkdir(parents=True)
    (folder / "file.pdf").write_bytes(b"%PDF-1.7\n")
    session.add(
        Job(
            id=job_id,
            kind=jobs.JobKind.PRINT_BATCH.value,
            user_id=account.id,
            params="{}",
            status=jobs.JobStatus.DONE.value,
            result_path=f"{job_id}/file.pdf",
            filename="file.pdf",
            finished_at=utcnow(),
            expires_at=utcnow() + timedelta(hours=1),
        )
    )
    session.commit()
    return job_id


SESSION_ENDING = frozenset({"staff_auth.logout", "staff_auth.password"})


def routes(app: Flask) -> list[Rule]:
    """Every rule but `static`; the GET ones first (a POST may change what a GET shows)."""
    rules = [r for r in app.url_map.iter_rules() if r.endpoint not in EXEMPT]
    return sorted(rules, key=lambda r: ("GET" not in (r.methods or ()), r.rule))


def permission_of(app: Flask, rule: Rule) -> Permission | None:
    found: Permission | None = getattr(
        app.view_functions[rule.endpoint], "selfcheck_permission", None
    )
    return found


def has(role: str, permission: Permission) -> bool:
    return role != ANONYMOUS and permission in ROLE_PERMISSIONS[Role(role)]


def is_sign_in(response: TestResponse) -> bool:
    return response.status_code == 302 and path_of(response.headers["Location"]) == LOGIN


def describe(what: str, response: TestResponse) -> str:
    location = response.headers.get("Location", "")
    title = ""
    if response.status_code >= 400 and response.mimetype == "text/html":
        html = response.get_data(as_text=True)
        found = re.search(r"<h1[^>]*>(.*?)</h1>", html, re.S)
        title = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1) if found else ""))
    return f"{what} -> {response.status_code} {location} {title.strip()}".rstrip()


# --- 2. every route x every role --------------------------------------------------------------


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(world: World, role: str) -> None:
    problems: list[str] = []
    checked = 0
    for rule in routes(world.app):
        permission = permission_of(world.app, rule)
        what, response = world.request(role, rule, world.home)
        checked += 1
        status = response.status_code
        where = f"{role}: {describe(what, response)}"
        if status >= 500:
            problems.append(f"{where}: server error")
        elif permission is None:  # public: anyone, signed in or not
            if status in (401, 403):
                problems.append(f"{where}: a public route refused")
        elif role == ANONYMOUS:
            if not is_sign_in(response):
                problems.append(f"{where}: expected a redirect to {LOGIN}")
        elif not has(role, permission):
            if status != 403:
                problems.append(f"{where}: expected 403 (needs {permission.value})")
        elif is_sign_in(response) or status in (401, 403, 405):
            problems.append(f"{where}: refused although the role has {permission.value}")
        elif status == 404:
            problems.append(f"{where}: not found with the arguments of the role's own structure")
        elif what.startswith("GET") and status >= 400 and status not in BUSINESS_STATES:
            problems.append(f"{where}: a page the role may see is an error")
    assert checked > 10
    assert not problems, "\n".join(problems)


def test_the_matrix_covers_every_screen_of_the_back_office(app: Flask) -> None:
    """The staff screens named on the home page are all in the URL map once they exist."""
    endpoints = {rule.endpoint for rule in routes(app)}
    for expected in ("staff_auth.login", "backoffice.home", "followup.index", "followup.person"):
        assert expected in endpoints


def test_the_matrix_covers_the_followup_routes(app: Flask) -> None:
    """Issue 15's routes: the come-back page is public (the person's code in their session),
    the come-back card needs ENTER; both are played above for every role."""
    rules = {rule.endpoint: rule for rule in routes(app)}
    assert permission_of(app, rules["journey.come_back"]) is None
    assert permission_of(app, rules["printing.come_back_card"]) is Permission.ENTER
    assert permission_of(app, rules["printing.followup_forms"]) is Permission.ENTER


def test_the_matrix_covers_the_reminder_route(app: Flask) -> None:
    """The consented reminder (issue 15) is left by the person, with their code in their
    session: public, POST only (played above for every role: without a person in the
    session it sends to the code page)."""
    rules = {rule.endpoint: rule for rule in routes(app)}
    assert permission_of(app, rules["journey.reminder"]) is None
    assert rules["journey.reminder"].methods is not None
    assert "GET" not in rules["journey.reminder"].methods


# --- 3. scope: another structure, another department ---------------------------------------


def scoped_routes(app: Flask) -> Iterable[Rule]:
    for rule in routes(app):
        if permission_of(app, rule) is not None and set(rule.arguments) & SCOPED:
            yield rule


@pytest.mark.parametrize(
    "role", [Role.MEDIATOR.value, Role.STRUCTURE_ADMIN.value, Role.EVALUATOR.value]
)
def test_no_data_of_another_structure(world: World, role: str) -> None:
    """Staff of structure A (department 44), and an evaluator granted department 44, ask for
    the people, responses and structure of B (department 75) by their codes and numbers."""
    problems = []
    rules = list(scoped_routes(world.app))
    assert any(rule.endpoint == "followup.person" for rule in rules)
    for rule in rules:
        what, response = world.request(role, rule, world.away)
        if response.status_code not in (403, 404):
            problems.append(f"{role}: {describe(what, response)}: expected 403 or 404")
    # The same through a query string: the follow-up list of structure B.
    client, _token = world.client(role)
    response = client.get(f"/staff/people/?structure={world.away.slug}")
    if response.status_code not in (403, 404):
        problems.append(f"{role}: follow-up list of B -> {response.status_code}")
    assert not problems, "\n".join(problems)


def test_staff_of_the_other_structure_see_their_own(world: World) -> None:
    """The 404s above are about scope, not broken arguments: B's mediator gets B's pages."""
    world.accounts[Role.MEDIATOR.value] = world.accounts["mediator_away"]
    problems = []
    for rule in scoped_routes(world.app):
        permission = permission_of(world.app, rule)
        assert permission is not None
        if not has(Role.MEDIATOR.value, permission) or "GET" not in (rule.methods or ()):
            continue
        what, response = world.request(Role.MEDIATOR.value, rule, world.away)
        if response.status_code in (403, 404) or response.status_code >= 500:
            problems.append(describe(what, response))
    assert not problems, "\n".join(problems)


def test_a_person_page_never_tells_whether_a_person_exists_elsewhere(world: World) -> None:
    client, _token = world.client(Role.MEDIATOR.value)
    elsewhere = client.get(f"/staff/people/{world.away.person_id}")
    nowhere = client.get("/staff/people/2147483647")
    by_code = client.get(f"/staff/people/{world.away.code}")  # an address before round 23
    assert elsewhere.status_code == nowhere.status_code == by_code.status_code == 404
    assert world.away.code not in elsewhere.get_data(as_text=True)
    assert elsewhere.get_data() == nowhere.get_data()


@pytest.mark.parametrize("role", [Role.MEDIATOR.value, Role.STRUCTURE_ADMIN.value])
def test_search_print_and_audit_filters_stay_in_scope(world: World, role: str) -> None:
    """Issue 14: searching for B's code, printing B's list, filtering the trail by B's person
    from structure A show nothing of B (and never a 500)."""
    client, token = world.client(role)
    searched = client.post("/staff/people/", data={"q": world.away.code, "csrf_token": token})
    assert searched.status_code == 302
    assert world.away.code not in searched.headers["Location"]
    found = client.get(searched.headers["Location"])
    assert found.status_code == 200
    # The code typed is echoed in the field; B's person is neither listed nor linked.
    page = found.get_data(as_text=True)
    assert f"/staff/people/{world.away.person_id}" not in page
    assert 'class="code-link"' not in page
    printed = client.get(f"/staff/people/?structure={world.away.slug}&print=1&show=after_due")
    assert printed.status_code in (403, 404)
    trail = client.post("/staff/audit", data={"person": world.away.code, "csrf_token": token})
    expected = 400 if has(role, Permission.AUDIT) else 403
    assert trail.status_code == expected
    assert 'class="audit-event"' not in trail.get_data(as_text=True)
