"""Attacks on the evaluator's exports from outside: a page of another site cannot make an
evaluator's browser export (cross-site request forgery on the download GET)."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from selfcheck.platform.db import Database
from selfcheck.platform.models import ExportLog, ExportSelection, Grant, Job, Role
from selfcheck.questionnaire.model import Definition
from tests.services.evaluation.support import populate
from tests.staff import add_staff, signed_in
from tests.support import Visitor


@pytest.fixture
def evaluator(
    app: Flask, db_session: Session, definition: Definition, database: Database
) -> Visitor:
    populate(db_session, definition, people=14, moved=5)
    account = add_staff(database, Role.EVALUATOR, departments=("44",))
    return signed_in(app, account)


def _count(database: Database, model: type) -> int:
    with database.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_attack_a_link_from_another_site_does_not_export(
    evaluator: Visitor, database: Database, site: str
) -> None:
    query = "format=csv&shape=wide&department=44"
    response = evaluator.get(
        f"/evaluate/exports/download?{query}", headers={"Sec-Fetch-Site": site}
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/evaluate/exports/?")
    assert "department=44" in response.headers["Location"]
    assert _count(database, Job) == 0
    assert _count(database, ExportLog) == 0 and _count(database, ExportSelection) == 0
    # From the export page itself (or typed by hand), the same request exports.
    for here in ("same-origin", "none"):
        started = evaluator.get(
            f"/evaluate/exports/download?{query}", headers={"Sec-Fetch-Site": here}
        )
        assert started.status_code == 303, here


def test_attack_a_finished_export_is_not_downloaded_once_the_grants_are_withdrawn(
    evaluator: Visitor, database: Database
) -> None:
    started = evaluator.get("/evaluate/exports/download?format=csv&shape=wide&department=44")
    assert started.status_code == 303
    page = started.headers["Location"]
    assert evaluator.get(page).status_code == 200
    first = evaluator.get(f"{page}/download")
    assert first.status_code == 200 and first.mimetype == "application/zip"
    first.close()
    with database.session() as session:
        session.execute(delete(Grant))  # the platform administrator withdraws the scope
        session.commit()
    again = evaluator.get(f"{page}/download")
    assert again.status_code == 403 and again.mimetype == "text/html"
    assert "vos accès ou les données ont changé" in again.get_data(as_text=True)
