"""attack13: a NUL character in a structure's address (the public start link, the
`?structure=` of the staff lists) is "not found", never a server error.

Finding A13-3: on PostgreSQL a string holding NUL (0x00) cannot be sent as a query
parameter (psycopg raises DataError), and the start page, the start form and the
`?structure=` choices looked the slug up as typed: `GET /s/%00` (public, no sign-in) and
`/staff/people/?structure=%00` answered 500, and so did the platform administrators'
searches (`/staff/admin/staff?q=%00`, `/staff/admin/structures?q=%00`). SQLite finds
nothing (404), so only the PostgreSQL pass saw it (`SELFCHECK_TEST_DATABASE_URL`).
"""

from __future__ import annotations

import pytest
from flask import Flask

from selfcheck.platform.db import Database
from selfcheck.platform.models import Role, Structure
from tests.staff import add_staff, signed_in
from tests.support import Visitor

SLUGS = ["%00", "a%00b", "{slug}%00"]


@pytest.mark.parametrize("slug", SLUGS)
def test_a13_3_a_nul_in_a_start_link_is_not_found(
    app: Flask, structure: Structure, slug: str
) -> None:
    visitor = Visitor(app.test_client())
    address = "/s/" + slug.format(slug=structure.slug)
    assert visitor.get(address).status_code == 404
    form = visitor.get(f"/s/{structure.slug}")
    assert form.status_code == 200
    chosen = next(f for f in visitor.forms() if f.hidden().get("form") == "before")
    assert visitor.post(address, chosen.hidden()).status_code == 404
    assert visitor.post(address, {"form": "before"}).status_code == 404


@pytest.mark.parametrize("slug", SLUGS)
def test_a13_3_a_nul_in_the_chosen_structure_is_not_found(
    app: Flask, database: Database, structure: Structure, slug: str
) -> None:
    value = slug.format(slug=structure.slug)
    mediator = signed_in(app, add_staff(database, Role.MEDIATOR, structure))
    assert mediator.get(f"/staff/people/?structure={value}").status_code == 404
    admin = signed_in(app, add_staff(database, Role.PLATFORM_ADMIN))
    assert admin.get(f"/staff/people/?structure={value}").status_code == 404
    assert admin.get(f"/staff/team/?structure={value}").status_code == 404
    # The platform administrators' searches: the rest of what was typed is searched.
    assert admin.get(f"/staff/admin/staff?q={value}").status_code == 200
    assert admin.get(f"/staff/admin/structures?q={value}").status_code == 200
