"""The compact entry screen: runs of ladder questions marked as grids, short headings."""

from __future__ import annotations

from selfcheck.entry.screen import build_screen
from selfcheck.questionnaire.model import Definition, FormKind


def test_runs_of_ladder_questions_are_grids_with_one_heading_row(definition: Definition) -> None:
    screen = build_screen(definition, FormKind.BEFORE, {})
    by_code = {q.item.code: q for q in screen.questions}
    tasks = [item.code for item in definition.task_items() if item.in_form(FormKind.BEFORE)]
    assert tasks and all(by_code[code].grid for code in tasks)
    starts = [q for q in screen.questions if q.grid_start]
    assert starts and all(q.grid for q in starts)
    # a heading row opens each run: the question before a start is not in the same run
    for index, q in enumerate(screen.questions):
        if q.grid and not q.grid_start:
            previous = screen.questions[index - 1]
            assert previous.grid and previous.item.options == q.item.options
    # conditional scale questions (how often, per device) and lone scales are single rows
    assert not any(q.grid for q in screen.questions if q.condition is not None)
    assert not any(q.grid for q in screen.questions if not q.item.type.paper_grid)


def test_entry_options_show_the_short_heading_of_the_item_bank(definition: Definition) -> None:
    screen = build_screen(definition, FormKind.BEFORE, {})
    task = next(q for q in screen.questions if q.grid)
    options = task.variables[0].options
    for entry_option, option in zip(options, task.item.options, strict=False):
        assert entry_option.label == option.label
        assert entry_option.heading == (option.label_short or option.label)
    assert any(o.heading != o.label for o in options[:-1])  # some are shorter
    assert options[-1].key == 0  # "Sans réponse" stays last, key 0
