"""The dashboard and its CSV downloads over HTTP: access, bad input, k, the export log."""

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
from selfcheck.evaluation.headline_views import PARTS
from selfcheck.platform.db import Database
from selfcheck.platform.models import ExportLog, Role
from selfcheck.questionnaire import Definition
from tests.demo_once import write_once
from tests.staff import add_staff, signed_in
from tests.support import Visitor


@pytest.fixture
def evaluator(
    app: Flask, database: Database, db_session: Session, definition: Definition
) -> Visitor:
    """An evaluator granted department 44, where the demo structure has 30 people."""

    def write() -> None:
        demo.generate_demo(db_session, definition, respondents=30, seed=8)
        db_session.commit()

    write_once(db_session, ("demo", 30, 8), write)  # once per process on SQLite
    create_structure(db_session, "France Services Paris 11", "urbain", "75", "paris-11")
    db_session.commit()
    account = add_staff(database, Role.EVALUATOR, departments=("44",))
    return signed_in(app, account)


def test_the_dashboard_shows_charts_each_with_its_table(evaluator: Visitor) -> None:
    page = evaluator.get("/evaluate/")
    assert page.status_code == 200
    assert "30 personnes correspondent à ces filtres" in page.get_data(as_text=True)
    # Each part of the dashboard is its own page (issue 14).
    html = ""
    for slug, _section in PARTS:
        part = evaluator.get(f"/evaluate/{slug}")
        assert part.status_code == 200
        html += part.get_data(as_text=True)
    charts = re.findall(r'<svg class="chart__svg" role="img" aria-labelledby="([^"]+)"', html)
    tables = re.findall(r'<table class="table" id="table-([a-z_]+)"', html)
    assert len(charts) == len(tables) >= 25
    for label in charts:
        assert f'<title id="{label}">' in html
    assert '<th scope="col">' in html and '<th scope="row">' in html
    assert "Seniors débutants" in html and "Enquête de référence 2023" in html
    assert "style=" not in html and "<script" not in html
    assert 'href="/evaluate/tables/typology.csv"' in html


def _drawn(svg: str) -> tuple[int, list[float], list[float], list[tuple[float, float]]]:
    """A chart's width, its texts' x, its bars' (x, width) and their tracks' x."""
    width = int(re.search(r'viewBox="0 0 (\d+) ', svg).group(1))  # type: ignore[union-attr]
    texts = [float(x) for x in re.findall(r'<text x="([\d.]+)"', svg)]
    rects = [
        (float(x), float(w))
        for x, w in re.findall(r'<rect x="([\d.-]+)" y="[\d.]+" width="([\d.]+)"', svg)
    ]
    return width, texts, [x for x, _w in rects], rects


def test_the_charts_mirror_right_to_left_with_every_text_inside(evaluator: Visitor) -> None:
    """In Arabic the charts' texts take the page's direction (`direction: rtl`): anchored at
    their start, they run leftwards from their x, so the row labels and the legend drawn at
    x = 0 were outside the picture (round 23, seen on the demo). The chart now mirrors: every
    x from the right edge, bars growing leftwards."""
    french = evaluator.get("/evaluate/quality?lang=fr").get_data(as_text=True)
    arabic = evaluator.get("/evaluate/quality?lang=ar").get_data(as_text=True)
    svg = r'<svg class="chart__svg".*?</svg>'
    for ltr, rtl in zip(re.findall(svg, french, re.S), re.findall(svg, arabic, re.S), strict=True):
        width, ltr_texts, ltr_x, ltr_rects = _drawn(ltr)
        same_width, rtl_texts, rtl_x, rtl_rects = _drawn(rtl)
        assert same_width == width and len(rtl_rects) == len(ltr_rects)
        assert min(ltr_texts) >= 0 and 0 in ltr_x  # left to right: from the left edge
        # Right to left: each text starts where its mirror ends, each box ends on the right.
        assert sorted(rtl_texts) == sorted(width - x for x in ltr_texts)
        assert all(x + w == pytest.approx(width) for x, w in rtl_rects)
        assert [w for _x, w in rtl_rects] == [w for _x, w in ltr_rects]
        assert all(0 <= x <= width for x in rtl_x)


