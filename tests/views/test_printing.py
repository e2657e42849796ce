"""The print screen, after-forms for the follow-up list, and summary PDFs over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from selfcheck.accounts.structures import create_structure
from selfcheck.evaluation import codebook
from selfcheck.journey import operations as journey
from selfcheck.paper import blank_cache
from selfcheck.paper import operations as paper
from selfcheck.platform import codes
from selfcheck.platform.db import Database
from selfcheck.platform.models import AuditEvent, Beneficiary, Role, Structure
from selfcheck.questionnaire.model import Definition, FormKind, Wording
from tests.pdf_support import page_count, page_texts, qr_codes, text
from tests.pdf_support import structure as pdf_structure
from tests.render_counting import count_collections
from tests.staff import Account, add_staff, signed_in
from tests.support import (
    AFTER,
    BEFORE,
    Visitor,
    count,
    error_summary,
    fill_and_submit,
    follow_job,
    new_token,
    parse_forms,
    path_of,
    text_of,
)


@pytest.fixture
def mediator(database: Database, structure: Structure) -> Account:
    return add_staff(database, Role.MEDIATOR, structure)


@pytest.fixture
def other_structure(db_session: Session) -> Structure:
    result = create_structure(db_session, "Centre social Malakoff", "urbain", "44")
    db_session.commit()
    return result


@pytest.fixture
def staff(app: Flask, mediator: Account) -> Visitor:
    """A signed-in mediator on the print page (its CSRF token is used for the posts)."""
    visitor = signed_in(app, mediator)
    assert visitor.get("/staff/print").status_code == 200
    return visitor


def print_form(staff: Visitor, **values: str) -> TestResponse:
    data = {"kind": "blank", "form": "before", "language": "fr", "copies": "1", **values}
    return follow_job(staff, staff.post("/staff/print", data))


def assert_pdf(response: TestResponse, filename_part: str) -> bytes:
    assert response.status_code == 200, (response.status_code, error_summary(text_of(response)))
    assert response.mimetype == "application/pdf"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename=") and filename_part in disposition
    assert disposition.endswith('.pdf"')
    assert response.headers["Cache-Control"] == "no-store"
    return response.data


def test_forms_prefilled_by_the_command_are_served_without_a_render(
    app: Flask, staff: Visitor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`selfcheck paper prefill --url` keys each file on the address the print page prints,
    so the very first request finds it (renders counted here: the real ones are above)."""
    from selfcheck.cli import main

    calls: list[object] = []

    def counted(copies: object, **options: object) -> bytes:
        calls.append(options)
        return b"%PDF-1.7\n% prefilled " + str(len(calls)).encode() + b"\n%%EOF\n"

    for wording in Wording:
        monkeypatch.setattr(paper.renderer(app, wording), "questionnaires", counted)
    count_collections(monkeypatch)  # no full collection after a counted render
    # The export codebooks too (tests/test_prefill.py): not what this test is about.
    monkeypatch.setattr(codebook, "_render_pdf", lambda book: b"%PDF-1.7\n%%EOF\n")
    app.config["SELFCHECK_LANGUAGES"] = ("fr", "es")
    result = app.test_cli_runner().invoke(main, ["paper", "prefill", "--url", "http://localhost"])
    assert result.exit_code == 0, result.output
    rendered = len(FormKind) * 2 * len(Wording) * 2
    assert f"{rendered} rendered, 0 already there" in result.output
    assert "codebooks: 8 rendered" in result.output
    assert len(calls) == rendered
    assert {options["site_url"] for options in calls} == {"http://localhost/code"}

    served = print_form(staff, kind="blank", form="after", language="es", large="y")
    assert served.status_code == 200 and served.data.startswith(b"%PDF-1.7\n% prefilled ")
    assert len(calls) == rendered  # read from the file the command wrote

    again = app.test_cli_runner().invoke(main, ["paper", "prefill", "--url", "http://localhost"])
    assert f"0 rendered, {rendered} already there" in again.output
    bad = app.test_cli_runner().invoke(main, ["paper", "prefill", "--url", "localhost"])
    assert bad.exit_code == 2 and "https://" in bad.output


