"""Journey services: start, save, conditions, submit, resume; every step safe to repeat."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from selfcheck.journey import operations as journey
from selfcheck.journey.operations import JourneyError, NextStep, UnknownCode
from selfcheck.platform import codes
from selfcheck.platform.db import Database
from selfcheck.platform.models import Answer, Beneficiary, Channel, Response, Status, Structure
from selfcheck.questionnaire import Definition, FormKind, Page
from tests.support import (
    AFTER,
    BEFORE,
    RETRO,
    Values,
    count,
    fill_and_submit,
    fill_response,
    new_token,
    stored,
    submitted,
)


def start(
    session: Session, definition: Definition, structure: Structure, form: FormKind = FormKind.BEFORE
) -> Response:
    result = journey.start_response(session, definition, structure, form, "fr", new_token())
    session.commit()
    return result


def page(definition: Definition, form: FormKind, code: str) -> Page:
    found = definition.page(form, code)
    assert found is not None, code
    return found


def save(
    session: Session, definition: Definition, response: Response, code: str, values: Values
) -> journey.Answers:
    """The page `code` of the response's form saved with `values`, then committed (the test
    is the view: operations never commit)."""
    form = FormKind(response.form)
    saved = journey.save_page(session, definition, response, page(definition, form, code), values)
    session.commit()
    return saved


# --- starting ----------------------------------------------------------------------------


def test_start_creates_a_person_with_a_valid_code_and_a_response(
    db_session: Session, definition: Definition, structure: Structure, database: Database
) -> None:
    response = journey.start_response(
        db_session, definition, structure, FormKind.BEFORE, "en", "token-aaaaaaaaaaaaaaaa"
    )
    db_session.commit()
    assert response.id is not None
    assert response.form == "before"
    assert response.status == Status.IN_PROGRESS.value
    assert response.locale == "en"
    assert response.channel == Channel.ONLINE.value
    assert response.structure_id == structure.id
    assert response.beneficiary.structure_id == structure.id
    assert codes.normalise(response.beneficiary.code) == response.beneficiary.code
    assert response.furthest_page is None
    assert response.submitted_at is None
    assert count(database, Beneficiary) == 1


def test_start_is_idempotent_per_token(
    db_session: Session, definition: Definition, structure: Structure, database: Database
) -> None:
    first = journey.start_response(
        db_session, definition, structure, FormKind.BEFORE, "fr", "same-token-0123456789"
    )
    db_session.commit()
    again = journey.start_response(
        db_session, definition, structure, FormKind.BEFORE, "fr", "same-token-0123456789"
    )
    db_session.commit()
    assert again.id == first.id
    other = journey.start_response(
        db_session, definition, structure, FormKind.BEFORE, "fr", "other-token-0123456789"
    )
    db_session.commit()
    assert other.id != first.id
    assert other.beneficiary.code != first.beneficiary.code
    assert count(database, Response) == 2
    assert count(database, Beneficiary) == 2


def test_each_response_records_the_definition_version(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    before = start(db_session, definition, structure)
    retro = start(db_session, definition, structure, FormKind.RETRO)
    fill_and_submit(db_session, definition, before, BEFORE)
    after = journey.start_after(db_session, definition, before.beneficiary, "fr")
    db_session.commit()
    for response in (before, retro, after):
        assert response.definition_id == definition.id
        assert response.definition_version == definition.version


def test_start_retries_when_a_code_collides(
    db_session: Session,
    definition: Definition,
    structure: Structure,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken = start(db_session, definition, structure).beneficiary.code
    fresh = codes.generate_code()
    proposals = iter([taken, taken, fresh])
    monkeypatch.setattr(codes, "generate_code", lambda: next(proposals))
    response = start(db_session, definition, structure)
    assert response.beneficiary.code == fresh


def test_start_gives_up_after_repeated_collisions(
    db_session: Session,
    definition: Definition,
    structure: Structure,
    monkeypatch: pytest.MonkeyPatch,
    database: Database,
) -> None:
    taken = start(db_session, definition, structure).beneficiary.code
    monkeypatch.setattr(codes, "generate_code", lambda: taken)
    with pytest.raises(JourneyError) as caught:
        start(db_session, definition, structure)
    assert caught.value.reason == "code_generation"
    assert count(database, Response) == 1


def test_start_after_is_idempotent(
    db_session: Session, definition: Definition, structure: Structure, database: Database
) -> None:
    before = submitted(db_session, definition, structure, FormKind.BEFORE)
    after = journey.start_after(db_session, definition, before.beneficiary, "fr")
    db_session.commit()
    again = journey.start_after(db_session, definition, before.beneficiary, "en")
    db_session.commit()
    assert again.id == after.id
    assert after.form == "after"
    assert after.beneficiary_id == before.beneficiary_id
    assert after.structure_id == structure.id
    assert count(database, Response) == 2


def test_one_response_per_person_and_form_is_enforced_by_the_database(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    before = start(db_session, definition, structure)
    duplicate = Response(
        beneficiary_id=before.beneficiary_id,
        structure_id=structure.id,
        form="before",
        definition_id=definition.id,
        definition_version=definition.version,
        locale="fr",
    )
    db_session.add(duplicate)
    with pytest.raises(IntegrityError):
        db_session.commit()
    db_session.rollback()


# --- saving pages ------------------------------------------------------------------------


def test_save_page_stores_and_then_replaces_values(
    db_session: Session, definition: Definition, structure: Structure, database: Database
) -> None:
    response = start(db_session, definition, structure)
    devices = page(definition, FormKind.BEFORE, "p_devices")
    saved = journey.save_page(
        db_session, definition, response, devices, {"DEVICES": ["smartphone", "fixe"]}
    )
    db_session.commit()
    assert stored(database, response.id) == {"DEVICES": ("smartphone", "fixe")}
    # What save_page returns is what the database holds (the view does not read it again).
    assert {k: set(v) for k, v in saved.items()} == {"DEVICES": {"smartphone", "fixe"}}
    saved = journey.save_page(db_session, definition, response, devices, {"DEVICES": ["tablette"]})
    db_session.commit()
    assert stored(database, response.id) == saved == {"DEVICES": ("tablette",)}
    saved = journey.save_page(db_session, definition, response, devices, {})
    db_session.commit()
    assert stored(database, response.id) == saved == {}
    assert journey.answers_of(response) == {}


def test_save_page_only_touches_its_own_variables(
    db_session: Session, definition: Definition, structure: Structure, database: Database
) -> None:
    response = start(db_session, definition, structure)
    save(db_session, definition, response, "p_help", {"ASSIST": ["seul"]})
    saved = save(
        db_session,
        definition,
        response,
        "p_age",
        {"AGE": ["soixante_dix_plus"], "ASSIST": ["proche"], "T01": ["4"]},
    )
    assert stored(database, response.id) == {"ASSIST": ("seul",), "AGE": ("soixante_dix_plus",)}
    assert saved == stored(database, response.id)


@pytest.mark.parametrize(
    ("page_code", "values"),
    [
        ("p_help", {"ASSIST": ["pirate"]}),
        ("p_help", {"ASSIST": ["seul", "proche"]}),
        ("p_comfort", {"COMFORT": ["5"]}),
        ("p_devices", {"DEVICES": ["smartphone", "minitel"]}),
        ("p_tasks_device", {"T01": ["3"], "T02": ["0"]}),
    ],
)
def test_save_page_refuses_values_outside_the_options(
    db_session: Session,
    definition: Definition,
    structure: Structure,
    database: Database,
    page_code: str,
    values: dict[str, list[str]],
) -> None:
    response = start(db_session, definition, structure)
    target = page(definition, FormKind.BEFORE, page_code)
    journey.save_page(db_session, definition, response, target, {})
    db_session.commit()
    with pytest.raises(JourneyError) as caught:
        journey.save_page(db_session, definition, response, target, values)
    assert caught.value.reason == "invalid_value"
    db_session.rollback()
    assert stored(database, response.id) == {}


def test_save_page_tracks_the_furthest_page(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    response = start(db_session, definition, structure)
    save(db_session, definition, response, "p_home", {})
    assert response.furthest_page == "p_home"
    save(db_session, definition, response, "p_help", {})
    assert response.furthest_page == "p_home"  # going back does not move it
    save(db_session, definition, response, "p_reasons", {})
    assert response.furthest_page == "p_reasons"


def test_save_page_refuses_after_submission(
    db_session: Session, definition: Definition, structure: Structure, database: Database
) -> None:
    response = submitted(db_session, definition, structure, FormKind.BEFORE)
    before = stored(database, response.id)
    with pytest.raises(JourneyError) as caught:
        journey.save_page(
            db_session,
            definition,
            response,
            page(definition, FormKind.BEFORE, "p_help"),
            {"ASSIST": ["proche"]},
        )
    assert caught.value.reason == "already_submitted"
    assert stored(database, response.id) == before


# --- conditions --------------------------------------------------------------------------


def visible_codes(definition: Definition, form: FormKind, answers: journey.Answers) -> list[str]:
    return [p.code for p in journey.visible_pages(definition, form, answers)]


def test_devices_decide_which_use_questions_are_shown(definition: Definition) -> None:
    use_page = page(definition, FormKind.BEFORE, "p_device_use")
    assert "p_device_use" not in visible_codes(definition, FormKind.BEFORE, {})
    assert "p_device_use" not in visible_codes(definition, FormKind.BEFORE, {"DEVICES": ("aucun",)})
    answers: journey.Answers = {"DEVICES": ("smartphone", "fixe")}
    assert "p_device_use" in visible_codes(definition, FormKind.BEFORE, answers)
    shown = [v.code for v in journey.page_variables(use_page, FormKind.BEFORE, answers)]
    assert shown == ["USE_SMARTPHONE", "USE_DESKTOP"]


def test_new_things_which_only_after_yes(definition: Definition) -> None:
    assert "p_new_which" in visible_codes(definition, FormKind.AFTER, {"NEW_THINGS": ("oui",)})
    assert "p_new_which" not in visible_codes(definition, FormKind.AFTER, {"NEW_THINGS": ("non",)})
    assert "p_new_which" not in visible_codes(definition, FormKind.AFTER, {})


@pytest.mark.parametrize(
    ("progress", "shown"), [("1", False), ("2", False), ("3", True), ("4", True)]
)
def test_progress_domains_only_after_some_progress(
    definition: Definition, progress: str, shown: bool
) -> None:
    pages = visible_codes(definition, FormKind.AFTER, {"PROGRESS": (progress,)})
    assert ("p_progress_domains" in pages) is shown


def test_neighbour_pages_skip_hidden_ones(definition: Definition) -> None:
    answers: journey.Answers = {"NEW_THINGS": ("non",)}
    following = journey.neighbour_page(definition, FormKind.AFTER, "p_new", answers, 1)
    assert following is not None and following.code == "p_progress"
    previous = journey.neighbour_page(definition, FormKind.AFTER, "p_progress", answers, -1)
    assert previous is not None and previous.code == "p_new"
    assert journey.neighbour_page(definition, FormKind.AFTER, "p_help", answers, -1) is None
    assert journey.neighbour_page(definition, FormKind.AFTER, "p_comment", answers, 1) is None
    assert journey.neighbour_page(definition, FormKind.AFTER, "nope", answers, 1) is None
    # from a page that has become hidden, walk on from its place in the full order
    hidden_next = journey.neighbour_page(definition, FormKind.AFTER, "p_new_which", answers, 1)
    assert hidden_next is not None and hidden_next.code == "p_progress"


def test_a_retro_form_saved_under_the_former_pages_resumes_on_the_screens(
    definition: Definition,
) -> None:
    """A retrospective form whose furthest page is a page of the item bank (saved before the
    layout): it goes on after the last screen that shows that page."""
    following = journey.neighbour_page(definition, FormKind.RETRO, "p_tasks_device", RETRO, 1)
    assert following is not None and following.code == "p_tasks_information_before"
    assert journey.neighbour_page(definition, FormKind.RETRO, "p_nowhere", RETRO, 1) is None


def test_missing_required(definition: Definition) -> None:
    missing = journey.missing_required(definition, FormKind.RETRO, {"ASSIST": ("seul",)})
    assert [(p.code, v.code) for p, v in missing] == [
        ("p_comfort_before", "COMFORT_PRE"),
        ("p_comfort_today", "COMFORT"),
        ("p_path", "PROGRESS"),
    ]
    assert journey.missing_required(definition, FormKind.RETRO, RETRO) == []
    assert journey.missing_required(definition, FormKind.BEFORE, BEFORE) == []


# --- submitting --------------------------------------------------------------------------


def test_submit_marks_the_response_and_is_idempotent(
    db_session: Session, definition: Definition, structure: Structure, database: Database
) -> None:
    response = start(db_session, definition, structure)
    fill_response(db_session, definition, response, BEFORE)
    db_session.commit()
    assert journey.submit(db_session, definition, response) is True
    db_session.commit()
    assert response.is_submitted
    first_time = response.submitted_at
    assert first_time is not None
    assert journey.submit(db_session, definition, response) is False
    db_session.commit()
    assert response.submitted_at == first_time
    assert count(database, Response) == 1
    assert count(database, Response, Response.status == "submitted") == 1


def test_a_stale_copy_cannot_submit_twice(
    definition: Definition, structure: Structure, database: Database
) -> None:
    """Two requests holding the same in-progress row: exactly one submit wins."""
    with database.session() as first:
        response = start(first, definition, structure)
        fill_response(first, definition, response, BEFORE)
        first.commit()
        response_id = response.id
    with database.session() as one, database.session() as two:
        copy_one = journey.load_response(one, response_id)
        copy_two = journey.load_response(two, response_id)
        assert copy_one is not None and copy_two is not None
        assert journey.submit(one, definition, copy_one) is True
        one.commit()
        assert journey.submit(two, definition, copy_two) is False
        two.commit()
    assert count(database, Response, Response.status == "submitted") == 1


def test_submit_refuses_when_required_answers_are_missing(
    db_session: Session, definition: Definition, structure: Structure, database: Database
) -> None:
    response = start(db_session, definition, structure)
    fill_response(
        db_session, definition, response, {k: v for k, v in BEFORE.items() if k != "COMFORT"}
    )
    db_session.commit()
    with pytest.raises(JourneyError) as caught:
        journey.submit(db_session, definition, response)
    assert caught.value.reason == "missing_required"
    assert count(database, Response, Response.status == "in_progress") == 1


def test_submit_prunes_answers_to_questions_that_became_hidden(
    db_session: Session, definition: Definition, structure: Structure, database: Database
) -> None:
    before = start(db_session, definition, structure, FormKind.BEFORE)
    fill_response(db_session, definition, before, BEFORE)
    db_session.commit()
    assert stored(database, before.id)["USE_TABLET"] == ("2",)
    # The person goes back and changes an answer a condition depends on.
    save(db_session, definition, before, "p_devices", {"DEVICES": ["smartphone"]})
    assert "USE_TABLET" in stored(database, before.id)  # kept while still editing
    assert journey.submit(db_session, definition, before)
    db_session.commit()
    final = stored(database, before.id)
    assert "USE_TABLET" not in final
    assert final["USE_SMARTPHONE"] == BEFORE["USE_SMARTPHONE"]

    after = journey.start_after(db_session, definition, before.beneficiary, "fr")
    fill_response(db_session, definition, after, AFTER)
    db_session.commit()
    saved = stored(database, after.id)
    assert saved["NEW_THINGS_WHICH"] == ("appareil", "proches")
    assert saved["PROGRESS_DOMAINS"] == ("operational", "communication")
    for code, values in [("p_new", {"NEW_THINGS": ["non"]}), ("p_progress", {"PROGRESS": ["2"]})]:
        save(db_session, definition, after, code, values)
    assert journey.submit(db_session, definition, after)
    db_session.commit()
    final = stored(database, after.id)
    assert "NEW_THINGS_WHICH" not in final
    assert "PROGRESS_DOMAINS" not in final
    assert final["T01"] == AFTER["T01"]


def test_retro_form_stores_before_and_today(
    db_session: Session, definition: Definition, structure: Structure, database: Database
) -> None:
    response = start(db_session, definition, structure, FormKind.RETRO)
    tasks = page(definition, FormKind.RETRO, "p_tasks_device")
    assert [v.code for v in journey.page_variables(tasks, FormKind.RETRO, {})] == [
        "T01_PRE",
        "T01",
        "T02_PRE",
        "T02",
        "T03_PRE",
        "T03",
    ]
    journey.save_page(db_session, definition, response, tasks, {"T01_PRE": ["1"], "T01": ["4"]})
    db_session.commit()
    assert stored(database, response.id) == {"T01_PRE": ("1",), "T01": ("4",)}


def test_a_full_before_form_stores_exactly_its_answers(
    db_session: Session, definition: Definition, structure: Structure, database: Database
) -> None:
    response = start(db_session, definition, structure)
    visited = fill_response(db_session, definition, response, BEFORE)
    db_session.commit()
    assert visited == [p.code for p in definition.pages(FormKind.BEFORE)]
    journey.submit(db_session, definition, response)
    db_session.commit()
    assert stored(database, response.id) == BEFORE
    rows = count(database, Answer, Answer.response_id == response.id)
    assert rows == sum(len(values) for values in BEFORE.values())


# --- coming back with a code -------------------------------------------------------------


def test_find_beneficiary_normalises_the_typed_code(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    response = start(db_session, definition, structure)
    code = response.beneficiary.code
    found = journey.find_beneficiary(db_session, " " + codes.display(code).lower() + " ")
    assert found.id == response.beneficiary_id


def test_find_beneficiary_unknown_and_invalid(db_session: Session, structure: Structure) -> None:
    unknown = "ABCDEFGH" + codes.check_character("ABCDEFGH")
    with pytest.raises(UnknownCode) as caught:
        journey.find_beneficiary(db_session, unknown)
    assert caught.value.reason == "unknown_code"
    with pytest.raises(codes.InvalidCode):
        journey.find_beneficiary(db_session, "ABC")


def route(session: Session, response: Response) -> journey.CodeRoute:
    session.expire_all()
    return journey.route_for_code(journey.find_beneficiary(session, response.beneficiary.code))


def test_route_for_code_in_every_state(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    before = start(db_session, definition, structure)
    step = route(db_session, before)
    assert step.step is NextStep.RESUME and step.response is not None
    assert step.response.id == before.id

    fill_and_submit(db_session, definition, before, BEFORE)
    step = route(db_session, before)
    assert step.step is NextStep.START_AFTER and step.response is None

    after = journey.start_after(db_session, definition, before.beneficiary, "fr")
    db_session.commit()
    step = route(db_session, before)
    assert step.step is NextStep.RESUME and step.response is not None
    assert step.response.id == after.id

    fill_and_submit(db_session, definition, after, AFTER)
    step = route(db_session, before)
    # The follow-up opens months later: until then, the code says when to come back.
    assert step.step is NextStep.FOLLOWUP_WAITING and step.response is None


def test_route_for_code_of_a_retrospective_person(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    retro = start(db_session, definition, structure, FormKind.RETRO)
    assert route(db_session, retro).step is NextStep.RESUME
    fill_and_submit(db_session, definition, retro, RETRO)
    assert route(db_session, retro).step is NextStep.FOLLOWUP_WAITING


def test_resume_page(db_session: Session, definition: Definition, structure: Structure) -> None:
    response = start(db_session, definition, structure)
    resume = journey.resume_page(definition, response, {})
    assert resume is not None and resume.code == "p_help"
    save(db_session, definition, response, "p_help", {"ASSIST": ["seul"]})
    resume = journey.resume_page(definition, response, journey.answers_of(response))
    assert resume is not None and resume.code == "p_age"
    save(db_session, definition, response, "p_devices", {"DEVICES": ["aucun"]})
    resume = journey.resume_page(definition, response, journey.answers_of(response))
    assert resume is not None and resume.code == "p_reasons"  # p_device_use is hidden
    last = definition.pages(FormKind.BEFORE)[-1]
    journey.save_page(db_session, definition, response, last, {})
    db_session.commit()
    assert journey.resume_page(definition, response, journey.answers_of(response)) is None


def test_find_structure(db_session: Session, structure: Structure) -> None:
    found = journey.find_structure(db_session, structure.slug)
    assert found is not None and found.id == structure.id
    assert journey.find_structure(db_session, "nowhere") is None


def test_load_response(db_session: Session, definition: Definition, structure: Structure) -> None:
    response = start(db_session, definition, structure)
    loaded = journey.load_response(db_session, response.id)
    assert loaded is not None and loaded.id == response.id
    assert journey.load_response(db_session, response.id + 1000) is None
    assert db_session.scalar(select(Response.form).where(Response.id == response.id)) == "before"


# --- easy-read wording ---------------------------------------------------------------------


def test_the_wording_is_recorded_and_the_after_form_keeps_it(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    from selfcheck.questionnaire.model import Wording

    before = journey.start_response(
        db_session,
        definition,
        structure,
        FormKind.BEFORE,
        "fr",
        new_token(),
        wording=Wording.EASY,
    )
    db_session.commit()
    assert before.wording == "easy"
    state = journey.load_state(db_session, before.id)
    assert state is not None and state.wording is Wording.EASY
    easy = definition.in_wording(Wording.EASY)
    fill_and_submit(db_session, easy, before, BEFORE)
    after = journey.start_after(db_session, definition, before.beneficiary, "fr")
    db_session.commit()
    assert after.wording == "easy"
    assert start(db_session, definition, structure).wording == "standard"


@pytest.mark.parametrize(
    ("stored_value", "read"), [("easy", "easy"), ("", "standard"), ("x", "standard")]
)
def test_an_unexpected_stored_wording_reads_as_standard(stored_value: str, read: str) -> None:
    assert journey.wording_of(stored_value).value == read
