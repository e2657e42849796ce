"""Attack (round 13): many exports of one evaluator through the real plan and the memory,
with random structures, sizes, forms and analysis focuses: their outer join keeps k."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from selfcheck.evaluation import anonymise, joins
from selfcheck.questionnaire.model import Definition
from tests.evaluation.plan_population import STRUCTURES, population

K = 5


@pytest.mark.slow  # 15 plans of up to 150 people: about 6 s on 2 busy cores
def test_random_exports_through_the_real_plan_keep_the_join_at_k(definition: Definition) -> None:
    focuses: list[str | None] = [None, *(focus.code for focus in definition.disclosure.focus)]
    assert len(focuses) > 1  # focus changes change the masking: part of the attack
    for seed in range(3):
        rng = random.Random(seed)
        records = population(definition, 150, seed)
        memory = joins.Memory(b"s")
        released: list[dict[int, str]] = []
        for _step in range(5):
            chosen = set(rng.sample(list(STRUCTURES), rng.randint(1, 3)))
            upto = rng.choice([100, 130, 150])  # people arrive between exports
            ids = [i for i in range(1, upto + 1) if records[i - 1][anonymise.PLACE] in chosen]
            if rng.random() < 0.3:  # a forms filter: the people with a 'before' form
                ids = [i for i in ids if records[i - 1][anonymise.FORMS_PRESENT] & 1]
            plan = anonymise.plan_records(
                ids,
                [records[i - 1] for i in ids],
                STRUCTURES,
                K,
                definition,
                rng.choice(focuses),
                rng=random.Random(0),
                memory=memory,
            )
            shown = {
                person: joins.vector(
                    plan.patterns[person],
                    {c: v for c, v in values.items() if c != "_department"},
                    anonymise.FORMS_PRESENT,
                )
                for person, values in plan.decisions.items()
            }
            released.append(shown)
            memory = memory.after(plan.digests)
            people = set().union(*released)
            joined = Counter(tuple(r.get(p, "absent") for r in released) for p in people)
            assert min(joined.values()) >= K, (seed, sorted(joined.values())[:4])
            assert min(Counter(shown.values()).values(), default=K) >= K
