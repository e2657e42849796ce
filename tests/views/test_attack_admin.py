"""Attacks on the administration back office (outside review): numbers too big for the
database in a URL, and an old password link brought back by a re-activation."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from selfcheck.platform.db import Database
from selfcheck.platform.models import Role, Structure
from tests.staff import add_staff, signed_in
from tests.support import Visitor

HUGE = "99999999999999999999999"


@pytest.mark.parametrize(
    ("url", "status"),
    [
        (f"/staff/admin/staff?page={HUGE}", 200),
        (f"/staff/admin/structures?page={HUGE}", 200),
        (f"/staff/audit?page={HUGE}", 400),  # not a page number: said so (test_audit_trail.py)
        (f"/staff/team/{HUGE}", 404),
        (f"/staff/admin/structures/{HUGE}", 404),
        (f"/staff/entry/{HUGE}", 404),
        ("/staff/team/2147483648", 404),
    ],
)
def test_attack_numbers_too_big_for_the_database_are_not_a_500(
    app: Flask, database: Database, url: str, status: int
) -> None:
    admin = signed_in(app, add_staff(database, Role.PLATFORM_ADMIN))
    assert admin.get(url).status_code == status


def test_attack_a_huge_id_posted_is_not_a_500(
    app: Flask, database: Database, structure: Structure
) -> None:
    admin = signed_in(app, add_staff(database, Role.PLATFORM_ADMIN))
    admin.get("/staff/admin/structures")
    assert admin.post(f"/staff/admin/structures/{HUGE}", {"action": "archive"}).status_code == 404


def test_attack_a_re_activation_does_not_bring_an_old_link_back(
    app: Flask, database: Database, structure: Structure
) -> None:
    admin = signed_in(app, add_staff(database, Role.STRUCTURE_ADMIN, structure))
    mediator = add_staff(database, Role.MEDIATOR, structure)
    admin.get(f"/staff/team/{mediator.id}")
    issued = admin.post(f"/staff/team/{mediator.id}", {"action": "link"})
    found = re.search(r'value="http://localhost(/staff/link/[^"]+)"', issued.get_data(as_text=True))
    assert found
    link = found.group(1)
    admin.get(f"/staff/team/{mediator.id}")
    assert admin.post(f"/staff/team/{mediator.id}", {"action": "deactivate"}).status_code == 302
    admin.get(f"/staff/team/{mediator.id}")
    assert admin.post(f"/staff/team/{mediator.id}", {"action": "reactivate"}).status_code == 302
    holder = Visitor(app.test_client())
    assert holder.get(link).status_code == 410  # void since the deactivation
