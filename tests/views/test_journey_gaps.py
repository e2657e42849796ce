"""No silent gaps: task rows left blank are named once, then the person may go on; the summary
lists them as unanswered (issue 12, part 6)."""

from __future__ import annotations

import html

from selfcheck.platform.models import Structure
from selfcheck.questionnaire import Definition, FormKind
from tests.support import ANSWERS, Visitor, path_of, text_of


def first_task_page(visitor: Visitor, definition: Definition, structure: Structure) -> str:
    """Walk the 'before' form up to its first page of task rows; returns that page's code."""
    task_page = next(
        page
        for page in definition.pages(FormKind.BEFORE)
        if any(item.competence for item in page.items_for(FormKind.BEFORE))
    )
    visitor.fill(ANSWERS[FormKind.BEFORE], visitor.start(structure.slug), until=task_page.code)
    visitor.get(f"/q/{task_page.code}")
    return task_page.code


def flat(response_html: str) -> str:
    return html.unescape(response_html).replace("\u00a0", " ")


def test_blank_task_rows_are_named_once_then_the_person_goes_on(
    visitor: Visitor, definition: Definition, structure: Structure
) -> None:
    code = first_task_page(visitor, definition, structure)
    page = definition.page(FormKind.BEFORE, code)
    assert page is not None
    tasks = [item for item in page.items_for(FormKind.BEFORE) if item.competence]
    assert len(tasks) >= 3
    warned = visitor.answer({tasks[0].code: "2"})
    assert warned.status_code == 200
    text = flat(text_of(warned))
    assert "Vous n'avez pas répondu pour 2 choses : continuer quand même ?" in text
    assert tasks[1].label in text and tasks[2].label in text
    assert f'href="#q-{tasks[1].code}"' in text
    assert 'role="alert"' in text
    visitor.last = warned
    assert visitor.page_form().checked(tasks[0].code) == ["2"]  # kept
    assert visitor.page_form().hidden()["confirmed_missing"] == f"{tasks[1].code} {tasks[2].code}"
    went_on = visitor.answer({tasks[0].code: "2"})
    assert went_on.status_code == 302
    assert path_of(went_on.headers["Location"]) != f"/q/{code}"


def test_a_new_gap_after_the_warning_is_named_again(
    visitor: Visitor, definition: Definition, structure: Structure
) -> None:
    code = first_task_page(visitor, definition, structure)
    page = definition.page(FormKind.BEFORE, code)
    assert page is not None
    tasks = [item for item in page.items_for(FormKind.BEFORE) if item.competence]
    answered = {task.code: "2" for task in tasks[:-1]}
    warned = visitor.answer(answered)
    assert "pour 1 chose : continuer" in flat(text_of(warned))
    visitor.last = warned
    # The person now clears another row: that one was not warned about yet.
    again = visitor.answer({tasks[0].code: "2"})
    assert again.status_code == 200
    assert "pour 2 choses : continuer" in flat(text_of(again))


def test_a_full_page_goes_on_without_a_warning(
    visitor: Visitor, definition: Definition, structure: Structure
) -> None:
    code = first_task_page(visitor, definition, structure)
    page = definition.page(FormKind.BEFORE, code)
    assert page is not None
    tasks = [item for item in page.items_for(FormKind.BEFORE) if item.competence]
    posted = visitor.answer({task.code: "3" for task in tasks})
    assert posted.status_code == 302


def test_going_back_or_pausing_never_warns(
    visitor: Visitor, definition: Definition, structure: Structure
) -> None:
    first_task_page(visitor, definition, structure)
    assert visitor.answer({}, action="back").status_code == 302
    visitor.get(visitor.url or "/")
    assert visitor.answer({}, action="pause").status_code == 302


def test_easy_wording_warns_in_easy_words(
    visitor: Visitor, definition: Definition, structure: Structure
) -> None:
    task_page = next(
        page
        for page in definition.pages(FormKind.BEFORE)
        if any(item.competence for item in page.items_for(FormKind.BEFORE))
    )
    visitor.get(f"/s/{structure.slug}?wording=easy")
    chosen = next(f for f in visitor.forms() if f.hidden().get("form") == "before")
    assert chosen.action is not None
    started = visitor.post(chosen.action, chosen.hidden())
    visitor.fill(ANSWERS[FormKind.BEFORE], started, until=task_page.code)
    visitor.get(f"/q/{task_page.code}")
    warned = visitor.answer({})
    assert warned.status_code == 200
    text = flat(text_of(warned))
    assert "Vous n'avez pas répondu pour 3 choses. Vous voulez continuer ?" in text
    easy = definition.in_wording("easy")
    assert easy.item(task_page.items[0].code).label in text


def test_the_step_count_never_changes_halfway(
    visitor: Visitor, definition: Definition, structure: Structure
) -> None:
    """« Étape n sur N »: the same N on every page, whatever is answered (issue 12, copy)."""
    import re

    visitor.start(structure.slug)
    seen: list[tuple[int, int]] = []
    for page in definition.pages(FormKind.BEFORE):
        shown = visitor.get(f"/q/{page.code}")
        if shown.status_code != 200 or "/q/" not in (visitor.url or ""):
            continue
        found = re.search(r"Étape (\d+) sur (\d+)", flat(text_of(shown)))
        if found:
            seen.append((int(found.group(1)), int(found.group(2))))
    assert seen
    assert len({total for _, total in seen}) == 1, seen
    steps = [step for step, _ in seen]
    assert steps == sorted(steps) and steps[-1] == seen[0][1]


def test_an_error_never_doubles_its_punctuation(
    visitor: Visitor, definition: Definition, structure: Structure
) -> None:
    visitor.follow(visitor.start(structure.slug))
    posted = visitor.answer({})
    assert posted.status_code == 422
    text = flat(text_of(posted))
    assert "? :" not in text and ": :" not in text and "… :" not in text
