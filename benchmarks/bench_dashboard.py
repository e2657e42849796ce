"""Time to serve the evaluator dashboard at 100,000 respondents, on SQLite and PostgreSQL.

Run from the repository root:

    .venv/bin/python benchmarks/bench_dashboard.py            # 100,000 people, 5 rounds
    .venv/bin/python benchmarks/bench_dashboard.py --quick    # 3,000 people, 2 rounds: smoke
    SELFCHECK_BENCH_POSTGRES_URL=postgresql+psycopg://…@127.0.0.1/scratch \
        .venv/bin/python benchmarks/bench_dashboard.py --people 1000000 --only postgresql

The population is written with bulk inserts (not through the web): 100,000 beneficiaries of
20 structures, their responses (55 % before/after pairs, 15 % before only, 30 % retrospective,
and a follow-up for half of the people whose follow-up had opened: about 170,000 forms) and
their answers. Answers are copied in SQL from 400 template people
drawn by the demo generator (the reference survey's marginals), so the answer table holds
realistic values (about 6.5 million rows) without 6.5 million Python objects. The loads go
around the application's sessions, so the dashboard's facts (`selfcheck/evaluation/facts.py`)
are then built by `facts.rebuild`, the migration's backfill, timed and reported.

Target: `GET /evaluate/` (every table of the dashboard, k = 5, all filters empty) by an
evaluator granted every structure, through the Flask test client (routing, session, SQL,
Jinja, SVG), and the CSV download of one table. Baseline, in the same run on the same
database: one `SELECT COUNT(*)` over the same answer rows (answers joined to the submitted
responses in scope), the least any dashboard reading every answer once could cost.

Goal (issues 5 and 18): the first view under 1 s, at 100,000 people on SQLite and at
1,000,000 on PostgreSQL (`--people 1000000 --only postgresql --bulk`: not part of `run_all.py`
nor of CI). `--bulk` (PostgreSQL) writes the same population with COPY, drops the answers'
constraints and indexes during the load and builds them after it, and computes the facts once
per (template, forms) with the code the writes use instead of reading 65 million answers back
(`populate_bulk`, `bulk_facts`; tests/test_bench_dashboard.py checks they equal
`facts.rebuild`).

Databases: a throw-away SQLite file, and PostgreSQL when SELFCHECK_BENCH_POSTGRES_URL is set
(that database is emptied and rebuilt: point it at a scratch database); otherwise PostgreSQL
rows say "not run". Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
GOAL_SECONDS = 1.0
TEMPLATES = 400
STRUCTURES = 20
PASSWORD = "une phrase de passe pour le banc d'essai"
# The app's secret in every run: the cells' digests of a reused database are keyed by it.
BENCH_SECRET = "selfcheck-bench-dashboard-secret-key-not-for-production"
POSTGRES_ENV = "SELFCHECK_BENCH_POSTGRES_URL"

if str(ROOT) not in sys.path:  # so `selfcheck` imports when run as a plain script
    sys.path.insert(0, str(ROOT))

from flask import Flask  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402
from sqlalchemy import (  # noqa: E402
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import SQLAlchemyError  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402
from sqlalchemy.schema import AddConstraint, CreateIndex, DropConstraint, DropIndex  # noqa: E402

from selfcheck import create_app, demo  # noqa: E402
from selfcheck.accounts import auth  # noqa: E402
from selfcheck.evaluation import facts  # noqa: E402
from selfcheck.evaluation.guard_views import CHECKED_KEY, FIGURES_CHECKED_KEY  # noqa: E402
from selfcheck.evaluation.scope import EvaluationFilters, response_conditions  # noqa: E402
from selfcheck.journey import operations as journey  # noqa: E402
from selfcheck.platform import migrate  # noqa: E402
from selfcheck.platform.db import make_engine  # noqa: E402
from selfcheck.platform.models import (  # noqa: E402
    Answer,
    Beneficiary,
    FactCell,
    FactFollowup,
    FactTally,
    Response,
    ResponseFact,
    Role,
    Structure,
)
from selfcheck.questionnaire import load_definition  # noqa: E402
from selfcheck.questionnaire.loader import DEFAULT_DEFINITION  # noqa: E402
from selfcheck.questionnaire.model import (  # noqa: E402
    END_FORMS,
    FOLLOWUP_FORMS,
    NO_ANSWER,
    Definition,
    FormKind,
)
from selfcheck.questionnaire.model import Role as ItemRole  # noqa: E402

PATHS = {"pre_post": 0.55, "before_only": 0.15, "retro": 0.30}
ADDED = "Z"  # the code's start of the people written by `--change` (the population's: "B")

CELL_KEY = facts.cell_key(BENCH_SECRET)


# --- the population -----------------------------------------------------------------------


def template_answers(
    definition: Definition, rng: random.Random, templates: int = TEMPLATES
) -> list[dict[str, Any]]:
    """Answers of `templates` demo people, per form: rows (template, form, variable, value)."""
    marginals = demo.Marginals()
    solved = demo.plan(marginals)
    choosers = demo._cached_choosers(definition)
    rows: list[dict[str, Any]] = []
    for template in range(templates):
        profile = demo._profile(demo._pick(rng, marginals.typology))
        drawn = demo.draw_facts(rng, profile, marginals, solved)
        level = rng.uniform(*demo.LEVELS[drawn[f"{ItemRole.COMFORT.value}@start"][0]])
        for form in FormKind:
            person = demo.Person(profile, level, profile.gain, random.Random(template), fixed=drawn)
            person.accompanied = form is not FormKind.BEFORE
            answers: journey.Answers = {}
            for variable in definition.variables(form):
                if not journey.is_visible(variable.item, answers):
                    continue
                given = demo._answer(choosers, person, variable, answers)
                answers[variable.code] = tuple(given)
                rows += [
                    {
                        "template": template,
                        "form": form.value,
                        "variable": variable.code,
                        "value": v,
                    }
                    for v in given
                    if v != NO_ANSWER
                ]
    return rows


def reset(engine: Engine) -> None:
    with engine.begin() as connection:
        reflected = MetaData()
        reflected.reflect(connection)
        reflected.drop_all(connection)
    migrate.upgrade(engine)


FOLLOWED = 0.5  # of the people whose follow-up had opened: they sent it
FOLLOWUP_DAYS = 95  # about three months after the end form (the structures' default delay)


def plan_people(
    people: int, rng: random.Random, start: datetime, now: datetime
) -> Iterator[tuple[int, int, str, list[tuple[str, datetime]]]]:
    """(person, structure, channel, [(form, sent at), ...]) of each respondent: before/after
    pairs, before only, retrospective forms, and a follow-up for half of the people with an
    end form whose follow-up had opened."""
    for person in range(1, people + 1):
        structure = rng.randrange(STRUCTURES) + 1
        path = demo._pick(rng, PATHS)
        forms = {
            "pre_post": ("before", "after"),
            "before_only": ("before",),
            "retro": ("retro",),
        }[path]
        day = start + timedelta(days=rng.uniform(0, 180))
        channel = "paper" if rng.random() < 0.21 else "online"
        sent = [(form, day + timedelta(days=30 * offset)) for offset, form in enumerate(forms)]
        if forms[-1] != "before":
            later = sent[-1][1] + timedelta(days=FOLLOWUP_DAYS + rng.uniform(0, 20))
            if later < now and rng.random() < FOLLOWED:
                sent.append((FormKind.FOLLOWUP.value, later))
        yield person, structure, channel, sent


def _structures(start: datetime) -> list[dict[str, Any]]:
    return [
        {
            "id": i + 1,
            "slug": f"bench-{i + 1}",
            "name": f"Structure {i + 1}",
            "territory_type": ("urbain", "periurbain", "rural")[i % 3],
            "department": "44" if i < STRUCTURES // 2 else "75",
            "created_at": start,
            "double_entry_percent": 0,
            "after_due_weeks": 6,
        }
        for i in range(STRUCTURES)
    ]


def _response(
    response_id: int,
    person: int,
    structure: int,
    form: str,
    moment: datetime,
    channel: str,
    definition: Definition,
) -> dict[str, Any]:
    return {
        "id": response_id,
        "beneficiary_id": person,
        "structure_id": structure,
        "form": form,
        "definition_id": definition.id,
        "definition_version": definition.version,
        "channel": channel,
        "locale": "fr",
        "status": "submitted",
        "created_at": moment,
        "updated_at": moment,
        "submitted_at": moment,
        "double_entry_wanted": False,
        "wording": "standard",
    }


def _copy_answers(connection: Connection, templates: list[dict[str, Any]], count: int) -> None:
    """Each person takes the answers of template (id mod count), whatever their forms."""
    connection.execute(
        text(
            "CREATE TEMPORARY TABLE bench_template "
            "(template INTEGER, form VARCHAR(16), variable VARCHAR(40), value TEXT)"
        )
    )
    connection.execute(
        text("INSERT INTO bench_template VALUES (:template, :form, :variable, :value)"),
        templates,
    )
    connection.execute(
        text(
            "INSERT INTO answer (response_id, variable, value, definition_version) "
            "SELECT r.id, t.variable, t.value, r.definition_version FROM response r "
            "JOIN bench_template t ON t.template = r.beneficiary_id % :n AND t.form = r.form"
        ),
        {"n": count},
    )
    connection.execute(text("DROP TABLE bench_template"))


def _move_sequences(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # The ids were given explicitly: move the sequences past them.
        for table in ("structure", "beneficiary", "response"):
            connection.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT MAX(id) FROM {table}))"
                )
            )


def populate(
    engine: Engine,
    definition: Definition,
    people: int,
    seed: int = 2023,
    templates: int = TEMPLATES,
) -> int:
    """Bulk-insert `people` respondents; returns the number of answer rows."""
    rng = random.Random(seed)
    drawn = template_answers(definition, rng, templates)
    now = datetime.now(UTC)
    start = now - timedelta(days=200)
    with engine.begin() as connection:
        connection.execute(insert(Structure), _structures(start))
        beneficiaries = []
        responses = []
        response_id = 0
        for person, structure, channel, sent in plan_people(people, rng, start, now):
            beneficiaries.append(
                {
                    "id": person,
                    "code": f"B{person:010d}",
                    "structure_id": structure,
                    "created_at": start,
                }
            )
            for form, moment in sent:
                response_id += 1
                responses.append(
                    _response(response_id, person, structure, form, moment, channel, definition)
                )
        for chunk in _chunks(beneficiaries, 20_000):
            connection.execute(insert(Beneficiary), chunk)
        for chunk in _chunks(responses, 20_000):
            connection.execute(insert(Response), chunk)
        _copy_answers(connection, drawn, templates)
        _move_sequences(connection)
        count = connection.scalar(select(func.count()).select_from(Answer)) or 0
    with engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()
    return int(count)


# --- the bulk builder (--bulk): PostgreSQL COPY, facts computed once per template -------------


class Raw(str):
    """Fields already in COPY's text format (several, joined by tabs)."""


