"""The audit trail page as people read it (issue 14): words not internal names, item labels,
people by code while they exist, filters (person, staff, action, dates), pages, bad input."""

from __future__ import annotations

import ast
import re
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import Session

import selfcheck
from selfcheck.accounts import audit_trail as trail
from selfcheck.accounts.invitations import Purpose
from selfcheck.accounts.structures import create_structure
from selfcheck.entry import rates
from selfcheck.followup import operations as followup
from selfcheck.journey import operations as journey
from selfcheck.platform import audit, codes
from selfcheck.platform.db import Database
from selfcheck.platform.models import Response, Role, StaffUser, Structure, utcnow
from selfcheck.privacy.operations import ErasureReason
from selfcheck.questionnaire.model import Definition, FormKind
from tests.staff import Account, add_staff, signed_in
from tests.support import error_summary, submitted, text_of


def staff(session: Session, account: Account) -> StaffUser:
    user = session.get(StaffUser, account.id)
    assert user is not None
    return user


def squish(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.fixture
def admin(database: Database, structure: Structure) -> Account:
    return add_staff(database, Role.STRUCTURE_ADMIN, structure)


@pytest.fixture
def colleague(database: Database, structure: Structure) -> Account:
    return add_staff(database, Role.MEDIATOR, structure, email="collegue@example.org")


def _an_item_with_options(definition: Definition) -> tuple[str, str, str, str]:
    """(code, label, option code, option label) of a task item of the 'before' form."""
    item = next(i for i in definition.task_items() if i.in_form(FormKind.BEFORE) and i.options)
    option = item.options[0]
    return item.code, item.short_label or item.label, option.code, option.label


@pytest.fixture
def typed(
    db_session: Session, definition: Definition, structure: Structure, colleague: Account
) -> Response:
    """A paper form typed by the colleague: an edit with one answer and the double-entry draw."""
    response = submitted(db_session, definition, structure, FormKind.BEFORE)
    code, _, option, _ = _an_item_with_options(definition)
    user = staff(db_session, colleague)
    changes = audit.answer_changes({}, {code: [option]})
    changes["double_entry_wanted"] = {"old": [], "new": ["true"]}
    audit.record(
        db_session, user, "edit", audit.Entity.RESPONSE, response.id, structure.id, changes
    )
    db_session.commit()
    return response


def test_events_in_words_with_item_labels(
    app: Flask, admin: Account, typed: Response, definition: Definition, db_session: Session
) -> None:
    structure = db_session.get(Structure, typed.structure_id)
    assert structure is not None
    rates.update_settings(db_session, staff(db_session, admin), structure, 10, 8)
    db_session.commit()
    visitor = signed_in(app, admin)
    page = visitor.get("/staff/audit")
    assert page.status_code == 200
    text = squish(visitor.text)
    code, label, _, option_label = _an_item_with_options(definition)
    assert "Modification – Questionnaire de départ" in text
    assert f"<strong>{label}</strong>" in text and f"{option_label}" in text
    assert "Tiré au sort pour la double saisie</strong> : <em>vide</em>" in text
    assert "devient</span> oui" in text
    assert "Part des questionnaires saisis deux fois (%)</strong> : 0 <span" in text
    assert "Modification – Structure Médiathèque de Rezé" in text
    # No internal names: neither the action, the record kind, the field nor the item code.
    body = text.split("<main", 1)[1]
    assert not re.search(rf"\b{code}\b", body)
    for internal in (">edit<", "double_entry_wanted", "response #", "→ true"):
        assert internal not in body
    # The person is shown by their code, linked, while they exist.
    assert f'href="/staff/people/{typed.beneficiary.id}"' in visitor.html  # by id, not code
    assert f"/staff/people/{typed.beneficiary.code}" not in visitor.html
    # One block per event (a definition list), no table to cut off at 320 px.
    assert "<table" not in visitor.html and "<dl>" in visitor.html


def test_a_deleted_person_is_no_longer_shown_by_code(
    app: Flask, admin: Account, typed: Response, db_session: Session
) -> None:
    code = typed.beneficiary.code
    person = journey.find_person_by_id(db_session, staff(db_session, admin), typed.beneficiary.id)
    assert person is not None
    followup.delete_person(db_session, staff(db_session, admin), person)
    db_session.commit()
    visitor = signed_in(app, admin)
    visitor.get("/staff/audit")
    assert "Suppression – Questionnaire de départ" in visitor.text
    assert "supprimée ou effacée (son code n'est plus montré)" in visitor.text
    assert code not in visitor.html and codes.display(code) not in visitor.html


def test_filters_by_person_staff_action_and_date(
    app: Flask,
    admin: Account,
    colleague: Account,
    typed: Response,
    definition: Definition,
    structure: Structure,
    db_session: Session,
) -> None:
    other = submitted(db_session, definition, structure, FormKind.BEFORE)
    audit.record(
        db_session,
        staff(db_session, admin),
        "resolve",
        audit.Entity.RESPONSE,
        other.id,
        other.structure_id,
        {"settled": {"old": [], "new": []}},
    )
    db_session.commit()
    visitor = signed_in(app, admin)

    def titles(query: str) -> list[str]:
        if query.startswith("person="):  # a code: posted, the address names the person by id
            visitor.get("/staff/audit")
            posted = visitor.post("/staff/audit", {"person": query.removeprefix("person=")})
            assert posted.status_code == 302, error_summary(text_of(posted))
            assert posted.headers["Location"] == f"/staff/audit?person_id={typed.beneficiary.id}"
            response = visitor.follow(posted)
            assert codes.display(typed.beneficiary.code) in visitor.html  # in the form again
        else:
            response = visitor.get(f"/staff/audit?{query}")
        assert response.status_code == 200, (query, error_summary(visitor.html))
        return re.findall(r'<h3 class="audit-event__title">(.*?)</h3>', visitor.text)

    assert len(titles("")) == 2
    assert titles(f"person={codes.display(typed.beneficiary.code).lower()}") == [
        "Modification – Questionnaire de départ"
    ]
    assert titles(f"staff={admin.id}") == ["Écarts de saisie résolus – Questionnaire de départ"]
    assert titles("action=edit") == ["Modification – Questionnaire de départ"]
    today = utcnow().date()
    assert len(titles(f"from={today.isoformat()}&to={today.isoformat()}")) == 2
    assert titles(f"to={(today - timedelta(days=1)).isoformat()}") == []
    assert "Aucune modification ne correspond à ces filtres." in visitor.text
    # The select offers the team members who appear in the trail, by e-mail.
    visitor.get("/staff/audit")
    assert f'<option value="{colleague.id}">collegue@example.org</option>' in visitor.html
    # Labels say what the browser shows (a date picker), not a format.
    assert '<label for="from">Depuis le</label>' in visitor.html
    assert 'type="date" id="from"' in visitor.html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2024-02-30", "Cette date n'existe pas"),
        ("to=31/12/2024", "Cette date n'existe pas"),
        ("from=2024-05-02&to=2024-05-01", "La date de fin est avant la date de début."),
        ("action=drop_table", "Choisissez une action dans la liste."),
        ("staff=999999", "Choisissez une personne de l'équipe dans la liste."),
        ("person=ABC", "Ce code n'est pas complet"),
        ("page=99999999999999999999", "Le numéro de page doit être un nombre entier"),
        ("page=abc", "Le numéro de page doit être un nombre entier"),
    ],
)
def test_bad_input_is_said_plainly(
    app: Flask, admin: Account, typed: Response, query: str, message: str
) -> None:
    visitor = signed_in(app, admin)
    if query.startswith("person="):  # a code is posted, never put in an address
        visitor.get("/staff/audit")
        response = visitor.post("/staff/audit", {"person": query.removeprefix("person=")})
        visitor.last = response
    else:
        response = visitor.get(f"/staff/audit?{query}")
    assert response.status_code == 400
    assert any(text.startswith(message) for text in error_summary(visitor.html))


