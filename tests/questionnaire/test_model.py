"""The typed view of the definition: conditions, moments, variables, lookups."""

from __future__ import annotations

import dataclasses

import pytest

from selfcheck.questionnaire import Definition, FormKind, Moment
from selfcheck.questionnaire.model import Condition, Option, Scale, variable_code


def test_condition_equals() -> None:
    condition = Condition(item="NEW_THINGS", equals="oui")
    assert condition.accepted() == ("oui",)
    assert condition.is_met({"NEW_THINGS": ("oui",)})
    assert not condition.is_met({"NEW_THINGS": ("non",)})
    assert not condition.is_met({})


def test_condition_any_of_matches_one_of_several_answers() -> None:
    condition = Condition(item="PROGRESS", any_of=("3", "4"))
    assert condition.accepted() == ("3", "4")
    assert condition.is_met({"PROGRESS": ("4",)})
    assert not condition.is_met({"PROGRESS": ("2",)})
    multiple = Condition(item="DEVICES", equals="tablette")
    assert multiple.is_met({"DEVICES": ("smartphone", "tablette")})


def test_variable_codes() -> None:
    assert variable_code("T01", Moment.PRE) == "T01_PRE"
    assert variable_code("T01", Moment.NOW) == "T01"


def test_moments_per_form(definition: Definition) -> None:
    t01 = definition.item("T01")
    assert t01.moments(FormKind.RETRO) == (Moment.PRE, Moment.NOW)
    assert t01.moments(FormKind.BEFORE) == (Moment.NOW,)
    assert t01.moments(FormKind.AFTER) == (Moment.NOW,)
    assert definition.item("AGE").moments(FormKind.RETRO) == (Moment.NOW,)


def test_item_lookups(definition: Definition) -> None:
    assert definition.item("DEVICES").option("aucun") is not None
    assert definition.item("DEVICES").option("fax") is None
    assert definition.item("COMFORT").option_codes == ("1", "2", "3", "4")
    with pytest.raises(KeyError):
        definition.item("NOPE")


def test_page_lookup_respects_the_form(definition: Definition) -> None:
    assert definition.page(FormKind.BEFORE, "p_age") is not None
    assert definition.page(FormKind.AFTER, "p_age") is None  # not asked again
    assert definition.page(FormKind.AFTER, "p_modality") is not None
    assert definition.page(FormKind.BEFORE, "nope") is None
    help_page = definition.page(FormKind.AFTER, "p_help")
    assert help_page is not None
    assert [i.code for i in help_page.items_for(FormKind.AFTER)] == ["ASSIST"]


def test_pages_keep_the_definition_order(definition: Definition) -> None:
    pages = [page.code for page in definition.pages(FormKind.BEFORE)]
    assert pages[0] == "p_help"
    assert pages.index("p_devices") + 1 == pages.index("p_device_use")
    assert pages[-1] == "p_tasks_safety"
    assert definition.pages(FormKind.AFTER)[-1].code == "p_comment"


def test_scale_option_lookup() -> None:
    scale = Scale("s", (Option("1", "Un", rank=1), Option("9", "Neuf")))
    assert scale.option("9") == Option("9", "Neuf")
    assert scale.option("2") is None


def test_definition_objects_are_immutable(definition: Definition) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        definition.item("T01").label = "autre"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        definition.version = "9.9.9"  # type: ignore[misc]
