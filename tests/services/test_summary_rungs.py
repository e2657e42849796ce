"""Progress counted in rungs of the autonomy ladder, said the same way on the page and the PDF,
in the standard and the easy-read wording (issue 12, parts 1 and 2)."""

from __future__ import annotations

import re
from html import unescape

import pytest
from flask import Flask
from markupsafe import Markup
from sqlalchemy.orm import Session

from selfcheck.journey import operations as journey
from selfcheck.journey import summary
from selfcheck.journey.summary import Gender, Summary, build_summary
from selfcheck.journey.views import SESSION_PERSON, SESSION_WORDING
from selfcheck.paper import operations as paper
from selfcheck.platform.models import Beneficiary, Structure
from selfcheck.questionnaire.model import Definition, FormKind, Role, Tag, Wording
from tests.pdf_support import text
from tests.support import AFTER, BEFORE, TASKS, fill_response, submitted


def tasks_at(base: dict[str, tuple[str, ...]], rank: str) -> dict[str, tuple[str, ...]]:
    changed = dict(base)
    changed.update(dict.fromkeys(TASKS, (rank,)))
    return changed


def pair(
    session: Session,
    definition: Definition,
    structure: Structure,
    before: dict[str, tuple[str, ...]],
    after: dict[str, tuple[str, ...]],
    wording: Wording = Wording.STANDARD,
) -> Beneficiary:
    first = submitted(session, definition, structure, FormKind.BEFORE, before)
    first.wording = wording.value
    second = journey.start_after(session, definition, first.beneficiary, "fr")
    second.wording = wording.value
    fill_response(session, definition, second, after)
    assert journey.submit(session, definition, second)
    session.flush()
    session.expire_all()
    return first.beneficiary


@pytest.fixture
def beginner(db_session: Session, definition: Definition, structure: Structure) -> Beneficiary:
    """15 tasks, all moved from "not yet" to "with help"; does not feel much progress."""
    after = tasks_at(AFTER, "2")
    progress = definition.item_with_role(Role.PROGRESS)
    assert progress is not None
    after[progress.code] = (progress.tagged(Tag.PROGRESS_NO)[-1],)
    return pair(db_session, definition, structure, tasks_at(BEFORE, "1"), after)


def words_of(app: Flask, result: Summary) -> str:
    with app.test_request_context("/"):
        w = result.words()
        said = [w.title, w.headline, *w.highlights, w.comfort or "", w.chart_summary]
        said += [w.move_title(move) for move, _groups in result.moves]
        return " ".join(said).replace("\u00a0", " ")


def test_a_beginner_moved_one_rung_on_every_task(
    app: Flask, definition: Definition, beginner: Beneficiary
) -> None:
    result = build_summary(definition, beginner)
    assert result is not None
    assert len(result.progressed) == 15 and len(result.alone) == 0
    assert [o.code for o in result.domains] == list(definition.competences)
    assert all(bar.points_now == bar.total and bar.points_before == 0 for bar in result.bars)
    said = words_of(app, result)
    assert "Bravo" not in said  # the person said "not really": no contradiction
    assert "Pourtant, vos réponses montrent 15 choses que vous faites mieux qu'avant." in said
    # The headline comes before the chart says what a "marche" (a rung) is: plain words there
    # (it said "avancé d'au moins une marche", a metaphor a beginner did not follow).
    with app.test_request_context("/"):
        assert "marche" not in result.words().headline
    assert "En tout : 15 marches sur 45 aujourd'hui." in said
    assert re.search(r"\b0 (chose|marche)", said) is None  # never a count of nothing
    # Every task once, in one group: from "not yet" to "with help".
    assert [move for move, _groups in result.moves] == [summary.Move.UP]
    (group,) = result.groups(summary.Move.UP)
    assert group.before is not None and group.before.rank == 1
    assert group.now is not None and group.now.rank == 2
    assert len(group.tasks) == 15


def test_each_task_is_said_once_and_nothing_moved_is_said_kindly(
    app: Flask, db_session: Session, definition: Definition, structure: Structure
) -> None:
    person = pair(db_session, definition, structure, tasks_at(BEFORE, "2"), tasks_at(AFTER, "2"))
    result = build_summary(definition, person)
    assert result is not None and not result.progressed
    said = words_of(app, result)
    assert "Vos réponses sont les mêmes qu'avant." in said
    assert re.search(r"\b0 (chose|marche)", said) is None
    assert "Comme avant : 15 choses" in said
    grouped = [task.item.code for _move, groups in result.moves for g in groups for task in g.tasks]
    assert sorted(grouped) == sorted(TASKS) and len(grouped) == len(set(grouped))


