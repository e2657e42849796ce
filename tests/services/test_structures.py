"""Places of mediation: validation, slugs, listing."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from selfcheck.accounts.structures import (
    StructureError,
    create_structure,
    list_structures,
    slugify,
)


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Médiathèque de Rezé", "mediatheque-de-reze"),
        ("  Centre social « Les Îles »  ", "centre-social-les-iles"),
        ("France Services – Saint-Étienne", "france-services-saint-etienne"),
        ("!!!", "lieu"),
        ("x" * 80, "x" * 48),
    ],
)
def test_slugify(name: str, slug: str) -> None:
    assert slugify(name) == slug


def test_create_structure(db_session: Session) -> None:
    structure = create_structure(db_session, "  Mairie de Plouër  ", "rural", "22")
    db_session.commit()
    assert structure.id is not None
    assert structure.name == "Mairie de Plouër"
    assert structure.slug == "mairie-de-plouer"
    assert structure.territory_type == "rural"
    assert structure.department == "22"
    assert structure.created_at is not None


@pytest.mark.parametrize(
    ("given", "stored"), [("2a", "2A"), (" 2B ", "2B"), ("974", "974"), ("01", "01")]
)
def test_department_codes_are_normalised(db_session: Session, given: str, stored: str) -> None:
    assert create_structure(db_session, f"Lieu {given}", "urbain", given).department == stored
    db_session.commit()


@pytest.mark.parametrize("department", ["", "1", "00", "96", "2C", "970", "979", "999", "44000"])
def test_bad_department_codes_are_refused(db_session: Session, department: str) -> None:
    with pytest.raises(StructureError) as caught:
        create_structure(db_session, "Lieu", "urbain", department)
    assert "department" in str(caught.value)
    assert list_structures(db_session) == []


@pytest.mark.parametrize(
    ("name", "territory", "message"),
    [
        ("", "urbain", "the name must have 1 to 200 characters"),
        ("   ", "urbain", "the name must have 1 to 200 characters"),
        ("x" * 201, "urbain", "the name must have 1 to 200 characters"),
        ("Lieu", "banlieue", "territory type must be one of urbain, periurbain, rural"),
    ],
)
def test_bad_name_or_territory(
    db_session: Session, name: str, territory: str, message: str
) -> None:
    with pytest.raises(StructureError, match=message):
        create_structure(db_session, name, territory, "44")


def test_same_name_gets_a_distinct_slug(db_session: Session) -> None:
    first = create_structure(db_session, "Médiathèque", "urbain", "44")
    db_session.commit()
    second = create_structure(db_session, "Médiathèque", "urbain", "35")
    db_session.commit()
    assert first.slug == "mediatheque"
    assert second.slug.startswith("mediatheque-") and second.slug != first.slug


def test_explicit_slug_is_slugified(db_session: Session) -> None:
    structure = create_structure(
        db_session, "Espace numérique", "periurbain", "69", slug="Mon Lieu!"
    )
    db_session.commit()
    assert structure.slug == "mon-lieu"


def test_list_structures_by_name(db_session: Session) -> None:
    for name in ("Mairie", "Centre social", "Bibliothèque"):
        create_structure(db_session, name, "urbain", "75")
        db_session.commit()
    assert [s.name for s in list_structures(db_session)] == [
        "Bibliothèque",
        "Centre social",
        "Mairie",
    ]
