"""Utility of the anonymised export (issue 17): shares kept, people masked, people left out.

Run from the repository root:

    .venv/bin/python benchmarks/bench_export_utility.py              # 300 and 10,000 people
    .venv/bin/python benchmarks/bench_export_utility.py --people 300 # one size only

Data: N people drawn from the reference survey's marginals and answered or typed in through
the real services (`demo.generate_demo`), spread over 3 structures of one department, in a
fresh SQLite database. The export plan (`anonymise.plan`: every quasi-identifying column,
the item bank's ladders and weights) runs at k = 5 without focus and with each analysis
focus of the item bank. Printed per run: seconds, people left out, share of people with at
least one demographic value masked, the level of each demographic and the largest shift of
its shares (true vs released, at the released level, among known values).

Goals (issue 17): at 300 people every demographic share within 5 points and at most 25 % of
people with a demographic value masked, the focused columns within 2 points; at 10,000
people within 1 point and at most 2 % masked. Missing a goal is printed, not an error.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
for path in (ROOT, BENCH_DIR):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from common import row, write_result  # noqa: E402

K = 5
GOALS = {300: (5.0, 0.25), 10_000: (1.0, 0.02)}


def populate(url: str, instance: Path, people: int) -> Any:
    from sqlalchemy import select, update

    from selfcheck import create_app, demo
    from selfcheck.accounts.structures import create_structure
    from selfcheck.platform import migrate
    from selfcheck.platform.db import get_session, make_engine
    from selfcheck.platform.models import Beneficiary, Response

    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": instance, "TESTING": True})
    with app.test_request_context("/"):
        db = get_session()
        definition = app.extensions["selfcheck.definition"]
        demo.generate_demo(db, definition, respondents=people, seed=2023)
        home = demo.demo_structure(db)
        others = [
            create_structure(db, "Espace Sud", "rural", home.department, "espace-sud"),
            create_structure(db, "Accueil Est", "urbain", home.department, "accueil-est"),
        ]
        ids = list(db.scalars(select(Beneficiary.id).order_by(Beneficiary.id)))
        for index, other in enumerate(others):
            chosen = ids[index::3]
            db.execute(
                update(Beneficiary).where(Beneficiary.id.in_(chosen)).values(structure_id=other.id)
            )
            db.execute(
                update(Response)
                .where(Response.beneficiary_id.in_(chosen))
                .values(structure_id=other.id)
            )
        db.commit()
    return app


def measure(app: Any, focus: str | None) -> dict[str, Any]:
    from collections import Counter

    from selfcheck.evaluation import anonymise
    from selfcheck.evaluation.anonymity import MASKED
    from selfcheck.evaluation.scope import EvaluationFilters
    from selfcheck.platform.db import get_session
    from selfcheck.platform.models import Structure
    from selfcheck.questionnaire.model import NO_ANSWER

    with app.test_request_context("/"):
        db = get_session()
        definition = app.extensions["selfcheck.definition"]
        filters = EvaluationFilters(structure_ids=tuple(s.id for s in db.query(Structure)))
        start = time.perf_counter()
        ids, records, departments = anonymise.collect(db, filters, definition)
        plan = anonymise.plan_records(ids, records, departments, K, definition, focus)
        seconds = time.perf_counter() - start
        raw = dict(zip(ids, records, strict=True))
        columns: dict[str, tuple[str, float]] = {}
        specs = {s.column: s for s in anonymise.engine_columns(definition, departments, focus)}
        for name in plan.demographic_columns:
            level = plan.release.levels[name]
            spec = specs[name]
            true = Counter(
                spec.apply(level, raw[b][name])
                for b in ids
                if raw[b][name] not in (None, NO_ANSWER)
            )
            out = Counter(
                v
                for b in plan.order
                if (v := plan.decisions[b][name]) not in (None, NO_ANSWER) and v is not MASKED
            )
            shift = max(
                (
                    abs(100 * out[c] / max(sum(out.values()), 1) - 100 * n / sum(true.values()))
                    for c, n in true.items()
                ),
                default=0.0,
            )
            columns[name] = (spec.level_name(level), 0.0 if level > len(spec.ladder) else shift)
        masked = plan.people_with_demographic_masked() / max(plan.people, 1)
        return {
            "seconds": seconds,
            "left_out": plan.people_left_out,
            "masked": masked,
            "columns": columns,
        }


def measure_export(app: Any, folder: Path) -> dict[str, Any]:
    """A real export (bundle.run_export, CSV wide, no focus) read back from its zip as an
    analyst would (the tests' independent reader): people exported, people with a
    demographic value masked, the smallest group over every quasi-identifying column, and
    the largest shift of a demographic share against the raw answers."""
    from collections import Counter

    from selfcheck.accounts import auth
    from selfcheck.evaluation import anonymise, bundle
    from selfcheck.evaluation.export import Shape, qi_values
    from selfcheck.evaluation.scope import parse_filters
    from selfcheck.platform.db import get_session
    from selfcheck.platform.models import Role
    from selfcheck.questionnaire.model import NO_ANSWER
    from tests.services.evaluation.kanon_check import group_sizes, read_rows

    masked_code, no_answer_code = -7, -8
    with app.test_request_context("/"):
        db = get_session()
        definition = app.extensions["selfcheck.definition"]
        user = auth.create_user(
            db, auth.NewUser("bench@example.org", Role.PLATFORM_ADMIN, None), "bench-password-42"
        )
        db.commit()
        filters = parse_filters(db, user, {})
        _ids, raw, _places = anonymise.collect(db, filters, definition)
        out = folder / "export"
        out.mkdir()
        start = time.perf_counter()
        result = bundle.run_export(
            db, definition, user, filters, bundle.ExportRequest("csv", Shape.WIDE), K, out
        )
        db.commit()
        seconds = time.perf_counter() - start
        smallest = min(group_sizes(result.zip_path).values())
        _names, rows = read_rows(result.zip_path)
        items = list(definition.quasi_identifiers())
        columns = [i.quasi_identifier.column for i in items if i.quasi_identifier]
        masked = sum(1 for row in rows if any(row[c] == masked_code for c in columns))
        largest = 0.0
        for item in items:
            assert item.quasi_identifier is not None
            column = item.quasi_identifier.column
            codes = {n: c for c, n in qi_values(item).items()}
            values = [row[column] for row in rows]
            released = [codes[v] for v in values if v not in (None, masked_code, no_answer_code)]
            if not released:
                continue
            mapping: dict[str, str] = {}
            groups = {g.code for g in item.quasi_identifier.groups()}
            if any(code in groups for code in released):
                for step in item.quasi_identifier.ladder:
                    if any(g.code in released for g in step.groups):
                        mapping = {o: g.code for g in step.groups for o in g.options}
            true = Counter(mapping.get(r[column], r[column]) for r in raw)
            del true[None], true[NO_ANSWER]
            out_counts = Counter(released)
            for category, n in true.items():
                shift = abs(
                    100 * out_counts[category] / len(released) - 100 * n / sum(true.values())
                )
                largest = max(largest, shift)
        return {
            "seconds": seconds,
            "people": len(raw),
            "exported": result.report["people_exported"],
            "masked": masked / max(len(raw), 1),
            "left_out": result.report["people_left_out"] / max(len(raw), 1),
            "smallest_group": smallest,
            "largest_shift": largest,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, action="append")
    sizes = parser.parse_args().people or [300, 10_000]
    summary: list[dict[str, Any]] = []
    for people in sizes:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/bench.sqlite"
            started = time.perf_counter()
            app = populate(url, Path(folder), people)
            print(f"{people} people generated in {time.perf_counter() - started:.0f} s")
            definition = app.extensions["selfcheck.definition"]
            shift_goal, masked_goal = GOALS.get(people, (5.0, 0.25))
            for focus in [None, *(f.code for f in definition.disclosure.focus)]:
                result = measure(app, focus)
                print(
                    f"  focus={focus or '-'}: {result['seconds']:.1f} s, left out "
                    f"{result['left_out']}, demographic masked {100 * result['masked']:.1f} % "
                    f"(goal <= {100 * masked_goal:.0f} %)"
                )
                for name, (level, shift) in result["columns"].items():
                    flag = "" if level == "masked" or shift <= shift_goal else "  <- over goal"
                    print(f"    {name:10} {level:12} largest shift {shift:4.1f} pts{flag}")
            figures = measure_export(app, Path(folder))
            print(
                f"  through the export (CSV wide, read back): {figures['seconds']:.1f} s, "
                f"exported {figures['exported']} of {figures['people']}, smallest group "
                f"{figures['smallest_group']}, demographic masked "
                f"{100 * figures['masked']:.1f} % (goal <= {100 * masked_goal:.0f} %), left "
                f"out {100 * figures['left_out']:.1f} %, largest shift "
                f"{figures['largest_shift']:.1f} pts (goal <= {shift_goal:.0f})"
            )
            summary += [
                row(
                    f"{people} people: demographic value masked (export read back)",
                    round(100 * figures["masked"], 1),
                    "%",
                    goal=f"<= {100 * masked_goal:.0f} %",
                    met=figures["masked"] <= masked_goal,
                ),
                row(
                    f"{people} people: largest demographic shift (export read back)",
                    round(figures["largest_shift"], 2),
                    "points",
                    goal=f"<= {shift_goal:.0f}",
                    met=figures["largest_shift"] <= shift_goal,
                ),
                row(
                    f"{people} people: smallest group over every QI column",
                    figures["smallest_group"],
                    "people",
                    goal=f">= {K}",
                    met=figures["smallest_group"] >= K,
                ),
                row(
                    f"{people} people: left out",
                    round(100 * figures["left_out"], 1),
                    "%",
                    goal="<= 2 %" if people >= 10_000 else "-",
                    met=figures["left_out"] <= 0.02 if people >= 10_000 else None,
                ),
            ]
    write_result("export_utility", summary)


if __name__ == "__main__":
    main()
