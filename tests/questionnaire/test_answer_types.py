"""Answer types (questionnaire/answer_types.py), on a fixture with one item of each type."""

from __future__ import annotations

import json
import random
import re
from importlib import resources
from pathlib import Path

import pytest
from flask import Flask

from selfcheck.evaluation.export import field_column, form_fields
from selfcheck.journey.page_view import build_questions
from selfcheck.paper.operations import paper_sections
from selfcheck.questionnaire import Definition, FormKind, Item, load_definition
from selfcheck.questionnaire.answer_types import (
    ANSWER_TYPES,
    MULTIPLE,
    NUMBER,
    SCALE,
    SECONDS_AGAIN,
    SINGLE,
    TEXT,
    AnswerType,
    ExportKind,
    FreeText,
    MultipleChoice,
    Number,
    OrderedScale,
    PaperLayout,
    Problem,
    SingleChoice,
    Typed,
    answer_type,
)
from selfcheck.questionnaire.model import NO_ANSWER
from selfcheck.questionnaire.stats import SECONDS_PER_PAGE, form_stats

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "answer_types.yaml"
SOURCE_ROOT = Path(__file__).resolve().parent.parent.parent / "selfcheck"


@pytest.fixture(scope="module")
def bank() -> Definition:
    return load_definition(FIXTURE)


def one_of_each(bank: Definition) -> dict[type[AnswerType], Item]:
    found = {type(item.type): item for item in bank.items()}
    assert len(found) == len(ANSWER_TYPES) == 5
    return found


def test_registry_is_keyed_by_yaml_name_and_matches_the_schema() -> None:
    assert {name: type(kind) for name, kind in ANSWER_TYPES.items()} == {
        "single": SingleChoice,
        "scale": OrderedScale,
        "multiple": MultipleChoice,
        "number": Number,
        "text": FreeText,
    }
    schema = json.loads((resources.files("selfcheck.questionnaire") / "schema.json").read_text())
    allowed = schema["$defs"]["item"]["properties"]["type"]["enum"]
    assert sorted(allowed) == sorted(ANSWER_TYPES)
    assert answer_type("scale") is SCALE
    with pytest.raises(KeyError):
        answer_type("slider")


def test_loader_puts_the_shared_instance_in_item_type(bank: Definition) -> None:
    items = {item.code: item for item in bank.items()}
    assert items["ONE"].type is SINGLE
    assert items["LADDER"].type is SCALE
    assert items["SOME"].type is MULTIPLE
    assert items["HOW_MANY"].type is NUMBER
    assert items["WORDS"].type is TEXT
    assert [item.type.name for item in bank.items()] == [
        "single",
        "scale",
        "multiple",
        "number",
        "text",
    ]
    # The easy-read variant shares the instances: identity comparisons hold across wordings.
    easy = bank.in_wording("easy")
    assert easy is not bank
    assert [item.type for item in easy.items()] == [item.type for item in bank.items()]


def test_check_stored_values(bank: Definition) -> None:
    items = one_of_each(bank)
    single, scale = items[SingleChoice], items[OrderedScale]
    several, number, text = items[MultipleChoice], items[Number], items[FreeText]

    for item in items.values():
        assert item.type.check(item, ()) == ()  # no answer is never a value problem
    assert single.type.check(single, ("oui",)) == ()
    assert single.type.check(single, ("peut-être",)) == (Problem.NOT_AN_OPTION,)
    assert single.type.check(single, ("oui", "non")) == (Problem.SEVERAL,)
    assert scale.type.check(scale, ("9",)) == ()
    assert scale.type.check(scale, ("4",)) == (Problem.NOT_AN_OPTION,)

    assert several.type.check(several, ("a", "b")) == ()
    assert several.type.check(several, ("a", "z")) == (Problem.NOT_AN_OPTION,)
    assert Problem.REPEATED in several.type.check(several, ("a", "a"))
    assert several.type.check(several, ("a", "none")) == (Problem.EXCLUSIVE_NOT_ALONE,)
    assert several.type.check(several, ("none",)) == ()
    assert several.type.check(several, ("a", "b", "c")) == (Problem.TOO_MANY,)  # max_choices 2

    assert number.type.check(number, ("20",)) == ()
    assert number.type.check(number, ("21",)) == (Problem.OUT_OF_RANGE,)
    assert number.type.check(number, ("0",)) == (Problem.OUT_OF_RANGE,)
    for bad in ("3.5", "-1", "deux", "٣", "1" * 10):
        assert number.type.check(number, (bad,)) == (Problem.NOT_A_NUMBER,), bad
    assert number.type.check(number, ("1", "2")) == (Problem.SEVERAL,)

    assert text.type.check(text, ("douze lettre",)) == ()  # 12 characters: the limit
    assert text.type.check(text, ("treize lettre",)) == (Problem.TOO_LONG,)
    assert text.type.check(text, ("bip\x07",)) == (Problem.WRONG_CHARACTERS,)
    assert text.type.check(text, ("deux\nlignes",)) == ()


