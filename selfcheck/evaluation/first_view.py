"""An evaluator's first view of a large selection is announced before it is computed.

The first time an evaluator views a selection (filters never viewed by them, or forgotten
since), the differencing check reads, hashes and remembers all of its people
(evaluation/differencing.py): about 7 to 12 s at 1,000,000 people on PostgreSQL, against half
a second for every later view (BENCHMARKS.md, "Dashboard first view ever of an evaluator").
Issue 18 asks that whoever waits sees why, without JavaScript. So such a request is answered
at once by a page that says what is being prepared and how long it takes, and that asks the
browser (the HTTP `Refresh` header, a meta refresh, as the jobs' pages do) to load the same
address with `ready=1` a second later: the browser keeps showing that page while the
dashboard is computed. A link does the same by hand.

Only for an evaluator whose scope holds more than `ANNOUNCE_ABOVE_PEOPLE` (counted up to that
many only): below, the whole check takes well under a second. The scope's size, not the
selection's, so that the page tells nothing about the selection. It shows no figure, so it
checks nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Response, render_template, request, url_for

from selfcheck.evaluation.differencing import viewed_before
from selfcheck.evaluation.scope import ScopeError, count_people_up_to
from selfcheck.evaluation.view_support import (
    current_filters,
    current_scope,
    evaluator,
    filter_arguments,
)
from selfcheck.platform.db import get_session

F = TypeVar("F", bound=Callable[..., Any])

READY = "ready"  # query argument: the announcement was shown (or is not wanted)
TEMPLATE = "evaluator/preparing.html"
# About a second of first check on a quiet machine at this size (0.2 s at 10,000 people on
# SQLite; 100,000 people about 2 s on PostgreSQL).
ANNOUNCE_ABOVE_PEOPLE = 10_000
REFRESH_SECONDS = 1  # long enough to read the first sentence; the wait goes on after it


def announced(view: F) -> F:
    """Wrap a dashboard page: its first view by this evaluator of a large selection is the
    announcement page instead (the view runs on the next request, `ready=1`)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if request.method == "GET" and not request.args.get(READY) and _first_of_many():
            return _announcement()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _first_of_many() -> bool:
    """Whether this request would run the whole check over more than `ANNOUNCE_ABOVE_PEOPLE`
    people. Filters that cannot be viewed: False (the page says why, at once)."""
    session = get_session()
    try:
        filters = current_filters()
    except ScopeError:
        return False
    if viewed_before(session, evaluator().id, filters):
        return False
    # The evaluator's whole scope is counted, not the selection: whether a selection never
    # viewed holds more than the bound is a bit the differencing check has not passed, and
    # it would be told without a trace (attack24). A small selection of a large scope is
    # announced too: one second more, once.
    limit = ANNOUNCE_ABOVE_PEOPLE
    return count_people_up_to(session, current_scope(), limit + 1) > limit


def _announcement() -> Response:
    arguments: dict[str, Any] = {**filter_arguments(), READY: "1"}
    target = url_for(str(request.endpoint), **arguments)
    page = render_template(TEMPLATE, target=target)
    response = Response(page, mimetype="text/html")
    response.headers["Refresh"] = f"{REFRESH_SECONDS}; url={target}"
    return response
