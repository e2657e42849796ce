"""attack8: the journey's and the rate limits' one-statement writes (pg16) under concurrency."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import func, select

from selfcheck.journey import operations as journey
from selfcheck.platform import ratelimit
from selfcheck.platform.db import Database
from selfcheck.platform.models import Answer, Response, Status, Structure
from selfcheck.questionnaire.model import Definition, FormKind
from tests.support import ANSWERS, fill_response, new_token

SECRET = "test secret"
NOW = datetime(2026, 11, 23, 10, 4, 30, tzinfo=UTC)


def _at_once(count: int, work: Callable[[int], None]) -> list[BaseException]:
    barrier = threading.Barrier(count)
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            work(index)
        except BaseException as error:  # reported by the caller
            failures.append(error)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def test_attack8_two_counters_at_once_refuse_exactly_past_the_limit(database: Database) -> None:
    """Many reservations of the same two counters at once (a start's address and browser):
    no lost update, no deadlock, and each count given to exactly one of them."""
    per_ip = ratelimit.Limit("attack8-ip", 7, 600)
    everyone = ratelimit.Limit("attack8-all", 11, 600)
    counts: list[tuple[int, int]] = []
    lock = threading.Lock()

    def work(_index: int) -> None:
        with database.session() as session:
            for _ in range(3):
                first, second = ratelimit.hit_all(
                    session, SECRET, [(per_ip, "1.2.3.4"), (everyone, "*")], NOW
                )
                with lock:
                    counts.append((first.count, second.count))
                assert first.allowed == (first.count <= 7)
                assert second.allowed == (second.count <= 11)

    assert _at_once(8, work) == []
    assert sorted(first for first, _second in counts) == list(range(1, 25))
    assert sorted(second for _first, second in counts) == list(range(1, 25))


def test_attack8_a_questionnaire_sent_from_many_tabs_at_once_is_sent_once(
    database: Database, definition: Definition, structure: Structure
) -> None:
    """`submit_locked` (the check page's send) from several tabs at once: exactly one sends,
    the others see it sent; the answers are the ones saved, nothing half-written."""
    with database.session() as session:
        response = journey.start_response(
            session, definition, session.merge(structure), FormKind.BEFORE, "fr", new_token()
        )
        session.commit()
        fill_response(session, definition, response, ANSWERS[FormKind.BEFORE])
        session.commit()
        response_id = response.id
        answers_before = session.scalar(
            select(func.count()).select_from(Answer).where(Answer.response_id == response_id)
        )
    sent: list[bool] = []

    def send(_index: int) -> None:
        with database.session() as session:
            state = journey.lock_state(session, response_id)
            assert state is not None
            sent.append(journey.submit_locked(session, definition, state))
            session.commit()

    assert _at_once(6, send) == []
    assert sorted(sent) == [False] * 5 + [True]
    with database.session() as session:
        found = session.get(Response, response_id)
        assert found is not None and found.status == Status.SUBMITTED.value
        assert (
            session.scalar(
                select(func.count()).select_from(Answer).where(Answer.response_id == response_id)
            )
            == answers_before
        )


def test_attack8_a_save_racing_a_send_never_changes_a_sent_questionnaire(
    database: Database, definition: Definition, structure: Structure
) -> None:
    """Saves of a page (as the question view: state locked, then refused once sent) racing
    the send: the sent questionnaire keeps the answers it was sent with."""
    with database.session() as session:
        response = journey.start_response(
            session, definition, session.merge(structure), FormKind.BEFORE, "fr", new_token()
        )
        session.commit()
        fill_response(session, definition, response, ANSWERS[FormKind.BEFORE])
        session.commit()
        response_id = response.id
    page = definition.screen(FormKind.BEFORE, "p_help")
    assert page is not None
    outcome: dict[str, object] = {}

    def work(index: int) -> None:
        with database.session() as session:
            state = journey.lock_state(session, response_id, no_flush_wait=index > 0)
            assert state is not None
            if index == 0:
                outcome["sent"] = journey.submit_locked(session, definition, state)
                outcome["sent_with"] = state.answers
            elif not state.is_submitted:  # the view's check, made under the lock
                journey.save_locked_page(session, definition, state, page, {"ASSIST": ("seul",)})
            session.commit()

    assert _at_once(4, work) == []
    assert outcome["sent"] is True
    with database.session() as session:
        state = journey.load_state(session, response_id)
        assert state is not None and state.is_submitted
        sent_with = outcome["sent_with"]
        assert isinstance(sent_with, dict)
        shown = {code: values for code, values in sent_with.items() if code in state.answers}
        assert state.answers == shown  # only hidden answers dropped at sending