def test_widgets_for_web_paper_and_entry(bank: Definition) -> None:
    items = one_of_each(bank)
    assert {kind.__name__: (item.type.web_widget, item.type.paper_widget, item.type.entry_kind)
            for kind, item in items.items()} == {
        "SingleChoice": ("radios", "choices", "radio"),
        "OrderedScale": ("radios", "choices", "radio"),
        "MultipleChoice": ("checkboxes", "choices", "checkbox"),
        "Number": ("number", "digits", "number"),
        "FreeText": ("textarea", "lines", "text"),
    }  # fmt: skip


def test_paper_layout(bank: Definition) -> None:
    items = one_of_each(bank)
    layouts = {kind: item.type.paper_layout(item, large=False) for kind, item in items.items()}
    assert layouts == {
        SingleChoice: PaperLayout.INLINE,  # three short options
        OrderedScale: PaperLayout.ROW,
        MultipleChoice: PaperLayout.COLUMNS,  # four short options
        Number: PaperLayout.LIST,
        FreeText: PaperLayout.LIST,
    }
    assert {item.type.paper_layout(item, large=True) for item in items.values()} == {
        PaperLayout.LIST
    }
    assert [kind for kind, item in items.items() if item.type.paper_grid] == [OrderedScale]


def test_entry_keys_and_reading(bank: Definition) -> None:
    items = one_of_each(bank)
    single, several = items[SingleChoice], items[MultipleChoice]
    assert single.type.entry_keys(single) == ((1, "oui"), (2, "non"), (3, "nsp"), (0, NO_ANSWER))
    assert several.type.entry_keys(several)[-1] == (0, NO_ANSWER)
    assert items[Number].type.entry_keys(items[Number]) == ()
    assert items[FreeText].type.entry_keys(items[FreeText]) == ()

    assert SINGLE.read_entry(["", "  "]) == Typed((), final=True)
    assert SINGLE.read_entry([NO_ANSWER]) == Typed((NO_ANSWER,), final=True)
    assert MULTIPLE.read_entry(["a", NO_ANSWER]) == Typed(
        ("a", NO_ANSWER), Problem.NO_ANSWER_NOT_ALONE, final=True
    )
    assert SINGLE.read_entry(["oui", "non"]) == Typed(("oui", "non"), Problem.SEVERAL, final=True)
    assert MULTIPLE.read_entry(["a", "", "b"]) == Typed(("a", "b"))
    assert NUMBER.read_entry(["12"]) == Typed(("12",))


def test_export_columns_and_values(bank: Definition) -> None:
    items = one_of_each(bank)
    single, scale = items[SingleChoice], items[OrderedScale]
    several, number, text = items[MultipleChoice], items[Number], items[FreeText]

    assert several.type.export_options(several) == several.options
    for item in (single, scale, number, text):
        assert item.type.export_options(item) == (None,)
    assert [item.type.export_kind for item in items.values()] == [ExportKind.INT] * 4 + [
        ExportKind.STR
    ]
    assert [kind for kind, item in items.items() if item.type.free_text] == [FreeText]

    # Digit codes are kept as numbers; other codes are numbered from 1 in file order.
    assert scale.type.value_labels(scale) == (
        (1, "Pas encore"),
        (2, "Avec de l'aide"),
        (3, "Seul"),
        (9, "Pas concerné"),
    )
    assert single.type.value_labels(single) == ((1, "Oui"), (2, "Non"), (3, "Je ne sais pas"))
    for item in (several, number, text):
        assert item.type.value_labels(item) == ()

    values = {"oui": 1, "non": 2, "nsp": 3}
    assert single.type.export_value(single, ("non",), None, values) == 2
    assert single.type.export_value(single, ("gone",), None, values) is None
    first, second = several.options[:2]
    assert several.type.export_value(several, ("b",), first, {}) == 0
    assert several.type.export_value(several, ("b",), second, {}) == 1
    assert number.type.export_value(number, ("7",), None, {}) == 7
    assert number.type.export_value(number, ("x",), None, {}) is None
    assert text.type.export_value(text, ("bonjour",), None, {}) == "bonjour"