def _copy_text(value: Any) -> str:
    """One field of PostgreSQL's COPY text format."""
    if isinstance(value, Raw):
        return value
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


class Sink:
    """Where bulk rows go: COPY on PostgreSQL, executemany elsewhere (the tests' SQLite)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.copying = connection.dialect.name == "postgresql"

    def write(self, table: Any, columns: list[str], rows: Iterable[tuple[Any, ...]]) -> int:
        written = 0
        if self.copying:
            cursor = self.connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
            with cursor.copy(statement) as copy:
                lines: list[str] = []
                for row in rows:
                    lines.append("\t".join(map(_copy_text, row)))
                    if len(lines) >= 20_000:
                        copy.write("\n".join(lines) + "\n")
                        written += len(lines)
                        lines = []
                if lines:
                    copy.write("\n".join(lines) + "\n")
                    written += len(lines)
            return written
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(dict(zip(columns, row, strict=True)))
            if len(batch) >= 20_000:
                self.connection.execute(insert(table), batch)
                written += len(batch)
                batch = []
        if batch:
            self.connection.execute(insert(table), batch)
            written += len(batch)
        return written


PER_PERSON = ("response_id", "beneficiary_id", "structure_id", "form", "channel")
PER_PERSON += ("submitted_at", "month", "ended_at", "followed")


def bulk_facts(
    sink: Sink,
    definition: Definition,
    people: Iterable[tuple[int, int, str, list[tuple[str, datetime]]]],
    drawn: list[dict[str, Any]],
    templates: int,
) -> tuple[int, int]:
    """`response_fact` and `fact_tally` of a population built from templates, without reading
    its answers: a person's facts depend only on their template's answers and their forms, so
    each (template, forms) is computed once by facts.person_rows (the code the writes use),
    then copied with the person's ids, structure, channel and times; the tally's cells are one
    matrix product (people per cell x lines per template). Returns (fact rows, tally cells).
    tests/test_bench_dashboard.py checks the result equals facts.rebuild."""
    current = facts.plan(definition)
    read = set(current.read)
    answers: dict[tuple[int, str], dict[str, list[str]]] = {}
    for row in drawn:
        if row["variable"] in read:
            found = answers.setdefault((row["template"], row["form"]), {})
            found.setdefault(row["variable"], []).append(row["value"])
    cached: dict[tuple[int, tuple[str, ...]], list[dict[str, Any]]] = {}
    shared = [column for column in facts.COLUMNS if column not in PER_PERSON]
    some_day = datetime(2026, 1, 1, tzinfo=UTC)
    shapes: dict[tuple[int, str], int] = {}  # (template, forms) -> its tally's column
    counts: Counter[tuple[int, str, str, str, int]] = Counter()  # cell, shape -> responses
    tallies: list[dict[tuple[str, str], int]] = []
    escaped: dict[int, Raw] = {}

    def rows() -> Iterator[tuple[Any, ...]]:
        response_id = 0
        for person, structure, channel, sent in people:
            template = person % templates
            forms = tuple(form for form, _moment in sent)
            computed = cached.get((template, forms))
            if computed is None:
                submitted = [
                    facts.Submitted(
                        index + 1,
                        1,
                        1,
                        form,
                        channel,
                        some_day,
                        answers.get((template, form), {}),
                        None,
                    )
                    for index, form in enumerate(forms)
                ]
                computed = cached[(template, forms)] = facts.person_rows(
                    current, definition, submitted
                )
            ends = [moment for form, moment in sent if FormKind(form) in END_FORMS]
            ended = min(ends) if ends else None
            followed = any(FormKind(form) in FOLLOWUP_FORMS for form, _moment in sent)
            for (form, moment), row in zip(sent, computed, strict=True):
                response_id += 1
                month = facts.month_of(moment)
                shape = shapes.get((template, "+".join(forms) + ":" + form))
                if shape is None:
                    shape = shapes[(template, "+".join(forms) + ":" + form)] = len(tallies)
                    tallies.append({(k, v): n for k, v, n in facts.parse_tally(row["tally"])})
                counts[(structure, month, form, channel, shape)] += 1
                values = (response_id, person, structure, form, channel, moment, month, ended)
                if sink.copying:  # the columns shared by every person of the template, once
                    tail = escaped.get(id(row))
                    if tail is None:
                        tail = escaped[id(row)] = Raw(
                            "\t".join(_copy_text(row[column]) for column in shared)
                        )
                    yield (*values, followed, tail)
                else:
                    yield (*values, followed, *(row[column] for column in shared))

    written = sink.write(ResponseFact.__table__, [*PER_PERSON, *shared], rows())
    # The tally: cells x shapes (people) @ shapes x lines (numbers), months and all months.
    import numpy as np

    lines = sorted({line for tally in tallies for line in tally})
    line_index = {line: i for i, line in enumerate(lines)}
    numbers = np.zeros((len(tallies), len(lines)))
    for shape, tally in enumerate(tallies):
        for line, number in tally.items():
            numbers[shape, line_index[line]] = number
    cells: dict[tuple[int, str, str, str], int] = {}
    for structure, month, form, channel, _shape in counts:
        for cell in (
            (structure, month, form, channel),
            (structure, facts.ALL_MONTHS, form, channel),
        ):
            cells.setdefault(cell, len(cells))
    people_in = np.zeros((len(cells), len(tallies)))
    for (structure, month, form, channel, shape), number in counts.items():
        people_in[cells[(structure, month, form, channel)], shape] += number
        people_in[cells[(structure, facts.ALL_MONTHS, form, channel)], shape] += number
    totals = np.rint(people_in @ numbers).astype(np.int64)
    names = list(cells)

    def cube() -> Iterator[tuple[Any, ...]]:
        for i, j in zip(*np.nonzero(totals), strict=True):
            key, value = lines[j]
            yield (*names[i], key, value, int(totals[i, j]))

    cells_written = sink.write(FactTally.__table__, list(facts.CELL_COLUMNS), cube())
    return written, cells_written


BULK_STEPS = ("people", "answers", "indexes", "facts", "vacuum")


def _planned_from(connection: Connection) -> list[tuple[int, int, str, list[tuple[str, datetime]]]]:
    """The people as `plan_people` drew them, read back from the responses (a later step)."""
    planned: list[tuple[int, int, str, list[tuple[str, datetime]]]] = []
    for person, structure, channel, form, moment in connection.execute(
        select(
            Response.beneficiary_id,
            Response.structure_id,
            Response.channel,
            Response.form,
            Response.submitted_at,
        ).order_by(Response.id)
    ):
        if not planned or planned[-1][0] != person:
            planned.append((person, structure, channel, []))
        planned[-1][3].append((form, moment))
    return planned


def populate_bulk(
    engine: Engine,
    definition: Definition,
    people: int,
    seed: int = 2023,
    templates: int = TEMPLATES,
    only: Sequence[str] = BULK_STEPS,
) -> tuple[int, dict[str, float]]:
    """The population of `populate` (the same people, forms, times and answers) and its facts,
    written with COPY on PostgreSQL: the answers' constraints and indexes are dropped during
    the load and built again after it, the facts computed from the templates (`bulk_facts`)
    instead of read back from the answers. Returns (answer rows, seconds per step).

    Each step (BULK_STEPS) commits on its own, and `only` runs some of them: a large build
    can be split into runs of a few minutes (`--bulk-steps`), in this order."""
    rng = random.Random(seed)
    drawn = template_answers(definition, rng, templates)
    now = datetime.now(UTC)
    start = now - timedelta(days=200)
    steps: dict[str, float] = {}
    planned = list(plan_people(people, rng, start, now)) if "people" in only else None
    answer_table = Answer.__table__
    kept_constraints = [
        c for c in answer_table.constraints if not isinstance(c, PrimaryKeyConstraint)
    ]
    copying = engine.dialect.name == "postgresql"  # SQLite (the tests) cannot drop a constraint

    @contextmanager
    def step(name: str) -> Iterator[Connection]:
        started = time.perf_counter()
        with engine.begin() as connection:
            if copying:
                connection.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
            yield connection
        steps[name] = time.perf_counter() - started

    if planned is not None:
        with step("people and responses") as connection:
            sink = Sink(connection)
            connection.execute(insert(Structure), _structures(start))
            sink.write(
                Beneficiary.__table__,
                ["id", "code", "structure_id", "created_at"],
                (
                    (person, f"B{person:010d}", structure, start)
                    for person, structure, _c, _s in planned
                ),
            )

            def responses() -> Iterator[tuple[Any, ...]]:
                response_id = 0
                for person, structure, channel, sent in planned:
                    for form, moment in sent:
                        response_id += 1
                        yield tuple(
                            _response(
                                response_id, person, structure, form, moment, channel, definition
                            ).values()
                        )

            columns = list(_response(0, 0, 0, "", start, "", definition))
            sink.write(Response.__table__, columns, responses())
            _move_sequences(connection)
    if "answers" in only:
        with step("answers") as connection:
            for index in answer_table.indexes if copying else ():
                connection.execute(DropIndex(index, if_exists=True))
            for constraint in kept_constraints if copying else ():
                connection.execute(DropConstraint(constraint, if_exists=True))
            _copy_answers(connection, drawn, templates)
    if "indexes" in only:
        with step("answers' indexes and constraints") as connection:
            for constraint in kept_constraints if copying else ():
                connection.execute(AddConstraint(constraint))
            for index in answer_table.indexes if copying else ():
                connection.execute(CreateIndex(index))
    if "facts" in only:
        with step("facts") as connection:
            if planned is None:
                planned = _planned_from(connection)
            bulk_facts(Sink(connection), definition, planned, drawn, templates)
            facts.rebuild_cells(connection, CELL_KEY)  # the cells' digests
            facts.rebuild_followup(connection, CELL_KEY)  # the follow-up figures' cells
    with engine.connect() as connection:
        count = connection.scalar(select(func.count()).select_from(Answer)) or 0
    if "vacuum" not in only:
        return int(count), steps
    started = time.perf_counter()
    # VACUUM too: the covering indexes are then read without visiting the tables.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(
            text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE")
        )
    steps["vacuum and analyze"] = time.perf_counter() - started
    return int(count), steps


def _chunks(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


# --- measuring ------------------------------------------------------------------------------


@contextmanager
def counting(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


def timed(
    call: Callable[[], Any], rounds: int, before: Callable[[], Any] | None = None
) -> tuple[float, list[float]]:
    """The median of `rounds` timed calls (`before` runs before each, not timed)."""
    times = []
    for _ in range(rounds):
        if before is not None:
            before()
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def built(engine: Engine, people: int) -> tuple[int, bool] | None:
    """(answer rows, facts present) of a population of `people` already built, else None."""
    try:
        with engine.connect() as connection:
            # Not the people `--change` writes (and removes after): a rerun reuses the population.
            found = connection.scalar(
                select(func.count())
                .select_from(Beneficiary)
                .where(Beneficiary.code.not_like(f"{ADDED}%"))
            )
            with_facts = connection.scalar(select(func.count()).select_from(ResponseFact))
            answers = connection.scalar(select(func.count()).select_from(Answer))
    except SQLAlchemyError:  # no tables yet: build
        return None
    return (int(answers or 0), bool(with_facts)) if found == people else None


def build(
    url: str,
    people: int,
    reuse: bool,
    refacts: bool = False,
    bulk: bool = False,
    bulk_steps: Sequence[str] = BULK_STEPS,
) -> tuple[int, float | None, float | None]:
    """(answer rows, build seconds, facts seconds); the times are None when reused."""
    definition = load_definition(DEFAULT_DEFINITION)
    engine = make_engine(url)
    try:
        found = built(engine, people) if reuse else None
        if found is not None:
            # A database built by an earlier version: its facts' migrations (their backfill).
            migrate.upgrade(engine)
        partial = bulk and tuple(bulk_steps) != BULK_STEPS
        if partial or (found is None and bulk):
            if "people" in bulk_steps:
                reset(engine)
            started = time.perf_counter()
            answers, steps = populate_bulk(engine, definition, people, only=bulk_steps)
            build_seconds = time.perf_counter() - started
            for step, seconds in steps.items():
                print(f"  {step}: {seconds:.0f} s", file=sys.stderr)
            print(
                f"  {', '.join(bulk_steps)} built (bulk) in {build_seconds:.0f} s", file=sys.stderr
            )
            return answers, build_seconds, steps.get("facts")
        if found is not None and found[1] and not refacts:
            print(f"  reusing the population of {people} people already built", file=sys.stderr)
            _cells_under_the_bench_key(engine)
            return found[0], None, None
        build_seconds: float | None = None
        if found is not None:
            answers = found[0]
            print(f"  reusing the population of {people} people: facts again", file=sys.stderr)
        else:
            reset(engine)
            started = time.perf_counter()
            answers = populate(engine, definition, people)
            build_seconds = time.perf_counter() - started
            print(f"  population built in {build_seconds:.0f} s", file=sys.stderr)
        started = time.perf_counter()
        with Session(engine, info={facts.CELL_KEY_INFO: CELL_KEY}) as session:
            facts.rebuild(session, definition)
            session.commit()
        facts_seconds = time.perf_counter() - started
        print(f"  facts built in {facts_seconds:.0f} s", file=sys.stderr)
        with engine.connect() as connection:
            connection.execute(text("ANALYZE"))
            connection.commit()
    finally:
        engine.dispose()
    return answers, build_seconds, facts_seconds


def _cells_under_the_bench_key(engine: Any) -> None:
    """The cells' digests are keyed by the app's secret: a database whose cells were made
    under another key (or none) gets them again (about 2 min at 1,000,000 people), else no
    view is ever sealed and the benchmark would measure the full check only. The same for
    the follow-up figures' cells (fact_followup; made without a key by a bare migration)."""
    import numpy as np

    with engine.begin() as connection:
        lasting = connection.execute(
            select(
                FactFollowup.structure_id,
                FactFollowup.month,
                FactFollowup.form,
                FactFollowup.channel,
                FactFollowup.kept,
                FactFollowup.d0,
            )
            .where(FactFollowup.kept != "", FactFollowup.n > 0)
            .order_by(FactFollowup.n)
            .limit(1)
        ).first()
        people = (
            list(
                connection.scalars(
                    select(ResponseFact.beneficiary_id).where(
                        ResponseFact.structure_id == lasting.structure_id,
                        ResponseFact.month == lasting.month,
                        ResponseFact.form == lasting.form,
                        ResponseFact.channel == lasting.channel,
                        ResponseFact.kept == lasting.kept,
                    )
                )
            )
            if lasting is not None
            else []
        )
        parts = facts.figure_parts(np.array(people, dtype=np.int64), CELL_KEY)
        if lasting is not None and int(parts[:, 0].sum()) != lasting.d0:
            started = time.perf_counter()
            facts.rebuild_followup(connection, CELL_KEY)
            print(
                f"  follow-up cells' digests under the benchmark's key: "
                f"{time.perf_counter() - started:.0f} s",
                file=sys.stderr,
            )
    with engine.begin() as connection:
        cell = connection.execute(
            select(
                FactCell.structure_id, FactCell.month, FactCell.form, FactCell.channel, FactCell.d0
            )
            .where(FactCell.month == facts.ALL_MONTHS, FactCell.n > 0)
            .order_by(FactCell.n)
            .limit(1)
        ).first()
        if cell is not None:
            rows = facts.cell_rows(connection, ResponseFact.structure_id == cell.structure_id)
            sums = facts.cell_sums(rows, CELL_KEY)
            found = sums.get((cell.structure_id, cell.month, cell.form, cell.channel))
            if found is not None and int(found[1]) == cell.d0:
                return
        started = time.perf_counter()
        facts.rebuild_cells(connection, CELL_KEY)
        print(
            f"  cells' digests under the benchmark's key: {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )


DASHBOARD = "/evaluate/?ready=1"


def signed_in_evaluator(app: Flask) -> FlaskClient:
    """A new evaluator of departments 44 and 75 (password only), signed in: a reused
    database has others."""
    db = app.extensions["selfcheck.platform.db"]
    email = f"bench-{time.time_ns()}@example.org"
    with db.session() as session:
        user = auth.create_user(session, auth.NewUser(email, Role.EVALUATOR, None), PASSWORD)
        session.commit()
        for department in ("44", "75"):
            auth.grant(session, user, department=department)
            session.commit()
    client = app.test_client()
    login = client.post("/staff/login", data={"email": email, "password": PASSWORD})
    if login.status_code != 302:
        raise RuntimeError(f"could not sign in: {login.status_code}")
    return client


def measure(
    url: str,
    database: str,
    people: int,
    rounds: int,
    tmp: Path,
    reuse: bool = False,
    profile: bool = False,
    refacts: bool = False,
    bulk: bool = False,
    bulk_steps: Sequence[str] = BULK_STEPS,
    change: str | None = None,
) -> list[dict[str, Any]]:
    answers, build_seconds, facts_seconds = build(url, people, reuse, refacts, bulk, bulk_steps)
    definition = load_definition(DEFAULT_DEFINITION)
    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": BENCH_SECRET,
            "INSTANCE_PATH": tmp,
            "TESTING": True,
            "WTF_CSRF_ENABLED": False,
            # A password-only evaluator: the second factor is not what is measured.
            "SELFCHECK_TOTP_REQUIRED": False,
        }
    )
    db = app.extensions["selfcheck.platform.db"]
    client = signed_in_evaluator(app)

    # `ready=1`: the dashboard itself, never the page that announces a first view of a large
    # selection (evaluation/first_view.py), which a browser shows before it.
    def dashboard() -> None:
        response = client.get(DASHBOARD)
        if response.status_code != 200 or b"preparing-status" in response.data:
            raise RuntimeError(f"dashboard answered {response.status_code}")

    def download() -> None:
        response = client.get("/evaluate/tables/typology.csv")
        if response.status_code != 200:
            raise RuntimeError(f"CSV answered {response.status_code}")

    filters = EvaluationFilters(structure_ids=tuple(range(1, STRUCTURES + 1)))
    baseline_query = (
        select(func.count())
        .select_from(Answer)
        .join(Response, Response.id == Answer.response_id)
        .where(*response_conditions(filters))
    )

    def baseline() -> None:
        with db.session() as session:
            session.scalar(baseline_query)

    elsewhere: list[int] = []

    def write_one() -> None:
        """One new person with one submitted form, through the app's sessions (the facts
        follow): inside the evaluator's selection (`--change inside`, structure 1), or in a
        structure of another department, outside it (`--change elsewhere`)."""
        with db.session() as session:
            if change == "elsewhere" and not elsewhere:
                outside = Structure(
                    name="Ailleurs",
                    slug=f"bench-ailleurs-{time.time_ns()}",
                    territory_type="rural",
                    department="13",
                )
                session.add(outside)
                session.flush()
                elsewhere.append(outside.id)
            structure = elsewhere[0] if change == "elsewhere" else 1
            moment = datetime.now(UTC)
            code = f"{ADDED}{time.time_ns() % 10**14}"
            person = Beneficiary(code=code, structure_id=structure)
            session.add(person)
            session.flush()
            fields = _response(0, person.id, structure, "retro", moment, "online", definition)
            del fields["id"]
            session.add(Response(**fields))
            session.commit()

    def cold() -> None:
        # As after any change to the data: the differencing check runs again (its memory of
        # views already checked is keyed by the data's stamp).
        app.extensions.pop(CHECKED_KEY, None)
        # ... and so does the follow-up figures' one (guard_figures_here), keyed the same way.
        app.extensions.pop(FIGURES_CHECKED_KEY, None)
        dashboard()

    baseline()  # warm-up: connections open
    with counting(db.engine) as statements:
        cold()  # also compiles the templates (and seals its check, when one is sealed)
    # Another new evaluator's very first view, in this now warm process: nothing of theirs
    # remembered, so the differencing checks read, hash and remember the whole selection.
    newcomer = signed_in_evaluator(app)
    began = time.perf_counter()
    first = newcomer.get("/evaluate/")  # the announcement first, above its bound
    first_request = time.perf_counter() - began
    announced: float | None = None
    if first.status_code == 200 and b"preparing-status" in first.data:
        announced = first_request
        began = time.perf_counter()
        first = newcomer.get(DASHBOARD)  # where the browser goes a second later
        first_request = time.perf_counter() - began
    if first.status_code != 200 or b"preparing-status" in first.data:
        raise RuntimeError("a new evaluator's first view failed")
    first_ever = first_request
    base_value, _ = timed(baseline, rounds)
    cold_value, cold_times = timed(cold, max(1, min(rounds, 2)), write_one if change else None)
    warm_value, _ = timed(dashboard, rounds)
    csv_value, _ = timed(download, rounds)
    if profile:
        if change:
            write_one()
        profiled(db.engine, cold)
    if change:  # the people written, removed through the app (their facts too)
        with db.session() as session:
            added = select(Beneficiary.id).where(Beneficiary.code.like(f"{ADDED}%"))
            for response in session.scalars(
                select(Response).where(Response.beneficiary_id.in_(added))
            ):
                session.delete(response)
            session.flush()
            for person in session.scalars(select(Beneficiary).where(Beneficiary.id.in_(added))):
                session.delete(person)
            session.flush()
            for structure in session.scalars(select(Structure).where(Structure.id.in_(elsewhere))):
                session.delete(structure)
            session.commit()
    db.dispose()
    built_in = "reused" if build_seconds is None else f"built in {build_seconds:.0f} s"
    facts_in = "" if facts_seconds is None else f", facts in {facts_seconds:.0f} s"
    print(
        f"  {database}: {people} people, {answers} answers ({built_in}{facts_in}), "
        f"dashboard cold {cold_value:.3f} s ({', '.join(f'{t:.3f}' for t in cold_times)}), "
        f"cached {warm_value:.3f} s, first view ever of a new evaluator {first_ever:.3f} s, "
        f"{len(statements)} SQL statements",
        file=sys.stderr,
    )
    baseline_name = "COUNT(*) over the same answers"

    def ratio(value: float) -> float | None:
        return value / base_value if base_value else None

    return [
        row(
            f"dashboard, first view (computed{f', new answer {change}' if change else ''}), "
            f"{people} respondents",
            database,
            cold_value,
            "s",
            baseline_name,
            base_value,
            ratio(cold_value),
            cold_value < GOAL_SECONDS,
        ),
        row(
            f"dashboard, first view ever of a new evaluator (warm process), {people} respondents",
            database,
            first_ever,
            "s",
            baseline_name,
            base_value,
            ratio(first_ever),
            first_ever < GOAL_SECONDS,
        ),
        *(
            []
            if announced is None
            else [
                row(
                    f"dashboard, a new evaluator's first request: the announcement, {people} "
                    "respondents",
                    database,
                    announced,
                    "s",
                    baseline_name,
                    base_value,
                    ratio(announced),
                    announced < 0.2,
                    goal="< 0.2 s",
                )
            ]
        ),
        row(
            f"dashboard, seen again, {people} respondents",
            database,
            warm_value,
            "s",
            baseline_name,
            base_value,
            ratio(warm_value),
            warm_value < GOAL_SECONDS,
        ),
        row(
            f"CSV of one table, {people} respondents",
            database,
            csv_value,
            "s",
            baseline_name,
            base_value,
            ratio(csv_value),
            csv_value < GOAL_SECONDS,
        ),
        row(
            "SQL statements per dashboard computation",
            database,
            float(len(statements)),
            "statements",
            None,
            None,
            None,
            None,
            goal="a few, not one per cell",
        ),
        row("answer rows", database, float(answers), "rows", None, None, None, None, goal="-"),
    ] + (
        []
        if facts_seconds is None
        else [
            row(
                f"facts backfill (migration 0012 / selfcheck facts rebuild), {people} respondents",
                database,
                facts_seconds,
                "s",
                None,
                None,
                None,
                None,
                goal="-",
            )
        ]
    )


