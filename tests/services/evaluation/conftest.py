"""Demo data for export tests: people in two structures of two departments."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from selfcheck.platform.models import Role, StaffUser
from selfcheck.questionnaire.model import Definition
from tests.services.evaluation.support import populate
from tests.staff import add_staff


@pytest.fixture
def populated(db_session: Session, definition: Definition) -> Session:
    """40 demo people, the last 15 moved to a second structure in another department."""
    populate(db_session, definition)
    return db_session


@pytest.fixture
def admin(populated: Session, database: object) -> StaffUser:
    account = add_staff(database, Role.PLATFORM_ADMIN, email="admin@example.org")  # type: ignore[arg-type]
    user = populated.get(StaffUser, account.id)
    assert user is not None
    return user


@pytest.fixture
def request_context(app: Flask) -> Iterator[None]:
    with app.test_request_context("/"):
        yield


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    folder.mkdir()
    return folder
