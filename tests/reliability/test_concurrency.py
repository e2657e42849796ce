"""Idempotence under concurrency: the same form sent several times at once, from threads
with their own database connections (SQLite file or PostgreSQL, as the suite runs).

The server-level version (two gunicorn worker processes, double submits, SIGKILL) is in
test_kill_server.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from flask import Flask
from sqlalchemy import func, select

from selfcheck.journey import operations as journey
from selfcheck.platform.db import Database
from selfcheck.platform.models import Answer, Response, Status, Structure
from selfcheck.questionnaire import Definition
from selfcheck.questionnaire.model import FormKind
from tests.support import (
    ANSWERS,
    Visitor,
    count,
    fill_response,
    new_token,
    responses,
    stored,
)

THREADS = 8
T = TypeVar("T")


def at_once(work: Callable[[int], T], threads: int = THREADS) -> list[T | BaseException]:
    """Run `work(i)` in `threads` threads released together; results or exceptions, in order."""
    barrier = threading.Barrier(threads)
    results: list[T | BaseException] = [RuntimeError("not run")] * threads

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as exc:  # reported by the caller's assertions
            results[index] = exc

    started = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(timeout=60)
    return results


def filled(database: Database, definition: Definition, structure: Structure) -> int:
    with database.session() as session:
        response = journey.start_response(
            session, definition, session.merge(structure), FormKind.BEFORE, "fr", new_token()
        )
        session.commit()
        fill_response(session, definition, response, ANSWERS[FormKind.BEFORE])
        session.commit()
        return response.id


def test_simultaneous_submits_submit_once_and_keep_every_answer(
    database: Database, definition: Definition, structure: Structure
) -> None:
    response_id = filled(database, definition, structure)
    before = stored(database, response_id)

    def submit(_index: int) -> bool:
        with database.session() as session:
            response = journey.load_response(session, response_id)
            assert response is not None
            result = journey.submit(session, definition, response)
            session.commit()
            return result

    results = at_once(submit)
    assert sorted(map(repr, results)) == sorted(["True"] + ["False"] * (THREADS - 1))
    [response] = responses(database)
    assert response.status == Status.SUBMITTED.value and response.submitted_at is not None
    assert stored(database, response_id) == before


def test_simultaneous_saves_of_one_page_keep_exactly_one_of_the_values(
    database: Database, definition: Definition, structure: Structure
) -> None:
    with database.session() as session:
        response = journey.start_response(
            session, definition, session.merge(structure), FormKind.BEFORE, "fr", new_token()
        )
        session.commit()
        response_id = response.id
    page = next(p for p in definition.pages(FormKind.BEFORE) if p.code == "p_devices")
    variants = [("portable",), ("smartphone", "tablette"), ("tablette",), ("fixe", "portable")]

    def save(index: int) -> None:
        with database.session() as session:
            mine = journey.load_response(session, response_id)
            assert mine is not None
            journey.save_page(
                session, definition, mine, page, {"DEVICES": variants[index % len(variants)]}
            )
            session.commit()

    assert [r for r in at_once(save) if r is not None] == []
    assert stored(database, response_id)["DEVICES"] in variants


def test_a_save_racing_a_submit_is_either_stored_before_it_or_refused(
    database: Database, definition: Definition, structure: Structure
) -> None:
    response_id = filled(database, definition, structure)
    page = definition.pages(FormKind.BEFORE)[0]

    def work(index: int) -> bool | None:
        with database.session() as session:
            response = journey.load_response(session, response_id)
            assert response is not None
            if index % 2:
                result = journey.submit(session, definition, response)
                session.commit()
                return result
            journey.save_page(session, definition, response, page, {"ASSIST": ("proche",)})
            session.commit()
            return None

    results = at_once(work)
    refused = [r for r in results if isinstance(r, journey.JourneyError)]
    assert all(r.reason == "already_submitted" for r in refused)
    assert [r for r in results if isinstance(r, BaseException) and r not in refused] == []
    assert results.count(True) == 1
    saved = len([r for i, r in enumerate(results) if i % 2 == 0 and r is None])
    answers = stored(database, response_id)
    # every save before the submit wrote "proche"; none after it changed anything
    assert answers["ASSIST"] == (("proche",) if saved else ("seul",))
    assert {k: v for k, v in answers.items() if k != "ASSIST"} == {
        k: v for k, v in ANSWERS[FormKind.BEFORE].items() if k != "ASSIST"
    }


def test_the_same_start_sent_at_once_creates_one_person(
    database: Database, definition: Definition, structure: Structure
) -> None:
    token = new_token()

    def start(_index: int) -> int:
        with database.session() as session:
            response = journey.start_response(
                session, definition, session.merge(structure), FormKind.BEFORE, "fr", token
            )
            session.commit()  # as the view does
            return response.id

    results = at_once(start)
    assert len(set(results)) == 1 and isinstance(results[0], int)
    assert count(database, Response) == 1


def test_the_check_page_sent_from_several_connections_at_once(
    app: Flask, database: Database, structure: Structure
) -> None:
    """The HTTP path: one browser session, its 'send' posted by 8 clients at the same time."""
    person = Visitor(app.test_client())
    person.fill(ANSWERS[FormKind.BEFORE], person.start(structure.slug))
    assert person.url == "/check"
    form = next(f for f in person.forms() if f.action and f.action.endswith("/check"))
    cookie = person.client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None

    def send(_index: int) -> tuple[int, str]:
        client = app.test_client()
        client.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie.value)
        sent = client.post("/check", data=form.hidden())
        return sent.status_code, sent.headers.get("Location", "")

    results = at_once(send)
    assert all(r == (302, "/done") for r in results), results
    [response] = responses(database)
    assert response.status == Status.SUBMITTED.value
    with database.session() as session:
        answers = session.scalar(select(func.count()).where(Answer.response_id == response.id))
    assert answers == sum(len(v) for v in ANSWERS[FormKind.BEFORE].values())