def person_with(
    db_session: Session,
    definition: Definition,
    structure: Structure,
    after: bool = False,
    locale: str = "fr",
) -> Beneficiary:
    """Someone with a submitted before form (and after form)."""
    before = journey.start_response(
        db_session, definition, structure, FormKind.BEFORE, locale, new_token()
    )
    db_session.commit()
    fill_and_submit(db_session, definition, before, BEFORE)
    person = before.beneficiary
    if after:
        response = journey.start_after(db_session, definition, person, locale)
        db_session.commit()
        fill_and_submit(db_session, definition, response, AFTER)
    db_session.refresh(person)
    return person


# --- the print screen ---------------------------------------------------------------------


def test_the_print_screen_is_an_accessible_form(staff: Visitor, structure: Structure) -> None:
    html = staff.html
    assert "<h1>Imprimer des questionnaires</h1>" in html
    assert html.count("<fieldset") == 4 and html.count("<legend") == 4
    form = next(f for f in parse_forms(html) if f.action and path_of(f.action) == "/staff/print")
    assert form.method == "post" and form.hidden().get("csrf_token")
    assert form.options("kind") == ["coded", "blank"]
    assert form.options("form") == ["before", "after", "retro", "followup", "followup_late"]
    assert form.options("language") == ["fr", "en", "es", "ar"]
    assert form.checked("kind") == ["coded"] and form.checked("form") == ["before"]
    assert '<label class="legend" for="copies">' in html
    assert 'id="copies" name="copies" value="1"' in html
    assert structure.name in staff.text


def test_the_print_screen_needs_sign_in_and_the_enter_permission(
    app: Flask, database: Database, structure: Structure
) -> None:
    visitor = Visitor(app.test_client())
    response = visitor.get("/staff/print")
    assert response.status_code == 302
    assert path_of(response.headers["Location"]) == "/staff/login"
    evaluator = signed_in(app, add_staff(database, Role.EVALUATOR, departments=("44",)))
    assert evaluator.get("/staff/print").status_code == 403
    home = signed_in(app, add_staff(database, Role.MEDIATOR, structure))
    home.get("/staff/")
    assert 'href="/staff/print"' in home.html  # the staff home links to it


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
def test_blank_forms_are_printed_without_codes(
    staff: Visitor, database: Database, definition: Definition
) -> None:
    pdf = assert_pdf(
        print_form(staff, kind="blank", form="retro", language="en", copies="2"),
        "questionnaires-retrospectif-2-vierges-en",
    )
    pages = page_count(pdf)
    assert pages % 2 == 0
    assert qr_codes(pdf) == []
    assert pdf_structure(pdf)["lang"] == "en"
    assert count(database, Beneficiary) == 0
    assert count(database, AuditEvent) == 0


