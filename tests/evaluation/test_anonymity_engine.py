"""The anonymity engine: k over every quasi-identifier, least loss, shares kept (issue 17)."""

from __future__ import annotations

import copy
import itertools
import pickle
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pycanon.anonymity
import pytest

from selfcheck.evaluation.anonymity import (
    MASKED,
    Masked,
    QuasiIdentifier,
    Release,
    anonymise,
    engine,
)
from tests.evaluation.anonymity_population import (
    DEMOGRAPHICS,
    population,
    quasi_identifiers,
)

SEED = 2023


def group_sizes(records: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> Counter[tuple]:
    return Counter(tuple(r[c] for c in columns) for r in records)


def pycanon_k(records: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> int:
    """k as pycanon computes it, None and MASKED spelt as values (pandas drops NaN groups)."""

    def spell(value: Any) -> str:
        if value is MASKED:
            return "<masked>"
        return "<none>" if value is None else str(value)

    frame = pd.DataFrame([{c: spell(r[c]) for c in columns} for r in records])
    return int(pycanon.anonymity.k_anonymity(frame, list(columns)))


def assert_k_anonymous(release: Release, columns: Sequence[str], k: int) -> None:
    sizes = group_sizes(release.records, columns)
    assert min(sizes.values()) >= k, sorted(sizes.values())[:5]
    assert pycanon_k(release.records, columns) >= k


def shares(values: Iterable[Any]) -> dict[Any, float]:
    known = [v for v in values if v is not None and v is not MASKED]
    counts = Counter(known)
    return {value: n / len(known) for value, n in counts.items()}


def largest_shift(
    records: Sequence[Mapping[str, Any]], release: Release, spec: QuasiIdentifier
) -> float:
    """Largest gap, in points, between a category's true and released share."""
    level = release.levels[spec.column]
    truth = shares(spec.apply(level, r[spec.column]) for r in records)
    out = shares(r[spec.column] for r in release.records)
    return 100 * max(abs(truth[c] - out.get(c, 0.0)) for c in truth)


def masked_share(release: Release, columns: Sequence[str], people: int) -> float:
    """People with any of `columns` masked, or left out, among everyone."""
    return (release.people_with_any_masked(columns) + len(release.left_out)) / people


# --- small hand-made records ----------------------------------------------------------------

SMALL = [
    {"id": i, "town": town, "age": age, "sex": sex, "country": "fr"}
    for i, (town, age, sex) in enumerate(
        [("a", 30, "f")] * 4
        + [("a", 31, "f")] * 3
        + [("b", 45, "m")] * 5
        + [("b", 47, None)] * 2
        + [("c", 80, "f")]
    )
]
DECADE = QuasiIdentifier("age", (lambda a: a // 10 * 10,), names=("decade",))


def small_qis() -> list[QuasiIdentifier]:
    return [
        QuasiIdentifier("town"),
        DECADE,
        QuasiIdentifier("sex"),
        QuasiIdentifier("country", ({"fr": "europe"},)),
    ]


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_every_released_group_has_k_records(k: int) -> None:
    release = anonymise(SMALL, small_qis(), k, max_suppressed=0.5)
    assert_k_anonymous(release, ["town", "age", "sex", "country"], k)
    assert len(release.records) + len(release.left_out) == len(SMALL)
    # Non-QI columns pass through; records keep their input order.
    assert [r["id"] for r in release.records] == release.kept


@pytest.mark.parametrize("k", [1, 3, 5])
def test_a_release_by_column_gives_the_values_of_the_rows(k: int) -> None:
    # rows=False (the export plan at a million answers): no copy of every record, the same
    # released values by column, the same report.
    by_rows = anonymise(SMALL, small_qis(), k, max_suppressed=0.5)
    by_columns = anonymise(SMALL, small_qis(), k, max_suppressed=0.5, rows=False)
    assert by_columns.records == []
    assert by_columns.kept == by_rows.kept and by_columns.left_out == by_rows.left_out
    assert by_columns.report == by_rows.report
    for spec in small_qis():
        assert list(by_columns.columns[spec.column]) == [r[spec.column] for r in by_rows.records]


@pytest.mark.parametrize("k", [2, 3, 5])
def test_the_search_finds_the_least_loss_of_a_small_lattice(k: int) -> None:
    qis = small_qis()
    release = anonymise(SMALL, qis, k, max_suppressed=0.5)
    prepared = (engine._prepare(q, [r.get(q.column) for r in SMALL]) for q in qis)
    columns = [c for c in prepared if c is not None]
    search = engine._Search(columns, len(SMALL), k, 0.5)
    losses = []
    for node in itertools.product(*(range(c.top + 1) for c in columns)):
        outliers = search.count(node)
        if outliers.sum() <= 0.5 * len(SMALL):
            losses.append(search.suppress(node, outliers).loss)
    assert release.report.exhaustive
    assert release.report.loss == pytest.approx(min(losses))


def test_k_one_releases_the_raw_data() -> None:
    release = anonymise(SMALL, small_qis(), 1)
    assert release.records == SMALL
    assert release.report.loss == 0
    assert all(level == 0 for level in release.levels.values())


def test_a_constant_column_is_never_generalised_nor_masked() -> None:
    release = anonymise(SMALL, small_qis(), 5, max_suppressed=0.5)
    assert release.levels["country"] == 0
    assert {r["country"] for r in release.records} == {"fr"}
    assert release.report.column("country").constant


def test_missing_stays_apart_from_masked() -> None:
    release = anonymise(SMALL, small_qis(), 2, max_suppressed=0.5)
    sexes = [r["sex"] for r in release.records]
    # The two people with no answer form a group of their own: still None, not masked.
    assert sexes.count(None) == 2
    assert MASKED is not None and MASKED != None  # noqa: E711 (the point of the sentinel)
    assert repr(MASKED) == "MASKED"
    # One sentinel, whatever copies the records on their way to a file.
    assert copy.deepcopy(MASKED) is MASKED
    assert pickle.loads(pickle.dumps(MASKED)) is MASKED
    assert Masked() is MASKED


def test_a_person_alone_is_masked_then_left_out_only_as_a_last_resort() -> None:
    # The 80-year-old in town c is unique: at k = 2 their cells are masked, and as the only
    # person masked they would still be alone, so they are left out.
    release = anonymise(SMALL, small_qis(), 2, max_suppressed=0.5)
    assert release.report.left_out == len(release.left_out) <= 1
    people = anonymise(SMALL * 2, small_qis(), 2, max_suppressed=0.5)
    assert people.left_out == []  # two of them: masked together, released


def test_fewer_people_than_k_are_all_left_out() -> None:
    release = anonymise(SMALL[:3], small_qis(), 5)
    assert release.records == []
    assert release.report.left_out == 3


def test_group_ids_stay_exact_past_64_bits() -> None:
    # Eight columns of 1,000 values: the product of cardinalities (10**24) overflows int64,
    # so the key is re-numbered on the way; groups must still match a plain count.
    rng = np.random.default_rng(SEED)
    columns = [rng.integers(0, 1000, size=5000) for _ in range(8)]
    columns[0][:10] = 7  # a few exact duplicates
    for c in columns[1:]:
        c[:10] = c[0]
    key, span = engine._group_ids([(c, 1000) for c in columns], 5000)
    sizes = engine._group_sizes(key, span)
    expected = Counter(zip(*(c.tolist() for c in columns), strict=True))
    rows = list(zip(*(c.tolist() for c in columns), strict=True))
    assert sizes.tolist() == [expected[r] for r in rows]
    assert sizes[:10].tolist() == [10] * 10


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="k must be"):
        anonymise(SMALL, small_qis(), 0)
    with pytest.raises(ValueError, match="once"):
        anonymise(SMALL, [DECADE, DECADE], 2)
    with pytest.raises(ValueError, match="no value for 'z'"):
        anonymise([{"x": "z"}, {"x": "y"}], [QuasiIdentifier("x", ({"y": "Y"},))], 1)
    with pytest.raises(ValueError, match="weight"):
        QuasiIdentifier("x", weight=0)
    with pytest.raises(ValueError, match="share"):
        anonymise(SMALL, small_qis(), 2, max_suppressed=1.5)


# --- a population drawn like the reference survey -------------------------------------------


def demographic_specs(qis: Sequence[QuasiIdentifier]) -> list[QuasiIdentifier]:
    return [q for q in qis if q.column in DEMOGRAPHICS]


def test_the_synthetic_population_follows_the_reference_survey() -> None:
    records = population(10_000, SEED)
    ages = shares(r["age"] for r in records)
    assert ages["60_69"] + ages["70_plus"] == pytest.approx(0.75, abs=0.02)
    assert shares(r["status"] for r in records)["retired"] == pytest.approx(0.70, abs=0.02)
    assert shares(r["gender"] for r in records)["woman"] == pytest.approx(0.72, abs=0.02)
    below = shares(r["diploma"] for r in records)
    assert below["none"] + below["brevet"] + below["cap_bep"] == pytest.approx(0.59, abs=0.02)


def test_300_people_in_one_department_keep_their_shares() -> None:
    records = population(300, SEED)
    qis = quasi_identifiers()
    release = anonymise(records, qis, 5, max_suppressed=0.25)
    assert_k_anonymous(release, [q.column for q in qis], 5)
    # The department is everyone's: untouched; the structures merge into it.
    assert {r["department"] for r in release.records} == {"29"}
    for spec in demographic_specs(qis):
        assert release.levels[spec.column] <= len(spec.ladder), spec.column  # not all masked
        assert largest_shift(records, release, spec) <= 5.0, spec.column
        assert release.report.column(spec.column).largest_shift <= 5.0
    assert masked_share(release, DEMOGRAPHICS, len(records)) <= 0.25


@pytest.mark.slow
def test_10000_people_keep_their_shares_within_one_point() -> None:
    records = population(10_000, SEED)
    qis = quasi_identifiers()
    release = anonymise(records, qis, 5, max_suppressed=0.02)
    assert_k_anonymous(release, [q.column for q in qis], 5)
    for spec in demographic_specs(qis):
        assert release.levels[spec.column] <= len(spec.ladder), spec.column
        assert largest_shift(records, release, spec) <= 1.0, spec.column
    assert masked_share(release, DEMOGRAPHICS, len(records)) <= 0.02


@pytest.mark.parametrize(
    "focus", [("age", "channel"), ("status", "diploma")], ids=["age-channel", "status-diploma"]
)
def test_the_analysis_focus_keeps_its_columns_at_the_others_expense(
    focus: tuple[str, ...],
) -> None:
    records = population(300, SEED)
    plain = anonymise(records, quasi_identifiers(), 5, max_suppressed=0.25)
    focused_qis = quasi_identifiers(dict.fromkeys(focus, 5.0))
    focused = anonymise(records, focused_qis, 5, max_suppressed=0.25)
    assert_k_anonymous(focused, [q.column for q in focused_qis], 5)
    for spec in focused_qis:
        if spec.column in focus:
            assert focused.levels[spec.column] <= len(spec.ladder), spec.column
            assert largest_shift(records, focused, spec) <= 2.0, spec.column
            assert focused.levels[spec.column] <= plain.levels[spec.column]
    kept_plain = sum(
        plain.report.column(c).masked_share for c in (*DEMOGRAPHICS, "channel") if c in focus
    )
    kept_focused = sum(
        focused.report.column(c).masked_share for c in (*DEMOGRAPHICS, "channel") if c in focus
    )
    assert kept_focused <= kept_plain
    # The others pay: more of them masked than without a focus.
    others = [q.column for q in focused_qis if q.column not in focus]
    lost_plain = sum(plain.report.column(c).masked_share for c in others)
    lost_focused = sum(focused.report.column(c).masked_share for c in others)
    assert lost_focused > lost_plain


def test_the_report_describes_the_release() -> None:
    records = population(300, SEED)
    release = anonymise(records, quasi_identifiers(), 5, max_suppressed=0.25)
    report = release.report
    assert report.people == 300
    assert report.released + report.left_out == 300
    for column in report.columns:
        cells = [r[column.column] for r in release.records]
        assert column.cells_masked == sum(1 for v in cells if v is MASKED)
        assert column.level == release.levels[column.column]
        if column.shares:
            assert sum(s.true_share for s in column.shares) == pytest.approx(1.0)
            released = sum(s.released_count for s in column.shares)
            assert released == sum(1 for v in cells if v is not None and v is not MASKED)
        else:
            assert column.level_name == "masked" and column.masked_share == 1.0


def test_the_same_input_gives_the_same_release() -> None:
    records = population(300, SEED)
    first = anonymise(records, quasi_identifiers(), 5, max_suppressed=0.25)
    second = anonymise(records, quasi_identifiers(), 5, max_suppressed=0.25)
    assert first.records == second.records
    assert first.levels == second.levels


def _strata_records() -> list[dict[str, Any]]:
    """60 people: a fixed pattern (3 values, one of 3 people), two demographics."""
    records = []
    for i in range(60):
        pattern = "rare" if i < 3 else ("pair" if i % 2 else "single")
        records.append({"pattern": pattern, "a": f"a{i % 4}", "b": f"b{i % 3}"})
    return records


def test_a_fixed_column_is_never_coarsened_nor_masked() -> None:
    records = _strata_records()
    qis = [
        QuasiIdentifier("pattern", fixed=True),
        QuasiIdentifier("a", [lambda v: "any"]),
        QuasiIdentifier("b"),
    ]
    release = anonymise(records, qis, 5, max_suppressed=0.25)
    assert release.levels["pattern"] == 0
    assert all(r["pattern"] in ("pair", "single") for r in release.records)
    # The 3 people of the rare pattern cannot be hidden among others: left out.
    assert sorted(release.left_out) == [0, 1, 2]
    assert_k_anonymous(release, ["pattern", "a", "b"], 5)
    with pytest.raises(ValueError, match="fixed"):
        qis[0].apply(1, "pair")


def test_a_column_kept_whole_is_masked_cell_by_cell_not_for_everyone() -> None:
    # 'a' is cheap (weight 0.05): free, the engine masks it for everyone to hide two people
    # of unique values; kept whole, it stays raw and those two (no mask can hide them among
    # k) are left out.
    records = [{"a": f"a{i % 5}", "b": f"b{i % 2}"} for i in range(50)]
    records += [{"a": "a9", "b": "b0"}, {"a": "a8", "b": "b1"}]
    free = [QuasiIdentifier("a", weight=0.05), QuasiIdentifier("b")]
    kept = [QuasiIdentifier("a", weight=0.05, whole=True), QuasiIdentifier("b")]
    loose = anonymise(records, free, 5, max_suppressed=0.25)
    assert loose.levels["a"] == 1  # masked for everyone
    whole = anonymise(records, kept, 5, max_suppressed=0.25)
    assert_k_anonymous(whole, ["a", "b"], 5)
    assert whole.levels["a"] == 0
    assert whole.left_out == [50, 51]
    # With five such people, masking their five cells of 'a' hides them together.
    records = records[:50] + [{"a": f"a{5 + j}", "b": "b0"} for j in range(5)]
    whole = anonymise(records, kept, 5, max_suppressed=0.25)
    assert_k_anonymous(whole, ["a", "b"], 5)
    assert (whole.levels["a"], whole.left_out) == (0, [])
    assert whole.people_with_any_masked(["a"]) == 5
