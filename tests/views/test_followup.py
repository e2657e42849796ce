"""The follow-up pages: the list, its filter and print buttons, one person, deletions."""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck.accounts.structures import create_structure
from selfcheck.followup import operations as followup
from selfcheck.followup import views as followup_view
from selfcheck.platform import codes
from selfcheck.platform.db import Database
from selfcheck.platform.models import AuditEvent, Beneficiary, Role, Structure
from selfcheck.questionnaire.model import Definition
from tests.services.test_followup import People, make_people
from tests.staff import Account, add_staff, signed_in
from tests.support import (
    Visitor,
    error_summary,
    parse_forms,
    path_of,
    person_url,
    search_people,
    text_of,
    words,
)


@pytest.fixture
def people(db_session: Session, definition: Definition, structure: Structure) -> People:
    return make_people(db_session, definition, structure)


@pytest.fixture
def mediator(database: Database, structure: Structure) -> Account:
    return add_staff(database, Role.MEDIATOR, structure)


@pytest.fixture
def admin(database: Database, structure: Structure) -> Account:
    return add_staff(database, Role.STRUCTURE_ADMIN, structure)


def codes_listed(html: str) -> set[str]:
    """Codes linked from the list (display form, as printed)."""
    return {
        found.replace("-", "")
        for found in re.findall(r'class="code-link" href="[^"]+">([0-9A-Z-]{11})<', html)
    }


def test_a_mediator_sees_the_people_of_their_structure(
    app: Flask, mediator: Account, people: People
) -> None:
    visitor = signed_in(app, mediator)
    page = visitor.get("/staff/people/")
    assert page.status_code == 200
    listed = codes_listed(visitor.html)
    assert people.due in listed and people.complete in listed
    assert people.elsewhere not in listed
    assert len(listed) == 7
    assert "<caption id=" in visitor.html and 'scope="col"' in visitor.html
    assert 'scope="row"' in visitor.html
    assert "2 personnes doivent remplir le questionnaire de fin" in visitor.text
    assert "Départ rempli, fin à faire" in visitor.text
    assert "papier" in visitor.text  # the recent 'before' came on paper


def test_after_due_filter(app: Flask, mediator: Account, people: People) -> None:
    visitor = signed_in(app, mediator)
    visitor.get("/staff/people/?show=after_due")
    assert codes_listed(visitor.html) == {people.due, people.after_pending}
    assert 'value="after_due" selected' in visitor.html
    visitor.get("/staff/people/?show=retrospective")
    assert codes_listed(visitor.html) == {people.retro}
    page = visitor.get("/staff/people/?show=nonsense&page=zero")
    # Said plainly, with everybody listed below: never a 500, never a silent change.
    assert page.status_code == 400
    assert len(codes_listed(visitor.html)) == 7
    assert error_summary(visitor.html) == [
        "Ce choix n'existe pas : choisissez dans la liste.",
        "Le numéro de page doit être un nombre entier à partir de 1.",
    ]


