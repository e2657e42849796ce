"""The plan's CPU cut of round 19 (issue 18, part 4): the same plan as before, by other means.

- `anonymise._shared_decisions` groups the people by integer codes (the engine's codes of
  the columns it generalised, `Release.codes`; each distinct object of the others): the
  same values for every person and the same sharing of dicts as keying each person's
  values by their types and `repr`;
- `anonymise._verify` codes each distinct decisions dict once: the same people found as
  coding every person's values (with dicts shared or not);
- `bundle.plan_and_write` keeps the objects alive before it out of the garbage
  collector's passes (`gc.freeze`) and gives them back.

The plain path's rows (XLSX...): tests/services/evaluation/test_export_rows19.py.
"""

from __future__ import annotations

import gc
import math
import random
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pytest

from selfcheck.evaluation import anonymise, bundle
from selfcheck.evaluation.anonymity import MASKED, combination_ids
from selfcheck.evaluation.anonymity import anonymise as run_engine
from tests.evaluation.anonymity_population import population, quasi_identifiers
from tests.evaluation.test_plan_cpu17 import _verify_before


def _shared_before(
    ids: Sequence[int],
    kept: Iterable[int],
    names: Sequence[str],
    released: Iterable[tuple[Any, ...]],
) -> dict[int, dict[str, Any]]:
    """`_shared_decisions` as it was at 04f1da0 (a key of types and `repr` per person)."""
    shared: dict[tuple[Any, ...], dict[str, Any]] = {}
    decisions: dict[int, dict[str, Any]] = {}
    for index, combination in zip(kept, released, strict=True):
        key = (*map(type, combination), *map(repr, combination))
        decision = shared.get(key)
        if decision is None:
            decision = shared[key] = dict(zip(names, combination, strict=True))
        decisions[ids[index]] = decision
    return decisions


def _sharing(decisions: dict[int, dict[str, Any]]) -> list[list[int]]:
    """The people grouped by the dict they share, in order."""
    groups: dict[int, list[int]] = {}
    for person, values in decisions.items():
        groups.setdefault(id(values), []).append(person)
    return list(groups.values())


def _same_decisions(new: dict[int, dict[str, Any]], old: dict[int, dict[str, Any]]) -> None:
    assert list(new) == list(old)
    for person, values in new.items():
        assert list(values) == list(old[person])
        # The very objects: each combination's dict holds its first person's values.
        assert all(value is old[person][name] for name, value in values.items()), person
    assert _sharing(new) == _sharing(old)


@pytest.mark.parametrize(("people", "seed", "k"), [(300, 1, 5), (1200, 2, 3), (2000, 3, 10)])
def test_decisions_from_the_engines_codes_are_the_same(people: int, seed: int, k: int) -> None:
    records = population(people, seed)
    specs = quasi_identifiers()
    names = [q.column for q in specs]
    release = run_engine(records, specs, k, rows=False)
    assert release.codes  # the engine generalised some columns
    for name, (codes, values) in release.codes.items():
        assert [values[code] for code in codes.tolist()] == list(release.columns[name])
    ids = [10_000 + 7 * index for index in range(people)]
    before = _shared_before(
        ids, release.kept, names, zip(*(release.columns[n] for n in names), strict=True)
    )
    with_codes = anonymise._shared_decisions(
        ids, release.kept, names, release.columns, release.codes
    )
    without_codes = anonymise._shared_decisions(ids, release.kept, names, release.columns)
    _same_decisions(with_codes, before)
    _same_decisions(without_codes, before)


