"""A new age band, added to a copy of the shipped definition with its tag and its place on
the generalisation ladder (a MINOR change), reaches every output with no Python change: the
web page, the paper form, the entry screen, the typology, the anonymiser, the dashboard, the
export and the codebook.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from werkzeug.datastructures import MultiDict

from selfcheck import DEFINITION_KEY, demo
from selfcheck.entry.values import parse_values
from selfcheck.evaluation import anonymise, bundle, codebook, dashboard, typology
from selfcheck.evaluation.export import Shape, qi_values
from selfcheck.evaluation.scope import parse_filters
from selfcheck.paper import operations as paper
from selfcheck.platform.db import EXTENSION_KEY, Database
from selfcheck.platform.models import Role as StaffRole
from selfcheck.platform.models import StaffUser
from selfcheck.questionnaire.loader import DEFAULT_DEFINITION
from selfcheck.questionnaire.model import (
    Definition,
    FormKind,
    Item,
    Role,
    Tag,
)
from tests.conftest import AppFactory
from tests.pdf_support import text as pdf_text
from tests.services.evaluation.kanon_check import read_rows
from tests.staff import add_staff
from tests.support import BEFORE, Visitor, submitted

NEW = "quatre_vingt_plus"
LABEL = "80 ans ou plus"
PEOPLE = 6


def with_new_band(directory: Path) -> Path:
    """A copy of the shipped definition with a senior age band, in the 60+ group."""
    raw: dict[str, Any] = yaml.safe_load(DEFAULT_DEFINITION.read_text("utf-8"))
    major, minor, _patch = raw["version"].split(".")
    raw["version"] = f"{major}.{int(minor) + 1}.0"
    for section in raw["sections"]:
        for page in section["pages"]:
            for item in page["items"]:
                if item.get("role") != Role.AGE.value:
                    continue
                item["options"].append(
                    {"code": NEW, "label": LABEL, "label_easy": LABEL, "tags": [Tag.SENIOR.value]}
                )
                for step in item["quasi_identifier"]["ladder"]:
                    for group in step.get("groups", ()):
                        if any(o in group["options"] for o in _seniors(item)):
                            group["options"].append(NEW)
    path = directory / "definition.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), "utf-8")
    return path


def _seniors(raw_item: dict[str, Any]) -> list[str]:
    return [o["code"] for o in raw_item["options"] if Tag.SENIOR.value in o.get("tags", ())]


def age_item(definition: Definition) -> Item:
    age = definition.item_with_role(Role.AGE)
    assert age is not None
    return age


@pytest.mark.slow  # > 8 s on 2 shared cores: CI runs it, the fast tier does not
def test_a_new_age_band_reaches_every_output(make_app: AppFactory, tmp_path: Path) -> None:
    app: Flask = make_app(DEFINITION_PATH=with_new_band(tmp_path))
    definition: Definition = app.extensions[DEFINITION_KEY]
    age = age_item(definition)
    assert age.option_codes[-1] == NEW and definition.version.endswith(".0")
    database: Database = app.extensions[EXTENSION_KEY]
    with database.session() as db:
        structure = demo.demo_structure(db)
        slug = structure.slug
        db.commit()

    # Web: the age page offers the band and accepts it.
    visitor = Visitor(app.test_client())
    started = visitor.start(slug)
    assistance = definition.item_with_role(Role.ASSISTANCE)
    assert assistance is not None
    visitor.fill({assistance.code: assistance.option_codes[0]}, started, until=age.page)
    visitor.get(f"/q/{age.page}")
    assert NEW in visitor.page_form().options(age.code)
    assert LABEL in visitor.text
    assert visitor.answer({age.code: NEW}).status_code == 302

    # Paper: the printed before form shows it.
    with app.app_context():
        pdf = paper.renderer(app).questionnaires(
            [paper.Copy(FormKind.BEFORE, "fr", None)], large=False, site_url="https://x.example"
        )
    assert LABEL in pdf_text(pdf)

    # Entry screen: typing it is valid.
    parsed = parse_values(definition, FormKind.BEFORE, MultiDict([(age.code, NEW)]))
    assert parsed.valid and parsed.values[age.code] == (NEW,)

    # Typology: a senior, from the tag.
    comfort = definition.item_with_role(Role.COMFORT)
    assert comfort is not None
    low = comfort.tagged(Tag.EASE_LOW)[0]
    assert (
        typology.classify(
            {"age": NEW, "comfort_before": low, "basics_before": typology.HELP}, definition
        )
        is typology.Profile.BEGINNER_SENIORS
    )

    # Anonymiser: merged into the 60+ group at the broad step.
    qi = age.quasi_identifier
    assert qi is not None
    broad = next(step.name for step in qi.ladder if step.groups)
    rungs, names = anonymise.ladder_rungs(qi)
    released = rungs[names.index(broad)](NEW)
    group = next(g.code for g in qi.groups() if NEW in g.options)
    assert released == group

    # Dashboard, export and codebook, from answers stored through the journey.
    with database.session() as db:
        structure = demo.demo_structure(db)
        for _ in range(PEOPLE):
            submitted(db, definition, structure, FormKind.BEFORE, {**BEFORE, age.code: (NEW,)})
        db.commit()
    account = add_staff(database, StaffRole.PLATFORM_ADMIN, email="analyst@example.org")
    with app.test_request_context(), database.session() as db:
        user = db.get(StaffUser, account.id)
        assert user is not None
        filters = parse_filters(db, user, {})
        board = dashboard.build_dashboard(db, definition, filters, 5)
        row = next(r for r in board.table(Role.AGE.value).rows if r.key == NEW)
        assert row.label == LABEL and row.cells[0].count == PEOPLE
        typed = next(r for r in board.table("typology").rows if r.key == "beginner_seniors")
        assert typed.cells[0].count == PEOPLE  # BEFORE answers comfort "not at all at ease"

        request = bundle.ExportRequest("csv", Shape.WIDE)
        result = bundle.run_export(db, definition, user, filters, request, 1, tmp_path)
        _names, rows = read_rows(result.zip_path)
        column = qi.column
        assert [row[column] for row in rows] == [qi_values(age)[NEW]] * PEOPLE

        book = codebook.build(definition, Shape.WIDE, False)
        entry_ = next(e for e in book.columns if e.name == column)
        assert entry_.item == age.code
        codes = {value.code: value for value in entry_.values}
        assert codes[NEW].value == qi_values(age)[NEW]
        assert LABEL in codes[NEW].labels.values()
        assert group in codes