def test_exported_columns_follow_the_answer_type(app: Flask, bank: Definition) -> None:
    with app.test_request_context():
        fields = form_fields(bank, FormKind.AFTER, free_text=True)
        columns = {c.name: c for c in (field_column(f, None) for f in fields)}
        without_text = [f.suffix for f in form_fields(bank, FormKind.AFTER, free_text=False)]
    assert list(columns) == [
        "ONE",
        "LADDER",
        "SOME_1",
        "SOME_2",
        "SOME_3",
        "SOME_4",
        "HOW_MANY",
        "WORDS",
    ]
    assert without_text == list(columns)[:-1]
    assert columns["WORDS"].kind == "str"
    assert columns["SOME_4"].kind == "int" and len(columns["SOME_4"].value_labels) == 2
    assert [value for value, _label in columns["LADDER"].value_labels] == [1, 2, 3, 9]
    assert columns["HOW_MANY"].value_labels == ()


def test_typical_answering_time(bank: Definition) -> None:
    items = one_of_each(bank)
    seconds = {kind: item.type.typical_seconds(item) for kind, item in items.items()}
    assert seconds == {
        SingleChoice: 8,
        OrderedScale: 8,
        MultipleChoice: 15,
        Number: 10,
        FreeText: 0,  # optional free text: counted as skipped
    }
    # The retro form asks LADDER twice (before / today): the second time, the question and
    # its answers were just read (SECONDS_AGAIN); WORDS is in the after form only.
    stats = form_stats(bank, FormKind.RETRO)
    assert stats.answers == 5
    assert stats.seconds_typical == 2 * SECONDS_PER_PAGE + 8 + 8 + SECONDS_AGAIN + 15 + 10
    assert SECONDS_AGAIN < 8
    # Only a choice is quicker the second time.
    assert items[Number].type.typical_seconds_again(items[Number]) == 10
    assert form_stats(bank, FormKind.AFTER).seconds_typical == 2 * SECONDS_PER_PAGE + 41


def test_demo_values_are_valid_and_reproducible(bank: Definition) -> None:
    for item in bank.items():
        drawn = [item.type.demo_value(item, random.Random(seed)) for seed in range(30)]
        again = [item.type.demo_value(item, random.Random(seed)) for seed in range(30)]
        assert drawn == again, item.code
        for values in drawn:
            assert item.type.check(item, values) == (), (item.code, values)
    several = one_of_each(bank)[MultipleChoice]
    rng = random.Random(1)
    picks = [several.type.demo_value(several, rng) for _ in range(50)]
    assert all("none" not in values and 1 <= len(values) <= 3 for values in picks)


def test_renderers_ask_the_answer_type(app: Flask, bank: Definition) -> None:
    with app.test_request_context():
        page = bank.pages(FormKind.AFTER)[1]
        views = build_questions(bank, FormKind.AFTER, page, {})
        paper = paper_sections(bank, FormKind.BEFORE, large=False)
    assert [(view.item.code, view.widget) for view in views] == [
        ("SOME", "checkboxes"),
        ("HOW_MANY", "number"),
        ("WORDS", "textarea"),
    ]
    questions = [q for section in paper for p in section.pages for q in p.questions]
    assert [(q.item.code, q.widget, q.layout, q.multiple) for q in questions] == [
        ("ONE", "choices", PaperLayout.INLINE, False),
        ("LADDER", "choices", PaperLayout.ROW, False),
        ("SOME", "choices", PaperLayout.COLUMNS, True),
        ("HOW_MANY", "digits", PaperLayout.LIST, False),
    ]


def test_no_type_name_comparisons_outside_the_answer_types() -> None:
    """Behaviour hangs on the classes: no `.type == "multiple"` or string-keyed type maps."""
    compare = re.compile(r"\.type\s*(==|!=|in)\s*[\"'({]|\[\"type\"\]\s*(==|!=|in)\s")
    names = "|".join(ANSWER_TYPES)
    keyed = re.compile(rf"^\s*\"({names})\":\s*\S", re.MULTILINE)
    offenders = []
    for path in SOURCE_ROOT.rglob("*.py"):
        if path.name == "answer_types.py" or "migrations" in path.parts:
            continue
        text = path.read_text("utf-8")
        offenders += [f"{path.name}: {m.group(0)}" for m in compare.finditer(text)]
        offenders += [f"{path.name}: {m.group(0).strip()}" for m in keyed.finditer(text)]
    assert offenders == []
