"""An evaluator's first view of a large selection is announced before it is computed
(evaluation/first_view.py): the page says why the wait, and the browser loads the dashboard
a second later. The bound is lowered to the demo's size here."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from selfcheck.evaluation import first_view
from selfcheck.platform.db import Database
from selfcheck.platform.models import ExportLog, Role, Structure
from tests.staff import add_staff, signed_in
from tests.support import Visitor
from tests.views import test_dashboard_pages

ANNOUNCED = "Préparation de votre tableau de bord"


evaluator = test_dashboard_pages.evaluator  # department 44, where the demo has 60 people


@pytest.fixture
def small_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(first_view, "ANNOUNCE_ABOVE_PEOPLE", 50)  # the demo has 60


def _views(db_session: Session) -> int:
    return int(db_session.scalar(select(func.count()).select_from(ExportLog)) or 0)


@pytest.mark.usefixtures("small_bound")
def test_a_first_view_of_many_people_is_announced_then_shown(
    evaluator: Visitor, db_session: Session
) -> None:
    before = _views(db_session)
    response = evaluator.get("/evaluate/?territory=periurbain&from=2020-01")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert ANNOUNCED in html and 'role="status"' in html
    # No figure, nothing checked nor remembered: the announcement releases nothing.
    assert "personnes correspondent à ces filtres" not in html
    assert _views(db_session) == before
    # The browser comes back with the same filters and ready=1; a link does it by hand.
    refresh = response.headers["Refresh"]
    assert refresh.startswith("1; url=/evaluate/?")
    target = refresh.split("url=", 1)[1]
    for argument in ("territory=periurbain", "from=2020-01", "ready=1"):
        assert argument in target
    assert f'href="{target.replace("&", "&amp;")}"' in html
    shown = evaluator.get(target).get_data(as_text=True)
    assert "60 personnes correspondent à ces filtres" in shown
    assert _views(db_session) > before
    # Seen once: the same filters are shown at once from then on, without ready=1.
    again = evaluator.get("/evaluate/?territory=periurbain&from=2020-01")
    assert "60 personnes correspondent à ces filtres" in again.get_data(as_text=True)
    assert "Refresh" not in again.headers


@pytest.mark.usefixtures("small_bound")
def test_every_dashboard_page_announces_but_not_the_downloads(evaluator: Visitor) -> None:
    for url in ("/evaluate/tasks", "/evaluate/change", "/evaluate/people"):
        response = evaluator.get(url)
        assert response.status_code == 200, url
        assert ANNOUNCED in response.get_data(as_text=True), url
    download = evaluator.get("/evaluate/tables/typology.csv")
    assert download.status_code == 200 and download.mimetype == "text/csv"


@pytest.mark.usefixtures("small_bound")
def test_the_scope_decides_not_the_selection(evaluator: Visitor, db_session: Session) -> None:
    """A selection of fewer people than the bound, in a scope of more, is announced as well:
    the page says nothing of the selection's size, a bit no check has passed (attack24)."""
    first_view.ANNOUNCE_ABOVE_PEOPLE = 59  # type: ignore[misc]  # the scope: 60 people
    response = evaluator.get("/evaluate/?form=retro")
    assert ANNOUNCED in response.get_data(as_text=True)
    shown = evaluator.get("/evaluate/?form=retro&ready=1").get_data(as_text=True)
    people = int(re.search(r"(\d+) personnes? correspond", shown).group(1))  # type: ignore[union-attr]
    assert people < 59


def test_a_small_scope_is_shown_at_once(evaluator: Visitor) -> None:
    html = evaluator.get("/evaluate/").get_data(as_text=True)
    assert ANNOUNCED not in html
    assert "60 personnes correspondent à ces filtres" in html


@pytest.mark.usefixtures("small_bound")
def test_filters_that_cannot_be_viewed_say_so_at_once(evaluator: Visitor) -> None:
    response = evaluator.get("/evaluate/?structure=nowhere")
    assert ANNOUNCED not in response.get_data(as_text=True)
    assert response.status_code in (403, 422)  # out of their grants


@pytest.mark.usefixtures("small_bound")
def test_another_evaluator_is_announced_as_well(
    app: Flask, evaluator: Visitor, database: Database
) -> None:
    evaluator.get("/evaluate/?ready=1")  # the first evaluator's memory: not the second's
    second = add_staff(database, Role.EVALUATOR, email="second@example.org", departments=("44",))
    other = signed_in(app, second)
    assert ANNOUNCED in other.get("/evaluate/").get_data(as_text=True)


def test_a_visitor_is_sent_to_sign_in_first(app: Flask) -> None:
    response = app.test_client().get("/evaluate/")
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]


@pytest.mark.usefixtures("small_bound", "evaluator")
def test_a_mediator_is_refused_before_any_count(
    app: Flask, database: Database, db_session: Session
) -> None:
    structure = db_session.scalars(select(Structure)).first()
    mediator = signed_in(app, add_staff(database, Role.MEDIATOR, structure))
    assert mediator.get("/evaluate/").status_code == 403


@pytest.mark.usefixtures("small_bound")
def test_only_the_filters_are_carried_to_the_next_address(evaluator: Visitor) -> None:
    """url_for's own arguments in the query cannot make the Refresh header point elsewhere."""
    response = evaluator.get(
        "/evaluate/?_external=1&_scheme=javascript&_anchor=x&next=//evil.example"
        "&territory=periurbain"
    )
    assert response.status_code == 200
    target = response.headers["Refresh"].split("url=", 1)[1]
    assert target == "/evaluate/?territory=periurbain&ready=1"
    assert "evil" not in response.get_data(as_text=True)