@pytest.mark.parametrize("wording", list(Wording))
def test_the_page_and_the_pdf_say_15_in_both_wordings(
    app: Flask,
    db_session: Session,
    definition: Definition,
    structure: Structure,
    wording: Wording,
) -> None:
    person = pair(
        db_session,
        definition,
        structure,
        tasks_at(BEFORE, "1"),
        tasks_at(AFTER, "2"),
        wording,
    )
    db_session.commit()
    expected = (
        "Vous avez progressé pour 15 choses sur 15."
        if wording is Wording.EASY
        else "Vous faites mieux qu'avant pour 15 choses sur 15."
    )
    pictures = 2  # "not yet" and "with help", drawn once each beside the group's words
    client = app.test_client()
    with client.session_transaction() as session:
        session[SESSION_PERSON] = person.id
    page = client.get("/summary")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    flat_html = re.sub(r"\s+", " ", unescape(html).replace("\u00a0", " "))
    assert expected in flat_html
    easy_label = definition.in_wording(Wording.EASY).item(TASKS[2]).label
    standard_label = definition.item(TASKS[2]).label
    assert (easy_label if wording is Wording.EASY else standard_label) in flat_html
    assert flat_html.count(standard_label if wording is Wording.STANDARD else easy_label) == 1
    assert flat_html.count('<svg class="picto"') == pictures
    pdf = client.get("/summary.pdf")
    assert pdf.status_code == 200
    content = re.sub(r"\s+", " ", text(pdf.data).replace("\u00a0", " "))
    assert expected in content
    # The mediator's PDF follows the person's wording too.
    result = build_summary(definition, person)
    assert result is not None and result.wording is wording
    with app.app_context():
        staff_pdf = paper.renderer(app).summary(result, person.code, "fr")
    assert expected in re.sub(r"\s+", " ", text(staff_pdf).replace("\u00a0", " "))


def test_the_session_wording_wins_on_the_page(
    app: Flask, db_session: Session, definition: Definition, structure: Structure
) -> None:
    person = pair(db_session, definition, structure, tasks_at(BEFORE, "1"), tasks_at(AFTER, "2"))
    db_session.commit()
    client = app.test_client()
    with client.session_transaction() as session:
        session[SESSION_PERSON] = person.id
        session[SESSION_WORDING] = Wording.EASY.value
    html = unescape(client.get("/summary").get_data(as_text=True)).replace("\u00a0", " ")
    assert "Vous avez progressé pour 15 choses sur 15." in html


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        (Tag.FEMININE, "moins sûre qu'avant"),
        (Tag.MASCULINE, "moins sûr qu'avant"),
        (None, "moins sûr ou moins sûre qu'avant"),
    ],
)
def test_a_step_back_is_said_kindly_in_the_persons_gender(
    app: Flask,
    db_session: Session,
    definition: Definition,
    structure: Structure,
    tag: Tag | None,
    expected: str,
) -> None:
    gender = definition.item_with_role(Role.GENDER)
    assert gender is not None
    before = tasks_at(BEFORE, "3")
    if tag is None:
        before.pop(gender.code, None)
    else:
        before[gender.code] = (gender.tagged(tag)[0],)
    after = tasks_at(AFTER, "3")
    after[TASKS[0]] = ("2",)
    person = pair(db_session, definition, structure, before, after)
    result = build_summary(definition, person)
    assert result is not None
    assert [t.item.code for t in result.stepped_back] == [TASKS[0]]
    assert (
        result.gender
        is {
            Tag.FEMININE: Gender.FEMININE,
            Tag.MASCULINE: Gender.MASCULINE,
            None: Gender.UNKNOWN,
        }[tag]
    )
    with app.test_request_context("/"):
        w = result.words()
        assert expected in w.step_back_lead.replace("\u00a0", " ")
        assert w.move_title(summary.Move.DOWN) == "Moins facile qu'avant\u00a0: 1 chose"
        assert w.headline.startswith("Cette fois, vos réponses ne montrent pas de progrès.")
        assert "·" not in w.step_back_lead
        assert w.move_lead(summary.Move.DOWN) == w.step_back_lead
    assert result.praise  # more at ease, feels progress: a step back on one task is said too


def test_unanswered_tasks_are_listed_and_not_counted(
    app: Flask, db_session: Session, definition: Definition, structure: Structure
) -> None:
    after = tasks_at(AFTER, "3")
    del after[TASKS[4]]
    person = pair(db_session, definition, structure, tasks_at(BEFORE, "2"), after)
    result = build_summary(definition, person)
    assert result is not None
    assert [t.item.code for t in result.unanswered] == [TASKS[4]]
    assert len(result.progressed) == 14
    with app.test_request_context("/"):
        w = result.words()
        assert w.move_title(summary.Move.UNANSWERED) == "Sans réponse\u00a0: 1 chose"
    assert [t.item.code for g in result.groups(summary.Move.UNANSWERED) for t in g.tasks] == [
        TASKS[4]
    ]


