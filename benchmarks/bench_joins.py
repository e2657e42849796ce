"""What keeping the join of one evaluator's exports k-anonymous costs (evaluation/joins.py).

Run from the repository root:

    .venv/bin/python benchmarks/bench_joins.py            # 10,000 people
    .venv/bin/python benchmarks/bench_joins.py --quick    # 2,000 people

Data: the plan's synthetic population (tests/evaluation/plan_population.py, seed 11), k = 5.
Figures: the time of the join step alone (vectors, `joins.restrict`, digests) for an export
of everyone after an earlier one, against the plan itself (`anonymise.plan_records`, the
baseline); the people left out when the same export is made again (goal: none); and the
people left out for the join when 1 % new people arrived since the first export (no goal:
how much a changed plan costs, said in the report). Measured (2 cores, 10,000 people): the
plan 0.84 s, the join step 0.13 s; the same export again loses nobody; after 100 new people,
98 are left out (new people are released only once k of them share a vector: fewer would be
"the rows not in the earlier file").
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
for path in (ROOT, BENCH_DIR):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from common import row, write_result  # noqa: E402

from selfcheck.evaluation import anonymise, joins  # noqa: E402
from selfcheck.questionnaire import load_definition  # noqa: E402
from selfcheck.questionnaire.loader import DEFAULT_DEFINITION  # noqa: E402
from tests.evaluation.plan_population import STRUCTURES, population  # noqa: E402

K = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    size = 2_000 if parser.parse_args().quick else 10_000
    definition = load_definition(DEFAULT_DEFINITION)
    records = population(definition, size, 11)
    grown = size + size // 100
    more = population(definition, grown, 12)[size:]
    everyone = records + more
    first_ids = list(range(1, size + 1))

    def plan(ids: list[int], memory: joins.Memory | None) -> tuple[anonymise.Plan, float]:
        start = time.perf_counter()
        result = anonymise.plan_records(
            ids,
            [everyone[i - 1] for i in ids],
            STRUCTURES,
            K,
            definition,
            rng=random.Random(0),
            memory=memory,
        )
        return result, time.perf_counter() - start

    memory = joins.Memory(b"bench")
    first, _ = plan(first_ids, memory)
    memory = memory.after(first.digests)
    _, alone = plan(first_ids, None)
    again, with_memory = plan(first_ids, memory)
    after_new, _ = plan(list(range(1, grown + 1)), memory)
    cost = max(with_memory - alone, 0.0)
    print(f"{size} people: plan {alone:.2f} s, with the join step {with_memory:.2f} s")
    print(f"same export again: {again.left_out_for_joins} left out for the join")
    print(
        f"after {grown - size} new people: {after_new.left_out_for_joins} left out for the join "
        f"({after_new.people_exported} exported of {grown})"
    )
    summary = [
        row(
            f"join step, {size} people",
            round(cost, 3),
            "s",
            baseline="the plan alone",
            baseline_value=round(alone, 3),
            goal="< 0.5 s (an export job writes for seconds)",
            met=cost < 0.5,
        ),
        row(
            "same export again: people left out for the join",
            again.left_out_for_joins,
            "people",
            goal="0",
            met=again.left_out_for_joins == 0,
        ),
        row(
            f"after 1 % new people: people left out for the join (of {grown})",
            after_new.left_out_for_joins,
            "people",
            goal="reported (no goal)",
        ),
    ]
    write_result("joins", summary)


if __name__ == "__main__":
    main()
