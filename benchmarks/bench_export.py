"""Time and peak memory of an anonymised export of 1,000,000 answer rows, against a raw SQL
copy of the same rows measured in the same run, on SQLite and PostgreSQL.

Run from the repository root:

    .venv/bin/python benchmarks/bench_export.py            # 1,000,000 answer rows
    .venv/bin/python benchmarks/bench_export.py --quick    # 50,000 rows: smoke check

Data: a few demo people answered through the real journey (services/demo.py), then copied
by bulk inserts (executemany on SQLite, COPY on PostgreSQL) until the answer table holds the
target number of rows. PostgreSQL runs when SELFCHECK_BENCH_POSTGRES_URL is set (its tables
are dropped and re-created: give it a throw-away database on 127.0.0.1); otherwise its rows
say "not run".

Each measurement runs in a fresh child process, so its peak resident memory (ru_maxrss) is its
own: the process starts the app, then streams the export (services/evaluation: SQL counts
and k-anonymity plan, streaming query, writer) into a file. Baseline: the same join of
responses and answers, ordered the same way, streamed to a CSV file by the driver (SQLite:
csv.writer over a cursor; PostgreSQL: COPY (SELECT ...) TO STDOUT).

Goal (issue 5): the export within 10 s and 200 MB of peak memory. Missing a goal is printed,
not an error.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
POSTGRES_ENV = "SELFCHECK_BENCH_POSTGRES_URL"
PROFILE_ENV = "SELFCHECK_BENCH_PROFILE"
XLSX_LEVEL_ENV = "SELFCHECK_BENCH_XLSX_LEVEL"
GOAL_SECONDS = 10.0
GOAL_MB = 200.0
GOAL_CSV_RATIO = 1.2  # issue 18: CSV wide at most 1.2x the raw copy of the same run
GOAL_XLSX_RATIO = 3.0  # issue 18: XLSX at most 3x the CSV of the same run
FULL_ROWS = 1_000_000
QUICK_ROWS = 50_000
TEMPLATE_PEOPLE = 30
CHILD_TIMEOUT = 600
TARGETS = (
    "csv-wide",
    "csv-long",
    "xlsx-wide",
    "xlsx_xlsxwriter-wide",
    "xlsx_openpyxl-wide",
    "sav-wide",
    "dta-wide",
    "job-start",  # the request that queues an export (issue 18: < 200 ms)
    "print-start",  # the request that queues a print batch of 200 coded forms (same goal)
    "followup-start",  # the request that queues the follow-up forms of up to 200 people due
)
GOAL_JOB_START_MS = 200.0
JOB_START_REQUESTS = 50
BENCH_EMAIL = "bench-export@example.invalid"
BENCH_MEDIATOR = "bench-print@example.invalid"  # print-start: a mediator of a demo structure

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BASELINE_SQL = (
    "SELECT r.beneficiary_id, r.structure_id, r.form, r.channel, r.wording,"
    " r.definition_version, r.submitted_at, a.variable, a.value"
    " FROM response r LEFT OUTER JOIN answer a ON a.response_id = r.id"
    " WHERE r.status = 'submitted' ORDER BY r.beneficiary_id, r.form"
)


def make_app(url: str, instance: Path) -> Any:
    from selfcheck import create_app

    return create_app({"DATABASE_URL": url, "INSTANCE_PATH": instance, "TESTING": True})


# --- data ----------------------------------------------------------------------------------


def prepare(url: str, instance: Path, target_rows: int) -> int:
    """A fresh schema, demo people, then bulk copies up to `target_rows` answers."""
    from sqlalchemy import MetaData, func, select

    from selfcheck import demo
    from selfcheck.accounts import auth
    from selfcheck.platform import migrate
    from selfcheck.platform.db import EXTENSION_KEY as DB_EXTENSION
    from selfcheck.platform.db import get_session, make_engine
    from selfcheck.platform.models import Answer, Role

    engine = make_engine(url)
    with engine.begin() as connection:
        reflected = MetaData()
        reflected.reflect(connection)
        reflected.drop_all(connection)
    migrate.upgrade(engine)
    engine.dispose()
    app = make_app(url, instance)
    with app.test_request_context("/"):
        db = get_session()
        definition = app.extensions["selfcheck.definition"]
        demo.generate_demo(db, definition, respondents=TEMPLATE_PEOPLE, seed=7)
        db.commit()
        auth.create_user(db, auth.NewUser(BENCH_EMAIL, Role.PLATFORM_ADMIN, None), "x" * 16)
        db.commit()
        per_copy = int(db.scalar(select(func.count()).select_from(Answer)) or 1)
        copies = max(0, -(-target_rows // per_copy) - 1)
        bulk_copy(db, copies)
        rows = int(db.scalar(select(func.count()).select_from(Answer)) or 0)
    app.extensions[DB_EXTENSION].dispose()
    return rows


def bulk_copy(db: Any, copies: int) -> None:
    """Copy every person `copies` times with explicit ids (COPY on PostgreSQL)."""
    from sqlalchemy import func, insert, select, text

    from selfcheck.platform.models import Answer, Beneficiary, Response

    people = db.execute(select(Beneficiary.id, Beneficiary.structure_id)).all()
    responses = db.execute(
        select(
            Response.id,
            Response.beneficiary_id,
            Response.structure_id,
            Response.form,
            Response.definition_id,
            Response.definition_version,
            Response.channel,
            Response.locale,
            Response.status,
            Response.submitted_at,
            Response.wording,
        )
    ).all()
    answers = db.execute(select(Answer.response_id, Answer.variable, Answer.value)).all()
    next_person = int(db.scalar(select(func.max(Beneficiary.id))) or 0) + 1
    next_response = int(db.scalar(select(func.max(Response.id))) or 0) + 1
    now = responses[0].submitted_at
    b_rows, r_rows, a_rows = [], [], []
    for copy in range(copies):
        person_ids = {}
        for person in people:
            person_ids[person.id] = next_person
            b_rows.append((next_person, f"K{copy:07d}{person.id:06d}", person.structure_id, now))
            next_person += 1
        response_ids = {}
        for r in responses:
            response_ids[r.id] = next_response
            r_rows.append(
                (
                    next_response,
                    person_ids[r.beneficiary_id],
                    r.structure_id,
                    r.form,
                    r.definition_id,
                    r.definition_version,
                    r.channel,
                    r.locale,
                    r.status,
                    now,
                    now,
                    r.submitted_at,
                    r.wording,
                )
            )
            next_response += 1
        a_rows.extend((response_ids[a.response_id], a.variable, a.value) for a in answers)
    b_cols = ("id", "code", "structure_id", "created_at")
    r_cols = (
        "id",
        "beneficiary_id",
        "structure_id",
        "form",
        "definition_id",
        "definition_version",
        "channel",
        "locale",
        "status",
        "created_at",
        "updated_at",
        "submitted_at",
        "wording",
    )
    a_cols = ("response_id", "variable", "value")
    if db.bind.dialect.name == "postgresql":
        raw = db.connection().connection.driver_connection
        with raw.cursor() as cursor:
            for table, cols, rows in (
                ("beneficiary", b_cols, b_rows),
                ("response", r_cols, r_rows),
                ("answer", a_cols, a_rows),
            ):
                with cursor.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        db.commit()
        db.execute(text("ANALYZE"))
        db.commit()
        return
    for model, cols, rows in (
        (Beneficiary, b_cols, b_rows),
        (Response, r_cols, r_rows),
        (Answer, a_cols, a_rows),
    ):
        for start in range(0, len(rows), 50_000):
            chunk = [dict(zip(cols, row, strict=True)) for row in rows[start : start + 50_000]]
            db.execute(insert(model), chunk)
    db.commit()


# --- measurements (child processes) --------------------------------------------------------


def rss_mb() -> float:
    """Peak resident memory so far (VmHWM, which `reset_peak` can reset on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return rss_mb()


def reset_peak() -> None:
    """Start the peak again from the current size (Linux: write 5 to clear_refs)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def child(url: str, instance: Path, what: str, out: Path) -> dict[str, Any]:
    from sqlalchemy import select

    from selfcheck.evaluation import anonymise, bundle
    from selfcheck.evaluation.export import Layout, Shape
    from selfcheck.evaluation.scope import parse_filters
    from selfcheck.evaluation.writers import WRITERS, xlsx
    from selfcheck.evaluation.writers.xlsx import FastXlsxWriter, XlsxWriter
    from selfcheck.platform.db import get_session
    from selfcheck.platform.models import StaffUser

    app = make_app(url, instance)
    with app.test_request_context("/"):
        db = get_session()
        definition = app.extensions["selfcheck.definition"]
        user = db.scalars(select(StaffUser).where(StaffUser.email == BENCH_EMAIL)).one()
        start_rss = current_rss_mb()
        reset_peak()
        # SELFCHECK_BENCH_PROFILE=DIR: a cProfile of each measurement into DIR/<what>.prof
        # (the profiler slows the Python side: read shares, not times).
        profile_dir = os.environ.get(PROFILE_ENV)
        profiler = cProfile.Profile() if profile_dir else None
        if profiler is not None:
            profiler.enable()
        began = time.perf_counter()
        cpu_began = time.process_time()
        if what == "baseline":
            rows = baseline(db, out)
        else:
            fmt, shape = what.rsplit("-", 1)
            filters = parse_filters(db, user, {})
            layout = Layout(definition, Shape(shape), False)
            # xlsx_xlsxwriter, xlsx_openpyxl: the writers the streaming one replaced, for
            # comparison.
            references = {"xlsx_xlsxwriter": FastXlsxWriter, "xlsx_openpyxl": XlsxWriter}
            if os.environ.get(XLSX_LEVEL_ENV):  # the streaming writer's deflate level
                xlsx.DEFLATE_LEVEL = int(os.environ[XLSX_LEVEL_ENV])
            writer_class = references.get(fmt) or WRITERS[fmt]
            writer = writer_class(out, layout.columns, "bench")
            # The plan and the rows as an export job makes them (CSV wide: read once).
            _plan, written = bundle.plan_and_write(
                db, filters, 5, definition, None, None, layout, writer, anonymise.new_key()
            )
            writer.close()
            rows = written.rows
        seconds = time.perf_counter() - began
        cpu = time.process_time() - cpu_began
        if profiler is not None and profile_dir:
            profiler.disable()
            profiler.dump_stats(str(Path(profile_dir) / f"{what}.prof"))
    return {
        "seconds": seconds,
        # This process only (the raw copy's work is mostly in the database server): less
        # sensitive than wall time to other processes sharing the CPU.
        "cpu_seconds": cpu,
        "peak_rss_mb": rss_mb(),
        "start_rss_mb": start_rss,
        "rows": rows,
        "bytes": out.stat().st_size,
    }


JOB_START_PATH = "/evaluate/exports/download?format=csv&shape=wide"
HELLO_PATH = "/__bench/hello"


def child_job_start(url: str, instance: Path, requests: int) -> dict[str, Any]:
    """Time the request that starts an export job (GET /evaluate/exports/download: checks the
    scope, queues the job in the real queue, answers with a redirect to its page), against an
    in-app hello-world route, alternating, through the test client (no HTTP server: the
    app's own time). No worker runs: the queued jobs are deleted between requests, outside
    the timing, so the per-user limit never refuses."""
    from common import signed_in_cookie
    from sqlalchemy import delete, select

    from selfcheck.platform import jobs
    from selfcheck.platform.db import get_session
    from selfcheck.platform.models import Job, StaffUser

    app = make_app(url, instance)

    @app.get(HELLO_PATH)
    def bench_hello() -> str:
        return "hello"

    client = app.test_client()
    with app.test_request_context("/"):
        db = get_session()
        user = db.scalars(select(StaffUser).where(StaffUser.email == BENCH_EMAIL)).one()
        # Whoever exports must have a second factor: mark the bench account enrolled (the
        # cookie below stands for a finished sign-in, code included).
        user.totp_secret = user.totp_secret or "bench-export"
        db.commit()
        cookie = signed_in_cookie(user)
    with client.session_transaction() as browser:
        browser.update(cookie)
    headers = {"Sec-Fetch-Site": "same-origin"}
    queue = jobs.queue(app)

    def forget_jobs() -> None:
        with app.app_context():
            db = get_session()
            db.execute(delete(Job))
            db.commit()
        queue.huey.flush()

    forget_jobs()
    profile_dir = os.environ.get(PROFILE_ENV)
    profiler = cProfile.Profile() if profile_dir else None
    started: list[float] = []
    hello: list[float] = []
    for index in range(requests + 3):  # the first 3: warm-up, not counted
        began = time.perf_counter()
        answer = client.get(HELLO_PATH)
        took = time.perf_counter() - began
        assert answer.status_code == 200, answer.status_code
        if index >= 3:
            hello.append(took)
        if profiler is not None:
            profiler.enable()
        began = time.perf_counter()
        answer = client.get(JOB_START_PATH, headers=headers)
        took = time.perf_counter() - began
        if profiler is not None:
            profiler.disable()
        location = answer.headers.get("Location", "")
        assert answer.status_code == 303 and "/jobs/" in location, (answer.status_code, location)
        if index >= 3:
            started.append(took)
        forget_jobs()
    if profiler is not None and profile_dir:
        profiler.dump_stats(str(Path(profile_dir) / "job-start.prof"))
    return {"job_start": started, "hello": hello}


PRINT_START_PATH = "/staff/print"
PRINT_BATCH = {"kind": "coded", "form": "before", "language": "fr", "copies": "200"}


def due_codes(db: Any, structure_id: int, limit: int = 200) -> list[str]:
    """Codes of up to `limit` people of the structure whose follow-up form is open. The
    population's bulk copies have placeholder codes that the print page refuses as invalid:
    those taken here get a real code (kept; the caller commits)."""
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload, selectinload

    from selfcheck.journey import operations as journey
    from selfcheck.journey import schedule
    from selfcheck.platform import codes
    from selfcheck.platform.models import Beneficiary

    query = (
        select(Beneficiary)
        .where(Beneficiary.structure_id == structure_id)
        .options(selectinload(Beneficiary.responses), joinedload(Beneficiary.structure))
        .order_by(Beneficiary.id)
        .limit(20 * limit)
    )
    found = []
    for person in db.scalars(query):
        if journey.followup_status(person).state is schedule.FollowupState.OPEN:
            try:
                codes.normalise(person.code)
            except codes.InvalidCode:
                person.code = codes.generate_code()
            found.append(person.code)
            if len(found) == limit:
                break
    return found


def child_print_start(
    url: str, instance: Path, requests: int, followup: bool = False
) -> dict[str, Any]:
    """Time the request that starts a print batch (POST /staff/print, 200 coded "before"
    forms, as the print screen posts it with its CSRF token: checks the form and the
    structure, queues the job in the real queue, answers with its progress page), against
    the in-app hello-world route, alternating, as `child_job_start` does. The mediator is a
    member of the first demo structure (made on the first run). With `followup`: the
    request that queues the follow-up forms of the people due (POST /staff/print/followup,
    as the follow-up list posts it: up to 200 codes of that structure, each checked)."""
    import re

    from common import signed_in_cookie
    from sqlalchemy import delete, select

    from selfcheck.accounts import auth
    from selfcheck.platform import jobs
    from selfcheck.platform.db import get_session
    from selfcheck.platform.models import Job, Role, StaffUser, Structure

    app = make_app(url, instance)

    @app.get(HELLO_PATH)
    def bench_hello() -> str:
        return "hello"

    client = app.test_client()
    with app.test_request_context("/"):
        db = get_session()
        user = db.scalars(select(StaffUser).where(StaffUser.email == BENCH_MEDIATOR)).first()
        if user is None:
            structure = db.scalars(select(Structure).order_by(Structure.id)).first()
            assert structure is not None, "no demo structure"
            new = auth.NewUser(BENCH_MEDIATOR, Role.MEDIATOR, structure.id)
            user = auth.create_user(db, new, "x" * 16)
            db.commit()
        assert user.structure_id is not None
        codes = due_codes(db, user.structure_id) if followup else []
        db.commit()
        cookie = signed_in_cookie(user)
    with client.session_transaction() as browser:
        browser.update(cookie)
    headers = {"Sec-Fetch-Site": "same-origin"}
    page = client.get(PRINT_START_PATH, headers=headers)
    assert page.status_code == 200, page.status_code
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert found is not None, "no CSRF token on the print page"
    path = PRINT_START_PATH + "/followup" if followup else PRINT_START_PATH
    posted: dict[str, Any] = {**PRINT_BATCH, "csrf_token": found.group(1)}
    if followup:
        assert codes, "nobody's follow-up is open in the structure"
        posted = {"codes": codes, "csrf_token": found.group(1)}
    queue = jobs.queue(app)

    def forget_jobs() -> None:
        with app.app_context():
            db = get_session()
            db.execute(delete(Job))
            db.commit()
        queue.huey.flush()

    forget_jobs()
    started: list[float] = []
    hello: list[float] = []
    for index in range(requests + 3):  # the first 3: warm-up, not counted
        began = time.perf_counter()
        answer = client.get(HELLO_PATH)
        took = time.perf_counter() - began
        assert answer.status_code == 200, answer.status_code
        if index >= 3:
            hello.append(took)
        began = time.perf_counter()
        answer = client.post(path, data=posted, headers=headers)
        took = time.perf_counter() - began
        location = answer.headers.get("Location", "")
        assert answer.status_code == 303 and "/jobs/" in location, (
            answer.status_code,
            location,
            answer.data[answer.data.find(b"error-summary") :][:600],
        )
        if index >= 3:
            started.append(took)
        forget_jobs()
    return {"job_start": started, "hello": hello, "codes": len(codes)}


def baseline(db: Any, out: Path) -> int:
    from sqlalchemy import text

    if db.bind.dialect.name == "postgresql":
        raw = db.connection().connection.driver_connection
        rows = 0
        with raw.cursor() as cursor, out.open("wb") as file:
            with cursor.copy(f"COPY ({BASELINE_SQL}) TO STDOUT WITH (FORMAT csv)") as copy:
                for data in copy:
                    file.write(data)
            rows = cursor.rowcount
        return int(rows)
    result = db.execute(text(BASELINE_SQL).execution_options(yield_per=2000, stream_results=True))
    rows = 0
    with out.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        for row in result:
            writer.writerow(row)
            rows += 1
    return rows


def measure(url: str, instance: Path, what: str, folder: Path) -> dict[str, Any]:
    out = folder / f"{what}.out"
    command = [sys.executable, __file__, "--child", what, "--url", url, "--instance", str(instance)]
    command += ["--out", str(out)]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=CHILD_TIMEOUT, cwd=ROOT, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    out.unlink(missing_ok=True)
    return result


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure_job_start(
    name: str, url: str, instance: Path, requests: int, what: str = "job-start"
) -> list[dict[str, Any]]:
    command = [sys.executable, __file__, "--child", what, "--url", url]
    command += ["--instance", str(instance), "--requests", str(requests)]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=CHILD_TIMEOUT, cwd=ROOT, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr[-3000:]}")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    started = [1000 * t for t in found["job_start"]]
    hello = [1000 * t for t in found["hello"]]
    p50, p95 = percentile(started, 0.5), percentile(started, 0.95)
    h50, h95 = percentile(hello, 0.5), percentile(hello, 0.95)
    job = {
        "job-start": "an export",
        "print-start": "a print batch (200 coded forms)",
        "followup-start": f"the follow-up forms of {found.get('codes')} people due",
    }[what]
    print(
        f"[{name}] {what}, the request that queues {job} ({len(started)} requests): "
        f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {max(started):.1f} ms; "
        f"hello-world p50 {h50:.2f} ms, p95 {h95:.2f} ms"
    )
    return [
        row(
            f"request that queues {job}, p95 of {len(started)}",
            name,
            p95,
            "ms",
            "in-app hello-world p95",
            h95,
            f"< {GOAL_JOB_START_MS:.0f} ms",
            p95 < GOAL_JOB_START_MS,
        ),
        row(
            f"request that queues {job}, p50 of {len(started)}",
            name,
            p50,
            "ms",
            "in-app hello-world p50",
            h50,
            "-",
            None,
        ),
    ]


# --- report --------------------------------------------------------------------------------


def row(
    figure: str,
    database: str,
    value: float | None,
    unit: str,
    baseline: str | None,
    baseline_value: float | None,
    goal: str,
    met: bool | None,
) -> dict[str, Any]:
    ratio = value / baseline_value if value is not None and baseline_value else None
    return {
        "figure": figure,
        "database": database,
        "value": round(value, 3) if value is not None else None,
        "unit": unit,
        "baseline": baseline,
        "baseline_value": round(baseline_value, 3) if baseline_value is not None else None,
        "ratio": round(ratio, 2) if ratio is not None else None,
        "goal": goal,
        "met": met,
    }


def existing_rows(url: str) -> int:
    """Answer rows of a population built by an earlier run (0: none, or not this benchmark's)."""
    from sqlalchemy import func, select

    from selfcheck.platform.db import make_engine
    from selfcheck.platform.models import Answer, StaffUser

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            user = connection.scalar(select(StaffUser.id).where(StaffUser.email == BENCH_EMAIL))
            rows = connection.scalar(select(func.count()).select_from(Answer))
    except Exception:  # no schema yet
        return 0
    finally:
        engine.dispose()
    return int(rows or 0) if user is not None else 0


def run_database(
    name: str,
    url: str | None,
    target: int,
    folder: Path,
    targets: tuple[str, ...] = TARGETS,
    reuse: bool = False,
    requests: int = JOB_START_REQUESTS,
) -> list[dict[str, Any]]:
    if url is None:
        return [
            row(f"export {t}: {target:,} answer rows", name, None, "s", None, None, "not run", None)
            for t in targets
        ]
    instance = folder / f"instance-{name}"
    instance.mkdir()
    began = time.perf_counter()
    answers = existing_rows(url) if reuse else 0
    if answers >= target:  # --reuse: the population of an earlier run, as it is
        print(f"[{name}] reusing {answers:,} answer rows")
    else:
        answers = prepare(url, instance, target)
        print(f"[{name}] {answers:,} answer rows ready in {time.perf_counter() - began:.1f} s")
    base = measure(url, instance, "baseline", folder)
    print(
        f"[{name}] baseline: {base['seconds']:.2f} s ({base['cpu_seconds']:.2f} s CPU), "
        f"{base['peak_rss_mb']:.0f} MB"
    )
    rows = [
        row(
            f"raw SQL copy of {answers:,} answer rows",
            name,
            base["seconds"],
            "s",
            None,
            None,
            "baseline",
            None,
        )
    ]
    for what in targets:
        if what in ("job-start", "print-start", "followup-start"):
            rows += measure_job_start(name, url, instance, requests, what)
            continue
        found = measure(url, instance, what, folder)
        print(
            f"[{name}] {what}: {found['seconds']:.2f} s ({found['cpu_seconds']:.2f} s CPU), "
            f"peak {found['peak_rss_mb']:.0f} MB "
            f"(+{found['peak_rss_mb'] - found['start_rss_mb']:.0f} MB), {found['rows']:,} rows, "
            f"file {found['bytes'] / 1e6:.1f} MB"
        )
        rows.append(
            row(
                f"export {what}: {answers:,} answer rows, time",
                name,
                found["seconds"],
                "s",
                "raw SQL copy",
                base["seconds"],
                f"< {GOAL_SECONDS:.0f} s",
                found["seconds"] < GOAL_SECONDS,
            )
        )
        rows.append(
            row(
                f"export {what}: peak resident memory of the process",
                name,
                found["peak_rss_mb"],
                "MB",
                "raw SQL copy",
                base["peak_rss_mb"],
                f"< {GOAL_MB:.0f} MB",
                found["peak_rss_mb"] < GOAL_MB,
            )
        )
    seconds = {r["figure"].split(":")[0]: r["value"] for r in rows if r["unit"] == "s"}
    csv_s, xlsx_s = seconds.get("export csv-wide"), seconds.get("export xlsx-wide")
    if csv_s:
        ratio = csv_s / base["seconds"]
        print(f"[{name}] csv-wide / raw copy: {ratio:.2f}x (goal <= {GOAL_CSV_RATIO}x)")
        rows.append(
            row(
                "export csv-wide against the raw copy",
                name,
                csv_s,
                "s",
                "raw SQL copy",
                base["seconds"],
                f"<= {GOAL_CSV_RATIO}x",
                ratio <= GOAL_CSV_RATIO,
            )
        )
    if csv_s and xlsx_s:
        ratio = xlsx_s / csv_s
        print(f"[{name}] xlsx-wide / csv-wide: {ratio:.2f}x (goal <= {GOAL_XLSX_RATIO}x)")
        rows.append(
            row(
                "export xlsx-wide (streaming writer) against csv-wide",
                name,
                xlsx_s,
                "s",
                "csv-wide",
                csv_s,
                f"<= {GOAL_XLSX_RATIO}x",
                ratio <= GOAL_XLSX_RATIO,
            )
        )
    for reference in ("xlsxwriter", "openpyxl"):
        old_xlsx = seconds.get(f"export xlsx_{reference}-wide")
        if xlsx_s and old_xlsx:
            print(f"[{name}] xlsx-wide / {reference}: {xlsx_s / old_xlsx:.2f}x")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", type=int, help=f"answer rows (default {FULL_ROWS:,})")
    parser.add_argument(
        "--targets", help=f"comma-separated subset of {','.join(TARGETS)} (default: all)"
    )
    parser.add_argument("--databases", default="sqlite,postgresql", help="which to measure")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="PostgreSQL: keep the population of an earlier run of at least --rows answers",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=JOB_START_REQUESTS,
        help="job-start: requests timed (and as many hello-world ones)",
    )
    parser.add_argument("--child")
    parser.add_argument("--url")
    parser.add_argument("--instance")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.child == "job-start":
        print(json.dumps(child_job_start(args.url, Path(args.instance), args.requests)))
        return 0
    if args.child in ("print-start", "followup-start"):
        followup = args.child == "followup-start"
        found = child_print_start(args.url, Path(args.instance), args.requests, followup)
        print(json.dumps(found))
        return 0
    if args.child:
        result = child(args.url, Path(args.instance), args.child, Path(args.out))
        print(json.dumps(result))
        return 0
    target = args.rows or (QUICK_ROWS if args.quick else FULL_ROWS)
    targets = tuple(args.targets.split(",")) if args.targets else TARGETS
    unknown = set(targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    databases = args.databases.split(",")
    summary: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        folder = Path(tmp)
        sqlite_url = f"sqlite:///{folder / 'bench.db'}"
        if "sqlite" in databases:
            summary += run_database(
                "sqlite", sqlite_url, target, folder, targets, requests=args.requests
            )
        postgres = os.environ.get(POSTGRES_ENV) or None
        if postgres and "127.0.0.1" not in postgres and "localhost" not in postgres:
            print(f"{POSTGRES_ENV} must point to 127.0.0.1: PostgreSQL not run")
            postgres = None
        if "postgresql" in databases:
            summary += run_database(
                "postgresql", postgres, target, folder, targets, args.reuse, args.requests
            )
    print()
    print("| figure | database | value | unit | baseline | ratio | goal | met |")
    print("|---|---|---|---|---|---|---|---|")
    for r in summary:
        print(
            f"| {r['figure']} | {r['database']} | {r['value']} | {r['unit']} | "
            f"{r['baseline_value']} | {r['ratio']} | {r['goal']} | {r['met']} |"
        )
    RESULTS_DIR.mkdir(exist_ok=True)
    machine = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
    }
    report = {
        "benchmark": "export",
        "machine": machine,
        "answer_rows": target,
        "summary": summary,
    }
    (RESULTS_DIR / "export.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
