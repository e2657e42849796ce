"""Safety of the journey: escaping, two tabs, races, shared computers (review findings)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask, render_template_string
from flask_babel import lazy_gettext
from sqlalchemy import func, select

from selfcheck.journey import operations as journey
from selfcheck.platform import sessions
from selfcheck.platform.db import Database
from selfcheck.platform.models import Answer, Structure
from selfcheck.questionnaire import load_definition
from selfcheck.questionnaire.loader import DEFAULT_DEFINITION
from tests.conftest import AppFactory
from tests.support import Visitor, new_token, path_of, responses, stored


def _started(visitor: Visitor, structure: Structure, form: str = "before") -> Visitor:
    started = visitor.start(structure.slug, form)
    visitor.get(started.headers["Location"])
    return visitor


def test_definition_texts_are_escaped_not_trusted(
    make_app: AppFactory, tmp_path: Path, database: Database
) -> None:
    evil = tmp_path / "definition.yaml"
    text = DEFAULT_DEFINITION.read_text(encoding="utf-8")
    evil.write_text(
        text.replace(
            "label: Comment remplissez-vous ce questionnaire ?",
            'label: "<img src=x onerror=alert(1)> Comment ?"',
        ),
        encoding="utf-8",
    )
    app = make_app(DEFINITION_PATH=evil)
    with app.app_context():
        from selfcheck.accounts.structures import create_structure

        with app.extensions["selfcheck.platform.db"].session() as session:
            slug = create_structure(session, "Lieu", "rural", "44").slug
            session.commit()
    visitor = _started(Visitor(app.test_client()), Structure(slug=slug))
    assert "&lt;img src=x onerror=alert(1)&gt;" in visitor.html
    assert "<img" not in visitor.html


def test_lazy_strings_are_escaped_in_templates(app: Flask) -> None:
    with app.test_request_context("/"):
        rendered = render_template_string("{{ s }}", s=lazy_gettext("<b>gras</b>"))
    assert rendered == "&lt;b&gt;gras&lt;/b&gt;"


def test_a_page_sent_from_another_tab_is_refused_and_saves_nothing(
    new_visitor: Callable[[], Visitor], structure: Structure, database: Database
) -> None:
    person = _started(new_visitor(), structure, "before")
    old_tab = person.page_form().hidden()  # the before form's first page, left open
    _started(person, structure, "retro")  # a second tab starts a retrospective form
    sent = person.client.post("/q/p_help", data={**old_tab, "ASSIST": "seul", "action": "next"})
    assert sent.status_code == 409
    assert "autre questionnaire" in sent.get_data(as_text=True)
    assert all(not stored(database, r.id) for r in responses(database))


def test_back_from_the_first_page_then_start_offers_to_continue(
    visitor: Visitor, structure: Structure, database: Database
) -> None:
    _started(visitor, structure)
    back = visitor.answer({"ASSIST": ["proche"]}, action="back")
    assert path_of(back.headers["Location"]) == f"/s/{structure.slug}"
    visitor.get(back.headers["Location"])
    assert "Continuer mon questionnaire" in visitor.text
    [response] = responses(database)
    assert stored(database, response.id) == {"ASSIST": ("proche",)}


def test_every_question_page_shows_the_personal_code(
    visitor: Visitor, structure: Structure, database: Database
) -> None:
    _started(visitor, structure)
    [response] = responses(database)
    with database.session() as session:
        code = journey.load_state(session, response.id).code  # type: ignore[union-attr]
    assert f"{code[:3]}-{code[3:6]}-{code[6:]}" in visitor.html


def test_a_save_that_races_a_submission_is_a_clear_409(
    visitor: Visitor, structure: Structure, monkeypatch: pytest.MonkeyPatch
) -> None:
    _started(visitor, structure)

    def already(*_args: object, **_kwargs: object) -> None:
        raise journey.JourneyError("already_submitted")

    monkeypatch.setattr(journey, "save_locked_page", already)
    monkeypatch.setattr(journey, "save_read_page", already)  # PostgreSQL's page save
    sent = visitor.answer({"ASSIST": ["seul"]})
    assert sent.status_code == 409
    assert "déjà envoyé" in sent.get_data(as_text=True)


def _started_before_form(app: Flask, database: Database, structure: Structure) -> int:
    """The id of a before form just started."""
    definition = app.extensions["selfcheck.definition"]
    with database.session() as session:
        response = journey.start_response(
            session,
            definition,
            session.merge(structure),
            journey.FormKind.BEFORE,
            "fr",
            new_token(),
        )
        session.commit()
        return response.id


def _failures_at_once(save: Callable[[threading.Barrier], None], threads: int = 4) -> list[str]:
    """`save` run by `threads` threads that wait for each other (the barrier) before saving;
    what each failure raised, with its type."""
    barrier = threading.Barrier(threads)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            save(barrier)
        except BaseException as exc:  # reported below, with its type
            failures.append(exc)

    started = [threading.Thread(target=run) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()
    return [repr(failure) for failure in failures]


def _assist_rows(database: Database, response_id: int) -> int:
    with database.session() as session:
        return (
            session.scalar(
                select(func.count()).where(
                    Answer.response_id == response_id, Answer.variable == "ASSIST"
                )
            )
            or 0
        )


def test_concurrent_saves_of_a_page_store_each_value_once(
    app: Flask, database: Database, structure: Structure
) -> None:
    definition = app.extensions["selfcheck.definition"]
    response_id = _started_before_form(app, database, structure)
    page = definition.pages(journey.FormKind.BEFORE)[0]

    def save(barrier: threading.Barrier) -> None:
        with database.session() as session:
            mine = journey.load_response(session, response_id)
            assert mine is not None
            barrier.wait()
            journey.save_page(session, definition, mine, page, {"ASSIST": ("seul",)})
            session.commit()

    assert _failures_at_once(save) == []
    assert _assist_rows(database, response_id) == 1


def test_concurrent_locked_saves_of_a_page_store_each_value_once(
    app: Flask, database: Database, structure: Structure
) -> None:
    """The journey's own save (`lock_state` then `save_locked_page`): the state is read with
    the response's row locked, so two saves of one page at once (a double click) are one
    after the other, and the page holds one value."""
    definition = app.extensions["selfcheck.definition"]
    response_id = _started_before_form(app, database, structure)
    page = definition.pages(journey.FormKind.BEFORE)[0]

    def save(barrier: threading.Barrier) -> None:
        with database.session() as session:
            barrier.wait()
            state = journey.lock_state(session, response_id, no_flush_wait=True)
            assert state is not None
            journey.save_locked_page(session, definition, state, page, {"ASSIST": ("seul",)})
            session.commit()

    assert _failures_at_once(save) == []
    assert _assist_rows(database, response_id) == 1
    with database.session() as session:
        state = journey.load_state(session, response_id)
    assert state is not None and state.furthest_page == page.code


def test_answers_record_the_definition_version(
    visitor: Visitor, structure: Structure, database: Database, app: Flask
) -> None:
    _started(visitor, structure)
    visitor.answer({"ASSIST": ["seul"]})
    with database.session() as session:
        versions = set(session.scalars(select(Answer.definition_version)))
    assert versions == {app.extensions["selfcheck.definition"].version}


def test_personal_pages_are_never_cached_and_the_session_expires(
    visitor: Visitor, structure: Structure
) -> None:
    started = visitor.start(structure.slug)
    assert "Expires=" in started.headers["Set-Cookie"]  # idle limit, not until browser closes
    page = visitor.get(started.headers["Location"])
    assert page.headers["Cache-Control"] == "no-store"
    static = visitor.client.get("/static/css/selfcheck.css")
    static.close()
    assert static.headers.get("Cache-Control") != "no-store"


def test_an_unchanged_session_is_sent_again_only_when_getting_old(
    visitor: Visitor, structure: Structure, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Re-signing the cookie on every page was an eighth of a page's time (issue 18): it is
    # sent again only after sessions.REFRESH_AFTER, so the idle limit still holds.
    started = visitor.start(structure.slug)
    location = started.headers["Location"]
    visitor.get(location)  # the first view may still store the CSRF secret
    assert "Set-Cookie" not in visitor.get(location).headers
    later = time.time() + sessions.REFRESH_AFTER + 1
    monkeypatch.setattr(sessions.time, "time", lambda: later)
    refreshed = visitor.get(location)
    assert refreshed.status_code == 200
    assert "selfcheck_session=" in refreshed.headers["Set-Cookie"]
    assert "Expires=" in refreshed.headers["Set-Cookie"]


def test_several_values_for_one_choice_are_refused(visitor: Visitor, structure: Structure) -> None:
    _started(visitor, structure)
    assert visitor.answer({"ASSIST": ["seul", "proche"]}).status_code == 422


def test_changing_an_answer_from_the_check_page_asks_the_new_follow_up(
    visitor: Visitor, structure: Structure
) -> None:
    code = visitor.complete(structure.slug)  # the after form asks "new things?"
    visitor.follow(visitor.enter_code(code))
    visitor.follow(visitor.post("/welcome-back"))
    visitor.answer({"ASSIST": ["seul"]})
    visitor.get("/q/p_new?return_to=check")
    sent = visitor.answer({"NEW_THINGS": ["oui"]}, return_to="check")
    assert path_of(sent.headers["Location"]) == "/q/p_new_which"


def test_chained_conditions_are_refused_at_load(tmp_path: Path) -> None:
    text = DEFAULT_DEFINITION.read_text(encoding="utf-8").replace(
        'show_if: {item: PROGRESS, any_of: ["3", "4"]}',
        "show_if: {item: NEW_THINGS_WHICH, equals: appareil}",
    )
    chained = tmp_path / "chained.yaml"
    chained.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="PROGRESS_DOMAINS: show_if refers to NEW_THINGS_WHICH"):
        load_definition(chained)


def test_a_paper_form_being_typed_is_not_resumed_online(
    app: Flask, database: Database, structure: Structure, visitor: Visitor
) -> None:
    definition = app.extensions["selfcheck.definition"]
    with database.session() as session:
        [person] = journey.create_codes(session, session.merge(structure), 1)
        session.commit()
        journey.open_form(
            session, definition, person, journey.FormKind.BEFORE, "fr", journey.Channel.PAPER
        )
        session.commit()
        code = person.code
    visitor.get("/code")
    shown = visitor.post("/code", {"code": code})
    assert shown.status_code == 200
    assert "en cours de saisie" in shown.get_data(as_text=True)