def test_pages_and_a_page_beyond_the_last(
    app: Flask, admin: Account, structure: Structure, db_session: Session
) -> None:
    user = staff(db_session, admin)
    for _ in range(trail.PAGE_SIZE + 5):
        audit.record(
            db_session, user, "archive", audit.Entity.STRUCTURE, structure.id, structure.id
        )
    db_session.commit()
    visitor = signed_in(app, admin)
    visitor.get("/staff/audit?action=archive")
    assert visitor.html.count('class="audit-event"') == trail.PAGE_SIZE
    assert "page 1 sur 2" in visitor.text
    assert "/staff/audit?page=2&amp;action=archive" in visitor.html
    visitor.get("/staff/audit?action=archive&page=2")
    assert visitor.html.count('class="audit-event"') == 5
    response = visitor.get("/staff/audit?page=10000")
    assert response.status_code == 200
    assert "La page 10000 n'existe pas : le journal a 2 pages. Voici la dernière." in visitor.text


def test_an_admin_sees_only_their_structure(
    app: Flask,
    database: Database,
    admin: Account,
    typed: Response,
    definition: Definition,
    db_session: Session,
) -> None:
    elsewhere = create_structure(db_session, "Mairie de Bobigny", "urbain", "93")
    db_session.commit()
    stranger = add_staff(database, Role.STRUCTURE_ADMIN, elsewhere, email="autre@example.org")
    theirs = submitted(db_session, definition, elsewhere, FormKind.BEFORE)
    audit.record(
        db_session,
        staff(db_session, stranger),
        "edit",
        audit.Entity.RESPONSE,
        theirs.id,
        elsewhere.id,
    )
    db_session.commit()
    visitor = signed_in(app, admin)
    visitor.get("/staff/audit")
    assert "autre@example.org" not in visitor.html
    assert theirs.beneficiary.code not in visitor.html
    # Their person's code: the same words as a code that exists nowhere.
    response = visitor.post("/staff/audit", {"person": theirs.beneficiary.code})
    visitor.last = response
    assert response.status_code == 400
    assert error_summary(visitor.html) == [
        "Aucune personne de vos structures n'a ce code (ou elle a été supprimée)."
    ]
    assert 'class="audit-event"' not in visitor.html
    response = visitor.get(f"/staff/audit?staff={stranger.id}")
    assert response.status_code == 400