def test_pages_of_the_list(
    app: Flask, mediator: Account, people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(followup, "PAGE_SIZE", 3)
    visitor = signed_in(app, mediator)
    seen: set[str] = set()
    for number in (1, 2, 3):
        visitor.get(f"/staff/people/?page={number}")
        assert f"page {number} sur 3" in visitor.text
        seen |= codes_listed(visitor.html)
    assert len(seen) == 7
    assert 'rel="next"' not in visitor.html and 'rel="prev"' in visitor.html


def test_no_print_button_without_the_printing_screens(
    app: Flask, mediator: Account, people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(followup_view, "PRINT_AFTER", "printing.not_installed")
    visitor = signed_in(app, mediator)
    visitor.get("/staff/people/")
    posting = [f.action for f in visitor.forms() if f.method == "post"]
    assert sorted(posting) == ["/staff/logout", "/staff/people/"]  # the search form only
    assert 'name="codes"' not in visitor.html


def test_print_buttons_post_codes(
    app: Flask, mediator: Account, people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checkboxes for the people who can get an 'after' form, and a form for all who owe one.

    Whatever endpoint receives them (here a stand-in), they post `codes` with a CSRF token.
    """
    monkeypatch.setattr(followup_view, "PRINT_AFTER", "backoffice.home")
    monkeypatch.setattr(followup, "PAGE_SIZE", 3)
    visitor = signed_in(app, mediator)
    visitor.get("/staff/people/?show=before_done")
    posting = [f for f in visitor.forms() if f.action == "/staff/"]
    assert len(posting) == 2
    everyone_due, selected = posting
    assert everyone_due.method == selected.method == "post"
    due_codes = [i.value for i in everyone_due.inputs if i.name == "codes"]
    assert sorted(due_codes) == sorted([people.due, people.after_pending])  # not only this page
    assert {i.type for i in everyone_due.inputs if i.name == "codes"} == {"hidden"}
    assert {i.type for i in selected.inputs if i.name == "codes"} == {"checkbox"}
    assert sorted(i.value for i in selected.inputs if i.name == "codes") == sorted(
        [people.due, people.recent]
    )
    for form in posting:
        assert "csrf_token" in form.hidden()
        assert [i.type for i in form.inputs if i.name == "large"] == ["checkbox"]
    assert "Imprimer les questionnaires de fin" in visitor.text

    # Completed and retrospective people get no checkbox.
    visitor.get("/staff/people/?show=complete")
    assert 'name="codes" value="' + people.complete not in visitor.html


def test_print_selected_after_forms_for_real(app: Flask, mediator: Account, people: People) -> None:
    """With the printing screens installed, the selected codes come back as a PDF."""
    if followup_view.PRINT_AFTER not in app.view_functions:
        pytest.fail("printing.after_forms is not installed")
    visitor = signed_in(app, mediator)
    visitor.get("/staff/people/?show=after_due")
    form = next(f for f in visitor.forms() if f.action == "/staff/print/after")
    response = visitor.post(form.action or "", {"codes": [people.due]})
    assert response.status_code == 200, text_of(response)[:500]
    assert response.data.startswith(b"%PDF")


def test_platform_admins_choose_a_structure(
    app: Flask, database: Database, structure: Structure, people: People
) -> None:
    visitor = signed_in(app, add_staff(database, Role.PLATFORM_ADMIN))
    visitor.get("/staff/people/")
    assert "Choisissez une structure." in visitor.text
    assert f'href="/staff/people/?structure={structure.slug}"' in visitor.html
    visitor.get(f"/staff/people/?structure={structure.slug}")
    assert len(codes_listed(visitor.html)) == 7
    assert f"structure={structure.slug}" in visitor.html  # kept in filter and page links
    assert visitor.get("/staff/people/?structure=nowhere").status_code == 404


def test_no_other_structure_by_changing_the_address(
    app: Flask, mediator: Account, people: People, db_session: Session, database: Database
) -> None:
    other = db_session.scalar(
        select(Beneficiary.structure_id).where(Beneficiary.code == people.elsewhere)
    )
    slug = db_session.get(Structure, other).slug  # type: ignore[union-attr]
    visitor = signed_in(app, mediator)
    assert visitor.get(f"/staff/people/?structure={slug}").status_code == 404
    assert visitor.get(person_url(database, people.elsewhere)).status_code == 404


# --- one person ------------------------------------------------------------------------------


def test_person_page(app: Flask, mediator: Account, people: People, database: Database) -> None:
    visitor = signed_in(app, mediator)
    page = visitor.get(person_url(database, people.complete))
    assert page.status_code == 200
    assert f"Personne {codes.display(people.complete)}" in visitor.text
    # In a heading the code is isolated: in Arabic (right to left) a code whose digits come
    # first ("056-KMV-SKY") was drawn reversed ("KMV-SKY-056"); the tab's title stays text.
    assert f"<h1>Personne <bdi>{codes.display(people.complete)}</bdi></h1>" in visitor.html
    assert f"<title>Personne {codes.display(people.complete)} –" in visitor.html
    assert "Questionnaire de départ" in visitor.text and "Questionnaire de fin" in visitor.text
    assert "envoyé" in visitor.text and "en ligne" in visitor.text
    assert "/delete" not in visitor.html  # mediators do not delete
    # Addressed by id, never by code (docs/security.md): the code, in any form, is not found.
    for shown in (people.complete, codes.display(people.complete).lower()):
        assert visitor.get(f"/staff/people/{shown}").status_code == 404


def test_person_page_links_to_the_other_screens_when_they_exist(
    app: Flask, mediator: Account, people: People, database: Database
) -> None:
    visitor = signed_in(app, mediator)
    visitor.get(person_url(database, people.complete))
    for endpoint, fragment in [
        (followup_view.SUMMARY_PDF, "summary.pdf"),
        (followup_view.ENTRY, "/staff/entry"),
    ]:
        if endpoint in app.view_functions:
            assert fragment in visitor.html, endpoint
    # A code never used yet has no summary to download.
    visitor.get(person_url(database, people.not_started))
    assert "summary.pdf" not in visitor.html
    assert "ce code n'a pas encore servi" in visitor.text


@pytest.mark.parametrize(
    "code", ["nonsense", "ZZZZZZZZ" + codes.check_character("ZZZZZZZZ"), "ZZZZZZZZA"]
)
def test_unknown_or_malformed_code_is_not_found(
    app: Flask, mediator: Account, people: People, code: str
) -> None:
    assert signed_in(app, mediator).get(f"/staff/people/{code}").status_code == 404


def test_delete_a_response(
    app: Flask, admin: Account, mediator: Account, people: People, database: Database
) -> None:
    visitor = signed_in(app, admin)
    page_url = person_url(database, people.complete)
    visitor.get(page_url)
    links = [href for href in _hrefs(visitor.html) if href.startswith(f"{page_url}/responses/")]
    assert len(links) == 2
    confirm = visitor.get(links[0])
    assert confirm.status_code == 200
    assert "Supprimer le questionnaire de départ" in visitor.text
    assert "On ne peut pas revenir en arrière" in visitor.text
    assert visitor.post(links[0], csrf=False).status_code == 400
    assert signed_in(app, mediator).get(links[0]).status_code == 403

    response = visitor.post(links[0])
    assert response.status_code == 302
    assert path_of(response.headers["Location"]) == page_url
    visitor.follow(response)
    assert "Le questionnaire est supprimé." in visitor.text
    assert "Questionnaire de départ" not in visitor.text
    assert visitor.get(links[0]).status_code == 404  # gone

    visitor.get("/staff/audit")
    assert "delete" in visitor.text and admin.email in visitor.text
    with database.session() as session:
        (event,) = session.scalars(select(AuditEvent)).all()
        assert json.loads(event.changes)["form"] == {"old": ["before"], "new": []}


def test_delete_a_person(
    app: Flask, admin: Account, mediator: Account, people: People, database: Database
) -> None:
    visitor = signed_in(app, admin)
    page_url = person_url(database, people.due)
    url = f"{page_url}/delete"
    assert signed_in(app, mediator).get(url).status_code == 403
    assert visitor.get(url).status_code == 200
    assert f"Supprimer la personne {codes.display(people.due)}" in visitor.text
    assert f"<title>Supprimer la personne {codes.display(people.due)} ?" in visitor.html
    assert f"<bdi>{codes.display(people.due)}</bdi>" in visitor.html
    response = visitor.post(url)
    assert response.status_code == 302
    assert path_of(response.headers["Location"]) == "/staff/people/"
    visitor.follow(response)
    assert "La personne et ses questionnaires sont supprimés." in visitor.text
    assert people.due not in codes_listed(visitor.html)
    assert visitor.get(page_url).status_code == 404
    with database.session() as session:
        assert [e.entity for e in session.scalars(select(AuditEvent))] == [
            "response",
            "beneficiary",
        ]


def test_only_an_administrator_erases_and_says_why(
    app: Flask, mediator: Account, admin: Account, people: People, database: Database
) -> None:
    page_url = person_url(database, people.due)
    url = f"{page_url}/erase"
    # Erasure cannot be undone: mediators neither see the link nor reach the page.
    visitor = signed_in(app, mediator)
    visitor.get(page_url)
    assert url not in _hrefs(visitor.html)
    assert visitor.get(url).status_code == 403
    visitor = signed_in(app, admin)
    visitor.get(page_url)
    assert url in _hrefs(visitor.html)
    assert visitor.get(url).status_code == 200
    assert "droit à l'effacement" in visitor.text
    without_reason = visitor.post(url)
    assert without_reason.status_code == 422
    assert "Choisissez pourquoi" in words(without_reason)
    assert visitor.post(url, {"reason": "person_online"}).status_code == 422
    response = visitor.post(url, {"reason": "consent_withdrawn"})
    assert response.status_code == 302
    visitor.follow(response)
    assert "ni son code ni ses réponses ne sont gardés" in visitor.text
    assert visitor.get(page_url).status_code == 404
    with database.session() as session:
        assert session.scalar(select(Beneficiary).where(Beneficiary.code == people.due)) is None
        events = list(session.scalars(select(AuditEvent)))
        # Who, when and why; never whom.
        assert [(e.action, e.entity, e.entity_id, e.user_id) for e in events] == [
            ("erase", "beneficiary", None, admin.id)
        ]
        assert json.loads(events[0].changes) == {
            "reason": {"old": [], "new": ["consent_withdrawn"]}
        }


def test_an_admin_cannot_delete_in_another_structure(
    app: Flask, database: Database, db_session: Session, people: People
) -> None:
    other = create_structure(db_session, "Centre social de Lyon", "urbain", "69")
    db_session.commit()
    outsider = add_staff(database, Role.STRUCTURE_ADMIN, other)
    visitor = signed_in(app, outsider)
    url = person_url(database, people.due, "/delete")
    assert visitor.get(url).status_code == 404
    visitor.get("/staff/")
    assert visitor.post(url).status_code == 404
    with database.session() as session:
        assert session.scalar(select(Beneficiary).where(Beneficiary.code == people.due))


def _hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', html)


def test_forms_on_the_list_are_parsed(app: Flask, mediator: Account, people: People) -> None:
    """The filter is a form that works without JavaScript: a POST with a CSRF token (the
    code searched for never goes into an address), answered by a redirect."""
    visitor = signed_in(app, mediator)
    visitor.get("/staff/people/")
    (search,) = [f for f in parse_forms(visitor.html) if f.action == "/staff/people/"]
    assert search.method == "post" and "csrf_token" in search.hidden()
    assert "q" in {i.name for i in search.inputs}
    assert Visitor(visitor.client).get("/staff/people/?show=complete").status_code == 200


def test_print_all_due_is_capped_to_one_print_run(
    app: Flask, mediator: Account, people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(followup_view, "PRINT_AFTER", "backoffice.home")
    monkeypatch.setattr(followup, "PRINT_BATCH", 1)
    visitor = signed_in(app, mediator)
    visitor.get("/staff/people/")
    everyone_due = next(f for f in visitor.forms() if f.action == "/staff/")
    assert len([i for i in everyone_due.inputs if i.name == "codes"]) == 1
    assert "Au plus 1 questionnaires à la fois" in visitor.text


# --- finding people (issue 14) -----------------------------------------------------------


def test_search_by_part_of_a_code_as_printed(app: Flask, mediator: Account, people: People) -> None:
    visitor = signed_in(app, mediator)
    printed = codes.display(people.due).lower()  # typed from paper, dashes and all
    page = search_people(visitor, printed[:7])
    assert page.status_code == 200
    assert visitor.url == "/staff/people/?search=1"
    part = people.due[:6]
    assert people.due in codes_listed(visitor.html)
    assert all(part in code for code in codes_listed(visitor.html))
    assert f"dont le code contient « {part} »" in visitor.text
    # The search field keeps what was typed, labelled as the browser shows it.
    assert f'value="{printed[:7]}"' in visitor.html
    assert '<label for="q">Code ou partie du code</label>' in visitor.html


def test_no_other_structure_is_found_by_search(
    app: Flask, mediator: Account, people: People
) -> None:
    visitor = signed_in(app, mediator)
    search_people(visitor, people.elsewhere)
    assert codes_listed(visitor.html) == set()
    assert "Aucun code ne contient" in visitor.text


def test_search_and_state_together(app: Flask, mediator: Account, people: People) -> None:
    visitor = signed_in(app, mediator)
    search_people(visitor, people.due, show="after_due", sort="oldest")
    assert visitor.url == "/staff/people/?show=after_due&search=1&sort=oldest"
    assert codes_listed(visitor.html) == {people.due}
    assert 'value="oldest" selected' in visitor.html
    visitor.get("/staff/people/?show=before_only")
    assert codes_listed(visitor.html) == {people.due, people.recent, people.after_pending}
    visitor.get("/staff/people/?show=complete")
    assert codes_listed(visitor.html) == {people.complete}
    # First and last visit columns.
    assert "Première venue" in visitor.text and "Dernière venue" in visitor.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("q=%25%25", "Un code n'a que des chiffres et des lettres"),
        ("q=0123456789ABC", "Un code a au plus 9 caractères"),
        ("sort=sideways", "Cet ordre n'existe pas"),
        ("page=99999999999999999999999", "Le numéro de page doit être un nombre entier"),
        ("page=-3", "Le numéro de page doit être un nombre entier"),
    ],
)
def test_bad_input_is_said_plainly(
    app: Flask, mediator: Account, people: People, query: str, message: str
) -> None:
    visitor = signed_in(app, mediator)
    if query.startswith("q="):  # a code is searched for by the form's POST, never by address
        page = search_people(visitor, unquote(query.removeprefix("q=")))
    else:
        page = visitor.get(f"/staff/people/?{query}")
    assert page.status_code == 400
    assert any(text.startswith(message) for text in error_summary(visitor.html))
    assert len(codes_listed(visitor.html)) == 7  # the list is still there


def test_a_page_beyond_the_last_says_so(
    app: Flask, mediator: Account, people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(followup, "PAGE_SIZE", 3)
    visitor = signed_in(app, mediator)
    page = visitor.get("/staff/people/?page=999999")
    assert page.status_code == 200
    assert "La page 999999 n'existe pas : la liste a 3 pages. Voici la dernière." in visitor.text
    assert len(codes_listed(visitor.html)) == 1


def test_the_people_who_owe_an_after_form_printable(
    app: Flask, mediator: Account, people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(followup, "PAGE_SIZE", 1)  # the printable list is never paged
    visitor = signed_in(app, mediator)
    visitor.get("/staff/people/")
    assert "/staff/people/?show=after_due&amp;print=1" in visitor.html
    page = visitor.get("/staff/people/?show=after_due&print=1")
    assert page.status_code == 200
    printed = set(
        re.findall(r'<th scope="row" class="code-cell"><bdi>([0-9A-Z-]{11})</bdi><', visitor.html)
    )
    assert printed == {codes.display(people.due), codes.display(people.after_pending)}
    assert "<h1>Questionnaire de fin en retard</h1>" in visitor.html
    assert "<input" not in visitor.html.split("<main", 1)[1].split("</main>", 1)[0]
    assert "Ctrl+P" in visitor.text


def test_double_entry_switched_off_is_said(
    app: Flask, mediator: Account, admin: Account, structure: Structure, db_session: Session
) -> None:
    assert structure.double_entry_percent == 0  # the default
    visitor = signed_in(app, mediator)
    visitor.get("/staff/entry/second")
    assert "La double saisie est désactivée pour cette structure." in visitor.text
    assert "/staff/entry/settings" not in visitor.html
    assert "adressez-vous à la personne qui administre votre structure" in visitor.text
    manager = signed_in(app, admin)
    manager.get("/staff/entry/second")
    assert f'href="/staff/entry/settings?structure={structure.id}"' in manager.html
    structure.double_entry_percent = 10
    db_session.commit()
    visitor.get("/staff/entry/second")
    assert "désactivée" not in visitor.text


def test_every_state_and_order_has_words() -> None:
    assert set(followup_view.SHOW_LABELS) == set(followup.Show)
    assert set(followup_view.SORT_LABELS) == set(followup.Sort)
