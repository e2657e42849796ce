"""Broken definitions are refused with a message naming the file, the item and the problem."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from selfcheck.questionnaire import DefinitionError, FormKind, load_definition, parse_definition

SOURCE = "broken-definition.yaml"

MINIMAL = """
id: tiny
version: 0.1.0
language: fr
titles: {before: Avant, after: Après, retro: Rétro}
scales:
  yes_no:
    options:
      - {code: oui, label: Oui}
      - {code: non, label: Non}
  autonomy:
    options:
      - {code: "1", rank: 1, label: Pas encore}
      - {code: "3", rank: 3, label: Seul}
      - {code: "9", label: Pas concerné}
  competence:
    options:
      - {code: operational, label: Utiliser mon appareil}
  coop_topic:
    options:
      - {code: email, label: Les e-mails}
sections:
  - code: main
    title: Principal
    pages:
      - code: p_one
        title: Page un
        items:
          - {code: HAS_PHONE, type: single, scale: yes_no, label: "Un téléphone ?",
             forms: [before, after, retro], required: true}
          - {code: NAME_LIKE, type: text, label: "Un mot ?", forms: [after], max_length: 20}
      - code: p_two
        title: Page deux
        items:
          - {code: PHONE_TASK, type: scale, scale: autonomy, label: Envoyer un e-mail,
             forms: [before, after, retro], competence: operational, coop_topic: email,
             ask_before_in_retro: true, show_if: {item: HAS_PHONE, equals: oui}}
          - {code: COUNT, type: number, label: "Combien ?", min: 1, max: 10, forms: [after]}
          - code: WHICH
            type: multiple
            label: "Lesquels ?"
            forms: [after, retro]
            options:
              - {code: a, label: A}
              - {code: b, label: B}
              - {code: rien, label: Rien, exclusive: true}
