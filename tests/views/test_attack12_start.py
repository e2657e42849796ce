"""attack12: pg19's start (the structure and the token read in one statement): an unknown
structure stays "not found" whatever the form, and a start form sent again to another
address finds nothing there. Held."""

from __future__ import annotations

from selfcheck.platform.db import Database
from selfcheck.platform.models import Response, Structure
from tests.support import Visitor, count


def test_unknown_structure_is_not_found_whatever_the_form(
    visitor: Visitor, structure: Structure, database: Database
) -> None:
    visitor.get(f"/s/{structure.slug}")
    form = next(f for f in visitor.forms() if f.hidden().get("form") == "before")
    hidden = form.hidden()
    # An invalid form (no token, a form that does not exist) on an unknown structure: 404,
    # as on the known one it is 400.
    for broken in ({**hidden, "token": ""}, {**hidden, "form": "admin"}, {}):
        assert visitor.post("/s/nowhere", broken).status_code == 404
        assert visitor.post(f"/s/{structure.slug}", broken).status_code == 400
    assert count(database, Response) == 0
    # A start sent, then the same form (its token) sent to an unknown address: 404, and the
    # response started stays the only one.
    assert visitor.post(f"/s/{structure.slug}", hidden).status_code == 302
    assert count(database, Response) == 1
    assert visitor.post("/s/nowhere", hidden).status_code == 404
    assert count(database, Response) == 1
