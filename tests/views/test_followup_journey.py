"""The follow-up on the web, with a fixed clock: before at 0, after 8 weeks later, then the
code says when to come back until the day it opens, and leads straight to it from then."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from selfcheck.platform import clock
from selfcheck.platform.db import Database
from selfcheck.platform.models import Response, Status, Structure
from tests.support import AFTER, TASKS, Visitor, count, path_of

START = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
FOLLOWUP: dict[str, tuple[str, ...]] = {
    "ASSIST": ("seul",),
    "COMFORT": ("3",),
    **dict.fromkeys(TASKS, ("3",)),
    "STILL_USE": ("parfois",),
    "HELP_AGAIN": ("non",),
    "LOST": ("rien",),
}


@pytest.fixture
def fixed() -> Iterator[clock.FixedClock]:
    with clock.fixed(START) as fixed_clock:
        yield fixed_clock


def test_the_web_journey_at_start_end_and_three_months_later(
    visitor: Visitor,
    new_visitor: Callable[[], Visitor],
    structure: Structure,
    database: Database,
    fixed: clock.FixedClock,
) -> None:
    code = visitor.complete(structure.slug)
    fixed.advance(timedelta(weeks=8))  # the after form on 7 March 2027
    end = new_visitor()
    end.follow(end.enter_code(code))
    end.fill(AFTER, end.post("/welcome-back"))
    end.follow(end.submit())
    # PART3: assert "7 juin 2027" in end.text

    fixed.set(datetime(2027, 6, 6, 21, 59, tzinfo=UTC))  # 23:59 in Paris, the day before
    early = new_visitor()
    routed = early.enter_code(code)
    assert path_of(routed.headers["Location"]) == "/come-back"
    page = early.follow(routed)
    assert page.status_code == 200
    assert "Revenez le 7 juin 2027" in early.text
    assert code[:3] in early.html  # the code is on the page

    fixed.set(datetime(2027, 6, 6, 22, 0, tzinfo=UTC))  # midnight in Paris: it opens
    later = new_visitor()
    routed = later.enter_code(code)
    assert path_of(routed.headers["Location"]) == "/q/p_help"  # straight to the follow-up
    visited = later.fill(FOLLOWUP, routed)
    assert visited[0] == "p_help" and "p_still_use" in visited and "p_lost" in visited
    assert "p_age" not in visited and "p_progress" not in visited  # only the short form
    assert later.url == "/check"
    sent = later.submit()
    assert path_of(sent.headers["Location"]) == "/done"
    again = later.submit()  # sent twice: nothing changes, nothing created
    assert again.status_code in (302, 409)
    assert count(database, Response) == 3
    assert count(database, Response, Response.status == Status.SUBMITTED.value) == 3

    back = new_visitor()
    routed = back.enter_code(code)
    assert path_of(routed.headers["Location"]) == "/summary"


def test_come_back_without_a_code_asks_for_it(visitor: Visitor) -> None:
    page = visitor.get("/come-back")
    assert page.status_code in (200, 302, 303)
    assert "/come-back" not in page.headers.get("Location", "")
