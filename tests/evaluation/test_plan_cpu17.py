"""The plan's CPU cut (issue 18, round 17): the same release as before, by other means.

- the engine remembers each node's outliers (`_Search.count`) instead of grouping the
  records again: the search must visit the same nodes and release the same thing as when
  every count groups afresh;
- the engine reads the records' columns a row at a time (`_columns_of`): the same columns
  as `get` one value at a time, missing keys and other mappings included;
- `anonymise._verify` counts the combinations by one group id per person
  (`anonymity.combination_sizes`): the same people as `np.unique(..., axis=0)` found.
"""

from __future__ import annotations

import operator
import random
from collections import UserDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from selfcheck.evaluation import anonymise
from selfcheck.evaluation.anonymity import MASKED, engine
from selfcheck.evaluation.anonymity import anonymise as run_engine
from tests.evaluation.anonymity_population import population, quasi_identifiers


def _release_facts(release: Any) -> Any:
    return (
        release.levels,
        release.kept,
        release.left_out,
        release.records,
        release.report,
    )


@pytest.mark.parametrize(("people", "seed", "k"), [(300, 1, 5), (1200, 2, 3), (2000, 3, 10)])
def test_remembered_counts_release_the_same(
    monkeypatch: pytest.MonkeyPatch, people: int, seed: int, k: int
) -> None:
    records = population(people, seed)
    columns = quasi_identifiers()
    remembered = run_engine(records, columns, k)
    monkeypatch.setattr(engine, "REMEMBERED_BYTES", 0)  # every count groups afresh
    afresh = run_engine(records, columns, k)
    assert _release_facts(remembered) == _release_facts(afresh)
    assert remembered.report.nodes_evaluated == afresh.report.nodes_evaluated


def test_a_remembered_count_is_the_grouping() -> None:
    records = population(500, 4)
    specs = quasi_identifiers()
    names = [q.column for q in specs]
    raw = dict(zip(names, engine._columns_of(records, names), strict=True))
    prepared = [engine._prepare(q, raw[q.column]) for q in specs]
    columns = [c for c in prepared if c is not None]
    search = engine._Search(columns, len(records), 5, 0.05)
    rng = random.Random(5)
    nodes = [tuple(rng.randint(0, c.top) for c in columns) for _ in range(40)]
    for node in nodes + nodes:  # the second time from memory
        expected = engine._outliers(search.key(node), 5)
        found = search.count(node)
        assert found.dtype == np.bool_
        assert np.array_equal(found, expected)
    assert search.evaluated == 2 * len(nodes)
    assert len(search.remembered) == len(set(nodes))


def test_columns_read_a_row_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "_TRANSPOSED", 7)  # several slices, the last one short
    records = [{"a": i, "b": str(i), "c": None if i % 3 else (i,)} for i in range(30)]
    names = ["a", "b", "c"]
    by_get = [[r.get(n) for r in records] for n in names]
    assert engine._columns_of(records, names) == by_get
    # A record without a column: None there, as `get` gives.
    holed = [dict(r) for r in records]
    del holed[11]["b"]
    assert engine._columns_of(holed, names) == [[r.get(n) for r in holed] for n in names]
    # Other mappings, one column, no records.
    users: list[Mapping[str, Any]] = [UserDict(r) for r in records]
    assert engine._columns_of(users, names) == by_get
    assert engine._columns_of(records, ["b"]) == [by_get[1]]
    assert engine._columns_of([], names) == [[], [], []]


def _verify_before(
    decisions: Mapping[int, Mapping[str, Any]],
    records: Sequence[Mapping[str, Any]],
    ids: Sequence[int],
    k: int,
) -> list[int]:
    """`_verify` as it was at 2144b86 (np.unique over the stacked codes), the released
    values coded by type and `repr` (attack12)."""
    people = list(decisions)
    if not people:
        return []
    rows = list(decisions.values())
    names = sorted(name for name in rows[0] if name != anonymise.FORMS_PRESENT)
    pattern = {ids[i]: records[i][anonymise.FORMS_PRESENT] for i in range(len(ids))}
    columns = [anonymise._repr_codes(list(map(pattern.__getitem__, people)))]
    for name in names:
        # Type and repr (attack12: 1, 1.0 and True, 0.0 and -0.0 are written apart).
        column = list(map(operator.itemgetter(name), rows))
        alike: dict[tuple[type, str], int] = {}
        columns.append(np.array([alike.setdefault((type(v), repr(v)), len(alike)) for v in column]))
    _, inverse, counts = np.unique(
        np.stack(columns, axis=1), axis=0, return_inverse=True, return_counts=True
    )
    small = counts[inverse.reshape(-1)] < k
    return [people[i] for i in np.flatnonzero(small).tolist()]


@pytest.mark.parametrize("seed", range(6))
def test_verify_finds_the_same_people(seed: int) -> None:
    rng = random.Random(seed)
    size = rng.choice([1, 4, 60, 800])
    names = ["a", "b", "c", "d"][: rng.randint(1, 4)]
    domains: dict[str, list[Any]] = {
        "a": ["x", "y", None, MASKED],
        "b": [1, 2, "1", None],
        "c": ["2026-01", "2026-02", MASKED],
        "d": [("p", "q"), "p", None],
    }
    ids = rng.sample(range(10_000), size)
    records = [{anonymise.FORMS_PRESENT: rng.choice([1, 3, 5])} for _ in ids]
    decisions = {
        person: {name: rng.choice(domains[name]) for name in names}
        | {anonymise.FORMS_PRESENT: rng.choice([1, 3])}
        for person in ids
    }
    for k in (1, 2, 5):
        assert anonymise._verify(decisions, records, ids, k) == _verify_before(
            decisions, records, ids, k
        )
    assert anonymise._verify({}, [], [], 5) == []
