"""attack12: pg19's facts (one WITH per sending on PostgreSQL) checked against a
recomputation after every step of odd sequences: the same person sent twice over, an erasure
or a purge between a person's forms, a move between structures, follow-ups on people gone.
Held on SQLite and PostgreSQL (`SELFCHECK_TEST_DATABASE_URL`)."""

from __future__ import annotations

import pytest

from tests.services.evaluation.test_facts import World, check_facts, check_stored_facts, world

__all__ = ["world"]  # the fixture

SEQUENCES = [
    ["new", "after", "after", "edit", "after", "erase", "new", "after"],
    ["new", "followup", "followup", "purge", "followup", "after", "move", "edit"],
    ["new", "new", "move", "move", "delete_response", "after", "untimed", "erase"],
    ["untimed", "after", "followup", "erase", "purge", "new", "followup", "delete_response"],
]


@pytest.mark.slow  # a recomputation after each step
@pytest.mark.parametrize("sequence", SEQUENCES)
def test_facts_equal_a_recomputation_after_each_step(world: World, sequence: list[str]) -> None:
    # The stored facts after each step (what the sending's one WITH writes); the figures read
    # from them once, at the end (the property tests of test_facts.py read them at each step).
    for step, operation in enumerate(sequence):
        world.run(operation, 7919 * step + len(sequence))
        check_stored_facts(world)
    check_facts(world)
