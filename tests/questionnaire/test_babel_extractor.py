"""`pybabel extract` finds every text of the definition, with its line and where it is used."""

from __future__ import annotations

import io

from selfcheck.questionnaire import Definition
from selfcheck.questionnaire.babel_extractor import extract_definition
from selfcheck.questionnaire.loader import DEFAULT_DEFINITION


def extract(text: str | bytes) -> list[tuple[int, str | None, str, list[str]]]:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return list(extract_definition(io.BytesIO(data), [], [], {}))


def test_every_item_label_hint_and_option_of_the_definition_is_extracted(
    definition: Definition,
) -> None:
    messages = {
        message for _line, _func, message, _comments in extract(DEFAULT_DEFINITION.read_bytes())
    }
    for item in definition.items():
        assert item.label in messages, item.code
        if item.hint:
            assert item.hint in messages, item.code
        for option in item.options:
            assert option.label in messages, (item.code, option.code)
    for section in definition.sections:
        assert section.title in messages
        for page in section.pages:
            assert page.title in messages
            if page.intro:
                assert page.intro in messages
    assert set(definition.titles.values()) <= messages


def test_line_numbers_point_at_the_text_in_the_file() -> None:
    lines = DEFAULT_DEFINITION.read_text(encoding="utf-8").splitlines()
    extracted = extract(DEFAULT_DEFINITION.read_bytes())
    assert extracted
    for line, function, message, _comments in extracted:
        assert function is None
        source = lines[line - 1]
        # Long labels are folded by YAML; the first words are always on the reported line.
        assert message.split()[0].strip('"') in source, (line, message)


def test_messages_carry_a_translator_comment_naming_the_item_and_option() -> None:
    by_message = {
        message: comments for _l, _f, message, comments in extract(DEFAULT_DEFINITION.read_bytes())
    }
    t01 = by_message["Allumer et éteindre mon appareil"]
    assert t01 == ["questionnaire: sections skills p_tasks_device T01"]
    option = by_message["Une tablette"]
    assert option[0].startswith("questionnaire: ")
    assert option[0].endswith("DEVICES tablette")
    assert by_message["Je ne suis pas concerné·e"] == ["questionnaire: scales autonomy options 9"]


def test_codes_and_technical_values_are_not_extracted() -> None:
    messages = [message for _l, _f, message, _c in extract(DEFAULT_DEFINITION.read_bytes())]
    for technical in ("T01", "selfcheck-core", "1.0.1", "before", "operational", "scale"):
        assert technical not in messages


def test_small_document_with_exact_lines() -> None:
    text = (
        "titles:\n"
        "  before: Avant\n"
        "sections:\n"
        "  - code: s\n"
        "    title: Section\n"
        "    pages:\n"
        "      - code: p\n"
        "        title: Page\n"
        "        items:\n"
        "          - code: Q1\n"
        "            label: Une question\n"
        "            hint: Une aide\n"
        "            options:\n"
        "              - {code: a, label: Réponse A}\n"
    )
    assert extract(text) == [
        (2, None, "Avant", ["questionnaire: titles"]),
        (5, None, "Section", ["questionnaire: sections s"]),
        (8, None, "Page", ["questionnaire: sections s p"]),
        (11, None, "Une question", ["questionnaire: sections s p Q1"]),
        (12, None, "Une aide", ["questionnaire: sections s p Q1"]),
        (14, None, "Réponse A", ["questionnaire: sections s p Q1 a"]),
    ]


def test_empty_file_yields_nothing() -> None:
    assert extract("") == []


def test_the_extractor_is_registered_for_babel() -> None:
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group="babel.extractors")}
    assert names["selfcheck_questionnaire"] == (
        "selfcheck.questionnaire.babel_extractor:extract_definition"
    )


def test_easy_read_wordings_are_extracted_too(definition: Definition) -> None:
    messages = {
        message for _line, _func, message, _comments in extract(DEFAULT_DEFINITION.read_bytes())
    }
    easy = {text.easy for text in definition.texts if text.easy}
    assert easy <= messages
    assert set(definition.in_wording("easy").titles.values()) <= messages
