"""The entry screens over HTTP: find or create, type, save, finish, double entry, settle,
settings; bad input of every kind gets a clear message and the right status, never a 500,
and nothing half-written; an expired session loses nothing that was typed."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from selfcheck.accounts.session import PENDING_POST
from selfcheck.accounts.structures import create_structure
from selfcheck.journey import operations as journey
from selfcheck.platform import codes
from selfcheck.platform.db import Database
from selfcheck.platform.models import (
    Answer,
    AuditEvent,
    Beneficiary,
    Channel,
    Response,
    Role,
    SecondEntry,
    Structure,
)
from selfcheck.questionnaire import Definition, FormKind
from selfcheck.questionnaire.model import NO_ANSWER
from tests.staff import Account, add_staff, sign_in, signed_in
from tests.support import (
    BEFORE,
    Visitor,
    count,
    error_summary,
    parse_forms,
    path_of,
    stored,
    submitted,
    words,
)

ENTRY = "/staff/entry/"
TYPED: dict[str, tuple[str, ...]] = {**BEFORE, "DIPLOMA": (NO_ANSWER,)}


def printed(db_session: Session, structure: Structure) -> str:
    (person,) = journey.create_codes(db_session, structure, 1)
    db_session.commit()
    return person.code


def open_code(visitor: Visitor, code: str, form: str = "before") -> TestResponse:
    visitor.get(ENTRY)
    return visitor.post(ENTRY, {"action": "code", "code": code, "form": form, "lang": "fr"})


def screen_url(visitor: Visitor, code: str, form: str = "before") -> str:
    response = open_code(visitor, code, form)
    assert response.status_code == 302, words(response.get_data(as_text=True))[:500]
    return path_of(response.headers["Location"])


def post_screen(
    visitor: Visitor, url: str, values: Mapping[str, Sequence[str]], action: str = "save"
) -> TestResponse:
    visitor.get(url)
    data: dict[str, Sequence[str]] = {k: list(v) for k, v in values.items()}
    data["action"] = [action]
    return visitor.post(url, data)


def response_of(database: Database, code: str, form: str = "before") -> Response:
    with database.session() as session:
        found = session.scalar(
            select(Response)
            .join(Beneficiary)
            .where(Beneficiary.code == code, Response.form == form)
        )
        assert found is not None
        return found


def post_once_expired(
    app: Flask, visitor: Visitor, url: str, data: Mapping[str, str | Sequence[str]]
) -> TestResponse:
    """`data` posted from the screen at `url` once the staff session has expired (the typist
    went for a coffee): what the server answers, the answers kept in the cookie or not."""
    visitor.get(url)
    app.config["SELFCHECK_STAFF_IDLE_SECONDS"] = -1
    try:
        return visitor.post(url, data)
    finally:
        app.config["SELFCHECK_STAFF_IDLE_SECONDS"] = 1800


@pytest.fixture
def mediator(database: Database, structure: Structure) -> Account:
    return add_staff(database, Role.MEDIATOR, structure)


@pytest.fixture
def colleague(database: Database, structure: Structure) -> Account:
    return add_staff(database, Role.MEDIATOR, structure, email="collegue@example.org")


@pytest.fixture
def admin(database: Database, structure: Structure) -> Account:
    return add_staff(database, Role.STRUCTURE_ADMIN, structure)


# --- who may do what ------------------------------------------------------------------------------


def test_each_screen_needs_its_role(
    app: Flask, database: Database, structure: Structure, mediator: Account, admin: Account
) -> None:
    evaluator = add_staff(database, Role.EVALUATOR, departments=("44",))
    anonymous = Visitor(app.test_client())
    for url in (ENTRY, ENTRY + "second", ENTRY + "discrepancies", ENTRY + "settings"):
        response = anonymous.get(url)
        assert response.status_code == 302 and path_of(response.headers["Location"]) == (
            "/staff/login"
        )
        assert signed_in(app, evaluator).get(url).status_code == 403
    as_mediator = signed_in(app, mediator)
    assert as_mediator.get(ENTRY).status_code == 200
    assert as_mediator.get(ENTRY + "second").status_code == 200
    for url in (ENTRY + "discrepancies", ENTRY + "settings"):
        refused = as_mediator.get(url)
        assert refused.status_code == 403
        assert "Accès refusé" in words(refused)
    as_admin = signed_in(app, admin)
    for url in (ENTRY, ENTRY + "second", ENTRY + "discrepancies", ENTRY + "settings"):
        assert as_admin.get(url).status_code == 200, url


# --- finding the record ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Tapez le code écrit sur le questionnaire"),
        ("K7M-2Q", "Un code a 9 caractères"),
        ("ZZZZZZZZ0", "erreur de frappe"),
        ("ZZZZZZZZ" + codes.check_character("ZZZZZZZZ"), "Ce code n'existe pas"),
        ("K" * 5000, "Un code"),
    ],
)
def test_unknown_or_mistyped_codes_get_a_clear_message(
    app: Flask, database: Database, mediator: Account, typed: str, message: str
) -> None:
    visitor = signed_in(app, mediator)
    response = open_code(visitor, typed)
    assert response.status_code == 422
    text = words(response.get_data(as_text=True))
    assert message in text and 'aria-invalid="true"' in text
    assert count(database, Response) == 0


def test_a_bad_form_kind_is_refused(app: Flask, mediator: Account) -> None:
    visitor = signed_in(app, mediator)
    assert open_code(visitor, "x", form="everything").status_code == 422
    assert visitor.post(ENTRY, {"action": "delete"}).status_code == 400


def test_a_code_of_another_structure_is_refused_as_an_unknown_code(
    app: Flask, database: Database, db_session: Session, mediator: Account
) -> None:
    other = create_structure(db_session, "Mairie de Lille", "urbain", "59")
    db_session.commit()
    code = printed(db_session, other)
    visitor = signed_in(app, mediator)
    response = open_code(visitor, code)
    unknown = open_code(visitor, "ZZZZZZZZ" + codes.check_character("ZZZZZZZZ"))
    # Exactly the unknown-code answer: no oracle for the codes of other structures.
    assert response.status_code == unknown.status_code == 422
    assert error_summary(response.get_data(as_text=True)) == error_summary(
        unknown.get_data(as_text=True)
    )
    assert count(database, Response) == 0


def test_a_printed_code_opens_the_screen_and_a_form_already_typed_is_linked(
    app: Flask, database: Database, db_session: Session, structure: Structure, mediator: Account
) -> None:
    code = printed(db_session, structure)
    visitor = signed_in(app, mediator)
    url = screen_url(visitor, codes.display(code).lower())
    assert post_screen(visitor, url, TYPED, "finish").status_code == 302
    again = open_code(visitor, code)
    assert again.status_code == 409
    html = again.get_data(as_text=True)
    assert "déjà saisi" in words(html) and f'href="{url}"' in html
    assert count(database, Response) == 1
    online = submitted(db_session, journey_definition(app), structure, FormKind.BEFORE)
    refused = open_code(visitor, online.beneficiary.code)
    assert refused.status_code == 409
    assert "en ligne" in words(refused.get_data(as_text=True))


def journey_definition(app: Flask) -> Definition:
    definition: Definition = app.extensions["selfcheck.definition"]
    return definition


def test_a_paper_form_without_a_code_gets_one_once(
    app: Flask, database: Database, mediator: Account
) -> None:
    visitor = signed_in(app, mediator)
    visitor.get(ENTRY)
    (without,) = [f for f in visitor.forms() if f.hidden().get("action") == "new"]
    data = {**without.hidden(), "form": "retro", "lang": "fr"}
    first = visitor.post(ENTRY, data)
    second = visitor.post(ENTRY, data)  # a double click
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    assert count(database, Beneficiary) == count(database, Response) == 1
    assert visitor.post(ENTRY, {**data, "token": "short"}).status_code == 422
    assert visitor.post(ENTRY, {**data, "form": "after", "token": "t" * 20}).status_code == 422


# --- typing ---------------------------------------------------------------------------------------


def test_type_save_reopen_and_finish(
    app: Flask, database: Database, db_session: Session, structure: Structure, mediator: Account
) -> None:
    code = printed(db_session, structure)
    visitor = signed_in(app, mediator)
    url = screen_url(visitor, code)
    page = visitor.get(url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "checked" not in html
    names = parse_forms(html)[-1].question_names()
    assert names[:3] == ["ASSIST", "AGE", "GENDER"] and "T15" in names
    first_input = re.search(r'<input[^>]*id="f-ASSIST-seul"[^>]*>', html)
    assert first_input is not None and "autofocus" in first_input[0]
    assert 'src="/static/js/entry.js"' in html and "<script>" not in html

    partial = {"ASSIST": ["seul"], "AGE": [NO_ANSWER], "DEVICES": ["smartphone", "tablette"]}
    saved = post_screen(visitor, url, partial)
    assert saved.status_code == 302 and path_of(saved.headers["Location"]) == url
    assert "Saisie enregistrée" in words(visitor.follow(saved))
    assert stored(database, response_of(database, code).id) == {
        "ASSIST": ("seul",),
        "AGE": (NO_ANSWER,),
        "DEVICES": ("smartphone", "tablette"),
    }
    reopened = visitor.get(screen_url(visitor, code))
    form = parse_forms(reopened.get_data(as_text=True))[-1]
    assert form.checked("ASSIST") == ["seul"] and form.checked("AGE") == [NO_ANSWER]
    assert form.checked("DEVICES") == ["smartphone", "tablette"] and form.checked("GENDER") == []

    incomplete = post_screen(visitor, url, partial, "finish")
    assert incomplete.status_code == 422
    problems = error_summary(incomplete.get_data(as_text=True))
    assert problems[0].startswith("Question 3 : Pas encore saisie")
    assert not response_of(database, code).is_submitted

    done = post_screen(visitor, url, TYPED, "finish")
    assert done.status_code == 302 and path_of(done.headers["Location"]) == ENTRY
    assert "saisi et terminé" in words(visitor.follow(done))
    response = response_of(database, code)
    assert response.is_submitted and response.channel == Channel.PAPER.value
    assert response.entered_by_id == mediator.id and response.entered_at is not None
    assert stored(database, response.id) == {
        k: v for k, v in TYPED.items() if k not in ("USE_LAPTOP", "USE_DESKTOP")
    }
    # Sent twice (a double click): nothing changes, no second submission in the audit trail.
    audited = count(database, AuditEvent)
    resent = post_screen(visitor, url, TYPED, "finish")
    assert resent.status_code == 302 and count(database, AuditEvent) == audited


def test_edits_of_a_finished_form_are_audited_with_old_and_new_values(
    app: Flask, database: Database, db_session: Session, structure: Structure, mediator: Account
) -> None:
    code = printed(db_session, structure)
    visitor = signed_in(app, mediator)
    url = screen_url(visitor, code)
    post_screen(visitor, url, TYPED, "finish")
    page = visitor.get(url)
    assert "Enregistrer les modifications" in words(page)
    assert post_screen(visitor, url, {**TYPED, "T05": ["4"]}).status_code == 302
    with database.session() as session:
        last = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert last is not None and last.action == "edit" and last.user_id == mediator.id
        assert json.loads(last.changes) == {"T05": {"old": ["1"], "new": ["4"]}}
    # Leaving a question untyped in a finished form is refused; nothing is written.
    before = stored(database, response_of(database, code).id)
    emptied = {k: v for k, v in TYPED.items() if k != "T05"}
    refused = post_screen(visitor, url, emptied)
    assert refused.status_code == 422
    assert stored(database, response_of(database, code).id) == before


@pytest.mark.parametrize(
    "tampered",
    [
        {"ASSIST": ["zzz"]},  # not an option
        {"T01": ["7"]},  # outside the scale
        {"AGE": ["soixante_dix_plus", "douze_dix_huit"]},  # two values for one choice
        {"GENDER": ["feminin", NO_ANSWER]},  # an answer and "no answer"
        {"DEVICES": ["aucun", "smartphone"]},  # an exclusive option with others
        {"COMFORT": ["x" * 10_000]},  # oversized
    ],
)
def test_tampered_values_are_refused_and_nothing_is_written(
    app: Flask,
    database: Database,
    db_session: Session,
    structure: Structure,
    mediator: Account,
    tampered: dict[str, list[str]],
) -> None:
    code = printed(db_session, structure)
    visitor = signed_in(app, mediator)
    url = screen_url(visitor, code)
    post_screen(visitor, url, {"ASSIST": ["seul"]})
    rows, events = count(database, Answer), count(database, AuditEvent)
    response = post_screen(visitor, url, {"PRESCRIBED": ["personne"], **tampered}, "finish")
    assert response.status_code == 422
    assert error_summary(response.get_data(as_text=True))
    assert count(database, Answer) == rows and count(database, AuditEvent) == events
    assert stored(database, response_of(database, code).id) == {"ASSIST": ("seul",)}


def test_numbers_and_texts_of_an_after_form_are_checked(
    app: Flask, database: Database, db_session: Session, structure: Structure, mediator: Account
) -> None:
    code = printed(db_session, structure)
    visitor = signed_in(app, mediator)
    post_screen(visitor, screen_url(visitor, code), TYPED, "finish")
    url = screen_url(visitor, code, "after")
    refused = post_screen(visitor, url, {"SESSIONS": ["500"], "COMMENT": ["x" * 600]})
    assert refused.status_code == 422
    assert "Écrivez un nombre entre 1 et 200" in words(refused.get_data(as_text=True))
    fine = post_screen(visitor, url, {"SESSIONS": ["6"], "COMMENT": [NO_ANSWER]})
    assert fine.status_code == 302
    assert stored(database, response_of(database, code, "after").id) == {
        "SESSIONS": ("6",),
        "COMMENT": (NO_ANSWER,),
    }


def test_oversized_requests_and_bad_actions(
    app: Flask, db_session: Session, structure: Structure, mediator: Account
) -> None:
    visitor = signed_in(app, mediator)
    url = screen_url(visitor, printed(db_session, structure))
    visitor.get(url)
    assert visitor.post(url, {"action": "publish"}).status_code == 400
    big = visitor.post(url, {"action": "save", "COMMENT": "x" * 100_000})
    assert big.status_code == 413
    assert visitor.get(ENTRY + "99999").status_code == 404


def test_staff_of_another_structure_cannot_open_a_response(
    app: Flask, database: Database, db_session: Session, structure: Structure, mediator: Account
) -> None:
    url = screen_url(signed_in(app, mediator), printed(db_session, structure))
    lille = create_structure(db_session, "Mairie de Lille", "urbain", "59")
    db_session.commit()
    outsider = add_staff(database, Role.MEDIATOR, lille)
    visitor = signed_in(app, outsider)
    # 404, as for an entry that does not exist: no oracle for other structures' ids.
    assert visitor.get(url).status_code == 404
    assert visitor.get(ENTRY + "999999").status_code == 404
    visitor.get(ENTRY)
    assert visitor.post(url, {"action": "save", "ASSIST": "seul"}).status_code == 404
    assert count(database, Answer) == 0


def test_an_online_response_is_not_typed_here(
    app: Flask, db_session: Session, structure: Structure, mediator: Account
) -> None:
    online = submitted(db_session, journey_definition(app), structure, FormKind.BEFORE)
    page = signed_in(app, mediator).get(f"{ENTRY}{online.id}")
    assert page.status_code == 409 and "en ligne" in words(page)


# --- an expired session mid-entry -----------------------------------------------------------------


def test_an_expired_session_keeps_what_was_typed_until_sign_in(
    app: Flask,
    database: Database,
    db_session: Session,
    structure: Structure,
    mediator: Account,
    colleague: Account,
) -> None:
    code = printed(db_session, structure)
    visitor = signed_in(app, mediator)
    url = screen_url(visitor, code)
    typed = {"ASSIST": ["proche"], "AGE": [NO_ANSWER], "T01": ["3"], "action": ["finish"]}
    sent = post_once_expired(app, visitor, url, typed)
    assert sent.status_code == 302
    login = sent.headers["Location"]
    assert path_of(login) == "/staff/login" and "kept=1" in login and "expired=1" in login
    assert count(database, Answer) == 0  # not saved: nobody was signed in
    page = visitor.get(login)
    assert "Ce que vous veniez de taper est gardé" in words(page)
    assert "Votre session a expiré" in words(page)

    # Someone else signing in on this browser does not get it.
    other = Visitor(visitor.client)
    assert sign_in(other, colleague.email, query="?next=" + url).status_code == 302
    other.get(url)
    assert "checked" not in other.html
    with visitor.client.session_transaction() as cookie:
        assert PENDING_POST not in cookie


def test_the_same_person_gets_the_typed_values_back(
    app: Flask, database: Database, db_session: Session, structure: Structure, mediator: Account
) -> None:
    code = printed(db_session, structure)
    visitor = signed_in(app, mediator)
    url = screen_url(visitor, code)
    typed = {"ASSIST": ["proche"], "AGE": [NO_ANSWER], "action": ["save"]}
    sent = post_once_expired(app, visitor, url, typed)
    back = sign_in(visitor, mediator.email, query="?" + sent.headers["Location"].split("?")[1])
    assert back.status_code == 302 and path_of(back.headers["Location"]) == url
    restored = visitor.get(url)
    form = parse_forms(restored.get_data(as_text=True))[-1]
    assert form.checked("ASSIST") == ["proche"] and form.checked("AGE") == [NO_ANSWER]
    assert "pas encore enregistré" in words(restored)
    assert count(database, Answer) == 0
    # Once: reloading shows what is saved (nothing yet); saving stores what was restored.
    assert "checked" not in visitor.get(url).get_data(as_text=True)
    post_screen(visitor, url, {"ASSIST": ["proche"], "AGE": [NO_ANSWER]})
    assert stored(database, response_of(database, code).id) == {
        "ASSIST": ("proche",),
        "AGE": (NO_ANSWER,),
    }


def test_what_does_not_fit_in_the_cookie_is_said_to_be_lost(
    app: Flask, db_session: Session, structure: Structure, mediator: Account
) -> None:
    visitor = signed_in(app, mediator)
    url = screen_url(visitor, printed(db_session, structure))
    noise = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(3000))
    sent = post_once_expired(app, visitor, url, {"COMMENT": noise, "action": "save"})
    assert "kept=0" in sent.headers["Location"]
    assert "trop long pour être gardé" in words(visitor.get(sent.headers["Location"]))


# --- double entry ---------------------------------------------------------------------------------


def _typed_and_drawn(
    app: Flask, database: Database, db_session: Session, structure: Structure, typist: Account
) -> tuple[str, int]:
    structure.double_entry_percent = 100
    db_session.commit()
    code = printed(db_session, structure)
    visitor = signed_in(app, typist)
    done = post_screen(visitor, screen_url(visitor, code), TYPED, "finish")
    assert "seconde saisie" in words(visitor.follow(done))
    response = response_of(database, code)
    assert response.double_entry_wanted
    return code, response.id


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
def test_blind_double_entry_then_resolution(
    app: Flask,
    database: Database,
    db_session: Session,
    structure: Structure,
    mediator: Account,
    colleague: Account,
    admin: Account,
) -> None:
    code, response_id = _typed_and_drawn(app, database, db_session, structure, mediator)
    shown = codes.display(code)

    # The first typist may not do the second entry.
    first = signed_in(app, mediator)
    assert "une autre personne doit faire la seconde saisie" in words(first.get(ENTRY + "second"))
    first.get(ENTRY + "second")
    start = f"{ENTRY}second/{response_id}/start"
    assert first.post(start).status_code == 403

    # The colleague starts it: a blank screen, nothing of the first entry in the page.
    second = signed_in(app, colleague)
    queue = second.get(ENTRY + "second")
    assert shown in words(queue)
    started = second.post(start)
    assert started.status_code == 302
    url = path_of(started.headers["Location"])
    page = second.get(url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "checked" not in html
    assert mediator.email not in html  # not even who typed it
    assert second.get(f"{ENTRY}{response_id}").status_code == 403  # not the first entry either

    typed = {**TYPED, "ASSIST": ("proche",), "T02": ("4",)}
    finished = post_screen(second, url, typed, "finish")
    assert finished.status_code == 302
    assert "2 écarts" in words(second.follow(finished))
    with database.session() as session:
        entry_row = session.scalar(select(SecondEntry))
        assert entry_row is not None
        assert (entry_row.compared_fields, entry_row.differing_fields) == (30, 2)
    assert second.get(url).status_code == 302  # done: back to the list
    second.get(ENTRY + "second")
    resent = second.post(url, {"action": "finish", "ASSIST": "seul"})  # a double click
    assert resent.status_code == 302 and "déjà terminée" in words(second.follow(resent))

    # A mediator cannot settle; the structure administrator can.
    assert first.get(f"{ENTRY}discrepancies/{response_id}").status_code == 403
    boss = signed_in(app, admin)
    listing = boss.get(ENTRY + "discrepancies")
    text = words(listing)
    assert shown in text and "Taux d'écart par question" in text and "6,7 %" in text
    resolve = f"{ENTRY}discrepancies/{response_id}"
    page = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", words(boss.get(resolve))))
    assert "Première saisie : Je réponds seul·e" in page
    assert "Seconde saisie : Un proche m'aide" in page
    bad = boss.post(resolve, {"choice-ASSIST": "other", "ASSIST": "zzz"})
    assert bad.status_code == 422 and error_summary(bad.get_data(as_text=True))
    empty = boss.post(resolve, {})
    assert empty.status_code == 422
    assert stored(database, response_id)["ASSIST"] == ("seul",)
    done = boss.post(resolve, {"choice-ASSIST": "second", "choice-T02": "other", "T02": "3"})
    assert done.status_code == 302 and path_of(done.headers["Location"]) == ENTRY + "discrepancies"
    answers = stored(database, response_id)
    assert answers["ASSIST"] == ("proche",) and answers["T02"] == ("3",)
    with database.session() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "resolve"))
        assert event is not None and event.user_id == admin.id
        changes = json.loads(event.changes)
        assert changes["ASSIST"] == {"old": ["seul"], "new": ["proche"]}
        assert changes["T02"] == {"old": ["1"], "new": ["3"]}
    assert "Aucun écart à résoudre" in words(boss.get(ENTRY + "discrepancies"))


def test_the_second_entry_list_sends_back_with_a_message(
    app: Flask, db_session: Session, structure: Structure, mediator: Account, colleague: Account
) -> None:
    code = printed(db_session, structure)
    visitor = signed_in(app, mediator)
    url = screen_url(visitor, code)
    response_id = int(url.rstrip("/").rsplit("/", 1)[1])
    other = signed_in(app, colleague)
    not_started = other.get(f"{ENTRY}second/{response_id}")
    assert not_started.status_code == 302
    assert "Commencez la seconde saisie" in words(other.follow(not_started))
    other.get(ENTRY + "second")
    not_drawn = other.post(f"{ENTRY}second/{response_id}/start")
    assert not_drawn.status_code == 409 and "tiré au sort" in words(not_drawn)


# --- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("percent", "weeks"),
    [
        ("150", "6"),
        ("-5", "6"),
        ("abc", "6"),
        ("", "6"),
        ("20", "0"),
        ("20", "53"),
        ("20", "9" * 50),
    ],
)
def test_bad_settings_are_refused(
    app: Flask, database: Database, admin: Account, structure: Structure, percent: str, weeks: str
) -> None:
    visitor = signed_in(app, admin)
    visitor.get(ENTRY + "settings")
    response = visitor.post(
        ENTRY + "settings",
        {"structure": str(structure.id), "double_entry_percent": percent, "after_due_weeks": weeks},
    )
    assert response.status_code == 422
    assert error_summary(response.get_data(as_text=True))
    assert count(database, AuditEvent) == 0


def test_settings_are_saved_and_audited(
    app: Flask, database: Database, db_session: Session, admin: Account, structure: Structure
) -> None:
    visitor = signed_in(app, admin)
    visitor.get(ENTRY + "settings")
    saved = visitor.post(
        ENTRY + "settings",
        {"structure": str(structure.id), "double_entry_percent": "20", "after_due_weeks": "8"},
    )
    assert saved.status_code == 302
    assert "Réglages enregistrés" in words(visitor.follow(saved))
    with database.session() as session:
        found = session.get(Structure, structure.id)
        assert found is not None and (found.double_entry_percent, found.after_due_weeks) == (20, 8)
        event = session.scalar(select(AuditEvent).where(AuditEvent.entity == "structure"))
        assert event is not None and event.user_id == admin.id
    lille = create_structure(db_session, "Mairie de Lille", "urbain", "59")
    db_session.commit()
    assert (
        visitor.get(f"{ENTRY}settings?structure={lille.id}").status_code == 404
    )  # as for none: no existence oracle
    assert visitor.get(f"{ENTRY}settings?structure=999999").status_code == 404
    platform = signed_in(app, add_staff(database, Role.PLATFORM_ADMIN))
    choose = platform.get(ENTRY + "settings")
    assert choose.status_code == 200 and "Choisissez une structure" in words(choose)
    assert platform.get(f"{ENTRY}settings?structure={lille.id}").status_code == 200


@pytest.mark.parametrize("wording", ["standard", "easy"])
def test_a_paper_form_in_easy_wording_is_recorded_as_easy(
    app: Flask,
    database: Database,
    db_session: Session,
    structure: Structure,
    mediator: Account,
    wording: str,
) -> None:
    code = printed(db_session, structure)
    visitor = signed_in(app, mediator)
    page = visitor.get(ENTRY)
    assert 'name="wording" value="easy"' in page.get_data(as_text=True)
    opened = visitor.post(
        ENTRY, {"action": "code", "code": code, "form": "before", "lang": "fr", "wording": wording}
    )
    assert opened.status_code == 302
    with database.session() as session:
        response = session.scalars(select(Response)).one()
        assert response.wording == wording
    uncoded = visitor.post(
        ENTRY,
        {
            "action": "new",
            "form": "retro",
            "lang": "fr",
            "wording": wording,
            "token": "t" * 32,
        },
    )
    assert uncoded.status_code == 302, words(uncoded.get_data(as_text=True))[:300]
    with database.session() as session:
        retro = session.scalars(select(Response).where(Response.form == "retro")).one()
        assert retro.wording == wording