def test_one_blank_form_is_rendered_once_then_served_from_the_instance_folder(
    app: Flask, staff: Visitor, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = assert_pdf(
        print_form(staff, kind="blank", form="after", language="es"),
        "questionnaires-fin-1-vierges-es",
    )
    assert pdf_structure(first)["lang"] == "es"
    kept = list(Path(app.config[blank_cache.CONFIG_KEY]).glob("*.pdf"))
    assert [path.read_bytes() for path in kept] == [first]

    def no_render(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("rendered again")

    monkeypatch.setattr(paper.renderer(app), "questionnaires", no_render)
    again = assert_pdf(
        print_form(staff, kind="blank", form="after", language="es"),
        "questionnaires-fin-1-vierges-es",
    )
    assert again == first


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
def test_twenty_coded_forms_create_twenty_codes_that_work_online(
    app: Flask,
    staff: Visitor,
    database: Database,
    definition: Definition,
    structure: Structure,
    mediator: Account,
) -> None:
    pdf = assert_pdf(
        print_form(staff, kind="coded", form="before", copies="20"),
        "questionnaires-depart-20-avec-codes-fr.pdf",
    )
    with database.session() as session:
        people = list(session.scalars(select(Beneficiary).order_by(Beneficiary.id)))
        events = list(session.scalars(select(AuditEvent)))
    assert len(people) == 20 and {p.structure_id for p in people} == {structure.id}
    assert [(e.action, e.entity, e.user_id) for e in events] == [
        ("create", "beneficiary", mediator.id)
    ]
    assert json.loads(events[0].changes)["count"] == 20
    texts = page_texts(pdf)
    per_copy = len(texts) // 20
    assert per_copy * 20 == len(texts)
    printed = []
    for index in range(20):
        first = texts[index * per_copy]
        found = [p.code for p in people if codes.display(p.code) in first]
        assert len(found) == 1
        printed.append(found[0])
    assert sorted(printed) == sorted(p.code for p in people)
    assert qr_codes(pdf, 0) == [printed[0]]
    assert qr_codes(pdf, 19 * per_copy) == [printed[19]]
    first_page = journey.visible_pages(definition, FormKind.BEFORE, {})[0].code
    for code in (printed[0], printed[19]):
        person = Visitor(app.test_client())
        landed = person.enter_code(codes.display(code).lower())  # typed as read on the paper
        assert landed.status_code == 302
        assert path_of(landed.headers["Location"]) == f"/q/{first_page}"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"copies": "0"}, "copies"),
        ({"copies": "500"}, "copies"),
        ({"copies": "201"}, "copies"),
        ({"copies": "abc"}, "copies"),
        ({"copies": ""}, "copies"),
        ({"copies": "-3"}, "copies"),
        ({"copies": "٣"}, "copies"),  # an Arabic-Indic digit: still not a number we print
        ({"language": "xx"}, "language"),
        ({"language": ""}, "language"),
        ({"form": "survey"}, "form"),
        ({"kind": "some"}, "kind"),
    ],
)
def test_bad_print_requests_are_refused_with_a_message(
    staff: Visitor, database: Database, values: dict[str, str], field: str
) -> None:
    response = print_form(staff, **{"kind": "coded", **values})
    assert response.status_code == 422
    assert response.mimetype == "text/html"
    html = text_of(response)
    messages = error_summary(html)
    assert len(messages) == 1
    assert f'href="#{field}' in html
    assert "<title>Erreur" in html
    assert count(database, Beneficiary) == 0


def test_a_platform_admin_prints_blank_forms_but_cannot_create_codes(
    app: Flask, database: Database
) -> None:
    admin = signed_in(app, add_staff(database, Role.PLATFORM_ADMIN))
    admin.get("/staff/print")
    refused = print_form(admin, kind="coded")
    assert refused.status_code == 422
    assert "aucune structure" in error_summary(text_of(refused))[0]
    assert count(database, Beneficiary) == 0
    assert_pdf(print_form(admin, kind="blank"), "vierges")


# --- after-forms for the follow-up list --------------------------------------------------


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
def test_after_forms_for_chosen_people_in_their_language(
    staff: Visitor, db_session: Session, definition: Definition, structure: Structure
) -> None:
    french = person_with(db_session, definition, structure)
    english = person_with(db_session, definition, structure, locale="en")
    response = staff.post(
        "/staff/print/after", {"codes": [french.code, codes.display(english.code)]}
    )
    pdf = assert_pdf(response, "questionnaires-fin-2-suivi.pdf")
    texts = page_texts(pdf)
    half = len(texts) // 2
    assert codes.display(french.code) in texts[0]
    assert codes.display(english.code) in texts[half]
    assert qr_codes(pdf, 0) == [french.code] and qr_codes(pdf, half) == [english.code]
    assert "Questionnaire de fin d'accompagnement" in texts[0]
    assert "Questionnaire de fin d'accompagnement" not in texts[half]
    large = staff.post("/staff/print/after", {"codes": [french.code], "large": "1"})
    assert page_count(assert_pdf(large, "gros-caracteres")) > half


def test_after_forms_for_someone_elses_person_are_refused(
    staff: Visitor,
    db_session: Session,
    definition: Definition,
    structure: Structure,
    other_structure: Structure,
) -> None:
    mine = person_with(db_session, definition, structure)
    theirs = person_with(db_session, definition, other_structure)
    response = staff.post("/staff/print/after", {"codes": [mine.code, theirs.code]})
    assert response.status_code == 422
    assert response.mimetype == "text/html"
    messages = error_summary(text_of(response))
    assert len(messages) == 1 and codes.display(theirs.code) in messages[0]
    assert "aucune personne n'a ce code" in messages[0]  # as if unknown: existence not revealed


