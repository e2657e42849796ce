"""No person's code in any staff address (round 23, attack15's finding left open).

A beneficiary's code is a credential: typed at /code it opens their answers (and lets them be
erased). A structure's shared computer keeps every address in its history and address-bar
suggestions (`Cache-Control: no-store` does not reach them), so the staff pages address a
person by their database id, scoped to the structures the signed-in user may see, and the
searches by code are POSTs. Checked here, on SQLite and PostgreSQL:
- every link, form action, image source and redirect the staff pages produce (a crawl of
  the back office as a structure administrator, and the POSTs that answer with a redirect)
  holds no code, in any of its written forms (as stored, with dashes, lower case, spaced);
- another structure's staff get 404 for this structure's ids, on every person route;
- tampered ids (letters, negative, zero, huge, a NUL) are 404, never a 500;
- addresses from before (a code in the path, `?q=`, `?code=`, `?person=`) are 404 or a
  redirect that does not echo the code;
- the code searched for is kept in the session sealed, never in clear.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote_plus, urlsplit

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from selfcheck.accounts.structures import create_structure
from selfcheck.journey import operations as journey
from selfcheck.platform import codes, sealing
from selfcheck.platform.db import Database
from selfcheck.platform.models import MAX_ROW_ID, Role, Structure
from selfcheck.questionnaire.model import Definition
from tests.services.test_followup import People, make_people
from tests.staff import Account, add_staff, signed_in
from tests.support import Visitor, csrf_token, person_id, search_people, text_of

# Every way a code can be written in an address: `codes.normalise` reads a code through
# spaces, dashes and dots, in any case, O as 0 and I or L as 1.
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
URL_ATTRIBUTES = re.compile(r'\b(?:href|action|src|formaction)="([^"]*)"', re.IGNORECASE)


def as_read(url: str) -> str:
    """`url` as a code reader would read it (decoded, separators dropped, upper case)."""
    flat = unquote_plus(unquote_plus(url))
    for separator in ("-", ".", ",", "_"):
        flat = flat.replace(separator, "")
    return "".join(flat.split()).upper().translate(_READ_AS)


def codes_in(url: str, every_code: Iterable[str]) -> list[str]:
    read = as_read(url)
    return [code for code in every_code if code in read]


def urls_of(html: str) -> list[str]:
    return [unescape_amp(found) for found in URL_ATTRIBUTES.findall(html)]


def unescape_amp(value: str) -> str:
    return value.replace("&amp;", "&")


@pytest.fixture
def people(db_session: Session, definition: Definition, structure: Structure) -> People:
    return make_people(db_session, definition, structure)


@pytest.fixture
def admin(database: Database, structure: Structure) -> Account:
    return add_staff(database, Role.STRUCTURE_ADMIN, structure)


def every_code(people: People) -> list[str]:
    return [
        people.not_started,
        people.in_progress,
        people.due,
        people.recent,
        people.after_pending,
        people.complete,
        people.retro,
        people.elsewhere,
    ]


def test_the_leak_check_reads_every_written_form_of_a_code() -> None:
    code = codes.generate_code()
    shown = codes.display(code)
    for url in (
        f"/staff/people/{code}",
        f"/staff/people/{shown.lower()}/summary.pdf",
        f"/staff/people/?q={shown.replace('-', '+')}",
        f"/staff/entry/?code={shown.replace('-', '%20')}",
        f"/staff/audit?person={code.lower().replace('0', 'o')}",
    ):
        assert codes_in(url, [code]) == [code], url
    assert codes_in("/staff/people/12", [code]) == []


# --- 1. no code in any address the staff pages produce --------------------------------------


SKIPPED = ("/staff/logout",)
MAX_PAGES = 160


def crawl(visitor: Visitor, start: list[str], every: list[str]) -> tuple[set[str], list[str]]:
    """GET every back-office page reachable from `start` (PDFs and downloads are checked as
    addresses, not opened); return the pages seen and the leaks found, with where."""
    leaks: list[str] = []
    seen: set[str] = set()
    queue = list(start)
    while queue and len(seen) < MAX_PAGES:
        url = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        response = visitor.get(url)
        assert response.status_code < 500, (url, response.status_code)
        location = response.headers.get("Location", "")
        for found in codes_in(location, every):
            leaks.append(f"{url}: Location {location} holds {found}")
        if location:
            parts = urlsplit(location)
            queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
            continue
        if response.mimetype != "text/html":
            continue
        for link in urls_of(text_of(response)):
            for found in codes_in(link, every):
                leaks.append(f"{url}: {link} holds {found}")
            parts = urlsplit(link)
            path = parts.path
            if parts.netloc or not path.startswith("/staff/") or path in SKIPPED:
                continue
            if path.endswith(".pdf") or "/download" in path:
                continue
            queue.append(path + (f"?{parts.query}" if parts.query else ""))
    return seen, leaks


def test_no_staff_page_address_holds_a_code(
    app: Flask, admin: Account, people: People, database: Database
) -> None:
    every = every_code(people)
    visitor = signed_in(app, admin)
    # The search (a POST) and its redirect, then everything reachable from there.
    searched = search_people(visitor, codes.display(people.due).lower())
    assert searched.status_code == 200
    assert visitor.url == "/staff/people/?search=1"
    assert codes.display(people.due) in visitor.html  # found and listed, by id
    pages, leaks = crawl(visitor, ["/staff/", "/staff/people/?search=1"], every)
    assert not leaks, "\n".join(leaks)
    for code in every[:-1]:  # each person of the structure was reached by their id
        assert f"/staff/people/{person_id(database, code)}" in pages, code
    assert any(page.startswith("/staff/audit") for page in pages)
    assert any(page.startswith("/staff/entry/?person=") for page in pages)


def test_no_redirect_of_a_staff_post_holds_a_code(
    app: Flask, admin: Account, people: People, database: Database
) -> None:
    every = every_code(people)
    visitor = signed_in(app, admin)
    locations = []
    visitor.get("/staff/people/")
    for data in (
        {"q": people.due},
        {"q": codes.display(people.due).lower(), "show": "after_due", "sort": "oldest"},
        {"q": people.due[:4]},
    ):
        response = visitor.post("/staff/people/", data)
        assert response.status_code == 302
        locations.append(response.headers["Location"])
    visitor.get("/staff/audit")
    response = visitor.post("/staff/audit", {"person": codes.display(people.complete)})
    assert response.status_code == 302
    assert response.headers["Location"] == (
        f"/staff/audit?person_id={person_id(database, people.complete)}"
    )
    locations.append(response.headers["Location"])
    # The data entry "open by code" from a person's page: the code box filled, no code in
    # the address; opening answers with the entry screen's address (a response id).
    page = f"/staff/people/{person_id(database, people.due)}"
    visitor.get(page)
    (entry,) = [u for u in urls_of(visitor.html) if u.startswith("/staff/entry/")]
    assert entry == f"/staff/entry/?person={person_id(database, people.due)}"
    visitor.get(entry)
    assert f'value="{people.due}"' in visitor.html
    opened = visitor.post(
        "/staff/entry/", {"action": "code", "code": people.due, "form": "after", "lang": "fr"}
    )
    assert opened.status_code == 302, text_of(opened)[:300]
    locations.append(opened.headers["Location"])
    # Deleting a response, deleting a person, erasing one.
    visitor.get(page)
    delete_response = next(u for u in urls_of(visitor.html) if "/responses/" in u)
    visitor.get(delete_response)
    locations.append(visitor.post(delete_response).headers["Location"])
    visitor.get(f"{page}/delete")
    locations.append(visitor.post(f"{page}/delete").headers["Location"])
    erase = f"/staff/people/{person_id(database, people.recent)}/erase"
    visitor.get(erase)
    locations.append(visitor.post(erase, {"reason": "person_asked"}).headers["Location"])
    leaks = [(location, codes_in(location, every)) for location in locations]
    assert [leak for leak in leaks if leak[1]] == []


def test_the_search_is_kept_sealed_in_the_session(
    app: Flask, admin: Account, people: People
) -> None:
    visitor = signed_in(app, admin)
    search_people(visitor, people.due)
    cookie = visitor.client.get_cookie("selfcheck_session")
    assert cookie is not None
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    stored = serializer.loads(cookie.value)
    held = stored["people_search"]
    assert sealing.is_sealed(held)
    assert not codes_in(str(stored), [people.due])
    # Forgotten by an empty search; the list then shows everybody.
    visitor.post("/staff/people/", {"q": ""})
    stored = serializer.loads(visitor.client.get_cookie("selfcheck_session").value)  # type: ignore[union-attr]
    assert "people_search" not in stored


def test_a_search_held_for_one_structure_is_not_applied_to_another(
    app: Flask, database: Database, db_session: Session, people: People, structure: Structure
) -> None:
    other = create_structure(db_session, "Mairie de Lille", "urbain", "59")
    (theirs,) = journey.create_codes(db_session, other, 1)
    db_session.commit()
    visitor = signed_in(app, add_staff(database, Role.PLATFORM_ADMIN))
    search_people(visitor, people.due, list_url=f"/staff/people/?structure={structure.slug}")
    assert visitor.url == f"/staff/people/?structure={structure.slug}&search=1"
    assert "dont le code contient" in visitor.text
    visitor.get(f"/staff/people/?structure={other.slug}&search=1")
    assert visitor.last is not None and visitor.last.status_code == 200
    assert "dont le code contient" not in visitor.text
    assert codes.display(theirs.code) in visitor.html


# --- 2. another structure's ids -------------------------------------------------------------


def person_routes(pid: object, response_id: object) -> list[str]:
    return [
        f"/staff/people/{pid}",
        f"/staff/people/{pid}/delete",
        f"/staff/people/{pid}/erase",
        f"/staff/people/{pid}/responses/{response_id}/delete",
        f"/staff/people/{pid}/summary.pdf",
        f"/staff/people/{pid}/come-back-card.pdf",
    ]


def test_another_structures_staff_get_404_for_this_structures_ids(
    app: Flask, database: Database, db_session: Session, people: People, admin: Account
) -> None:
    from tests.support import responses

    lille = create_structure(db_session, "Mairie de Lille", "urbain", "59")
    db_session.commit()
    outsider = signed_in(app, add_staff(database, Role.STRUCTURE_ADMIN, lille))
    pid = person_id(database, people.complete)
    (response_id,) = [
        r.id for r in responses(database) if r.beneficiary_id == pid and r.form == "before"
    ]
    outsider.get("/staff/")
    token = csrf_token(outsider.html)
    for url in person_routes(pid, response_id):
        assert outsider.get(url).status_code == 404, url
        if "pdf" not in url and url != f"/staff/people/{pid}":
            posted = outsider.post(url, {"reason": "person_asked", "csrf_token": token})
            assert posted.status_code == 404, url
    # Their entry page is not filled with this structure's person's code, nor their trail.
    outsider.get(f"/staff/entry/?person={pid}")
    assert people.complete not in outsider.html
    trail = outsider.get(f"/staff/audit?person_id={pid}")
    assert trail.status_code == 400
    assert people.complete not in outsider.html
    # Still there, for their own staff.
    own = signed_in(app, admin)
    for url in person_routes(pid, response_id):
        assert own.get(url).status_code == 200, url


# --- 3. tampered ids and old addresses ------------------------------------------------------


TAMPERED = [
    "abc",
    "-1",
    "0",
    "1.5",
    "1e3",
    "%00",
    "+1",
    " 1",
    str(MAX_ROW_ID + 1),
    str(2**63),
    "9" * 40,
]


@pytest.mark.parametrize("raw", TAMPERED)
def test_tampered_ids_are_not_found_never_a_500(
    app: Flask, admin: Account, people: People, raw: str
) -> None:
    visitor = signed_in(app, admin)
    visitor.get("/staff/")
    token = csrf_token(visitor.html)
    for url in person_routes(raw, 1):
        response = visitor.get(url)
        assert response.status_code == 404, (url, response.status_code)
        posted = visitor.post(url, {"reason": "person_asked", "csrf_token": token})
        assert posted.status_code in (404, 405), (url, posted.status_code)
    for url in (f"/staff/entry/?person={raw}", f"/staff/audit?person_id={raw}"):
        response = visitor.get(url)
        assert response.status_code in (200, 400), (url, response.status_code)
    # A response id out of range under a real person.
    pid = person_id(app.extensions["selfcheck.platform.db"], people.complete)
    for response_id in (str(MAX_ROW_ID + 1), "9" * 40):
        url = f"/staff/people/{pid}/responses/{response_id}/delete"
        assert visitor.get(url).status_code == 404, url


def test_addresses_with_a_code_are_not_found_or_redirected_without_it(
    app: Flask, admin: Account, people: People
) -> None:
    visitor = signed_in(app, admin)
    code = people.complete
    for written in (code, codes.display(code), codes.display(code).lower()):
        for url in (
            f"/staff/people/{written}",
            f"/staff/people/{written}/delete",
            f"/staff/people/{written}/erase",
            f"/staff/people/{written}/summary.pdf",
            f"/staff/people/{written}/come-back-card.pdf",
            f"/staff/people/{written}/responses/1/delete",
        ):
            response = visitor.get(url)
            assert response.status_code == 404, (url, response.status_code)
            assert not codes_in(text_of(response), [code]), url
        for url, target in (
            (f"/staff/people/?q={written}&show=complete", "/staff/people/?show=complete"),
            (f"/staff/entry/?code={written}", "/staff/entry/"),
            (f"/staff/audit?person={written}&action=edit", "/staff/audit?action=edit"),
        ):
            response = visitor.get(url)
            assert response.status_code == 302, (url, response.status_code)
            assert response.headers["Location"] == target, url
            assert not codes_in(text_of(response), [code]), url
            # Signed out (or the session expired): the same, before the sign-in's `next=`.
            anonymous = app.test_client().get(url)
            assert anonymous.headers["Location"] == target, url
            for path in (f"/staff/people/{written}", f"/staff/people/{written}/summary.pdf"):
                assert app.test_client().get(path).status_code == 404, path
