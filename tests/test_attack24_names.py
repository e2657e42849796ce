"""attack24: names other users read hold no invisible or formatting character (zero-width,
bidirectional controls, Unicode category Cf) and are kept composed (NFC), on every path that
stores one: the administrators' structure forms, the team's invitation, and the commands
(`platform/visible.py`). Both databases."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select

from selfcheck.cli import main
from selfcheck.platform.db import Database
from selfcheck.platform.models import Role, StaffUser, Structure
from tests.staff import add_staff, signed_in
from tests.support import error_summary

# What one structure could use to pass for another, or to turn a screen around it backwards.
HIDDEN = [
    "\u200b",  # zero-width space
    "\u200d",  # zero-width joiner
    "\u200e",  # left-to-right mark
    "\u200f",  # right-to-left mark
    "\u202a",  # left-to-right embedding
    "\u202e",  # right-to-left override
    "\u2066",  # left-to-right isolate
    "\u2069",  # pop directional isolate
    "\ufeff",  # byte order mark
    "\u00ad",  # soft hyphen (Cf)
    "\u2060",  # word joiner (Cf)
    "\u2028",  # line separator
]
TERRITORY = ("--territory", "urbain", "--department", "44")
EVALUATOR = ("--role", "evaluator")
MESSAGE = "Le nom contient un caractère invisible ou de mise en forme"


def _structures(database: Database) -> set[str]:
    with database.session() as session:
        return set(session.scalars(select(Structure.name)))


@pytest.mark.parametrize("url_kind", ["new", "edit"])
def test_attack24_a_structure_name_with_an_invisible_character_is_refused(
    app: Flask, database: Database, structure: Structure, url_kind: str
) -> None:
    admin = signed_in(app, add_staff(database, Role.PLATFORM_ADMIN))
    url = (
        "/staff/admin/structures/new"
        if url_kind == "new"
        else f"/staff/admin/structures/{structure.id}"
    )
    before = _structures(database)
    for char in HIDDEN:
        admin.get(url)
        typed = {"name": f"Centre{char} social", "territory_type": "urbain", "department": "44"}
        refused = admin.post(url, typed)
        assert refused.status_code == 422, repr(char)
        assert any(MESSAGE in line for line in error_summary(refused.get_data(as_text=True)))
    assert _structures(database) == before


def test_attack24_a_structure_name_is_kept_composed(
    app: Flask, database: Database, structure: Structure
) -> None:
    """`é` typed as `e` and a combining accent is the `é` of every other name: the same
    name sorts, searches and shows as one."""
    admin = signed_in(app, add_staff(database, Role.PLATFORM_ADMIN))
    admin.get("/staff/admin/structures/new")
    made = admin.post(
        "/staff/admin/structures/new",
        {"name": "Me\u0301diathe\u0300que", "territory_type": "urbain", "department": "44"},
    )
    assert made.status_code == 302
    admin.get(f"/staff/admin/structures/{structure.id}")
    saved = admin.post(
        f"/staff/admin/structures/{structure.id}",
        {"name": "Espace nume\u0301rique", "territory_type": "urbain", "department": "44"},
    )
    assert saved.status_code == 302
    assert {"Médiathèque", "Espace numérique"} <= _structures(database)


def test_attack24_the_command_refuses_the_same_names(app: Flask, database: Database) -> None:
    runner = app.test_cli_runner()
    for name in ("Centre\u202e social", "Centre\u200b social", "Centre \udcff social"):
        result = runner.invoke(
            main,
            ["structures", "add", "--name", name, *TERRITORY],
        )
        assert result.exit_code == 2, (repr(name), result.output)
        assert "invisible or formatting character" in result.output
    assert _structures(database) == set()
    composed = runner.invoke(
        main,
        [*("structures", "add", "--name", "Me\u0301diathe\u0300que"), *TERRITORY],
    )
    assert composed.exit_code == 0, composed.output
    assert _structures(database) == {"Médiathèque"}


def test_attack24_a_staff_address_with_an_invisible_character_is_refused(
    app: Flask, database: Database, structure: Structure
) -> None:
    """A staff account's address is what other administrators read (the team's list, the
    audit trail): `moi@exemple.org` with a right-to-left override could read as another."""
    admin = signed_in(app, add_staff(database, Role.STRUCTURE_ADMIN, structure))
    for char in ("\u202e", "\u200b", "\u2066", "\ufeff"):
        admin.get("/staff/team/invite")
        refused = admin.post(
            "/staff/team/invite", {"email": f"nouvelle{char}@example.org", "role": "mediator"}
        )
        assert refused.status_code == 422, repr(char)
        assert "Écrivez une adresse e-mail valide." in error_summary(refused.get_data(as_text=True))
    runner = app.test_cli_runner()
    invited = runner.invoke(
        main, ["users", "invite", "--email", "a\u202eb@example.org", *EVALUATOR]
    )
    assert invited.exit_code != 0 and "bad_email" in invited.output + str(invited.exception)
    added = runner.invoke(
        main,
        [*("users", "add", "--email", "a\u200bb@example.org"), *EVALUATOR, "--password-stdin"],
        input="a long enough password 1234\n",
    )
    assert added.exit_code != 0
    with database.session() as session:
        addresses = list(session.scalars(select(StaffUser.email)))
        assert not [a for a in addresses if "example.org" in a and "nouvelle" in a]
        assert session.scalar(select(func.count()).where(StaffUser.email.like("a%b@%"))) == 0
