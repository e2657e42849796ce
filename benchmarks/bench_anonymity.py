"""The anonymity engine on a population drawn like the reference survey: utility and time.

Run from the repository root:

    .venv/bin/python benchmarks/bench_anonymity.py            # 300 and 10,000 people, 5 rounds
    .venv/bin/python benchmarks/bench_anonymity.py --quick    # 2 rounds

Data: the synthetic population of the engine's tests (tests/evaluation/anonymity_population.py,
seed 2023): 75 % aged 60+, 70 % retired, 72 % women, 59 % below the baccalauréat, 43 % urban,
1 % no answer per demographic question, 3 structures of one department, and every other
column of an export that can single someone out (months of the forms, channel, wording,
pattern of forms): 13 quasi-identifiers, 2 of them constant. k = 5; suppression limit 25 %
at 300 people and 2 % at 10,000 (the goals of issue 17). A second run at 3 % no answer shows
how much the goals depend on the missing values (each one is a value of its own).

Figures: per size, the largest shift of a demographic share between true and released data
(points), the share of people with any demographic value masked or left out, the people left
out, the smallest released group (counted again here), and the time of `anonymise`.
Baseline for the time, in the same run: one pass counting people per combination of raw
quasi-identifier values (collections.Counter over tuples), the least any k check costs.
Then the real export plan (`anonymise.plan_records`: the item bank's ladders, weights and
suppression limit, which shrinks with the selection: 25 % at 300 people, 2 % at 10,000) on
people drawn like the demo population (tests/evaluation/plan_population.py), 5 seeds at 300
people and 2 at 10,000 (1 with --quick): per seed the largest demographic shift against
everyone in scope (people left out included), the people with a demographic value masked
or left out, and the time.
Goals: shares within 5 points and at most 25 % masked at 300; within 1 point and at most 2 %
at 10,000; anonymising 10,000 people in under 3 s. Missing a goal is printed, not an error.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
for path in (ROOT, BENCH_DIR):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from common import row, write_result  # noqa: E402

from selfcheck.evaluation.anonymity import Release, anonymise  # noqa: E402
from tests.evaluation.anonymity_population import (  # noqa: E402
    DEMOGRAPHICS,
    population,
    quasi_identifiers,
)

K = 5
SEED = 2023
SIZES = ((300, 0.25, 5.0), (10_000, 0.02, 1.0))  # people, suppression limit, share goal
GOAL_SECONDS = 3.0
PLAN_GOALS = {300: (5.0, 0.25), 10_000: (1.0, 0.02)}  # share shift (points), people masked


def largest_shift(records: list[dict[str, Any]], release: Release) -> tuple[float, str]:
    worst = (0.0, "-")
    for spec in quasi_identifiers():
        if spec.column not in DEMOGRAPHICS:
            continue
        if release.levels[spec.column] > len(spec.ladder):
            return (100.0, f"{spec.column} masked")
        for share in release.report.column(spec.column).shares:
            worst = max(worst, (abs(share.shift), f"{spec.column}={share.category}"))
    return worst


def count_groups(records: list[dict[str, Any]], columns: list[str]) -> int:
    counts = Counter(tuple(r[c] for c in columns) for r in records)
    return len(counts)


def timed(function: Any, rounds: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def measure(people: int, limit: float, goal: float, missing: float, rounds: int) -> list[Any]:
    records = population(people, SEED, missing=missing)
    qis = quasi_identifiers()
    columns = [q.column for q in qis]
    base, _ = timed(lambda: count_groups(records, columns), rounds)
    seconds, release = timed(lambda: anonymise(records, qis, K, max_suppressed=limit), rounds)
    smallest = min(Counter(tuple(r[c] for c in columns) for r in release.records).values())
    shift, where = largest_shift(records, release)
    masked = (release.people_with_any_masked(DEMOGRAPHICS) + len(release.left_out)) / people
    tag = f"{people:,} people, {missing:.0%} no answer"
    report = release.report
    print(f"\n## {tag}: k = {K}, suppression limit {limit:.0%}")
    print(
        f"loss {report.loss:.3f}, nodes grouped {report.nodes_evaluated}, "
        f"exhaustive {report.exhaustive}, left out {report.left_out}"
    )
    print("| column | level | masked | largest shift (points) |")
    print("|---|---|---:|---:|")
    for column in report.columns:
        print(
            f"| {column.column} | {column.level_name}{' (constant)' if column.constant else ''}"
            f" | {column.masked_share:.1%} | {column.largest_shift:.2f} |"
        )
    print(
        f"largest demographic shift {shift:.2f} points ({where}); demographics masked "
        f"{masked:.1%}; smallest group {smallest}; {seconds * 1000:.0f} ms "
        f"(counting groups once: {base * 1000:.1f} ms, x{seconds / base:.0f})"
    )
    rows = [
        row(
            f"largest demographic share shift, {tag}",
            round(shift, 2),
            "points",
            goal=f"<= {goal:g}",
            met=shift <= goal,
        ),
        row(
            f"people with a demographic value masked or left out, {tag}",
            round(100 * masked, 2),
            "%",
            goal=f"<= {limit:.0%}",
            met=masked <= limit,
        ),
        row(f"people left out, {tag}", float(report.left_out), "people", goal="few"),
        row(
            f"smallest released group, {tag}",
            float(smallest),
            "people",
            goal=f">= {K}",
            met=smallest >= K,
        ),
        row(
            f"anonymise, {tag}",
            round(seconds, 3),
            "s",
            baseline="one pass counting groups",
            baseline_value=round(base, 4),
            goal=f"< {GOAL_SECONDS:g} s at 10,000",
            met=seconds < GOAL_SECONDS if people >= 10_000 else None,
        ),
    ]
    return rows


def measure_plan(people: int, seeds: tuple[int, ...], rounds: int) -> list[Any]:
    """The real export plan (item bank ladders, weights and size-dependent suppression
    limit; every quasi-identifying column) on people drawn like the demo population
    (tests/evaluation/plan_population.py), several seeds: the goal figures of issue 17."""
    import random

    from selfcheck.evaluation import anonymise
    from selfcheck.questionnaire.loader import load_definition
    from tests.evaluation.plan_population import STRUCTURES, largest_shifts
    from tests.evaluation.plan_population import population as plan_population

    definition = load_definition()
    share_goal, masked_goal = PLAN_GOALS[people]
    limit = definition.disclosure.suppression_limit(people)
    rows: list[Any] = []
    worst_shift, worst_lost, slowest = 0.0, 0.0, 0.0
    print(f"\n## Export plan, {people:,} people: k = {K}, suppression limit {limit:.1%}")
    print("| seed | largest shift (points) | demographic masked or left out | left out | s |")
    print("|---:|---:|---:|---:|---:|")
    for seed in seeds:
        records = plan_population(definition, people, seed)
        ids = list(range(1, people + 1))

        def run(
            records: list[dict[str, Any]] = records, ids: list[int] = ids, seed: int = seed
        ) -> Any:
            return anonymise.plan_records(
                ids, records, STRUCTURES, K, definition, rng=random.Random(seed)
            )

        seconds, plan = timed(run, rounds)
        shifts = largest_shifts(definition, plan, records)
        shift = max(shifts.values())
        lost = (plan.people_with_demographic_masked() + plan.people_left_out) / people
        worst_shift, worst_lost = max(worst_shift, shift), max(worst_lost, lost)
        slowest = max(slowest, seconds)
        print(f"| {seed} | {shift:.2f} | {lost:.1%} | {plan.people_left_out} | {seconds:.1f} |")
    tag = f"export plan, {people:,} people, {len(seeds)} seeds"
    rows.append(
        row(
            f"largest demographic share shift (worst seed), {tag}",
            round(worst_shift, 2),
            "points",
            goal=f"<= {share_goal:g}",
            met=worst_shift <= share_goal,
        )
    )
    rows.append(
        row(
            f"people with a demographic masked or left out (worst seed), {tag}",
            round(100 * worst_lost, 2),
            "%",
            goal=f"<= {masked_goal:.0%}",
            met=worst_lost <= masked_goal,
        )
    )
    rows.append(row(f"plan (slowest seed), {tag}", round(slowest, 2), "s", goal="-"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2 rounds instead of 5")
    args = parser.parse_args(argv)
    rounds = 2 if args.quick else 5
    rows: list[Any] = []
    for missing in (0.01, 0.03):
        for people, limit, goal in SIZES:
            rows += measure(people, limit, goal, missing, rounds)
    rows += measure_plan(300, (1, 2, 3, 4, 5), 1)
    rows += measure_plan(10_000, (1,) if args.quick else (1, 2), 1)
    path = write_result("anonymity", rows, quick=args.quick)
    print(f"\n{path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