def test_a_table_downloads_as_csv_and_is_logged(evaluator: Visitor, database: Database) -> None:
    response = evaluator.get("/evaluate/tables/gender.csv?territory=periurbain")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:2] == ["code", "Réponse"]
    assert [row[0] for row in rows[1:5]] == ["feminin", "masculin", "autre", "non_communique"]
    women = int(rows[1][2])
    assert women >= 5
    with database.session() as session:
        # The selection shown is remembered too (differencing, evaluation/differencing.py),
        # and the people of its tables' sub-groups (differencing.guard_tables).
        kinds = sorted(session.scalars(select(ExportLog.kind)))
        assert kinds == ["dashboard", "dashboard-tables", "table"]
        (log,) = session.scalars(select(ExportLog).where(ExportLog.kind == "table"))
        assert log.kind == "table" and log.row_count == 4 and log.k == 5
        assert json.loads(log.filters)["territory_type"] == "periurbain"
        assert json.loads(log.report)["table"] == "gender"


def test_an_unknown_table_is_a_404_with_a_message(evaluator: Visitor, database: Database) -> None:
    response = evaluator.get("/evaluate/tables/salaries.csv")
    assert response.status_code == 404
    assert "Ce tableau n&#39;existe pas" in response.get_data(as_text=True)
    with database.session() as session:
        assert session.scalars(select(ExportLog)).first() is None


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("structure=paris-11", 403, "Vous n'avez pas accès à cette structure."),
        ("department=75", 403, "Vous n'avez accès à aucune structure de ce département."),
        ("structure=nowhere", 403, "Vous n'avez pas accès à cette structure."),
        ("territory=rural", 422, "Moins de 5 personnes correspondent à ces filtres"),
        ("from=2026-01-01&to=2025-01-01", 400, "La date de début est après la date de fin."),
        ("from=1900-01-01", 400, "Les dates doivent être comprises entre"),
        ("from=31/12/2025", 400, "doit s'écrire AAAA-MM"),
        ("from=2025-12-31", 422, "Les dates filtrent des mois entiers"),
        ("channel=pigeon", 400, "Mode de passation inconnu."),
    ],
)
def test_bad_filters_show_a_message_and_no_data(
    evaluator: Visitor, query: str, status: int, message: str
) -> None:
    for url in (f"/evaluate/?{query}", f"/evaluate/tables/age.csv?{query}"):
        response = evaluator.get(url)
        assert response.status_code == status, url
        html = response.get_data(as_text=True)
        assert message in html.replace("&#39;", "'")
        assert "<table" not in html and '<svg class="chart__svg"' not in html
        assert response.mimetype == "text/html"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=mars+2025", "from"),
        ("from=2026-01-01&to=2025-01-01", "from"),
        ("to=2025-12-30", "to"),  # not a month's last day
        ("department=59", "department"),
        ("channel=pigeon", "channel"),
    ],
)
def test_a_refused_filter_is_linked_from_the_error_summary(
    evaluator: Visitor, query: str, field: str
) -> None:
    """The error summary comes before the form and takes the focus when the page loads (no
    JavaScript); it links to the filter at fault, which is marked invalid and says why."""
    html = evaluator.get(f"/evaluate/?{query}").get_data(as_text=True)
    summary = re.search(r'<div class="error-summary"[^>]*id="scope-error"[^>]*>', html)
    assert summary is not None and "autofocus" in summary.group(0)
    assert summary.start() < html.index('class="eval-filters"')
    assert f'<a href="#filter-{field}">' in html
    box = re.search(rf'<(?:input|select) id="filter-{field}"[^>]*>', html)
    assert box is not None and 'aria-invalid="true"' in box.group(0)
    assert f"filter-{field}-error" in box.group(0)
    assert f'<p class="error-message" id="filter-{field}-error">' in html
    assert html.count('aria-invalid="true"') == 1


def test_a_refusal_about_no_filter_links_nowhere(evaluator: Visitor) -> None:
    """Fewer than k people: nothing to correct in one box, so the message has no link."""
    response = evaluator.get("/evaluate/?from=2020-01&to=2020-01")
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="scope-error"' in html
    assert 'href="#filter-' not in html and 'aria-invalid="true"' not in html


def test_a_smaller_k_shows_more(app: Flask, evaluator: Visitor) -> None:
    strict = evaluator.get("/evaluate/people").get_data(as_text=True)
    app.config["SELFCHECK_K_ANONYMITY"] = 50
    response = evaluator.get("/evaluate/")
    assert response.status_code == 422
    assert "Moins de 50 personnes" in response.get_data(as_text=True)
    assert "&lt; 5" in strict


def test_a_mediator_may_not_see_the_dashboard(
    app: Flask, database: Database, db_session: Session
) -> None:
    structure = demo.demo_structure(db_session)
    db_session.commit()
    mediator = signed_in(app, add_staff(database, Role.MEDIATOR, structure))
    assert mediator.get("/evaluate/").status_code == 403
    assert mediator.get("/evaluate/tables/age.csv").status_code == 403
