"""Headline figures, task table and paired change (issue 14), through the real services.

1. A population answered through the journey and typed in from paper (demo.generate_demo, plus
   one person whose only topic is procedures): every headline figure, every task cell and
   every paired matrix equals what is recomputed here, person by person, from the stored
   answers.
2. Ten people with chosen answers: intervals and tests equal values worked out by hand.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck import demo
from selfcheck.evaluation import headline, paired, statistics, tasks_table
from selfcheck.evaluation.disclosure import Hidden
from selfcheck.evaluation.references import load_references
from selfcheck.evaluation.scope import EvaluationFilters
from selfcheck.journey import operations as journey
from selfcheck.platform.models import Answer, Response, Status, Structure
from selfcheck.questionnaire import Definition, FormKind
from selfcheck.questionnaire.model import NO_ANSWER, PRE_SUFFIX, Indicator, Role, Tag
from tests.support import AFTER, BEFORE, fill_and_submit, submitted

K = 5


@pytest.fixture
def request_context(app: Flask) -> Iterator[None]:
    with app.test_request_context():
        yield


def scope(structure: Structure) -> EvaluationFilters:
    return EvaluationFilters(structure_ids=(structure.id,))


# --- 1. a population: every figure recomputed from the stored answers ---------------------------


def stored(db: Session) -> list[tuple[int, str, str, str, str]]:
    """(person, form, channel, variable, value) of every submitted answer."""
    return [
        tuple(row)  # type: ignore[misc]
        for row in db.execute(
            select(
                Response.beneficiary_id,
                Response.form,
                Response.channel,
                Answer.variable,
                Answer.value,
            )
            .join(Answer, Answer.response_id == Response.id)
            .where(Response.status == Status.SUBMITTED.value)
        )
    ]


def expected_figures(
    db: Session, definition: Definition
) -> tuple[dict[str, tuple[int, int]], dict[str, int]]:
    """(count, base) of every share figure and the at-ease McNemar cells, by hand."""
    rows = stored(db)
    people = {person for person, *_rest in rows}
    profile, path = {"before", "retro"}, {"after", "retro"}

    def tagged(role: Role, tags: set[Tag], forms: set[str]) -> tuple[int, int]:
        item = definition.item_with_role(role)
        assert item is not None
        declined = set(item.tagged(Tag.DECLINED))
        wanted = {code for tag in tags for code in item.tagged(tag)}
        answered = {
            (p, v)
            for p, f, _c, var, v in rows
            if var == item.code and f in forms and v != NO_ANSWER and v not in declined
        }
        return len({p for p, v in answered if v in wanted}), len({p for p, _v in answered})

    forms_of: dict[int, set[str]] = defaultdict(set)
    for person, form, *_rest in rows:
        forms_of[person].add(form)
    befores = {p for p, f in forms_of.items() if "before" in f}
    switch = definition.item_with_indicator(Indicator.SWITCH_DEVICE)
    assert switch is not None
    ranks = {o.code: o.rank for o in switch.options if o.rank is not None}
    first = {("before", switch.code), ("retro", switch.code + PRE_SUFFIX)}
    switch_before = {(p, v) for p, f, _c, var, v in rows if v in ranks and (f, var) in first}
    topics = definition.item_with_role(Role.TOPICS)
    assert topics is not None
    per_response: dict[tuple[int, str], set[str]] = defaultdict(set)
    for p, f, _c, var, v in rows:
        if var == topics.code and f in path and v != NO_ANSWER:
            per_response[(p, f)].add(v)
    procedures = set(topics.tagged(Tag.PROCEDURES))
    progress = definition.item_with_role(Role.PROGRESS)
    assert progress is not None
    yes, no = set(progress.tagged(Tag.PROGRESS_YES)), set(progress.tagged(Tag.PROGRESS_NO))
    felt = {
        (p, v) for p, f, _c, var, v in rows if var == progress.code and f in path and v in yes | no
    }
    figures = {
        "pairs": (len({p for p in befores if "after" in forms_of[p]}), len(befores)),
        "aged_60_plus": tagged(Role.AGE, {Tag.SENIOR}, profile),
        "women": tagged(Role.GENDER, {Tag.FEMININE}, profile),
        "below_bac": tagged(Role.DIPLOMA, {Tag.BELOW_BACCALAUREATE}, profile),
        "internet_at_home": tagged(Role.INTERNET_HOME, {Tag.YES}, profile),
        "switch_device": (
            len({p for p, v in switch_before if ranks[v] < 3}),
            len({p for p, _v in switch_before}),
        ),
        "procedures_among_topics": tagged(Role.TOPICS, {Tag.PROCEDURES}, path),
        "procedures_only_topic": (
            len({p for (p, _f), chosen in per_response.items() if chosen <= procedures}),
            len({p for p, _f in per_response}),
        ),
        "new_things": tagged(Role.NEW_THINGS, {Tag.YES}, path),
        "progress": (len({p for p, v in felt if v in yes}), len({p for p, _v in felt})),
        "paper": (len({p for p, _f, c, *_r in rows if c == "paper"}), len(people)),
    }
    comfort = definition.item_with_role(Role.COMFORT)
    assert comfort is not None
    at_ease = {o.code for o in comfort.options if o.tags & {Tag.EASE_FAIR, Tag.EASE_HIGH}}
    by_person: dict[int, dict[str, str]] = defaultdict(dict)
    for p, f, _c, var, v in rows:
        if var == comfort.code and f in {"before", "after"}:
            by_person[p][f] = v
    cells: Counter[str] = Counter()
    for answers in by_person.values():
        if {"before", "after"} <= answers.keys():
            then, now = answers["before"] in at_ease, answers["after"] in at_ease
            cells[
                {(1, 1): "both_yes", (1, 0): "yes_to_no", (0, 1): "no_to_yes"}.get(
                    (int(then), int(now)), "both_no"
                )
            ] += 1
    return figures, dict(cells)


def only_procedures(db: Session, definition: Definition, structure: Structure) -> None:
    """A person whose only topic, in their after form, is the administrative procedures."""
    topics = definition.item_with_role(Role.TOPICS)
    assert topics is not None
    before = submitted(db, definition, structure, FormKind.BEFORE, BEFORE)
    after = journey.start_after(db, definition, before.beneficiary, "fr")
    db.commit()
    fill_and_submit(db, definition, after, {**AFTER, topics.code: topics.tagged(Tag.PROCEDURES)})


def test_every_headline_figure_is_given_back_exactly(
    db_session: Session, definition: Definition, request_context: None
) -> None:
    demo.generate_demo(db_session, definition, respondents=120, seed=14)
    db_session.commit()
    structure = demo.demo_structure(db_session)
    only_procedures(db_session, definition, structure)
    figures, cells = expected_figures(db_session, definition)
    assert figures["paper"][0] > 0 and figures["procedures_only_topic"][0] == 1

    found = headline.build_headline(db_session, definition, scope(structure), k=1)
    assert found.people == 121 == found.figure("people").count
    for key, (count, base) in figures.items():
        figure = found.figure(key)
        assert (figure.count, figure.base) == (count, base), key
        assert figure.hidden is None
        interval = statistics.share(count, base, k=1)
        assert figure.interval == interval, key
    change = found.figure("at_ease").change
    assert isinstance(change, statistics.PairedShareChange)
    assert {
        "both_yes": change.both_yes,
        "yes_to_no": change.yes_to_no,
        "no_to_yes": change.no_to_yes,
        "both_no": change.both_no,
    } == {key: cells.get(key, 0) for key in ("both_yes", "yes_to_no", "no_to_yes", "both_no")}

    # With k = 5, a figure is shown exactly as above, or hidden by the dashboard's rule.
    protected = headline.build_headline(db_session, definition, scope(structure), k=K)
    for key, (count, base) in figures.items():
        figure = protected.figure(key)
        if base < K:
            assert figure.hidden is Hidden.SMALL_BASE
        elif 0 < count < K or 0 < base - count < K:
            assert figure.hidden is Hidden.SMALL and figure.count is None
            assert figure.interval is None
        else:
            assert (figure.count, figure.base, figure.hidden) == (count, base, None), key
    # The only-topic figure has 1 person: hidden.
    assert protected.figure("procedures_only_topic").hidden is Hidden.SMALL


def test_references_are_shown_only_where_definitions_match(
    db_session: Session, definition: Definition, request_context: None
) -> None:
    demo.generate_demo(db_session, definition, respondents=30, seed=3)
    db_session.commit()
    found = headline.build_headline(
        db_session, definition, scope(demo.demo_structure(db_session)), k=K
    )
    references = load_references()
    shown = {f.key: f.reference.value for f in found.figures if f.reference is not None}
    assert shown == {
        "aged_60_plus": 75,
        "women": 72,
        "below_bac": 59,
        "internet_at_home": 87,
        "switch_device": 15,
        "new_things": 93,
        "progress": 97,
        "paper": 21,
    }
    # The survey counts procedures in accompaniments: not beside our people.
    for key, reference in (
        ("procedures_among_topics", "procedures_among_topics"),
        ("procedures_only_topic", "procedures_only_topic"),
    ):
        figure = found.figure(key)
        assert figure.reference is None
        assert figure.unshown_reference == references.figure(reference)
    csv_text = headline.headline_csv(found)
    assert csv_text.splitlines()[0].startswith("code,Indicateur,Nombre")
    line = next(row for row in csv_text.splitlines() if row.startswith("aged_60_plus,"))
    assert line.endswith(",75")


def test_the_task_table_and_the_matrices_match_the_stored_answers(
    db_session: Session, definition: Definition, request_context: None
) -> None:
    demo.generate_demo(db_session, definition, respondents=80, seed=21)
    db_session.commit()
    structure = demo.demo_structure(db_session)
    rows = stored(db_session)
    tasks = definition.task_items()
    ladder = {o.code: o.rank for o in tasks[0].options if o.rank is not None}
    answers: dict[tuple[int, str], dict[str, str]] = defaultdict(dict)
    for p, f, _c, var, v in rows:
        answers[(p, f)][var] = v
    pair_cells: dict[str, Counter[tuple[int, int]]] = defaultdict(Counter)
    retro_cells: dict[str, Counter[tuple[int, int]]] = defaultdict(Counter)
    sums: dict[str, Counter[tuple[int, int]]] = defaultdict(Counter)
    for (person, form), given in answers.items():
        if form == "after" and (person, "before") in answers:
            then, now = answers[(person, "before")], given
            target, suffix = pair_cells, ""
        elif form == "retro":
            then, now, target, suffix = given, given, retro_cells, PRE_SUFFIX
        else:
            continue
        per_type: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for item in tasks:
            b, a = then.get(item.code + suffix), now.get(item.code)
            if b in ladder and a in ladder:
                target[item.code][(ladder[b], ladder[a])] += 1
                if target is pair_cells:
                    totals = per_type[item.competence or ""]
                    totals[0] += ladder[b]
                    totals[1] += ladder[a]
                    totals[2] = 1
        for competence, (b_sum, a_sum, _seen) in per_type.items():
            sums[competence][(b_sum, a_sum)] += 1

    pairs = paired.matrices(db_session, definition, scope(structure), FormKind.AFTER)
    retro = paired.matrices(db_session, definition, scope(structure), FormKind.RETRO)
    for item in tasks:
        assert paired.ranked(pairs.by_item.get(item.code, {}), item) == dict(
            pair_cells[item.code]
        ), item.code
        assert paired.ranked(retro.by_item.get(item.code, {}), item) == dict(
            retro_cells[item.code]
        ), item.code
    assert {c: dict(m) for c, m in pairs.by_competence.items()} == {
        c: dict(m) for c, m in sums.items()
    }

    table, _retro_table = tasks_table.task_tables(definition, pairs, retro, k=1)
    first = tasks[0]
    row = next(r for r in table.rows if r.code == first.code)
    cells = pair_cells[first.code]
    n = sum(cells.values())
    assert row.n == n
    assert [c.count for c in row.before] == [
        sum(v for (b, _a), v in cells.items() if b == rank) for rank in (1, 2, 3, 4)
    ]
    assert [c.count for c in row.after] == [
        sum(v for (_b, a), v in cells.items() if a == rank) for rank in (1, 2, 3, 4)
    ]
    up = sum(v for (b, a), v in cells.items() if a > b)
    down = sum(v for (b, a), v in cells.items() if a < b)
    assert [c.count for c in row.moves] == [up, n - up - down, down]

    # With k = 5: no count from 1 to 4 anywhere, and a lone hidden cell never stands alone.
    protected, _r = tasks_table.task_tables(definition, pairs, retro, k=K)
    for task in protected.rows:
        for group in (task.before, task.after, task.moves):
            visible = [c.count for c in group if c.hidden is None]
            assert all(v is not None and (v == 0 or v >= K) for v in visible)
            assert sum(1 for c in group if c.hidden is not None) != 1
    assert "< 5" in tasks_table.task_csv(protected) or protected.hidden_cells == 0


# --- 2. ten people, worked out by hand --------------------------------------------------------


def ten_pairs(db: Session, definition: Definition, structure: Structure) -> None:
    """Comfort before -> after: 6 people 1 -> 3, 1 person 3 -> 2, 3 people 3 -> 3; 7 women."""
    comfort = definition.item_with_role(Role.COMFORT)
    gender = definition.item_with_role(Role.GENDER)
    assert comfort is not None and gender is not None
    woman, man = gender.tagged(Tag.FEMININE)[0], gender.tagged(Tag.MASCULINE)[0]
    moves = [("1", "3")] * 6 + [("3", "2")] + [("3", "3")] * 3
    for index, (then, now) in enumerate(moves):
        chosen = woman if index < 7 else man
        before = submitted(
            db,
            definition,
            structure,
            FormKind.BEFORE,
            {**BEFORE, comfort.code: (then,), gender.code: (chosen,)},
        )
        after = journey.start_after(db, definition, before.beneficiary, "fr")
        db.commit()
        fill_and_submit(db, definition, after, {**AFTER, comfort.code: (now,)})


def test_small_case_against_hand_computed_values(
    db_session: Session, definition: Definition, structure: Structure, request_context: None
) -> None:
    ten_pairs(db_session, definition, structure)
    changes, _pairs, _retro = paired.changes(db_session, definition, scope(structure), k=1)
    by_key = {c.key: c for c in changes.pairs}

    # Comfort ladder: differences +2 (x6), -1 (x1), 0 (x3). Wilcoxon, zeros dropped: ranks of
    # |d| are 1 (the -1) and 4.5 (the six 2s); W- = 1. Exact: of the 2^7 sign patterns, those
    # with T <= 1 ({}, {1}) and their mirrors T >= 27: p = 4 / 128.
    ladder = by_key["comfort"].result
    assert isinstance(ladder, statistics.LadderChange)
    assert (ladder.n, ladder.up, ladder.same, ladder.down) == (10, 6, 3, 1)
    assert ladder.estimate == pytest.approx(0.5)
    assert ladder.p_value == pytest.approx(4 / 128)
    assert ladder.method is statistics.Method.WILCOXON_EXACT
    assert ladder.low < 0.5 < ladder.high

    # At ease (rather or very): 4 before, 9 after; 6 no -> yes, 1 yes -> no. McNemar exact:
    # 2 * P(X <= 1), X ~ Binomial(7, 1/2) = 2 * 8 / 128.
    share = by_key["at_ease"].result
    assert isinstance(share, statistics.PairedShareChange)
    assert (share.both_yes, share.yes_to_no, share.no_to_yes, share.both_no) == (3, 1, 6, 0)
    assert (share.before, share.after, share.estimate) == pytest.approx((0.4, 0.9, 0.5))
    assert share.p_value == pytest.approx(16 / 128)
    # Tango's limits are where the score statistic equals -/+ 1.96 (checked on the formula).
    z = 1.959963984540054
    for limit, target in ((share.low, z), (share.high, -z)):
        b = -6 - 1 + (2 * 10 - 6 + 1) * limit
        c = -1 * limit * (1 - limit)
        q = ((b * b - 8 * 10 * c) ** 0.5 - b) / (4 * 10)
        statistic = (6 - 1 - 10 * limit) / (10 * (2 * q + limit * (1 - limit))) ** 0.5
        assert statistic == pytest.approx(target, abs=1e-6)
    assert "6 de non à oui, 1 de oui à non." in by_key["at_ease"].sentence

    # Women: 7 of 10, Wilson 95 %: (0.7 + z²/20 ± z sqrt(0.021 + z²/400)) / (1 + z²/10).
    found = headline.build_headline(db_session, definition, scope(structure), k=1)
    women = found.figure("women")
    assert (women.count, women.base) == (7, 10)
    assert isinstance(women.interval, statistics.Share)
    centre = (0.7 + z * z / 20) / (1 + z * z / 10)
    half = z * (0.021 + z * z / 400) ** 0.5 / (1 + z * z / 10)
    assert women.interval.low == pytest.approx(centre - half)
    assert women.interval.high == pytest.approx(centre + half)
    assert (round(women.interval.low, 4), round(women.interval.high, 4)) == (0.3968, 0.8922)

    # With k = 5: 4 "at ease" before is a hidden cell, so the figure is withheld; the ladder is
    # published, but its detail (1 went down) is not.
    changes5, _p, _r = paired.changes(db_session, definition, scope(structure), k=K)
    by_key5 = {c.key: c for c in changes5.pairs}
    assert isinstance(by_key5["at_ease"].result, statistics.TooFew)
    assert "Résultat masqué" in by_key5["at_ease"].sentence
    assert isinstance(by_key5["comfort"].result, statistics.LadderChange)
    sentence = by_key5["comfort"].sentence
    assert "Le détail des changements n'est pas donné" in sentence and " 1 " not in sentence
    csv_text = paired.changes_csv(changes5.pairs, K)
    assert "comfort,Aisance" in csv_text and "wilcoxon_exact" in csv_text