"""


def base() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(MINIMAL)
    return loaded


def item(raw: dict[str, Any], code: str) -> dict[str, Any]:
    for section in raw["sections"]:
        for page in section["pages"]:
            for candidate in page["items"]:
                if candidate["code"] == code:
                    found: dict[str, Any] = candidate
                    return found
    raise KeyError(code)


def page_items(raw: dict[str, Any], page_index: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = raw["sections"][0]["pages"][page_index]["items"]
    return items


def refused(raw: dict[str, Any] | str) -> DefinitionError:
    text = raw if isinstance(raw, str) else yaml.safe_dump(raw, allow_unicode=True)
    with pytest.raises(DefinitionError) as caught:
        parse_definition(text, source=SOURCE)
    error = caught.value
    assert error.source == SOURCE
    assert str(error).startswith(f"{SOURCE}: the questionnaire definition is invalid")
    assert error.problems
    for problem in error.problems:
        assert f"  - {problem}" in str(error)
    return error


def test_the_minimal_definition_is_valid() -> None:
    definition = parse_definition(MINIMAL, source=SOURCE)
    assert definition.source == SOURCE
    assert [i.code for i in definition.items(FormKind.AFTER)] == [
        "HAS_PHONE",
        "NAME_LIKE",
        "PHONE_TASK",
        "COUNT",
        "WHICH",
    ]
    assert [v.code for v in definition.variables(FormKind.RETRO)] == [
        "HAS_PHONE",
        "PHONE_TASK_PRE",
        "PHONE_TASK",
        "WHICH",
    ]
    assert definition.item("PHONE_TASK").options == definition.scales["autonomy"].options


Mutation = Callable[[dict[str, Any]], None]


def _duplicate_code(raw: dict[str, Any]) -> None:
    item(raw, "COUNT")["code"] = "NAME_LIKE"


def _unknown_scale(raw: dict[str, Any]) -> None:
    item(raw, "HAS_PHONE")["scale"] = "agreement"


def _show_if_later(raw: dict[str, Any]) -> None:
    item(raw, "HAS_PHONE")["show_if"] = {"item": "PHONE_TASK", "equals": "1"}


def _show_if_same_page(raw: dict[str, Any]) -> None:
    item(raw, "WHICH")["show_if"] = {"item": "PHONE_TASK", "equals": "3"}


def _show_if_not_an_option(raw: dict[str, Any]) -> None:
    item(raw, "PHONE_TASK")["show_if"] = {"item": "HAS_PHONE", "equals": "peut_etre"}


def _show_if_any_of_not_an_option(raw: dict[str, Any]) -> None:
    item(raw, "PHONE_TASK")["show_if"] = {"item": "HAS_PHONE", "any_of": ["oui", "jamais"]}


def _show_if_absent_from_form(raw: dict[str, Any]) -> None:
    item(raw, "WHICH")["show_if"] = {"item": "NAME_LIKE", "equals": "x"}


def _unknown_competence(raw: dict[str, Any]) -> None:
    item(raw, "PHONE_TASK")["competence"] = "magic"


def _unknown_topic(raw: dict[str, Any]) -> None:
    item(raw, "PHONE_TASK")["coop_topic"] = "astrology"


def _competence_without_topic(raw: dict[str, Any]) -> None:
    del item(raw, "PHONE_TASK")["coop_topic"]


def _missing_label(raw: dict[str, Any]) -> None:
    del item(raw, "COUNT")["label"]


def _number_min_above_max(raw: dict[str, Any]) -> None:
    item(raw, "COUNT").update(min=10, max=1)


def _pre_suffix(raw: dict[str, Any]) -> None:
    item(raw, "COUNT")["code"] = "COUNT_PRE"


def _duplicate_option(raw: dict[str, Any]) -> None:
    item(raw, "WHICH")["options"].append({"code": "a", "label": "A encore"})


def _duplicate_scale_option(raw: dict[str, Any]) -> None:
    raw["scales"]["yes_no"]["options"].append({"code": "oui", "label": "Oui encore"})


def _duplicate_page(raw: dict[str, Any]) -> None:
    raw["sections"][0]["pages"][1]["code"] = "p_one"


def _ask_before_on_multiple(raw: dict[str, Any]) -> None:
    item(raw, "WHICH")["ask_before_in_retro"] = True


def _ask_before_outside_retro(raw: dict[str, Any]) -> None:
    item(raw, "PHONE_TASK")["forms"] = ["before", "after"]


def _exclusive_on_single(raw: dict[str, Any]) -> None:
    target = item(raw, "WHICH")
    target["type"] = "single"


def _max_choices_on_single(raw: dict[str, Any]) -> None:
    item(raw, "HAS_PHONE")["max_choices"] = 2


def _lower_case_code(raw: dict[str, Any]) -> None:
    item(raw, "COUNT")["code"] = "count"


def _unknown_form(raw: dict[str, Any]) -> None:
    item(raw, "COUNT")["forms"] = ["after", "later"]


def _scale_with_options(raw: dict[str, Any]) -> None:
    item(raw, "HAS_PHONE")["options"] = [{"code": "x", "label": "X"}]
    item(raw, "HAS_PHONE")["type"] = "scale"


def _number_without_bounds(raw: dict[str, Any]) -> None:
    del item(raw, "COUNT")["max"]


def _unknown_key(raw: dict[str, Any]) -> None:
    item(raw, "COUNT")["colour"] = "blue"


def _missing_competence_scale(raw: dict[str, Any]) -> None:
    del raw["scales"]["competence"]


def _bad_version(raw: dict[str, Any]) -> None:
    raw["version"] = "1.0"


CASES: list[tuple[str, Mutation, list[str]]] = [
    ("duplicate item code", _duplicate_code, ["item NAME_LIKE", "must be unique"]),
    ("unknown scale", _unknown_scale, ["item HAS_PHONE", "unknown scale 'agreement'"]),
    (
        "show_if to a later item",
        _show_if_later,
        ["item HAS_PHONE", "show_if refers to 'PHONE_TASK', which is not an earlier item"],
    ),
    (
        "show_if on the same page",
        _show_if_same_page,
        ["item WHICH", "show_if must refer to an item on an earlier page"],
    ),
    (
        "show_if value not an option",
        _show_if_not_an_option,
        ["item PHONE_TASK", "show_if value 'peut_etre' is not an option of HAS_PHONE"],
    ),
    (
        "show_if any_of value not an option",
        _show_if_any_of_not_an_option,
        ["item PHONE_TASK", "'jamais' is not an option of HAS_PHONE"],
    ),
    (
        "show_if to an item missing from the form",
        _show_if_absent_from_form,
        ["item WHICH", "absent from form(s) retro"],
    ),
    ("unknown competence", _unknown_competence, ["item PHONE_TASK", "competence type 'magic'"]),
    ("unknown coop topic", _unknown_topic, ["item PHONE_TASK", "unknown Coop topic 'astrology'"]),
    (
        "competence without topic",
        _competence_without_topic,
        ["item PHONE_TASK", "needs both a competence and a coop_topic"],
    ),
    (
        "missing required key",
        _missing_label,
        ["item COUNT", "sections.0.pages.1.items.1", "'label' is a required property"],
    ),
    (
        "number min above max",
        _number_min_above_max,
        ["item COUNT", "min (10) is greater than max (1)"],
    ),
    ("code ending in _PRE", _pre_suffix, ["item COUNT_PRE", "must not end in _PRE"]),
    ("duplicate option", _duplicate_option, ["item WHICH", "option code 'a' is used twice"]),
    (
        "duplicate scale option",
        _duplicate_scale_option,
        ["scale yes_no", "option code 'oui' is used twice"],
    ),
    ("duplicate page", _duplicate_page, ["page p_one", "used twice"]),
    (
        "ask_before_in_retro on a multiple choice",
        _ask_before_on_multiple,
        ["item WHICH", "ask_before_in_retro needs a single-choice or scale item"],
    ),
    (
        "ask_before_in_retro outside the retro form",
        _ask_before_outside_retro,
        ["item PHONE_TASK", "ask_before_in_retro"],
    ),
    (
        "exclusive option on a single choice",
        _exclusive_on_single,
        ["item WHICH", "exclusive options only apply to multiple-choice items"],
    ),
    (
        "max_choices on a single choice",
        _max_choices_on_single,
        ["item HAS_PHONE", "max_choices only applies to multiple-choice items"],
    ),
    ("lower-case item code", _lower_case_code, ["'count' does not match"]),
    ("unknown form", _unknown_form, ["item COUNT", "'later' is not one of"]),
    ("scale item with its own options", _scale_with_options, ["item HAS_PHONE"]),
    ("number without max", _number_without_bounds, ["item COUNT", "'max' is a required property"]),
    ("unknown key", _unknown_key, ["item COUNT", "'colour' was unexpected"]),
    (
        "missing competence scale",
        _missing_competence_scale,
        ["'competence' is a required property"],
    ),
    ("bad version", _bad_version, ["top level (version)", "does not match"]),
]


@pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_broken_definition_is_refused_with_a_precise_message(
    mutate: Mutation, expected: list[str]
) -> None:
    raw = copy.deepcopy(base())
    mutate(raw)
    error = refused(raw)
    matching = [p for p in error.problems if all(part in p for part in expected)]
    assert matching, f"no problem mentions {expected}: {error.problems}"


def test_bad_yaml_is_refused() -> None:
    error = refused("id: tiny\nversion: [1.0\n")
    assert len(error.problems) == 1
    assert error.problems[0].startswith("not valid YAML")
    assert "line" in error.problems[0]


@pytest.mark.parametrize("text", ["", "- just\n- a list\n", "42\n"])
def test_a_top_level_that_is_not_a_mapping_is_refused(text: str) -> None:
    error = refused(text)
    assert error.problems == ["the top level must be a mapping (id, version, ...)"]


def test_every_problem_is_reported_at_once() -> None:
    raw = base()
    _unknown_competence(raw)
    _number_min_above_max(raw)
    _pre_suffix(raw)
    error = refused(raw)
    assert len(error.problems) == 3
    assert any("competence type 'magic'" in p for p in error.problems)
    assert any("min (10)" in p for p in error.problems)
    assert any("_PRE" in p for p in error.problems)


def test_a_file_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "questionnaire.yaml"
    raw = base()
    _unknown_competence(raw)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(DefinitionError) as caught:
        load_definition(path)
    assert caught.value.source == str(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert "item PHONE_TASK" in str(caught.value)


def test_a_missing_file_is_a_definition_error(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(DefinitionError) as caught:
        load_definition(path)
    assert str(path) in str(caught.value)
    assert "cannot read the file" in caught.value.problems[0]


def test_a_valid_file_loads_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    definition = load_definition(str(path))
    assert definition.id == "tiny"
    assert definition.source == str(path)


MOMENTS = {
    "pre": {"title": "Avant", "intro": "Pensez à avant."},
    "now": {"title": "Aujourd'hui", "intro": "Et aujourd'hui ?"},
}


def with_layout(*screens: dict[str, Any]) -> dict[str, Any]:
    raw = copy.deepcopy(base())
    raw["retro_layout"] = {"moments": MOMENTS, "screens": list(screens)}
    return raw


@pytest.mark.parametrize(
    ("screens", "expected"),
    [
        (({"pages": ["p_one"]}, {"pages": ["p_two", "p_nine"]}), "unknown page 'p_nine'"),
        (({"pages": ["p_one"]},), "page 'p_two' has items of the retro form but is on no screen"),
        (
            ({"pages": ["p_one"]}, {"pages": ["p_two"], "by_moment": True}),
            "item WHICH is not asked before and today",
        ),
        (
            ({"pages": ["p_two"]}, {"pages": ["p_one"]}),
            "item PHONE_TASK depends on HAS_PHONE, which must be on an earlier screen",
        ),
        (({"pages": ["p_one"]}, {"pages": ["p_one", "p_two"]}), "already on screen 1"),
        (
            ({"pages": ["p_one"], "code": "p_x"}, {"pages": ["p_two"], "code": "p_x"}),
            "screen code 'p_x' is used twice",
        ),
    ],
    ids=["unknown page", "page left out", "by moment unpaired", "condition", "twice", "code"],
)
def test_a_broken_retro_layout_is_refused(
    screens: tuple[dict[str, Any], ...], expected: str
) -> None:
    error = refused(with_layout(*screens))
    assert any(expected in p and "retro_layout" in p for p in error.problems), error.problems


def test_a_retro_layout_splits_screens_by_moment() -> None:
    raw = with_layout({"pages": ["p_one"]}, {"pages": ["p_two"], "by_moment": True})
    item(raw, "WHICH")["forms"] = ["after"]
    definition = parse_definition(yaml.safe_dump(raw, allow_unicode=True), source=SOURCE)
    screens = definition.screens(FormKind.RETRO)
    assert [(s.code, [v.code for v in s.variables_for(FormKind.RETRO)]) for s in screens] == [
        ("p_one", ["HAS_PHONE"]),
        ("p_two_before", ["PHONE_TASK_PRE"]),
        ("p_two_today", ["PHONE_TASK"]),
    ]
    assert [s.moment_title for s in screens] == [None, "Avant", "Aujourd'hui"]
    # Paper keeps the pages: before and today together.
    assert [p.code for p in definition.pages(FormKind.RETRO)] == ["p_one", "p_two"]