def test_next_steps_nearest_rung_first_with_their_topics(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    after = tasks_at(AFTER, "1")
    after[TASKS[9]] = ("2",)
    person = pair(db_session, definition, structure, tasks_at(BEFORE, "1"), after)
    result = build_summary(definition, person)
    assert result is not None
    steps = result.next_steps
    assert steps[0].task.item.code == TASKS[9]
    assert [s.task.item.code for s in steps[1:]] == [c for c in TASKS if c != TASKS[9]]
    topic = definition.item(TASKS[9]).coop_topic
    assert steps[0].topic is not None and steps[0].topic.code == topic


def test_the_starting_point_says_what_is_done_with_or_without_help(
    app: Flask, db_session: Session, definition: Definition, structure: Structure
) -> None:
    before = tasks_at(BEFORE, "2")
    before[TASKS[0]] = ("4",)
    person = submitted(db_session, definition, structure, FormKind.BEFORE, before).beneficiary
    result = summary.build_summary(definition, person)
    assert result is not None and not result.has_before
    assert len(result.already_done) == 15
    assert [t.item.code for t in result.can_help] == [TASKS[0]]
    with app.test_request_context("/"):
        w = result.words()
        assert w.already_done == "Vous faites déjà 15 choses sur 15, avec ou sans aide."
        assert w.can_help == "Vous pouvez aider quelqu'un pour 1 chose."
        assert w.highlights == (w.already_done, w.can_help)
    # Grouped by today's answer, the highest first.
    ranks = [g.now.rank for g in result.groups(summary.Move.NOW) if g.now is not None]
    assert ranks == [4, 2]


def test_a_true_beginner_starting_point_is_not_a_page_of_zeros(
    app: Flask, db_session: Session, definition: Definition, structure: Structure
) -> None:
    person = submitted(
        db_session, definition, structure, FormKind.BEFORE, tasks_at(BEFORE, "1")
    ).beneficiary
    result = summary.build_summary(definition, person)
    assert result is not None
    client = app.test_client()
    db_session.commit()
    with client.session_transaction() as session:
        session[SESSION_PERSON] = person.id
    html = unescape(client.get("/summary").get_data(as_text=True)).replace("\u00a0", " ")
    assert "Vous commencez : c'est le bon moment." in html
    assert "0 chose" not in html and "0 marche" not in html
    assert 'class="rungs"' not in html  # no chart of empty bars


@pytest.mark.parametrize("wording", [Wording.STANDARD, Wording.EASY])
def test_marche_is_said_only_in_the_chart_that_explains_it_first(
    app: Flask, db_session: Session, definition: Definition, structure: Structure, wording: Wording
) -> None:
    """A "marche" (a rung of the ladder) is jargon for a beginner: the headline and the task
    list say what got better in plain words; only the chart counts rungs, and its key says
    what one is before its figures do (round 23)."""
    after = tasks_at(AFTER, "3")
    after[TASKS[0]] = ("1",)  # one task two rungs down, the others one up
    person = pair(db_session, definition, structure, tasks_at(BEFORE, "2"), after, wording)
    db_session.commit()
    client = app.test_client()
    with client.session_transaction() as session:
        session[SESSION_PERSON] = person.id
        session[SESSION_WORDING] = wording.value
    html = unescape(client.get("/summary").get_data(as_text=True)).replace("\u00a0", " ")
    main = html[html.index("<main") : html.index("</main>")]
    chart = re.search(r'<details class="summary-block rungs-block">.*?</details>', main, re.S)
    assert chart is not None
    # "\b": not the "démarche" (procedure) of a task's label.
    assert re.search(r"(?<![\wé])marches?\b", main.replace(chart.group(0), "")) is None
    said = re.sub(r"<[^>]+>", "", chart.group(0))
    key = said.index(
        "Chaque chose compte pour" if wording is Wording.STANDARD else "Une chose, c'est"
    )
    assert key < said.index("En tout :")  # what a marche is, then how many


def test_every_easy_summary_sentence_follows_the_falc_rules(
    app: Flask, db_session: Session, definition: Definition, structure: Structure
) -> None:
    from tests.questionnaire.test_readability import falc_problems

    after = tasks_at(AFTER, "2")
    after[TASKS[0]] = ("4",)
    before = tasks_at(BEFORE, "1")
    before[TASKS[1]] = ("3",)
    person = pair(db_session, definition, structure, before, after, Wording.EASY)
    result = build_summary(definition, person)
    assert result is not None and result.easy
    with app.test_request_context("/"):
        w = result.words()
        said = [
            getattr(w, name)
            for name in dir(w)
            if not name.startswith("_") and isinstance(getattr(w, name), str)
        ]
        said += list(w.highlights)
        said += [w.bar_text(bar) for bar in result.bars]
        said += [w.move_title(move) for move, _groups in result.moves]
        said += [
            re.sub(r"<[^>]+>", "", str(w.group_line(g, lambda _name: Markup(""))))
            for _move, groups in result.moves
            for g in groups
        ]
    assert len(said) > 25
    problems = [p for text in said for p in falc_problems("summary", text.replace("\u00a0", " "))]
    assert problems == []
