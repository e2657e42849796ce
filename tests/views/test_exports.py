"""The export screens: download, codebook, export log, and every kind of bad request."""

from __future__ import annotations

import io
import zipfile

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck.evaluation import export_views
from selfcheck.platform.db import Database
from selfcheck.platform.models import ExportLog, Role
from selfcheck.questionnaire.model import Definition
from tests.services.evaluation.support import populate
from tests.staff import add_staff, signed_in
from tests.support import Visitor, follow_job


@pytest.fixture
def evaluator(
    app: Flask, db_session: Session, definition: Definition, database: Database
) -> Visitor:
    """An evaluator granted department 44 (the demo structure: 9 people of 14)."""
    populate(db_session, definition, people=14, moved=5)
    account = add_staff(database, Role.EVALUATOR, departments=("44",))
    return signed_in(app, account)


def test_export_page_shows_the_anonymisation_and_a_download_form(evaluator: Visitor) -> None:
    page = evaluator.get("/evaluate/exports/")
    assert page.status_code == 200
    text = evaluator.text
    assert "Seuil d'anonymat k : 5." in text
    assert "Personnes dans le périmètre : 9." in text
    assert "Les réponses libres ne sont pas incluses." in text
    assert 'action="/evaluate/exports/download"' in evaluator.html


def test_a_large_selection_gets_the_download_form_without_planning_in_the_request(
    evaluator: Visitor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past PREVIEW_MAX_PEOPLE the page does not plan the anonymisation (minutes at a million
    people) nor check the selection as a view (it shows no figure): the form is there at
    once, and the report comes with the export."""

    def planned(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the whole selection was planned or checked inside the request")

    monkeypatch.setattr(export_views, "PREVIEW_MAX_PEOPLE", 8)  # the selection: 9 people
    monkeypatch.setattr(export_views.bundle, "preview", planned)
    monkeypatch.setattr(export_views, "guard_view_here", planned)
    page = evaluator.get("/evaluate/exports/")
    assert page.status_code == 200
    text = evaluator.text
    assert "Cette sélection compte plus de 8 personnes" in text
    assert "Seuil d'anonymat k" not in text
    assert 'action="/evaluate/exports/download"' in evaluator.html


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
def test_download_sends_a_zip_and_logs_it(evaluator: Visitor, db_session: Session) -> None:
    started = evaluator.get("/evaluate/exports/download?format=xlsx&shape=wide&department=44")
    assert started.status_code == 303  # a background job: its page, then the file
    response = follow_job(evaluator, started)
    assert response.status_code == 200, evaluator.html
    assert response.mimetype == "application/zip"
    assert response.headers["Cache-Control"] == "no-store"
    with zipfile.ZipFile(io.BytesIO(response.data)) as bundle:
        assert "data.xlsx" in bundle.namelist()
        assert "codebook.pdf" in bundle.namelist()
    response.close()
    log = db_session.scalars(select(ExportLog)).one()
    assert log.kind == "xlsx-wide" and log.k == 5
    page = evaluator.get("/evaluate/exports/log")
    assert page.status_code == 200
    assert "xlsx-wide" in evaluator.html
    assert "Personnes exportées" in evaluator.text


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
def test_export_log_shows_only_ones_own_exports_to_an_evaluator(
    app: Flask, evaluator: Visitor, database: Database
) -> None:
    follow_job(evaluator, evaluator.get("/evaluate/exports/download?format=csv&shape=long"))
    other = signed_in(
        app, add_staff(database, Role.EVALUATOR, departments=("44",), email="o@example.org")
    )
    other.get("/evaluate/exports/log")
    assert "csv-long" not in other.html
    admin = signed_in(app, add_staff(database, Role.PLATFORM_ADMIN, email="a@example.org"))
    admin.get("/evaluate/exports/log")
    assert "csv-long" in admin.html


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("structure=centre-nord", 403, "Vous n'avez pas accès à cette structure."),
        ("structure=does-not-exist", 403, "Vous n'avez pas accès à cette structure."),
        ("department=59", 403, "Vous n'avez accès à aucune structure de ce département."),
        ("from=2026-13-45", 400, "AAAA-MM-JJ"),
        ("from=1900-01-01", 400, "Les dates doivent être comprises"),
        ("from=2025-06-01&to=2025-01-01", 400, "La date de début est après la date de fin."),
        ("form=during", 400, "Questionnaire inconnu."),
        ("from=2020-01&to=2020-01", 422, "Moins de 5 personnes"),
        ("from=2026-01-01&to=2026-01-15", 422, "Les dates filtrent des mois entiers"),
        ("from=2026-01-02", 422, "Les dates filtrent des mois entiers"),
        ("format=pdf", 400, "Format d'export inconnu."),
        ("format=csv&shape=diagonal", 400, "Forme d'export inconnue."),
        ("format=", 400, "Format d'export inconnu."),
    ],
)
def test_bad_requests_get_a_message_and_no_data(
    evaluator: Visitor, db_session: Session, query: str, status: int, message: str
) -> None:
    if "format" not in query:
        query += "&format=csv"
    response = evaluator.get("/evaluate/exports/download?" + query)
    assert response.status_code == status
    assert response.mimetype == "text/html"
    assert message in evaluator.text
    assert "Rien ne peut être affiché" in evaluator.text
    assert db_session.scalars(select(ExportLog)).first() is None


def test_download_without_a_format_goes_back_to_the_export_page(evaluator: Visitor) -> None:
    response = evaluator.get("/evaluate/exports/download?department=44")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/evaluate/exports/?department=44")


def test_export_page_with_fewer_than_k_people_shows_no_form(evaluator: Visitor) -> None:
    response = evaluator.get("/evaluate/exports/?from=2020-01-01&to=2020-01-31")
    assert response.status_code == 422
    assert "/evaluate/exports/download" not in evaluator.html


def test_codebook_page(evaluator: Visitor) -> None:
    assert evaluator.get("/evaluate/exports/codebook").status_code == 200
    assert "before_COMFORT" in evaluator.html
    assert "Type de compétence" in evaluator.text
    assert evaluator.get("/evaluate/exports/codebook?shape=long").status_code == 200
    assert "T01_PRE" in evaluator.html
    assert evaluator.get("/evaluate/exports/codebook?shape=round").status_code == 400
    assert "Forme d'export inconnue." in evaluator.text


def test_mediators_cannot_export(app: Flask, evaluator: Visitor, database: Database) -> None:
    from selfcheck import demo

    with database.session() as session:
        structure = demo.demo_structure(session)
        account = add_staff(database, Role.MEDIATOR, structure)
    mediator = signed_in(app, account)
    assert mediator.get("/evaluate/exports/download?format=csv").status_code == 403
