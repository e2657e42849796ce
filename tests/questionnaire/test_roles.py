"""Roles, tags, quasi-identifier ladders and disclosure steps: declared in the definition,
read by the engine, refused with a message naming the place when they do not hold.

Runs on the small fixture definition (tests/fixtures/small_definition.yaml), whose item and
option codes differ from the shipped questionnaire's.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from selfcheck.evaluation import anonymise, typology
from selfcheck.evaluation.anonymity import MASKED
from selfcheck.questionnaire import DefinitionError, load_definition, parse_definition
from selfcheck.questionnaire.model import PRE_SUFFIX, Definition, Geography, Role, Tag

SMALL = Path(__file__).resolve().parents[1] / "fixtures" / "small_definition.yaml"


@pytest.fixture(scope="module")
def small() -> Definition:
    return load_definition(SMALL)


def raw() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SMALL.read_text("utf-8"))
    return copy.deepcopy(loaded)


def items_of(data: dict[str, Any], code: str) -> dict[str, Any]:
    """The item itself (mutable), not a copy."""
    for section in data["sections"]:
        for page in section["pages"]:
            for found in page["items"]:
                if found["code"] == code:
                    return found  # type: ignore[no-any-return]
    raise KeyError(code)


def test_roles_tags_and_ladders_are_read(small: Definition) -> None:
    age = small.item_with_role(Role.AGE)
    assert age is not None and age.code == "YEARS"
    assert small.item_with_role(Role.DIPLOMA) is None
    assert [i.code for i in small.quasi_identifiers()] == ["YEARS", "JOB"]
    assert age.tagged(Tag.SENIOR) == ("y60", "y80")
    comfort = small.item_with_role(Role.COMFORT)
    assert comfort is not None and comfort.tagged(Tag.EASE_LOW) == ("1",)
    qi = age.quasi_identifier
    assert qi is not None and qi.column == "years"
    assert [step.name for step in qi.ladder] == ["exact", "wide", "hidden"]
    assert qi.step("wide").release("y80") == "old"
    assert qi.step("exact").release("y80") == "y80"
    assert qi.step("hidden").release("y80") is None
    assert [g.code for g in qi.groups()] == ["young", "old"]
    steps = small.disclosure.steps
    assert (steps[0].geography, steps[0].personal) == (Geography.STRUCTURE, "exact")
    assert small.disclosure.columns == ("years", "job")


def test_the_typology_follows_the_tags(small: Definition) -> None:
    def profile(**facts: str) -> typology.Profile:
        return typology.classify(facts, small)

    assert (
        profile(age="y80", comfort_before="1", basics_before=typology.HELP)
        is typology.Profile.BEGINNER_SENIORS
    )
    assert profile(age="y60", comfort_before="1") is typology.Profile.INITIATED_SENIORS
    assert profile(age="y60", comfort_before="2") is typology.Profile.IMPROVEMENT_PATH
    assert profile(age="y60", comfort_before="3") is typology.Profile.IMPROVEMENT_PATH
    assert profile(age="y60", status="works") is typology.Profile.IMPROVEMENT_PATH
    assert profile(age="y20", status="seeks") is typology.Profile.INTEGRATION_PATH
    assert profile(age="y40", prescribed="agency") is typology.Profile.INTEGRATION_PATH
    assert profile(age="y40", prescribed="nobody") is typology.Profile.IMPROVEMENT_PATH
    assert profile(status="seeks") is typology.Profile.NOT_CLASSIFIED


def test_the_typology_reads_the_basic_tasks_by_role() -> None:
    """Items with role basic_task (several may share it) give the `basics_before` fact."""
    data = raw()
    items_of(data, "TASK_A")["role"] = "basic_task"
    definition = parse_definition(yaml.safe_dump(data, allow_unicode=True), source="small.yaml")
    task = definition.items_with_role(Role.BASIC_TASK)
    assert [item.code for item in task] == ["TASK_A"]
    ranks = {option.rank: option.code for option in task[0].options if option.rank is not None}
    age = ("before", "YEARS", "y80")

    def basics(*answers: tuple[str, str, str]) -> str | None:
        facts = typology.person_facts([age, *answers], definition)
        assert facts is not None
        return facts.get("basics_before")

    assert basics(("before", "TASK_A", ranks[1])) == typology.HELP
    assert basics(("retro", "TASK_A" + PRE_SUFFIX, ranks[1])) == typology.HELP
    assert basics(("before", "TASK_A", ranks[3])) == typology.ALONE
    assert basics(("after", "TASK_A", ranks[1])) is None  # after: not "before"
    assert basics() is None
    # Only an after form: not counted at all.
    assert typology.person_facts([("after", "YEARS", "y80")], definition) is None


def test_the_anonymiser_climbs_the_declared_ladders(small: Definition) -> None:
    columns = {q.column: q for q in anonymise.engine_columns(small, {"a": "44", "b": "59"})}
    years = columns["years"]
    # exact is level 0, wide is the one rung with groups, hidden is the engine's own mask.
    assert list(years.names) == ["wide"]
    assert years.apply(1, "y80") == "old" and years.apply(2, "y80") is MASKED
    assert columns[anonymise.PLACE].apply(1, "b") == ("department", "59")
    assert {"years", "job", anonymise.FORMS_PRESENT} <= set(columns)


Mutation = Callable[[dict[str, Any]], None]


def _duplicate_role(data: dict[str, Any]) -> None:
    items_of(data, "JOB")["role"] = "age"


def _tag_on_wrong_role(data: dict[str, Any]) -> None:
    items_of(data, "JOB")["options"][2]["tags"] = ["senior"]


def _diploma_tag_on_wrong_role(data: dict[str, Any]) -> None:
    items_of(data, "JOB")["options"][0]["tags"] = ["below_baccalaureate"]


def _one_off_tag_on_wrong_role(data: dict[str, Any]) -> None:
    items_of(data, "JOB")["options"][1]["tags"] = ["one_off"]


def _scale_tag_on_wrong_role(data: dict[str, Any]) -> None:
    items_of(data, "EASE")["role"] = "progress"
    del items_of(data, "FELT")["role"]


def _option_in_no_group(data: dict[str, Any]) -> None:
    items_of(data, "YEARS")["quasi_identifier"]["ladder"][1]["groups"][1]["options"] = ["y60"]


def _unknown_option_in_group(data: dict[str, Any]) -> None:
    groups = items_of(data, "YEARS")["quasi_identifier"]["ladder"][1]["groups"]
    groups[1]["options"].append("y99")


def _option_in_two_groups(data: dict[str, Any]) -> None:
    groups = items_of(data, "YEARS")["quasi_identifier"]["ladder"][1]["groups"]
    groups[0]["options"].append("y60")


def _first_step_generalises(data: dict[str, Any]) -> None:
    ladder = items_of(data, "YEARS")["quasi_identifier"]["ladder"]
    ladder[0]["masked"] = True


def _step_not_in_ladder(data: dict[str, Any]) -> None:
    data["disclosure"]["steps"][1] = ["structure", "broad"]


def _geography_not_declared(data: dict[str, Any]) -> None:
    data["disclosure"]["geography"] = ["structure", "department"]


def _columns_do_not_match(data: dict[str, Any]) -> None:
    data["disclosure"]["columns"] = ["years"]


def _no_disclosure(data: dict[str, Any]) -> None:
    del data["disclosure"]


def _unknown_role(data: dict[str, Any]) -> None:
    items_of(data, "JOB")["role"] = "shoe_size"


def _unknown_tag(data: dict[str, Any]) -> None:
    items_of(data, "JOB")["options"][0]["tags"] = ["rich"]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_duplicate_role, "item JOB: role 'age' is already the role of item YEARS"),
        (
            _tag_on_wrong_role,
            "item JOB: option 'rests' has tag 'senior', which needs an item with role 'age'",
        ),
        (
            _diploma_tag_on_wrong_role,
            "has tag 'below_baccalaureate', which needs an item with role 'diploma'",
        ),
        (_one_off_tag_on_wrong_role, "has tag 'one_off', which needs an item with role 'modality'"),
        (
            _scale_tag_on_wrong_role,
            "item EASE: option '1' of scale ease has tag 'ease_low', "
            "which needs an item with role 'comfort'",
        ),
        (
            _option_in_no_group,
            "item YEARS: quasi_identifier.ladder.1 (wide): option 'y80' is in no group",
        ),
        (
            _unknown_option_in_group,
            "item YEARS: quasi_identifier.ladder.1 (wide): 'y99' is not an option of the item",
        ),
        (
            _option_in_two_groups,
            "item YEARS: quasi_identifier.ladder.1 (wide): option 'y60' is in more than one group",
        ),
        (
            _first_step_generalises,
            "item YEARS: quasi_identifier.ladder.0: the first step releases the answer as given",
        ),
        (
            _step_not_in_ladder,
            "disclosure › step 2 (disclosure.steps.1): 'broad' is not a step "
            "of the ladder of item YEARS",
        ),
        (
            _geography_not_declared,
            "disclosure › step 3 (disclosure.steps.2): geography "
            "'national' is not in disclosure.geography",
        ),
        (
            _columns_do_not_match,
            "disclosure (disclosure.columns): must list the column of "
            "every item with a quasi_identifier",
        ),
        (_no_disclosure, "a `disclosure:` section"),
        (_unknown_role, "item JOB (sections.0.pages.0.items.1.role): 'shoe_size' is not one of"),
        (
            _unknown_tag,
            "option works (sections.0.pages.0.items.1.options.0.tags.0): 'rich' is not one of",
        ),
    ],
)
def test_broken_roles_are_refused_with_the_place(mutate: Mutation, expected: str) -> None:
    data = raw()
    mutate(data)
    with pytest.raises(DefinitionError) as caught:
        parse_definition(yaml.safe_dump(data, allow_unicode=True), source="small.yaml")
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems
    assert str(caught.value).startswith("small.yaml: ")


def test_the_shipped_definition_declares_every_role_the_engine_reads() -> None:
    shipped = load_definition()
    for role in Role:
        assert shipped.items_with_role(role), role
    assert [
        item.quasi_identifier.column
        for item in shipped.quasi_identifiers()
        if item.quasi_identifier
    ] == list(shipped.disclosure.columns)


def test_the_summary_reads_roles(small: Definition) -> None:
    from selfcheck.journey.summary import SummaryKind, _summarise

    before = {"EASE": ("1",), "TASK_A": ("1",)}
    now = {"EASE": ("3",), "FELT": ("2",), "TASK_A": ("3",)}
    result = _summarise(small, SummaryKind.PRE_POST, before, now)
    assert result.comfort_before is not None and result.comfort_before.code == "1"
    assert result.comfort_now is not None and result.comfort_now.code == "3"
    assert result.progress is not None and result.progress.code == "2"
    assert [task.item.code for task in result.tasks] == ["TASK_A"]
    assert result.changes == ()  # no item with the changes role here