def test_an_erased_person_leaves_no_code(
    app: Flask, admin: Account, typed: Response, db_session: Session
) -> None:
    code = typed.beneficiary.code
    assert audit.redact_person(db_session, typed.beneficiary_id, code) == 1
    db_session.commit()
    visitor = signed_in(app, admin)
    visitor.get("/staff/audit")
    assert code not in visitor.html
    assert "Modification – Questionnaire" in visitor.text


# --- the registries ------------------------------------------------------------------------


def _recorded_actions() -> set[str]:
    """Every literal action given to audit.record in the source (both arms of an `if`)."""
    found: set[str] = set()
    for path in Path(selfcheck.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "record"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "audit"
                and len(node.args) >= 3
            ):
                continue
            action = node.args[2]
            arms = [action.body, action.orelse] if isinstance(action, ast.IfExp) else [action]
            for arm in arms:
                if isinstance(arm, ast.Constant) and isinstance(arm.value, str):
                    found.add(arm.value)
    return found


def test_every_recorded_action_has_words() -> None:
    recorded = _recorded_actions()
    assert {"create", "edit", "delete", "resolve", "erase"} <= recorded  # the scan works
    # Built from an enum: link_<purpose>, use_<purpose>.
    recorded |= {f"{prefix}_{p.value}" for p in Purpose for prefix in ("link", "use")}
    assert recorded <= set(trail.ACTION_LABELS), recorded - set(trail.ACTION_LABELS)


def test_every_erasure_reason_has_words() -> None:
    assert set(trail.REASON_VALUES) == {reason.value for reason in ErasureReason}


def test_an_unknown_action_is_shown_as_it_is() -> None:
    assert trail.action_label("something_new") == "something_new"