def profiled(engine: Engine, call: Callable[[], None]) -> None:
    """One more first view under cProfile: the heaviest functions and SQL statements."""
    timings: list[tuple[float, str]] = []
    started: list[float] = []

    def before(*_args: Any) -> None:
        started.append(time.perf_counter())

    def after(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        timings.append((time.perf_counter() - started.pop(), " ".join(statement.split())[:160]))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    profiler = cProfile.Profile()
    try:
        profiler.runcall(call)
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
    print(out.getvalue(), file=sys.stderr)
    print(f"  {len(timings)} SQL statements, {sum(t for t, _ in timings):.3f} s:", file=sys.stderr)
    for seconds, statement in sorted(timings, reverse=True)[:15]:
        print(f"  {seconds:8.3f} s  {statement}", file=sys.stderr)


def row(
    figure: str,
    database: str | None,
    value: float,
    unit: str,
    baseline: str | None,
    baseline_value: float | None,
    ratio: float | None,
    met: bool | None,
    goal: str = "< 1 s",
) -> dict[str, Any]:
    return {
        "figure": figure,
        "database": database,
        "value": round(value, 4),
        "unit": unit,
        "baseline": baseline,
        "baseline_value": None if baseline_value is None else round(baseline_value, 4),
        "ratio": None if ratio is None else round(ratio, 2),
        "goal": goal,
        "met": met,
    }


def not_run(people: int) -> list[dict[str, Any]]:
    return [
        row(
            f"dashboard, {people} respondents (not run: {POSTGRES_ENV} unset)",
            "postgresql",
            0.0,
            "s",
            None,
            None,
            None,
            None,
        )
    ]


def machine() -> dict[str, Any]:
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        load = float(Path("/proc/loadavg").read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        load = None
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "load_1min": load,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| figure | database | value | baseline | x baseline | goal | met |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        base = "" if r["baseline_value"] is None else f"{r['baseline_value']} s"
        ratio = "" if r["ratio"] is None else f"{r['ratio']}"
        met = "" if r["met"] is None else ("yes" if r["met"] else "NO")
        lines.append(
            f"| {r['figure']} | {r['database']} | {r['value']} {r['unit']} | {base} | {ratio} "
            f"| {r['goal']} | {met} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3,000 people, 2 rounds")
    parser.add_argument("--people", type=int, default=None, help="override the population size")
    parser.add_argument(
        "--only",
        choices=("sqlite", "postgresql"),
        default=None,
        help="one database only (the 1,000,000-person PostgreSQL case)",
    )
    parser.add_argument(
        "--sqlite-file",
        type=Path,
        default=None,
        help="keep the SQLite database in this file (default: a temporary one)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure a population already built (same --people, facts present) without "
        "rebuilding it: the SQLite file of --sqlite-file, the PostgreSQL database",
    )
    parser.add_argument(
        "--build-only",
        action="store_true",
        help="build the population and its facts, measure nothing (then --reuse)",
    )
    parser.add_argument(
        "--rebuild-facts",
        action="store_true",
        help="with --reuse: build the facts again (after a change to facts.py)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="also print a cProfile of one first view"
    )
    parser.add_argument(
        "--bulk-steps",
        default=",".join(BULK_STEPS),
        help="with --bulk: only these steps of the build, each committed on its own, in this "
        f"order ({','.join(BULK_STEPS)}): a long build in runs of a few minutes (then "
        "measured, unless --build-only)",
    )
    parser.add_argument(
        "--bulk",
        action="store_true",
        help="PostgreSQL: build the population with COPY, the answers' indexes built after "
        "the load, and its facts computed once per template (populate_bulk): the "
        "1,000,000-person case",
    )
    parser.add_argument(
        "--change",
        choices=("inside", "elsewhere"),
        default=None,
        help="before each first view, write one new answered form through the app: inside "
        "the evaluator's selection, or in a structure outside their scope (default: none, the "
        "check's memory only is emptied, as after a change elsewhere)",
    )
    args = parser.parse_args(argv)
    people = args.people or (3_000 if args.quick else 100_000)
    rounds = 2 if args.quick else 5
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as folder:
        tmp = Path(folder)
        urls: list[tuple[str, str]] = []
        if args.only != "postgresql":
            sqlite_file = args.sqlite_file.resolve() if args.sqlite_file else tmp / "bench.db"
            urls.append((f"sqlite:///{sqlite_file}", "sqlite"))
        postgres = os.environ.get(POSTGRES_ENV)
        if args.only == "sqlite":
            pass
        elif postgres:
            if "127.0.0.1" not in postgres and "localhost" not in postgres:
                raise SystemExit(f"{POSTGRES_ENV} must point at 127.0.0.1")
            urls.append((postgres, "postgresql"))
        else:
            rows += not_run(people)
        for url, database in urls:
            bulk = args.bulk and database == "postgresql"
            steps = [step for step in BULK_STEPS if step in args.bulk_steps.split(",")]
            if args.build_only:
                build(url, people, args.reuse, args.rebuild_facts, bulk, steps)
            else:
                rows += measure(
                    url,
                    database,
                    people,
                    rounds,
                    tmp,
                    args.reuse,
                    args.profile,
                    args.rebuild_facts,
                    bulk,
                    steps,
                    args.change,
                )
    if args.build_only:
        return 0
    table = markdown(rows)
    print(table)
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "dashboard.json").write_text(
        json.dumps(
            {"benchmark": "dashboard", "machine": machine(), "quick": args.quick, "summary": rows},
            indent=2,
        ),
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
