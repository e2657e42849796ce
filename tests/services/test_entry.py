"""Paper entry services: find or create, the screen, saving and finishing, blind double entry,
settling differences, rates, settings; every change audited, nothing half-written."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from selfcheck.accounts.structures import create_structure
from selfcheck.entry.lookup import EntryError, load_paper_response, open_entry, open_uncoded
from selfcheck.entry.rates import discrepancy_rates, update_settings
from selfcheck.entry.resolution import (
    discrepancy_views,
    parse_resolution,
    pending_resolutions,
    resolve,
)
from selfcheck.entry.saving import draw_double_entry, random_percent, save_entry
from selfcheck.entry.screen import build_screen
from selfcheck.entry.second import (
    QueueState,
    load_second_entry,
    save_second_entry,
    second_entry_queue,
    second_entry_values,
    start_second_entry,
)
from selfcheck.entry.values import parse_values
from selfcheck.journey import operations as journey
from selfcheck.journey import summary
from selfcheck.journey.page_view import question_numbers
from selfcheck.platform import codes
from selfcheck.platform.db import Database
from selfcheck.platform.models import (
    Answer,
    AuditEvent,
    Beneficiary,
    Channel,
    EntryDiscrepancy,
    Response,
    Role,
    SecondEntry,
    StaffUser,
    Status,
    Structure,
)
from selfcheck.questionnaire import Definition, FormKind
from selfcheck.questionnaire.model import NO_ANSWER
from tests.support import BEFORE, count, stored, submitted

OPTION_CODE = re.compile(r"^[a-z0-9][a-z0-9_]*$")


@pytest.fixture(autouse=True)
def _request(app: Flask) -> Iterator[None]:
    """Messages are translated: services run inside a request, as in the app."""
    with app.test_request_context():
        yield


def staff(
    session: Session, structure: Structure | None, role: Role = Role.MEDIATOR, name: str = "a"
) -> StaffUser:
    user = StaffUser(
        email=f"{name}-{role.value}@example.org",
        password_hash="not a real hash: these accounts never sign in",
        role=role.value,
        structure_id=structure.id if structure else None,
    )
    session.add(user)
    session.commit()
    return user


def printed(session: Session, structure: Structure) -> str:
    (person,) = journey.create_codes(session, structure, 1)
    session.commit()  # the test is the caller: operations never commit
    return person.code


def typed_before() -> dict[str, tuple[str, ...]]:
    """The 'before' answers as typed from paper: the diploma left blank."""
    return {**BEFORE, "DIPLOMA": (NO_ANSWER,)}


def finished(
    session: Session,
    definition: Definition,
    structure: Structure,
    user: StaffUser,
    answers: dict[str, tuple[str, ...]] | None = None,
    wanted: bool = True,
) -> Response:
    response = open_entry(
        session, definition, user, printed(session, structure), FormKind.BEFORE, "fr"
    )
    session.commit()
    result = save_entry(
        session,
        definition,
        user,
        response,
        answers or typed_before(),
        finish=True,
        draw=lambda: 0 if wanted else 99,
    )
    session.commit()
    assert result.submitted_now
    if wanted and not response.double_entry_wanted:
        response.double_entry_wanted = True
    session.commit()
    return response


def events(session: Session, entity: str, action: str | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.entity == entity).order_by(AuditEvent.id)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    return list(session.scalars(query))


# --- "no answer" ----------------------------------------------------------------------------


def test_the_no_answer_value_can_never_be_a_real_answer(definition: Definition) -> None:
    assert not OPTION_CODE.match(NO_ANSWER)
    assert not NO_ANSWER.isdigit()
    every_option = {o.code for item in definition.items() for o in item.options}
    assert NO_ANSWER not in every_option


def test_summaries_count_no_answer_as_missing(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    answers = {**typed_before(), "COMFORT": (NO_ANSWER,), "T01": (NO_ANSWER,)}
    response = finished(db_session, definition, structure, staff(db_session, structure), answers)
    result = summary.build_summary(definition, response.beneficiary)
    assert result is not None
    assert result.comfort_now is None
    t01 = next(task for task in result.tasks if task.item.code == "T01")
    assert t01.now is None and not t01.concerned


# --- find or create -------------------------------------------------------------------------


def test_a_printed_code_opens_one_paper_response_and_reopens_it(
    db_session: Session, definition: Definition, structure: Structure, database: Database
) -> None:
    user = staff(db_session, structure)
    code = printed(db_session, structure)
    first = open_entry(db_session, definition, user, code.lower(), FormKind.BEFORE, "fr")
    db_session.commit()
    assert first.channel == Channel.PAPER.value and first.status == Status.IN_PROGRESS.value
    again = open_entry(db_session, definition, user, codes.display(code), FormKind.BEFORE, "en")
    db_session.commit()
    assert again.id == first.id
    assert count(database, Response) == 1
    (created,) = events(db_session, "response", "create")
    assert created.user_id == user.id and created.entity_id == first.id
    assert json.loads(created.changes)["channel"] == {"old": [], "new": ["paper"]}


@pytest.mark.parametrize(
    ("raw", "reason", "problem"),
    [
        ("", "invalid_code", codes.CodeProblem.EMPTY),
        ("K7M-2Q", "invalid_code", codes.CodeProblem.LENGTH),
        ("K7M-2QX-9R?", "invalid_code", codes.CodeProblem.CHARACTER),
        ("ZZZZZZZZ0", "invalid_code", codes.CodeProblem.CHECK),
        ("ZZZZZZZZ" + codes.check_character("ZZZZZZZZ"), "unknown_code", None),
    ],
)
def test_bad_codes_are_refused_with_their_reason(
    db_session: Session,
    definition: Definition,
    structure: Structure,
    database: Database,
    raw: str,
    reason: str,
    problem: codes.CodeProblem | None,
) -> None:
    user = staff(db_session, structure)
    with pytest.raises(EntryError) as caught:
        open_entry(db_session, definition, user, raw, FormKind.BEFORE, "fr")
    assert caught.value.reason == reason and caught.value.problem is problem
    assert count(database, Response) == 0


def test_a_code_of_another_structure_is_refused(
    db_session: Session, definition: Definition, structure: Structure, database: Database
) -> None:
    other = create_structure(db_session, "Mairie de Lille", "urbain", "59")
    db_session.commit()
    user = staff(db_session, structure)
    # Said as for an unknown code: no oracle for the codes of other structures.
    with pytest.raises(EntryError, match="unknown_code"):
        open_entry(db_session, definition, user, printed(db_session, other), FormKind.BEFORE, "fr")
    admin = staff(db_session, None, Role.PLATFORM_ADMIN)
    open_entry(db_session, definition, admin, printed(db_session, other), FormKind.BEFORE, "fr")
    db_session.commit()
    assert count(database, Response) == 1


def test_a_form_already_typed_in_is_never_duplicated(
    db_session: Session, definition: Definition, structure: Structure, database: Database
) -> None:
    user = staff(db_session, structure)
    response = finished(db_session, definition, structure, user)
    code = response.beneficiary.code
    with pytest.raises(EntryError) as caught:
        open_entry(db_session, definition, user, code, FormKind.BEFORE, "fr")
    assert caught.value.reason == "already_entered" and caught.value.response is not None
    assert caught.value.response.id == response.id
    assert count(database, Response) == 1


def test_forms_answered_online_are_not_typed_over(
    db_session: Session, definition: Definition, structure: Structure, database: Database
) -> None:
    user = staff(db_session, structure)
    online = submitted(db_session, definition, structure, FormKind.BEFORE)
    code = online.beneficiary.code
    with pytest.raises(EntryError, match="answered_online"):
        open_entry(db_session, definition, user, code, FormKind.BEFORE, "fr")
    started = journey.start_after(db_session, definition, online.beneficiary, "fr")
    db_session.commit()
    with pytest.raises(EntryError, match="in_progress_online"):
        open_entry(db_session, definition, user, code, FormKind.AFTER, "fr")
    assert count(database, Response) == 2 and started.channel == Channel.ONLINE.value


def test_the_forms_of_a_person_stay_consistent(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    user = staff(db_session, structure)
    code = printed(db_session, structure)
    with pytest.raises(EntryError, match="after_without_before"):
        open_entry(db_session, definition, user, code, FormKind.AFTER, "fr")
    open_entry(db_session, definition, user, code, FormKind.BEFORE, "fr")
    db_session.commit()
    with pytest.raises(EntryError, match="retro_with_pair"):
        open_entry(db_session, definition, user, code, FormKind.RETRO, "fr")
    after = open_entry(db_session, definition, user, code, FormKind.AFTER, "fr")
    db_session.commit()
    assert after.form == "after"
    retro_code = printed(db_session, structure)
    open_entry(db_session, definition, user, retro_code, FormKind.RETRO, "fr")
    db_session.commit()
    with pytest.raises(EntryError, match="pair_with_retro"):
        open_entry(db_session, definition, user, retro_code, FormKind.BEFORE, "fr")


def test_a_form_without_a_code_gets_one_once_per_token(
    db_session: Session, definition: Definition, structure: Structure, database: Database
) -> None:
    user = staff(db_session, structure)
    token = "paper-token-aaaaaaaaaaaa"
    one = open_uncoded(db_session, definition, user, structure, FormKind.RETRO, "fr", token)
    db_session.commit()
    two = open_uncoded(db_session, definition, user, structure, FormKind.RETRO, "fr", token)
    db_session.commit()
    assert one.id == two.id and one.channel == Channel.PAPER.value
    assert count(database, Beneficiary) == 1
    (created,) = events(db_session, "response", "create")
    assert json.loads(created.changes)["code"]["new"] == [one.beneficiary.code]
    with pytest.raises(EntryError, match="after_without_before"):
        open_uncoded(db_session, definition, user, structure, FormKind.AFTER, "fr", "t" * 20)


# --- reading what was typed -------------------------------------------------------------------


def test_parse_values_keeps_typed_values_and_reports_bad_ones(definition: Definition) -> None:
    posted = MultiDict(
        [
            ("ASSIST", "seul"),
            ("AGE", NO_ANSWER),
            ("GENDER", ""),  # not typed yet
            ("DEVICES", "smartphone"),
            ("DEVICES", "tablette"),
            ("STATUS", "zzz"),  # tampered
            ("DIPLOMA", "bac"),
            ("DIPLOMA", "brevet"),  # two values for one choice
            ("AREA", "rural"),
            ("AREA", NO_ANSWER),  # an answer and "no answer"
            ("REASONS", "utiliser_appareil"),
            ("REASONS", "autre"),
            ("NOT_AN_ITEM", "1"),
            ("T01", "9"),
            ("T02", "5"),  # outside the scale
        ]
    )
    parsed = parse_values(definition, FormKind.BEFORE, posted)
    assert parsed.values["ASSIST"] == ("seul",)
    assert parsed.values["AGE"] == (NO_ANSWER,)
    assert "GENDER" not in parsed.values and "NOT_AN_ITEM" not in parsed.values
    assert parsed.values["DEVICES"] == ("smartphone", "tablette")
    assert parsed.values["T01"] == ("9",)
    assert set(parsed.errors) == {"STATUS", "DIPLOMA", "AREA", "T02"}
    assert not parsed.valid


def test_parse_values_checks_numbers_and_texts(definition: Definition) -> None:
    bad = MultiDict(
        [("SESSIONS", "beaucoup"), ("COMMENT", "x" * 501), ("SESSION_LENGTH", "moins_30")]
    )
    parsed = parse_values(definition, FormKind.AFTER, bad)
    assert set(parsed.errors) == {"SESSIONS", "COMMENT"}
    good = MultiDict([("SESSIONS", " 12 "), ("COMMENT", NO_ANSWER)])
    parsed = parse_values(definition, FormKind.AFTER, good)
    assert parsed.valid and parsed.values == {"SESSIONS": ("12",), "COMMENT": (NO_ANSWER,)}
    assert not parse_values(definition, FormKind.AFTER, MultiDict({"SESSIONS": "0"})).valid


# --- the screen --------------------------------------------------------------------------------


def test_the_screen_has_every_question_in_the_paper_order_and_numbering(
    definition: Definition,
) -> None:
    for form in FormKind:
        screen = build_screen(definition, form, {})
        numbers = question_numbers(definition, form)
        assert [q.item.code for q in screen.questions] == list(numbers)
        assert [q.number for q in screen.questions] == list(range(1, len(numbers) + 1))
        assert sum(len(q.variables) for q in screen.questions) == len(definition.variables(form))
    screen = build_screen(definition, FormKind.RETRO, {})
    comfort = next(q for q in screen.questions if q.item.code == "COMFORT")
    assert [v.code for v in comfort.variables] == ["COMFORT_PRE", "COMFORT"]


def test_options_are_numbered_from_one_and_no_answer_is_zero(definition: Definition) -> None:
    screen = build_screen(definition, FormKind.BEFORE, {"AGE": (NO_ANSWER,)})
    age = next(q for q in screen.questions if q.item.code == "AGE")
    (variable,) = age.variables
    assert [o.key for o in variable.options] == [1, 2, 3, 4, 5, 6, 7, 0]
    assert variable.options[-1].code == NO_ANSWER and variable.options[-1].checked
    assert variable.no_answer and variable.typed and variable.max_key == 7


def test_the_screen_starts_at_the_first_question_not_typed(definition: Definition) -> None:
    screen = build_screen(definition, FormKind.BEFORE, {"ASSIST": ("seul",)})
    assert screen.focus_id == "f-AGE-moins_de_douze"
    assert screen.typed == 1
    devices_use = [q for q in screen.questions if q.condition is not None]
    assert {q.item.code for q in devices_use} == {
        "USE_SMARTPHONE",
        "USE_TABLET",
        "USE_LAPTOP",
        "USE_DESKTOP",
    }
    assert not any(q.applicable for q in devices_use)
    assert devices_use[0].condition is not None and devices_use[0].condition.number == 8


# --- saving and finishing -----------------------------------------------------------------------


def test_a_partial_entry_is_saved_with_who_and_when_and_audited(
    db_session: Session, definition: Definition, structure: Structure, database: Database
) -> None:
    user = staff(db_session, structure)
    response = open_entry(
        db_session, definition, user, printed(db_session, structure), FormKind.BEFORE, "fr"
    )
    db_session.commit()
    values = {"ASSIST": ("seul",), "DEVICES": ("smartphone",), "USE_TABLET": ("2",)}
    result = save_entry(db_session, definition, user, response, values)
    db_session.commit()
    assert result.saved and not result.submitted_now and result.missing
    # USE_TABLET does not apply without a tablet: not stored.
    assert stored(database, response.id) == {"ASSIST": ("seul",), "DEVICES": ("smartphone",)}
    assert response.entered_by_id == user.id and response.entered_at is not None
    assert response.channel == Channel.PAPER.value and not response.is_submitted
    (edit,) = events(db_session, "response", "edit")
    assert json.loads(edit.changes) == {
        "ASSIST": {"old": [], "new": ["seul"]},
        "DEVICES": {"old": [], "new": ["smartphone"]},
    }
    save_entry(db_session, definition, user, response, {"ASSIST": ("proche",)})
    db_session.commit()
    last = events(db_session, "response", "edit")[-1]
    assert json.loads(last.changes) == {
        "ASSIST": {"old": ["seul"], "new": ["proche"]},
        "DEVICES": {"old": ["smartphone"], "new": []},
    }


def test_finishing_needs_every_question_typed_but_no_answer_counts(
    db_session: Session, definition: Definition, structure: Structure, database: Database
) -> None:
    user = staff(db_session, structure)
    response = open_entry(
        db_session, definition, user, printed(db_session, structure), FormKind.BEFORE, "fr"
    )
    db_session.commit()
    partial = {k: v for k, v in typed_before().items() if k != "T15"}
    result = save_entry(db_session, definition, user, response, partial, finish=True)
    db_session.commit()
    assert not result.submitted_now and [v.code for v in result.missing] == ["T15"]
    assert not response.is_submitted and stored(database, response.id) == partial
    # A required question left blank on paper is typed as "no answer": the form finishes.
    complete = {**typed_before(), "ASSIST": (NO_ANSWER,), "COMFORT": (NO_ANSWER,)}
    result = save_entry(db_session, definition, user, response, complete, finish=True)
    db_session.commit()
    assert result.submitted_now and response.is_submitted and response.submitted_at
    assert stored(database, response.id)["COMFORT"] == (NO_ANSWER,)
    again = save_entry(db_session, definition, user, response, complete, finish=True)
    db_session.commit()
    assert again.saved and not again.submitted_now
    status_changes = [
        e for e in events(db_session, "response", "edit") if "status" in json.loads(e.changes)
    ]
    assert len(status_changes) == 1


def test_a_finished_form_stays_complete(
    db_session: Session, definition: Definition, structure: Structure, database: Database
) -> None:
    user = staff(db_session, structure)
    response = finished(db_session, definition, structure, user)
    before = stored(database, response.id)
    audited = count(database, AuditEvent)
    incomplete = {k: v for k, v in typed_before().items() if k != "T03"}
    result = save_entry(db_session, definition, user, response, incomplete)
    db_session.commit()
    assert not result.saved and [v.code for v in result.missing] == ["T03"]
    assert stored(database, response.id) == before and count(database, AuditEvent) == audited
    corrected = {**typed_before(), "T03": ("4",)}
    assert save_entry(db_session, definition, user, response, corrected).saved
    db_session.commit()
    assert stored(database, response.id)["T03"] == ("4",) and response.is_submitted


def test_the_double_entry_draw(db_session: Session, structure: Structure) -> None:
    assert not draw_double_entry(0, lambda: 0)
    assert draw_double_entry(100, lambda: 99)
    assert draw_double_entry(30, lambda: 29)
    assert not draw_double_entry(30, lambda: 30)
    assert all(0 <= random_percent() < 100 for _ in range(50))


@pytest.mark.parametrize(("percent", "wanted"), [(0, False), (100, True)])
def test_the_structure_share_decides_the_second_entry_when_a_form_is_finished(
    db_session: Session,
    definition: Definition,
    structure: Structure,
    percent: int,
    wanted: bool,
) -> None:
    structure.double_entry_percent = percent
    db_session.commit()
    user = staff(db_session, structure)
    response = open_entry(
        db_session, definition, user, printed(db_session, structure), FormKind.BEFORE, "fr"
    )
    db_session.commit()
    result = save_entry(db_session, definition, user, response, typed_before(), True)
    db_session.commit()
    assert result.double_entry_wanted is wanted and response.double_entry_wanted is wanted


# --- blind second entry ----------------------------------------------------------------------


def test_the_second_entry_is_typed_by_someone_else(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    typist = staff(db_session, structure, name="first")
    corrector = staff(db_session, structure, name="corrector")
    other = staff(db_session, structure, name="second")
    third = staff(db_session, structure, name="third")
    response = finished(db_session, definition, structure, typist)
    save_entry(db_session, definition, corrector, response, {**typed_before(), "T01": ("3",)})
    db_session.commit()
    for who in (typist, corrector):
        with pytest.raises(EntryError, match="own_entry"):
            start_second_entry(db_session, who, response.id)
    queue = second_entry_queue(db_session, typist, [structure.id])
    assert [line.state for line in queue] == [QueueState.OWN_ENTRY]
    second = start_second_entry(db_session, other, response.id)
    db_session.commit()
    assert start_second_entry(db_session, other, response.id).id == second.id
    db_session.commit()
    assert second_entry_values(second) == {}  # blind: nothing of the first entry
    with pytest.raises(EntryError, match="second_entry_taken"):
        start_second_entry(db_session, third, response.id)
    with pytest.raises(EntryError, match="blind"):
        load_paper_response(db_session, other, response.id)
    states = {
        u.email: second_entry_queue(db_session, u, [structure.id])[0].state for u in (other, third)
    }
    assert states == {
        other.email: QueueState.STARTED_BY_YOU,
        third.email: QueueState.STARTED_BY_OTHER,
    }


def test_a_form_not_drawn_has_no_second_entry(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    response = finished(
        db_session, definition, structure, staff(db_session, structure), None, False
    )
    assert not response.double_entry_wanted
    with pytest.raises(EntryError, match="second_entry_not_wanted"):
        start_second_entry(db_session, staff(db_session, structure, name="b"), response.id)
    assert second_entry_queue(db_session, staff(db_session, structure, name="c"), [1]) == []


def _second(
    session: Session,
    definition: Definition,
    structure: Structure,
    answers: dict[str, tuple[str, ...]],
    first: dict[str, tuple[str, ...]] | None = None,
) -> tuple[Response, SecondEntry, StaffUser]:
    response = finished(
        session, definition, structure, staff(session, structure, name="one"), first
    )
    other = staff(session, structure, name="two")
    second = start_second_entry(session, other, response.id)
    session.commit()
    result = save_second_entry(session, definition, other, response, second, answers, True)
    session.commit()
    assert result.submitted_now
    return response, second, other


def test_finishing_the_second_entry_compares_field_by_field(
    db_session: Session, definition: Definition, structure: Structure, database: Database
) -> None:
    other = staff(db_session, structure, name="two")
    response = finished(db_session, definition, structure, staff(db_session, structure))
    second = start_second_entry(db_session, other, response.id)
    db_session.commit()
    partial = {"ASSIST": ("proche",)}
    result = save_second_entry(db_session, definition, other, response, second, partial, True)
    db_session.commit()
    assert not result.submitted_now and result.missing and second.completed_at is None
    typed = {**typed_before(), "ASSIST": ("proche",), "DEVICES": ("smartphone",)}
    save_second_entry(db_session, definition, other, response, second, typed, True)
    db_session.commit()
    assert second.completed_at is not None and second.resolved_at is None
    assert second.compared_fields == len(definition.variables(FormKind.BEFORE))
    # ASSIST, DEVICES, and USE_TABLET (typed first, does not apply the second time).
    assert second.differing_fields == 3
    found = {
        d.variable: (json.loads(d.first_value), json.loads(d.second_value))
        for d in db_session.scalars(select(EntryDiscrepancy))
    }
    assert found == {
        "ASSIST": (["seul"], ["proche"]),
        "DEVICES": (["smartphone", "tablette"], ["smartphone"]),
        "USE_TABLET": (["2"], []),
    }
    assert stored(database, response.id)["ASSIST"] == ("seul",)  # unchanged until resolved
    with pytest.raises(EntryError, match="second_entry_done"):
        load_second_entry(db_session, other, response.id)


def test_identical_entries_need_no_resolution(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    _response, second, _other = _second(db_session, definition, structure, typed_before())
    assert second.differing_fields == 0 and second.resolved_at is not None


# --- settling the differences --------------------------------------------------------------------


def test_resolving_updates_the_response_and_is_audited(
    db_session: Session, definition: Definition, structure: Structure, database: Database
) -> None:
    typed = {**typed_before(), "ASSIST": ("proche",), "T01": ("4",), "AREA": ("urbain",)}
    response, second, _other = _second(db_session, definition, structure, typed)
    admin = staff(db_session, structure, Role.STRUCTURE_ADMIN)
    views = discrepancy_views(definition, response, second)
    assert [v.variable.code for v in views] == ["ASSIST", "AREA", "T01"]
    posted = MultiDict(
        [("choice-ASSIST", "second"), ("choice-T01", "other"), ("T01", "3"), ("AREA", "urbain")]
    )
    chosen, errors = parse_resolution(definition, response, second, posted)
    assert errors == {} and chosen == {"ASSIST": ("proche",), "T01": ("3",)}
    assert resolve(db_session, definition, admin, second, response, chosen) == 2
    db_session.commit()
    answers = stored(database, response.id)
    assert answers["ASSIST"] == ("proche",) and answers["T01"] == ("3",)
    assert answers["AREA"] == ("rural",) and second.resolved_at is None
    (event,) = events(db_session, "response", "resolve")
    changes = json.loads(event.changes)
    assert changes["ASSIST"] == {"old": ["seul"], "new": ["proche"]}
    assert changes["T01"] == {"old": ["2"], "new": ["3"]}
    assert event.user_id == admin.id
    chosen, _ = parse_resolution(definition, response, second, MultiDict({"choice-AREA": "first"}))
    resolve(db_session, definition, admin, second, response, chosen)
    db_session.commit()
    assert second.resolved_at is not None and second.resolved_by_id == admin.id
    assert pending_resolutions(db_session, [structure.id]) == []


def test_bad_resolutions_are_refused(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    typed = {**typed_before(), "ASSIST": ("proche",), "T01": ("4",)}
    response, second, _other = _second(db_session, definition, structure, typed)
    posted = MultiDict(
        [("choice-ASSIST", "zzz"), ("choice-T01", "other"), ("T01", "7"), ("choice-AGE", "first")]
    )
    chosen, errors = parse_resolution(definition, response, second, posted)
    assert chosen == {} and set(errors) == {"ASSIST", "T01"}
    chosen, errors = parse_resolution(
        definition, response, second, MultiDict({"choice-T01": "other"})
    )
    assert chosen == {} and set(errors) == {"T01"}


def test_a_question_waits_for_the_question_it_depends_on(
    db_session: Session, definition: Definition, structure: Structure, database: Database
) -> None:
    first = {**typed_before(), "DEVICES": ("smartphone",)}
    del first["USE_TABLET"]
    typed = {**first, "DEVICES": ("smartphone", "tablette"), "USE_TABLET": ("2",)}
    response, second, _other = _second(db_session, definition, structure, typed, first)
    admin = staff(db_session, structure, Role.STRUCTURE_ADMIN)
    # USE_TABLET does not apply while DEVICES (still open) has no tablet: it stays open.
    assert resolve(db_session, definition, admin, second, response, {"USE_TABLET": ("2",)}) == 0
    db_session.commit()
    assert "USE_TABLET" not in stored(database, response.id)
    devices = {"DEVICES": ("smartphone", "tablette")}
    assert resolve(db_session, definition, admin, second, response, devices) == 1
    db_session.commit()
    assert resolve(db_session, definition, admin, second, response, {"USE_TABLET": ("2",)}) == 1
    db_session.commit()
    assert stored(database, response.id)["USE_TABLET"] == ("2",)
    assert second.resolved_at is not None


def test_resolving_a_condition_settles_the_questions_it_hides(
    db_session: Session, definition: Definition, structure: Structure, database: Database
) -> None:
    typed = {**typed_before(), "DEVICES": ("smartphone",)}
    response, second, _other = _second(db_session, definition, structure, typed)
    admin = staff(db_session, structure, Role.STRUCTURE_ADMIN)
    # The second entry is right: no tablet, so its frequency question goes too.
    settled = resolve(db_session, definition, admin, second, response, {"DEVICES": ("smartphone",)})
    db_session.commit()
    assert settled == 2 and second.resolved_at is not None
    assert "USE_TABLET" not in stored(database, response.id)
    hidden = db_session.scalar(
        select(EntryDiscrepancy).where(EntryDiscrepancy.variable == "USE_TABLET")
    )
    assert hidden is not None and json.loads(hidden.resolved_value or "") == []


def test_discrepancy_rates_per_structure_and_item(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    _second(db_session, definition, structure, {**typed_before(), "ASSIST": ("proche",)})
    rates = discrepancy_rates(db_session, definition, [structure.id])
    compared = len(definition.variables(FormKind.BEFORE))
    (line,) = rates.structures
    assert (line.entries, line.rate.compared, line.rate.differing) == (1, compared, 1)
    assert rates.overall.percent == pytest.approx(100 / compared)
    by_item = {i.variable.code: i.rate for i in rates.items}
    assert by_item["ASSIST"].compared == 1 and by_item["ASSIST"].differing == 1
    assert by_item["ASSIST"].percent == 100.0 and by_item["T01"].percent == 0.0
    assert "SESSIONS" not in by_item  # only in the after and retro forms
    assert discrepancy_rates(db_session, definition, []).structures == ()


# --- settings -------------------------------------------------------------------------------------


def test_settings_are_validated_and_audited(
    db_session: Session, structure: Structure, database: Database
) -> None:
    admin = staff(db_session, structure, Role.STRUCTURE_ADMIN)
    assert update_settings(db_session, admin, structure, 25, 8)
    db_session.commit()
    assert not update_settings(db_session, admin, structure, 25, 8)
    (event,) = events(db_session, "structure")
    assert json.loads(event.changes) == {
        "double_entry_percent": {"old": ["0"], "new": ["25"]},
        "after_due_weeks": {"old": ["6"], "new": ["8"]},
    }
    for percent, weeks in ((101, 8), (-1, 8), (25, 0), (25, 53)):
        with pytest.raises(EntryError, match="bad_settings"):
            update_settings(db_session, admin, structure, percent, weeks)
    other = create_structure(db_session, "Mairie de Lille", "urbain", "59")
    db_session.commit()
    with pytest.raises(EntryError, match="other_structure"):
        update_settings(db_session, admin, other, 10, 8)
    assert (structure.double_entry_percent, structure.after_due_weeks) == (25, 8)
    assert count(database, Answer) == 0
