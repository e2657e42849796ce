"""Exports of one evaluator joined on the people they share stay k-anonymous (joins.py).

Engine level: `joins.restrict` on made-up vectors (many random exports), and the real plan
(`anonymise.plan_records`) through the memory on the synthetic population.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from selfcheck.evaluation import anonymise, joins
from selfcheck.evaluation.anonymity import MASKED
from selfcheck.questionnaire.model import Definition
from tests.evaluation.plan_population import STRUCTURES, population

K = 5
ABSENT = "absent"


class Released:
    """Everything one evaluator was released: per export, person -> vector."""

    def __init__(self) -> None:
        self.exports: list[dict[int, str]] = []

    def add(self, vectors: Mapping[int, str]) -> None:
        self.exports.append(dict(vectors))

    def outer_join(self) -> Counter[tuple[str, ...]]:
        """The classes of the outer join: per person, their vector in each export."""
        people = set().union(*self.exports) if self.exports else set()
        return Counter(
            tuple(export.get(person, ABSENT) for export in self.exports) for person in people
        )


def _export(
    memory: joins.Memory, vectors: Mapping[int, str], released: Released
) -> tuple[joins.Memory, joins.Restricted]:
    decisions = {p: {"forms": 1, "q": v} for p, v in vectors.items()}
    restricted = joins.restrict(decisions, dict.fromkeys(vectors, 1), memory, K, "forms")
    shown = {**decisions, **restricted.merged}
    kept = {p: joins.vector(1, shown[p], "forms") for p in vectors if p not in restricted.left_out}
    released.add(kept)
    assert set(restricted.digests) == set(kept)
    return memory.after(restricted.digests), restricted


def test_random_exports_keep_every_join_class_at_k() -> None:
    # Many exports of random subsets with coarse random vectors (each a per-selection
    # k-anonymous release or not: the restriction must hold either way).
    rng = random.Random(7)
    for _ in range(20):
        memory, released = joins.Memory(b"s"), Released()
        for _export_number in range(6):
            people = rng.sample(range(200), rng.randint(20, 200))
            vectors = {p: f"v{rng.randint(0, rng.choice((1, 2, 4)))}" for p in people}
            memory, _ = _export(memory, vectors, released)
            classes = released.outer_join()
            assert min(classes.values()) >= K
            # Each file on its own too.
            for export in released.exports:
                assert min(Counter(export.values()).values(), default=K) >= K
        # The memory's partition is the outer join's.
        assert sorted(memory.sizes.values()) == sorted(released.outer_join().values())


def test_the_same_vectors_again_lose_nobody() -> None:
    vectors = {p: f"v{p % 3}" for p in range(30)}
    memory, released = joins.Memory(b"s"), Released()
    memory, first = _export(memory, vectors, released)
    memory, second = _export(memory, vectors, released)
    assert not first.left_out and not second.left_out


def test_a_class_split_under_k_is_released_alike_or_left_out_whole() -> None:
    # 10 people shown alike, then 3 of them with another vector: all 10 are released alike,
    # the cell they differ on masked (step 0), rather than the 3 "missing" from the class.
    memory, released = joins.Memory(b"s"), Released()
    memory, _ = _export(memory, dict.fromkeys(range(10), "v"), released)
    split = {p: ("w" if p < 3 else "v") for p in range(10)}
    memory, restricted = _export(memory, split, released)
    assert not restricted.left_out and set(restricted.merged) == set(range(10))
    assert all(values["q"] is MASKED for values in restricted.merged.values())
    # 8 of them again, 2 not in the selection: the 2 would be singled out as absent (step 2).
    memory, restricted = _export(memory, dict.fromkeys(range(8), "v"), released)
    assert restricted.left_out == frozenset(range(8))
    # A person never released before, alone with their vector: left out (step 1).
    memory, restricted = _export(memory, dict.fromkeys([*range(10), 99], "v"), released)
    assert restricted.left_out == frozenset({99})


def _plan(
    definition: Definition,
    records: Sequence[dict[str, Any]],
    ids: Sequence[int],
    memory: joins.Memory | None,
) -> anonymise.Plan:
    return anonymise.plan_records(
        ids,
        [records[i - 1] for i in ids],
        STRUCTURES,
        K,
        definition,
        rng=random.Random(0),
        memory=memory,
    )


def _vectors(plan: anonymise.Plan, records: Sequence[dict[str, Any]]) -> dict[int, str]:
    return {
        b: joins.vector(records[b - 1][anonymise.FORMS_PRESENT], v, anonymise.FORMS_PRESENT)
        for b, v in plan.decisions.items()
    }


def test_three_exports_a_then_a_and_b_then_b(definition: Definition) -> None:
    records = population(definition, 120, 3)
    a, b = list(STRUCTURES)[:2]
    in_a = [i for i in range(1, 121) if records[i - 1][anonymise.PLACE] == a]
    in_b = [i for i in range(1, 121) if records[i - 1][anonymise.PLACE] == b]
    memory, released = joins.Memory(b"s"), Released()
    plans = []
    for ids in (in_a, sorted(in_a + in_b), in_b):
        plan = _plan(definition, records, ids, memory)
        plans.append(plan)
        released.add(_vectors(plan, records))
        memory = memory.after(plan.digests)
        assert set(plan.digests) == set(plan.decisions)
        assert plan.people_left_out >= plan.left_out_for_joins
        assert plan.report()["people_left_out_for_earlier_exports"] == plan.left_out_for_joins
        assert min(released.outer_join().values()) >= K
    assert plans[0].left_out_for_joins == 0  # nothing earlier
    assert plans[0].people_exported > 0


def test_the_same_export_twice_loses_nobody_and_a_few_new_people_cost(
    definition: Definition,
) -> None:
    records = population(definition, 100, 5)
    ids = list(range(1, 96))
    memory = joins.Memory(b"s")
    first = _plan(definition, records, ids, memory)
    memory = memory.after(first.digests)
    again = _plan(definition, records, ids, memory)
    # The engine is deterministic: the same people, the same vectors, nobody lost.
    assert again.left_out_for_joins == 0
    assert _vectors(again, records) == _vectors(first, records)
    memory = memory.after(again.digests)
    # Five new people: whatever the plan now does, the join stays k-anonymous.
    released = Released()
    released.add(_vectors(first, records))
    released.add(_vectors(again, records))
    grown = _plan(definition, records, list(range(1, 101)), memory)
    released.add(_vectors(grown, records))
    assert min(released.outer_join().values()) >= K
    assert grown.people_exported + grown.people_left_out == 100
