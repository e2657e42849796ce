"""The dashboard's pages (issue 14): headline, parts, tasks, change, their CSV, navigation."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck import demo
from selfcheck.accounts.structures import create_structure
from selfcheck.evaluation.dashboard import TABLE_KEYS
from selfcheck.evaluation.headline_views import FIGURES, PARTS
from selfcheck.platform.db import Database
from selfcheck.platform.models import ExportLog, Role
from selfcheck.questionnaire import Definition
from tests.demo_once import write_once
from tests.staff import add_staff, signed_in
from tests.support import Visitor

PAGES = ["/evaluate/", *(f"/evaluate/{slug}" for slug, _s in PARTS), "/evaluate/tasks"]
PAGES.append("/evaluate/change")


@pytest.fixture
def evaluator(
    app: Flask, database: Database, db_session: Session, definition: Definition
) -> Visitor:
    """An evaluator granted department 44, where the demo structure has 60 people."""

    def write() -> None:
        demo.generate_demo(db_session, definition, respondents=60, seed=8)
        db_session.commit()

    write_once(db_session, ("demo", 60, 8), write)  # once per process on SQLite
    create_structure(db_session, "France Services Paris 11", "urbain", "75", "paris-11")
    db_session.commit()
    account = add_staff(database, Role.EVALUATOR, departments=("44",))
    return signed_in(app, account)


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
def test_every_page_links_to_every_other_and_keeps_the_filters(evaluator: Visitor) -> None:
    for url in PAGES:
        response = evaluator.get(url + "?territory=periurbain")
        assert response.status_code == 200, url
        html = response.get_data(as_text=True)
        assert "style=" not in html and "<script" not in html
        for other in PAGES:
            assert f'href="{other}?territory=periurbain"' in html, (url, other)
        nav = html[html.index('class="dashboard-contents"') :]
        nav = nav[: nav.index("</nav>")]
        assert nav.count('aria-current="page"') == 1, url


def test_the_first_page_shows_the_headline_with_references(evaluator: Visitor) -> None:
    html = evaluator.get("/evaluate/").get_data(as_text=True)
    assert "60 personnes correspondent à ces filtres" in html
    assert "Enquête 2023" in html and "72 %" in html and "non comparable" in html
    assert "avec son intervalle de confiance à 95 %" in html
    assert 'href="/evaluate/figures/headline.csv"' in html
    # The parts are elsewhere: the first page is short.
    assert '<table class="table" id="table-age"' not in html


def test_each_part_has_its_charts_each_with_its_table_and_csv(evaluator: Visitor) -> None:
    seen: list[str] = []
    for slug, _section in PARTS:
        html = evaluator.get(f"/evaluate/{slug}").get_data(as_text=True)
        charts = re.findall(r'<svg class="chart__svg" role="img" aria-labelledby="([^"]+)"', html)
        tables = re.findall(r'<table class="table" id="table-([a-z_]+)"', html)
        assert len(charts) == len(tables) >= 1, slug
        for key in tables:
            assert f'href="/evaluate/tables/{key}.csv"' in html
        seen += tables
    # Every table of the dashboard is on exactly one page.
    assert sorted(seen) == sorted(TABLE_KEYS)


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
def test_the_task_and_change_pages_show_pairs_and_retro_apart(evaluator: Visitor) -> None:
    tasks = evaluator.get("/evaluate/tasks").get_data(as_text=True)
    assert 'id="table-tasks_pairs"' in tasks and 'id="table-tasks_retro"' in tasks
    assert "En recul" in tasks and "changement ressenti" in tasks
    change = evaluator.get("/evaluate/change").get_data(as_text=True)
    assert 'id="table-change_pairs"' in change and 'id="table-change_retro"' in change
    assert "mesurent le changement ressenti" in change


@pytest.mark.parametrize("figure", FIGURES)
def test_each_new_table_downloads_as_csv_and_is_logged(
    evaluator: Visitor, database: Database, figure: str
) -> None:
    response = evaluator.get(f"/evaluate/figures/{figure}.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][0] == "code" and len(rows) > 3
    with database.session() as session:
        # The view's own selection is remembered too (kinds "dashboard" and
        # "dashboard-tables", differencing.py).
        (log,) = session.scalars(
            select(ExportLog).where(ExportLog.kind.not_in(("dashboard", "dashboard-tables")))
        )
        assert log.kind == "table" and json.loads(log.report)["table"] == figure


def test_an_unknown_figure_is_a_404_and_bad_filters_show_no_data(evaluator: Visitor) -> None:
    response = evaluator.get("/evaluate/figures/salaries.csv")
    assert response.status_code == 404
    for url in [*PAGES, "/evaluate/figures/headline.csv"]:
        response = evaluator.get(url + "?territory=rural")
        assert response.status_code == 422, url
        html = response.get_data(as_text=True)
        assert "Moins de 5 personnes" in html and "<table" not in html


def test_the_month_filters_say_what_the_browser_shows(evaluator: Visitor) -> None:
    html = evaluator.get("/evaluate/").get_data(as_text=True)
    assert 'type="month"' not in html and 'type="date"' not in html
    assert "AAAA-MM-JJ" not in html
    assert 'id="filter-from" name="from" type="text"' in html
    assert "par exemple 2025-03" in html


def test_a_mediator_may_not_see_the_new_pages(
    app: Flask, database: Database, db_session: Session
) -> None:
    structure = demo.demo_structure(db_session)
    db_session.commit()
    mediator = signed_in(app, add_staff(database, Role.MEDIATOR, structure))
    for url in [*PAGES, "/evaluate/figures/headline.csv"]:
        assert mediator.get(url).status_code == 403, url