def test_values_alike_by_type_and_repr_only() -> None:
    nan, other_nan = float("nan"), float("nan")
    names = ["a", "b"]
    combinations = [
        (1, "x"),
        (True, "x"),
        (1.0, "x"),
        (0.0, "x"),
        (-0.0, "x"),
        (nan, "x"),
        (other_nan, "x"),  # another object, the same type and repr: alike
        (MASKED, "x"),
        (None, "x"),
        (1, "x"),
        ("1", "x"),
    ]
    columns = {n: list(v) for n, v in zip(names, zip(*combinations, strict=True), strict=True)}
    ids = list(range(len(combinations)))
    new = anonymise._shared_decisions(ids, ids, names, columns)
    old = _shared_before(ids, ids, names, iter(combinations))
    _same_decisions(new, old)
    assert math.isnan(new[6]["a"]) and new[6] is new[5]
    # The engine's codes of a column: the values of each code coded by type and repr too.
    codes = {"a": (np.arange(len(combinations)), [c[0] for c in combinations])}
    _same_decisions(anonymise._shared_decisions(ids, ids, names, columns, codes), old)
    assert anonymise._shared_decisions([], [], names, {"a": [], "b": []}) == {}


def test_some_people_left_out() -> None:
    names = ["a"]
    ids = [5, 6, 7, 8]
    kept = [0, 2, 3]
    columns = {"a": ["x", "y", "x"]}
    codes = {"a": (np.array([0, 1, 0]), ["x", "y", MASKED])}
    new = anonymise._shared_decisions(ids, kept, names, columns, codes)
    assert new == {5: {"a": "x"}, 7: {"a": "y"}, 8: {"a": "x"}}
    assert new[5] is new[8]


@pytest.mark.parametrize("seed", range(8))
def test_verify_by_distinct_dict_finds_the_same_people(seed: int) -> None:
    rng = random.Random(seed)
    size = rng.choice([1, 5, 60, 900])
    names = ["a", "b", "c", "d"][: rng.randint(1, 4)]
    domains: dict[str, list[Any]] = {
        "a": ["x", "y", None, MASKED],
        "b": [1, 2, "1", None, True, 1.0],
        "c": ["2026-01", "2026-02", MASKED, 0.0, -0.0],
        "d": [("p", "q"), "p", None],
    }
    ids = rng.sample(range(10_000), size)
    records = [{anonymise.FORMS_PRESENT: rng.choice([1, 3, 5])} for _ in ids]
    # A few dicts shared by many people, and copies equal to them held apart.
    pool = [
        {name: rng.choice(domains[name]) for name in names}
        | {anonymise.FORMS_PRESENT: rng.choice([1, 3])}
        for _ in range(rng.randint(1, 12))
    ]
    decisions = {
        person: (dict(chosen) if rng.random() < 0.3 else chosen)
        for person, chosen in ((p, rng.choice(pool)) for p in ids)
    }
    for k in (1, 2, 5, 20):
        assert anonymise._verify(decisions, records, ids, k) == _verify_before(
            decisions, records, ids, k
        )


def test_combination_ids_number_the_distinct_combinations() -> None:
    rng = np.random.default_rng(3)
    columns = [(rng.integers(0, card, 500), card) for card in (1, 3, 7, 2)]
    codes, count = combination_ids(columns, 500)
    stacked = np.stack([c for c, _ in columns], axis=1)
    _, inverse = np.unique(stacked, axis=0, return_inverse=True)
    assert count == int(inverse.max()) + 1
    # The same partition: equal codes exactly for equal rows.
    pairs = set(zip(codes.tolist(), inverse.reshape(-1).tolist(), strict=True))
    assert len(pairs) == count
    assert combination_ids([(np.zeros(0, dtype=np.int64), 1)], 0)[1] == 0


def test_earlier_objects_set_aside_then_given_back() -> None:
    assert gc.get_freeze_count() == 0
    earlier = [[] for _ in range(10)]
    with bundle._earlier_objects_set_aside():
        assert gc.get_freeze_count() > 0
        cycle: list[Any] = []
        cycle.append(cycle)
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), bundle._earlier_objects_set_aside():
        raise RuntimeError
    assert gc.get_freeze_count() == 0
    # Someone else's freeze is left as it is.
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with bundle._earlier_objects_set_aside():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
    assert earlier
