"""Places of mediation: create one, list them."""

from __future__ import annotations

import re
import secrets
import unicodedata

from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck.platform import visible
from selfcheck.platform.models import Structure, TerritoryType

DEPARTMENT = re.compile(r"^(0[1-9]|[1-8][0-9]|9[0-5]|2A|2B|97[1-8]|98[4-9])$")


class StructureError(ValueError):
    pass


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:48] or "lieu"


def one_line(name: str) -> str:
    """A structure's name as kept: one line, no control character, trimmed, composed
    (`visible.one_line`). A NUL failed the administrators' structure forms with a 500 on
    PostgreSQL, and a name of spaces or control characters only passed the form and failed
    here (a 500 too: attack15)."""
    return visible.one_line(name)


def _checked(name: str, territory_type: str, department: str) -> tuple[str, str, str]:
    name = one_line(name)
    if not name or len(name) > 200:
        raise StructureError("the name must have 1 to 200 characters")
    if visible.hidden(name):
        raise StructureError(
            "the name holds an invisible or formatting character (zero-width space, "
            "direction mark...): remove it"
        )
    if territory_type not in {t.value for t in TerritoryType}:
        raise StructureError(
            "territory type must be one of " + ", ".join(t.value for t in TerritoryType)
        )
    department = department.strip().upper()
    if not DEPARTMENT.match(department):
        raise StructureError(f"{department!r} is not a French department code (01-95, 2A, 971…)")
    return name, territory_type, department


def add_structure(
    session: Session, name: str, territory_type: str, department: str, slug: str | None = None
) -> Structure:
    """A new structure in the session (not committed)."""
    name, territory_type, department = _checked(name, territory_type, department)
    slug = slugify(slug or name)
    if session.scalar(select(Structure).where(Structure.slug == slug)) is not None:
        slug = f"{slug}-{secrets.token_hex(2)}"
    structure = Structure(
        slug=slug, name=name, territory_type=territory_type, department=department
    )
    session.add(structure)
    session.flush()
    return structure


def create_structure(
    session: Session, name: str, territory_type: str, department: str, slug: str | None = None
) -> Structure:
    """A new structure in the session (flushed, not committed): the caller commits."""
    structure = add_structure(session, name, territory_type, department, slug)
    return structure


def edit_structure(
    session: Session, structure: Structure, name: str, territory_type: str, department: str
) -> dict[str, dict[str, str]]:
    """Rename, set territory type and department (the slug, in printed links, stays);
    returns what changed ({"name": {"old": ..., "new": ...}})."""
    name, territory_type, department = _checked(name, territory_type, department)
    changes = {}
    for attribute, value in (
        ("name", name),
        ("territory_type", territory_type),
        ("department", department),
    ):
        old = getattr(structure, attribute)
        if old != value:
            changes[attribute] = {"old": old, "new": value}
            setattr(structure, attribute, value)
    return changes


def list_structures(session: Session) -> list[Structure]:
    return list(session.scalars(select(Structure).order_by(Structure.name)))