@pytest.mark.parametrize("case", ["unknown", "typo", "none", "blank", "too_many"])
def test_after_forms_with_bad_codes_print_nothing(
    staff: Visitor, db_session: Session, definition: Definition, structure: Structure, case: str
) -> None:
    mine = person_with(db_session, definition, structure)
    wrong = {
        "unknown": [mine.code, codes.generate_code()],
        "typo": [mine.code, mine.code[:-1] + ("1" if mine.code[-1] != "1" else "2")],
        "none": [],
        "blank": ["  "],
        "too_many": [mine.code] * 201,
    }[case]
    response = staff.post("/staff/print/after", {"codes": wrong})
    assert response.status_code == 422
    assert response.mimetype == "text/html"
    assert len(error_summary(text_of(response))) == 1


# --- the summary PDF ----------------------------------------------------------------------


def test_a_mediator_downloads_a_persons_summary_in_their_language(
    staff: Visitor, db_session: Session, definition: Definition, structure: Structure
) -> None:
    person = person_with(db_session, definition, structure, after=True, locale="en")
    display = codes.display(person.code)
    # No code in the file name (it stays in the Downloads folder of shared computers).
    response = staff.get(f"/staff/people/{person.id}/summary.pdf")
    pdf = assert_pdf(response, "progres-")
    assert display not in response.headers["Content-Disposition"]
    assert pdf_structure(pdf)["lang"] == "en"
    assert display in text(pdf)
    large = staff.get(f"/staff/people/{person.id}/summary.pdf?large=1")
    assert_pdf(large, "-gros-caracteres.pdf")
    # Addressed by id, never by code (docs/security.md): a code, in any form, is not found.
    for shown in (person.code, display):
        assert staff.get(f"/staff/people/{shown}/summary.pdf").status_code == 404


def test_summary_pdfs_respect_structures_and_missing_data(
    app: Flask,
    staff: Visitor,
    database: Database,
    db_session: Session,
    definition: Definition,
    structure: Structure,
    other_structure: Structure,
) -> None:
    theirs = person_with(db_session, definition, other_structure, after=True)
    assert (
        staff.get(f"/staff/people/{theirs.id}/summary.pdf").status_code == 404
    )  # like an unknown id
    assert staff.get("/staff/people/2147483647/summary.pdf").status_code == 404
    assert staff.get("/staff/people/NOT-A-CODE/summary.pdf").status_code == 404
    fresh = journey.create_codes(db_session, structure, 1)[0]  # printed, nothing typed yet
    db_session.commit()
    assert staff.get(f"/staff/people/{fresh.id}/summary.pdf").status_code == 404
    evaluator = signed_in(app, add_staff(database, Role.EVALUATOR, departments=("44",)))
    assert evaluator.get(f"/staff/people/{theirs.id}/summary.pdf").status_code == 403
    anonymous = Visitor(app.test_client()).get(f"/staff/people/{theirs.id}/summary.pdf")
    assert anonymous.status_code == 302


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
def test_the_person_downloads_their_own_summary(
    visitor: Visitor, structure: Structure, definition: Definition
) -> None:
    assert path_of(visitor.get("/summary.pdf").headers["Location"]) == "/code"
    code = visitor.complete(structure.slug, "retro")
    page = visitor.get("/summary")
    assert page.status_code == 200
    assert 'href="/summary.pdf"' in visitor.html and 'href="/summary.pdf?large=1"' in visitor.html
    pdf = assert_pdf(visitor.get("/summary.pdf"), "progres-")
    assert "Vos progrès" in text(pdf)
    assert qr_codes(pdf, page_count(pdf) - 1) == [code]
    english = assert_pdf(visitor.get("/summary.pdf?large=1&lang=en"), "gros-caracteres")
    assert pdf_structure(english)["lang"] == "en"


def test_no_summary_pdf_before_anything_is_sent(
    visitor: Visitor, db_session: Session, structure: Structure, definition: Definition
) -> None:
    started = visitor.start(structure.slug, "before")
    assert started.status_code == 302
    response = visitor.get("/summary.pdf")
    assert response.status_code == 302 and path_of(response.headers["Location"]) == "/code"


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
def test_easy_read_forms_can_be_printed(staff: Visitor, definition: Definition) -> None:
    assert 'name="easy"' in staff.html
    pdf = assert_pdf(print_form(staff, easy="y"), "-facile-a-lire")
    content = text(pdf)
    easy = definition.in_wording("easy")
    assert easy.titles[FormKind.BEFORE] in content
    assert definition.titles[FormKind.BEFORE] not in content
