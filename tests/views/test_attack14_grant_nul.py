"""attack14: a NUL in the team page's grant (`action=grant`, `scope=structure`).

The structure's address posted as a grant's value was read with a query parameter holding
NUL, which PostgreSQL refuses (a 500); the same input must be "no such structure" (422) on
both databases, nothing granted.
"""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select

from selfcheck.platform.db import Database
from selfcheck.platform.models import Grant, Role, Structure
from tests.staff import add_staff, signed_in


@pytest.mark.parametrize("value", ["\x00", "{slug}\x00", "a\x00b"])
@pytest.mark.parametrize("scope", ["structure", "department", "region"])
def test_attack14_a_nul_in_a_grant_is_refused_not_a_500(
    app: Flask, database: Database, structure: Structure, value: str, scope: str
) -> None:
    admin = signed_in(app, add_staff(database, Role.PLATFORM_ADMIN))
    evaluator = add_staff(database, Role.EVALUATOR)
    admin.get(f"/staff/team/{evaluator.id}")
    answer = admin.post(
        f"/staff/team/{evaluator.id}",
        {"action": "grant", "scope": scope, "value": value.format(slug=structure.slug)},
    )
    assert answer.status_code == 422
    with database.session() as session:
        granted = session.scalar(
            select(func.count()).select_from(Grant).where(Grant.user_id == evaluator.id)
        )
    assert granted == 0
