"""The plan's records kept by column (issue 18, round 18): the same release, by other means.

- `anonymity.Columns` (records kept by column) releases what the same records as dicts
  release: levels, people kept and left out, released values, report;
- the engine's column reports counted from its codes give what counting the released and
  raw values one by one gave;
- `anonymise.ColumnRecorder` builds the records `qi_record` builds from the same answers;
- `anonymise.pseudonyms` gives `pseudonym`; `_shuffled` gives a permutation (seeded: the
  order `rng.shuffle` gives).
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from selfcheck.evaluation import anonymise
from selfcheck.evaluation.anonymity import MASKED, Columns, Release
from selfcheck.evaluation.anonymity import anonymise as run_engine
from selfcheck.evaluation.export import PersonAnswers, SentForm
from selfcheck.questionnaire.model import NO_ANSWER, Definition
from tests.evaluation.anonymity_population import population, quasi_identifiers


def _by_column(records: list[dict[str, Any]]) -> Columns:
    names = list(records[0])
    return Columns({name: [r[name] for r in records] for name in names}, len(records))


@pytest.mark.parametrize(("people", "seed", "k"), [(300, 1, 5), (1200, 2, 3), (2000, 3, 10)])
def test_records_by_column_release_the_same(people: int, seed: int, k: int) -> None:
    records = population(people, seed)
    specs = quasi_identifiers()
    as_dicts = run_engine(records, specs, k, rows=False)
    as_columns = run_engine(_by_column(records), specs, k, rows=False)
    assert as_dicts.levels == as_columns.levels
    assert (as_dicts.kept, as_dicts.left_out) == (as_columns.kept, as_columns.left_out)
    assert {n: list(v) for n, v in as_dicts.columns.items()} == {
        n: list(v) for n, v in as_columns.columns.items()
    }
    assert as_dicts.report == as_columns.report


def _report_counted_one_by_one(release: Release, records: list[dict[str, Any]]) -> Any:
    """Each column's counts as the engine made them before round 18: a Counter of the
    released values and one of the raw values, over the people released."""
    facts = []
    for report in release.report.columns:
        name = report.column
        out = Counter(r[name] for r in release.records)
        masked = out.pop(MASKED, 0)
        out.pop(None, None)
        raw = Counter(records[i][name] for i in release.kept)
        facts.append((name, masked, report.released, len(release.kept)))
        for share in report.shares:
            assert share.released_count == out[share.category]
        spec = next(q for q in quasi_identifiers() if q.column == name)
        if release.levels[name] <= len(spec.ladder):
            truth: Counter[Any] = Counter()
            for value, count in raw.items():
                if value is not None:
                    truth[spec.apply(release.levels[name], value)] += count
            assert {s.category: s.true_count for s in report.shares} == dict(truth)
            released_total = sum(out.values())
            for share in report.shares:
                expected = out[share.category] / released_total if released_total else 0.0
                assert share.released_share == pytest.approx(expected)
        assert report.cells_masked == masked
    return facts


@pytest.mark.parametrize(("people", "seed", "k"), [(300, 1, 5), (1500, 6, 5), (400, 7, 20)])
def test_column_reports_from_codes_count_as_before(people: int, seed: int, k: int) -> None:
    records = population(people, seed)
    release = run_engine(records, quasi_identifiers(), k)
    for name, masked, released, kept in _report_counted_one_by_one(release, records):
        assert released == kept, name
        assert masked >= 0


def test_columns_read_as_records() -> None:
    table = Columns({"a": [1, 2, 3], "b": ("x", None, "z")}, 3)
    assert len(table) == 3
    assert table[1] == {"a": 2, "b": None}
    assert table[-1] == {"a": 3, "b": "z"}
    assert table[0:2] == [{"a": 1, "b": "x"}, {"a": 2, "b": None}]
    assert list(table) == [table[0], table[1], table[2]]
    assert table.column("missing") == (None, None, None)
    with pytest.raises(IndexError):
        table[3]
    with pytest.raises(ValueError, match="2 values for 3"):
        Columns({"a": [1, 2]}, 3)
    assert anonymise.record_column(table, "a") == [1, 2, 3]
    with pytest.raises(KeyError):
        anonymise.record_column(table, "missing")


def _person(rng: random.Random, beneficiary_id: int, definition: Definition) -> PersonAnswers:
    codes = [item.code for item in definition.quasi_identifiers()]
    forms: dict[str, SentForm] = {}
    for form in anonymise.FORMS:
        if rng.random() < 0.5:
            continue
        answers: dict[str, list[str]] = {}
        for code in codes:
            if rng.random() < 0.7:
                answers[code] = rng.sample(["a", "b", "c", NO_ANSWER, "zz"], rng.randint(1, 3))
        sent_at = None if rng.random() < 0.1 else datetime(2026, rng.randint(1, 12), 3, tzinfo=UTC)
        forms[form.value] = SentForm(
            rng.choice(["online", "paper"]),
            rng.choice(["standard", "easy"]),
            rng.choice(["1.3.0", "1.4.0"]),
            sent_at,
            answers,
        )
    return PersonAnswers(beneficiary_id, rng.choice([None, 1, 2, 3]), forms)


def _key(values: list[str] | None) -> anonymise.AnswerKey:
    if values is None:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def test_column_recorder_makes_the_records_of_qi_record(definition: Definition) -> None:
    places = {1: ("one", "75"), 2: ("two", "13"), 3: ("three", "13")}
    rng = random.Random(18)
    people = [_person(rng, i, definition) for i in range(400)]
    recorder = anonymise.ColumnRecorder(places, definition)
    for person in people:
        profiles = [
            tuple(_key(person.forms[form].answers.get(code)) for code in recorder.items)
            for form in anonymise.PROFILE_FORMS
            if form in person.forms
        ]
        sent = [
            None
            if (form := person.forms.get(kind.value)) is None
            else recorder.details(form.channel, form.wording, form.version, form.submitted_at)
            for kind in anonymise.FORMS
        ]
        recorder.add(person.structure_id, anonymise.forms_pattern(person.forms), profiles, sent)
    table = recorder.columns()
    expected = [anonymise.qi_record(person, places, definition) for person in people]
    assert list(table.columns) == list(expected[0])
    assert [table[i] for i in range(len(people))] == expected


def test_pseudonyms_under_one_key_are_pseudonym() -> None:
    key = anonymise.new_key()
    of = anonymise.pseudonyms(key)
    assert [of(i) for i in (0, 7, 123456789)] == [
        anonymise.pseudonym(key, i) for i in (0, 7, 123456789)
    ]


def test_the_order_is_a_permutation_and_seeded_as_shuffle() -> None:
    people = list(range(1000))
    drawn = anonymise._shuffled(list(people))
    assert sorted(drawn) == people and drawn != people
    assert anonymise._shuffled([]) == []
    seeded = list(people)
    random.Random(3).shuffle(seeded)
    assert anonymise._shuffled(list(people), random.Random(3)) == seeded
    firsts = Counter(anonymise._shuffled([1, 2, 3])[0] for _ in range(3000))
    assert min(firsts.values()) > 850  # each first about a third of the time
