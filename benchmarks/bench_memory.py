"""Resident memory of the processes that matter: a web worker, the job worker, and an export.

Run from the repository root:

    .venv/bin/python benchmarks/bench_memory.py                 # 1,000,000 answer rows, SQLite
    .venv/bin/python benchmarks/bench_memory.py --quick         # 50,000 rows: smoke check
    .venv/bin/python benchmarks/bench_memory.py --url postgresql+psycopg://…/db --reuse
    .venv/bin/python benchmarks/bench_memory.py --code /tmp/main  # another checkout, same run

Each figure comes from a fresh child process (`/proc/self/status`: VmRSS now, VmHWM the peak):

- `web`: what a gunicorn web worker holds before its first request (`selfcheck:create_app()`,
  gunicorn.conf.py's `wsgi_app`): resident memory, CPU time to import and build the app, and
  which heavy libraries got imported on the way.
- `worker`: the job worker's baseline (`selfcheck worker`: the app built, then huey's consumer
  made in its app context), before any job.
- `export`: the same job worker then runs one real export job (`jobs.enqueue`, then
  `jobs.run_job` as huey's task does: anonymisation plan, rows, codebook with its PDF, zip).
  Reported: the baseline before the job, the peak during it, and which phase the peak fell
  in (a thread samples the resident memory every 20 ms and notes whether WeasyPrint was
  imported yet, i.e. whether the codebook PDF had started in this process), the peak of
  the largest child process (the codebook PDF rendered apart, `printing.Printer.pdf_apart`),
  and "together": the largest sum, at one sample, of the resident memory of the job worker
  and of every process it started (what the machine holds for the export at once; the sum
  of the peaks also adds processes that never ran at the same time).

- `prefill` (`--prefill`): what the job worker's filler does when the queue is idle
  (selfcheck/prefill.py, `selfcheck paper prefill --background`): every blank paper form and
  every codebook PDF rendered into the run's folder of rendered files; its time, its peak
  and its largest child's (the codebooks are rendered apart).

The children of one run share one folder of rendered files (`SELFCHECK_PAPER_CACHE_DIR`), as
a job worker's exports do: the first export renders its codebook PDF and keeps it, later ones
read it (`--rounds 2`); after `--prefill`, every export reads it. Each round runs the
checkouts in the other order than the round before: every export is logged, and the next
one reads the evaluator's earlier exports (differencing, join memory).

Goal (issue 18, part 4): the export's process stays under 200 MB. Data: bench_export.py's
population (demo people copied up to the target number of answer rows); `--reuse` keeps an
existing one (`--url` given). `--code DIR` runs the children against the selfcheck package
of DIR (e.g. `git archive main`, translations compiled), for a comparison in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from common import load_average, row, write_result  # noqa: E402

GOAL_MB = 200.0
FULL_ROWS = 1_000_000
QUICK_ROWS = 50_000
HEAVY = (
    "weasyprint",
    "scipy",
    "numpy",
    "openpyxl",
    "xlsxwriter",
    "pikepdf",
    "fontTools",
    "huey",
    "psycopg",
    "argon2",
    "segno",
)
CHILD_TIMEOUT = 1200
BENCH_EMAIL = "bench-export@example.invalid"  # bench_export.prepare's evaluator


def status() -> dict[str, float]:
    """VmRSS and VmHWM of this process, in MB."""
    found: dict[str, float] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) / 1024
    return found


def reset_peak() -> None:
    """Start VmHWM again from the current size (Linux: 5 to clear_refs)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def heavy_loaded() -> list[str]:
    return [name for name in HEAVY if name in sys.modules]


def children_hwm() -> float:
    """The largest VmHWM of this process's live children (the codebook rendered apart)."""
    return max((hwm for _rss, hwm in children_memory()), default=0.0)


def children_memory(root: str = "self") -> list[tuple[float, float]]:
    """(VmRSS, VmHWM) in MB of each live descendant of process `root` (children, theirs...)."""
    found: list[tuple[float, float]] = []
    pending = [Path(f"/proc/{root}")]
    seen: set[str] = set()
    while pending:
        try:  # a process that has just ended: its folder goes while it is read
            listed = list(pending.pop().glob("task/*/children"))
        except OSError:
            continue
        for children in listed:
            with contextlib.suppress(OSError):
                for pid in children.read_text().split():
                    if pid in seen:
                        continue
                    seen.add(pid)
                    pending.append(Path(f"/proc/{pid}"))
                    values: dict[str, float] = {}
                    with contextlib.suppress(OSError, ValueError, IndexError):
                        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                            if line.startswith(("VmRSS:", "VmHWM:")):
                                values[line[:5]] = int(line.split()[1]) / 1024
                    if values:
                        found.append((values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)))
    return found


def prefill_child() -> dict[str, Any]:
    """The job worker's filler: a fresh process builds the app and renders what is missing."""
    began = time.perf_counter()
    cpu_began = time.process_time()
    from selfcheck import create_app, prefill

    app = create_app()
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], children_hwm())
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with app.app_context():
        before = prefill.todo(app)
        filled = prefill.fill(app)
        after = prefill.todo(app)
    done.set()
    sampler.join()
    return {
        **status(),
        "seconds": time.perf_counter() - began,
        "cpu_s": time.process_time() - cpu_began,
        "missing_before": [before.blanks, before.codebooks],
        "rendered": [filled.blanks, filled.codebooks],
        "missing_after": [after.blanks, after.codebooks],
        "children_peak_mb": peak[0],
    }


def child(what: str, fmt: str) -> dict[str, Any]:
    """One process: build the app as a web or job worker does; `export` then runs a job."""
    if what == "prefill":
        return prefill_child()
    began = time.perf_counter()
    cpu_began = time.process_time()
    from selfcheck import create_app

    app = create_app()
    result: dict[str, Any] = {}
    if what == "web":
        result.update(status())
    else:
        from selfcheck.platform import jobs

        queue = jobs.queue(app)
        with app.app_context():  # as `selfcheck worker` does before consumer.run()
            queue.huey.create_consumer(workers=1, worker_type="thread", periodic=True)
        result.update(status())
    result["build_cpu_s"] = time.process_time() - cpu_began
    result["build_wall_s"] = time.perf_counter() - began
    result["heavy"] = heavy_loaded()
    result["modules"] = len(sys.modules)
    if what != "export":
        return result

    from sqlalchemy import select

    from selfcheck.evaluation import export_job
    from selfcheck.platform.db import EXTENSION_KEY
    from selfcheck.platform.models import Job, StaffUser

    database = app.extensions[EXTENSION_KEY]
    with app.app_context(), database.session() as session:
        user = session.scalars(select(StaffUser).where(StaffUser.email == BENCH_EMAIL)).one()
        params = export_job.params({"format": fmt, "shape": "wide"}, "fr")
        job_id = jobs.enqueue(session, jobs.JobKind.EXPORT, params, user).id
        session.commit()
    baseline = status()["VmRSS"]
    samples: list[tuple[float, float, bool]] = []
    done = threading.Event()

    children_peak = [0.0]
    # The job worker and every process it started, alive at the same moment: the sum of
    # their resident memory, sampled (the honest "together"; the sum of peaks may add
    # processes that never overlapped).
    together = [0.0]

    def sample() -> None:
        start = time.perf_counter()
        while not done.is_set():
            own = status()["VmRSS"]
            samples.append((time.perf_counter() - start, own, "weasyprint" in sys.modules))
            descendants = children_memory()
            children_peak[0] = max([children_peak[0], *(hwm for _rss, hwm in descendants)])
            together[0] = max(together[0], own + sum(rss for rss, _hwm in descendants))
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    reset_peak()
    job_began = time.perf_counter()
    job_cpu = time.process_time()
    sampler.start()
    with app.app_context():
        jobs.run_job(database, queue, job_id)  # what huey's task runs
    done.set()
    sampler.join()
    seconds = time.perf_counter() - job_began
    cpu = time.process_time() - job_cpu
    with app.app_context(), database.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        job_status, job_error = job.status, job.error
    peak_sample = max(samples, key=lambda s: s[1]) if samples else (0.0, 0.0, False)
    before_pdf = [s[1] for s in samples if not s[2]]
    result.update(
        {
            "job_status": job_status,
            "job_error": job_error,
            "baseline_mb": baseline,
            "peak_mb": status()["VmHWM"],
            "after_mb": status()["VmRSS"],
            "peak_before_pdf_mb": max(before_pdf) if before_pdf else None,
            "peak_at_s": peak_sample[0],
            "peak_in_pdf": peak_sample[2],
            "seconds": seconds,
            "cpu_s": cpu,
            "heavy_after": heavy_loaded(),
            # The largest child process seen (the codebook PDF rendered apart), every 20 ms.
            "children_peak_mb": children_peak[0],
            "together_mb": together[0],
        }
    )
    return result


def enqueue_child(fmt: str) -> dict[str, Any]:
    """A web process's part of `--first-job`: one export job queued (as the export page does:
    `jobs.enqueue`, commit, `jobs.dispatch`), a line "queued" printed, then its row read every
    0.1 s until it is done or failed. The seconds from its dispatch to its end, and from its
    row: how long it waited in the queue and how long it ran."""
    from datetime import timedelta

    from sqlalchemy import select, update

    from selfcheck import create_app
    from selfcheck.evaluation import export_job
    from selfcheck.platform import jobs
    from selfcheck.platform.db import EXTENSION_KEY
    from selfcheck.platform.models import Job, StaffUser

    app = create_app()
    database = app.extensions[EXTENSION_KEY]
    with app.app_context(), database.session() as session:
        user = session.scalars(select(StaffUser).where(StaffUser.email == BENCH_EMAIL)).one()
        # Jobs left active by an earlier run cut short: not this run's, out of the limit.
        session.execute(
            update(Job)
            .where(Job.user_id == user.id, Job.status.in_(jobs.ACTIVE))
            .values(status="failed")
        )
        params = export_job.params({"format": fmt, "shape": "wide"}, "fr")
        job = jobs.enqueue(session, jobs.JobKind.EXPORT, params, user)
        session.commit()
        jobs.dispatch(job)
        job_id = job.id
    dispatched = time.perf_counter()
    print("queued", flush=True)
    while True:
        with database.session() as session:
            found = session.get(Job, job_id)
            assert found is not None
            if found.status not in jobs.ACTIVE:
                break
        if time.perf_counter() - dispatched > CHILD_TIMEOUT:
            raise RuntimeError("the job was not done in time")
        time.sleep(0.1)
    done = time.perf_counter() - dispatched
    zero = timedelta(0)
    started, finished = found.started_at, found.finished_at
    return {
        "job_status": found.status,
        "job_error": found.error,
        "dispatch_to_end_s": done,
        "queued_s": ((started - found.created_at) if started else zero).total_seconds(),
        "ran_s": ((finished - started) if finished and started else zero).total_seconds(),
    }


def first_job(
    url: str, instance: Path, code: Path, rendered: Path, fmt: str, when: str
) -> dict[str, Any]:
    """`--first-job`: a real `selfcheck worker` started on a cold folder of rendered files
    (every codebook missing, as after a deployment) and one export job queued `when`:
    "before" the worker starts, or "mid" its first codebook render (a chain folder holds a
    `.doing`). How long the job takes from its dispatch to its end, and the largest sum of
    the resident memory of the worker's process (whatever it is at that moment: the worker,
    a chain's link) and of every process it started, sampled every 20 ms from the worker's
    start to the job's end (the enqueuing process, a web worker's stand-in, not counted)."""
    env = child_environment(url, instance, code, rendered)
    env.pop("SELFCHECK_SITE_URL")  # no blank forms: the codebooks and the job only
    started_first = when in STARTED_FIRST
    if started_first:
        env["SELFCHECK_LANGUAGES"] = "fr"  # 4 codebooks, not 16: a shorter start
    worker = [sys.executable, "-c", "from selfcheck.cli import main; main()", "worker"]
    enqueue = [sys.executable, str(Path(__file__).resolve()), "--child", "enqueue"]
    log = (instance / "worker.log").open("w")
    web: subprocess.Popen[str] | None = None
    holder: subprocess.Popen[str] | None = None
    process: subprocess.Popen[bytes] | None = None
    together = own_peak = start_peak = 0.0

    def sample() -> None:
        nonlocal together, own_peak
        assert process is not None
        processes = children_memory(str(process.pid))
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):  # each execv starts it again: its peak counts
                    hwm = int(line.split()[1]) / 1024
                    own_peak = max(own_peak, hwm)
                    together = max(together, hwm + sum(rss for rss, _hwm in processes))

    try:
        if when == "before":
            web = subprocess.Popen(
                [*enqueue, "--format", fmt], cwd=code, env=env, stdout=subprocess.PIPE, text=True
            )
            assert web.stdout is not None
            if web.stdout.readline().strip() != "queued":
                raise RuntimeError("the job was not queued")
        process = subprocess.Popen(worker, cwd=code, env=env, stdout=log, stderr=log)
        began = time.perf_counter()
        if started_first:
            # The worker's start renders the 4 codebooks, then takes jobs; then the folder
            # is emptied under it, and the export is asked. "noted": the emptied codebooks
            # noted as failed (as if their render had crashed); "locked": another process
            # holds the folder's lock (another worker's chain on a shared folder) for
            # LOCK_HELD seconds, rendering nothing.
            while not (
                len(list(rendered.glob("codebook-*.pdf"))) == 4
                and not list(rendered.glob(".codebooks-first-*"))
                and "Huey consumer started" in (instance / "worker.log").read_text()
            ):
                if process.poll() is not None or time.perf_counter() - began > 600:
                    raise RuntimeError("the worker did not start")
                sample()
                time.sleep(0.05)
            time.sleep(2.0)
            start_peak = together
            together = own_peak = 0.0
            emptied = sorted(kept.name for kept in rendered.glob("codebook-*.pdf"))
            for name in emptied:
                (rendered / name).unlink()
            if when == "noted":
                # Failed an hour ago (round 23: a note has its time; a fresh one would make
                # the export fail at once, its back-off not over): tried again by the chain.
                failed = time.time() - 3600
                crashed = "".join(f"{name} {failed:.0f}\n" for name in emptied)
                (rendered / ".codebooks-first-crashed").write_text(crashed, encoding="utf-8")
            if when == "locked":
                holder = subprocess.Popen(
                    [sys.executable, "-c", HOLDER, str(rendered / ".prefill.lock"), str(LOCK_HELD)],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                assert holder.stdout is not None
                if holder.stdout.readline().strip() != "held":
                    raise RuntimeError("the lock was not taken")
            web = subprocess.Popen(
                [*enqueue, "--format", fmt], cwd=code, env=env, stdout=subprocess.PIPE, text=True
            )
        if web is None:
            while not list(rendered.glob(".codebooks-first-*/*.doing")):
                if process.poll() is not None or time.perf_counter() - began > 300:
                    raise RuntimeError("the worker did not start rendering codebooks")
                sample()
                time.sleep(0.02)
            web = subprocess.Popen(
                [*enqueue, "--format", fmt], cwd=code, env=env, stdout=subprocess.PIPE, text=True
            )
        while web.poll() is None:
            if process.poll() is not None:
                raise RuntimeError("the worker ended")
            sample()
            time.sleep(0.02)
        output = web.stdout.read() if web.stdout else ""
        if web.returncode != 0:
            raise RuntimeError(f"the enqueuing process failed ({web.returncode})")
        found: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
        found["codebooks_kept"] = len(list(rendered.glob("codebook-*.pdf")))
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(2)  # SIGINT: the worker's (and a link's) clean stop
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if web is not None:
            if web.poll() is None:
                web.kill()
            web.wait()
            if web.stdout:
                web.stdout.close()
        if holder is not None:
            if holder.poll() is None:
                holder.kill()
            holder.wait()
            if holder.stdout:
                holder.stdout.close()
        log.close()
    found.update({"together_mb": together, "process_peak_mb": own_peak, "when": when})
    if started_first:
        found["start_together_mb"] = start_peak
    return found


STARTED_FIRST = ("emptied", "noted", "locked")  # the worker started first, then the folder emptied
LOCK_HELD = 20.0  # seconds the "locked" case's other process holds the folder's lock
HOLDER = (
    "import fcntl, sys, time\n"
    "handle = open(sys.argv[1], 'a')\n"
    "fcntl.flock(handle, fcntl.LOCK_EX)\n"
    "print('held', flush=True)\n"
    "time.sleep(float(sys.argv[2]))\n"
)


def child_environment(url: str, instance: Path, code: Path, rendered: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": str(code),
            "SELFCHECK_DATABASE_URL": url,
            "SELFCHECK_SECRET_KEY": "bench-memory-secret-key-not-for-production",
            "SELFCHECK_JOBS_URL": f"sqlite:///{instance / 'queue.db'}",
            "SELFCHECK_JOBS_DIR": str(instance / "jobs"),
            # One folder of rendered files per run and checkout (blank forms, codebooks).
            "SELFCHECK_PAPER_CACHE_DIR": str(rendered),
            "SELFCHECK_SITE_URL": "https://bench.invalid",
        }
    )
    return env


def run_child(
    what: str, url: str, instance: Path, code: Path, fmt: str, rendered: Path
) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", what, "--format", fmt]
    done = subprocess.run(
        command,
        cwd=code,
        env=child_environment(url, instance, code, rendered),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} child failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def deploy_codebooks(
    url: str, instance: Path, code: Path, rendered: Path, *, started: bool = False
) -> dict[str, Any]:
    """What the worker unit's `ExecStartPre` ran after a deployment in round 18 (deploy/
    selfcheck-worker.service): `selfcheck paper prefill --only codebooks`, before the worker
    takes its first job. Its time, and the largest sum of its memory and its children's.

    `started`: instead, what `selfcheck worker` itself does at its start before its first job
    (selfcheck/prefill.py, `codebooks_first`: the same process, its app given up, renders the
    missing codebooks one process image at a time, then becomes the worker again), run as
    `selfcheck worker --codebooks-first-only` (the step, then exit)."""
    command = [sys.executable, "-c", "from selfcheck.cli import main; main()"]
    if started:
        command += ["worker", "--codebooks-first-only"]
    else:
        command += ["paper", "prefill", "--only", "codebooks"]
    env = child_environment(url, instance, code, rendered)
    began = time.perf_counter()
    process = subprocess.Popen(command, cwd=code, env=env, stdout=subprocess.PIPE, text=True)
    together = own_peak = 0.0
    while process.poll() is None:
        processes = children_memory(str(process.pid))
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024
                    own_peak = max(own_peak, rss)
                    processes.append((rss, rss))
                elif started and line.startswith("VmHWM:"):
                    # The step's process renders in itself (one process image per codebook,
                    # each `execv` starts VmHWM again): its peak between two samples counts,
                    # added to its children's (none expected) resident memory.
                    hwm = int(line.split()[1]) / 1024
                    own_peak = max(own_peak, hwm)
                    together = max(together, hwm + sum(rss for rss, _hwm in processes))
        together = max(together, sum(rss for rss, _hwm in processes))
        time.sleep(0.02)
    output = process.stdout.read() if process.stdout else ""
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command[3:])} failed: {output[-2000:]}")
    if started:
        kept = len(list(rendered.glob("codebook-*.pdf")))
        output += f"\ncodebook PDFs in the folder after the step: {kept}"
    return {
        "seconds": time.perf_counter() - began,
        "process_peak_mb": own_peak,
        "together_mb": together,
        "output": output.strip().splitlines()[-2:],
    }


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} answer rows")
    parser.add_argument("--rows", type=int, help="answer rows of the population")
    parser.add_argument("--url", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--reuse", action="store_true", help="keep the population of --url")
    parser.add_argument("--format", default="csv", help="export format (csv, xlsx, sav, dta)")
    parser.add_argument("--rounds", type=int, default=1, help="processes per figure")
    parser.add_argument(
        "--code",
        action="append",
        default=[],
        help="another checkout whose selfcheck the children run (repeatable), same run",
    )
    parser.add_argument(
        "--prefill",
        action="store_true",
        help="first run the job worker's filler (every blank form and codebook, timed)",
    )
    parser.add_argument(
        "--deployed",
        action="store_true",
        help="first run what the worker unit's ExecStartPre runs (`paper prefill --only "
        "codebooks`) for each checkout: its exports then read their codebook",
    )
    parser.add_argument(
        "--started",
        action="store_true",
        help="first run, for this tree only, what `selfcheck worker` does at its start on a "
        "cold folder (codebooks first, its app given up): its exports then read their "
        "codebook; another checkout's exports stay cold (compare in the same run)",
    )
    parser.add_argument(
        "--first-job",
        choices=("mid", "before", *STARTED_FIRST),
        help="only this: for each checkout, a real `selfcheck worker` started on a cold "
        "folder, one export job queued during its first codebook render (mid), before "
        "it starts (before), or once it has rendered them and takes jobs, the folder emptied "
        "under it (emptied; one language: 4 codebooks), the same with the emptied codebooks "
        "noted as failed (noted) or with the folder's lock held by another process for "
        f"{LOCK_HELD:.0f} s (locked): the job's time from its dispatch to "
        "its end, and the worker's processes' memory together from the job's dispatch "
        "(needs --url ... --reuse: a prepared population)",
    )
    parser.add_argument(
        "--child",
        choices=("web", "worker", "export", "prefill", "enqueue"),
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args()
    if args.child == "enqueue":
        print(json.dumps(enqueue_child(args.format)))
        return 0
    if args.child:
        print(json.dumps(child(args.child, args.format)))
        return 0
    if args.first_job:
        return first_jobs(args)

    target = args.rows or (QUICK_ROWS if args.quick else FULL_ROWS)
    codes = [ROOT, *(Path(code).resolve() for code in args.code)]
    summary: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        folder = Path(tmp)
        url = args.url or f"sqlite:///{folder / 'bench.db'}"
        database = "postgresql" if url.startswith("postgresql") else "sqlite"
        if not (args.reuse and args.url):
            import bench_export

            began = time.perf_counter()
            rows = bench_export.prepare(url, folder / "prepare", target)
            print(f"population: {rows:,} answer rows ({time.perf_counter() - began:.0f} s)")
        print(uptime(), flush=True)
        if args.deployed:
            for number, code in enumerate(codes):
                instance = folder / f"deploy-{number}"
                instance.mkdir()
                found = deploy_codebooks(url, instance, code, folder / f"rendered-{number}")
                found.update({"what": "deploy", "code": str(code), "load": load_average()})
                details.append(found)
                print(
                    f"deploy  {'this tree' if code == ROOT else code}: paper prefill --only "
                    f"codebooks in {found['seconds']:.1f} s, its peak "
                    f"{found['process_peak_mb']:.0f} MB, with its children at once "
                    f"{found['together_mb']:.0f} MB ({' / '.join(found['output'])})",
                    flush=True,
                )
        if args.started:
            instance = folder / "started-0"
            instance.mkdir()
            found = deploy_codebooks(url, instance, ROOT, folder / "rendered-0", started=True)
            found.update({"what": "started", "code": str(ROOT), "load": load_average()})
            details.append(found)
            print(
                f"started this tree: selfcheck worker's codebooks-first step in "
                f"{found['seconds']:.1f} s, the process's peak {found['process_peak_mb']:.0f}"
                f" MB, with its children at once {found['together_mb']:.0f} MB "
                f"({' / '.join(found['output'])})",
                flush=True,
            )
        kinds = ("web", "worker", *(("prefill",) if args.prefill else ()), "export")
        for what in kinds:
            for turn in range(1 if what == "prefill" else args.rounds):
                # Each checkout back to back, in turns reversed every round: the evaluator's
                # earlier exports (which the export reads) grow by one with each export.
                order = list(enumerate(codes))
                for number, code in order[:: -1 if turn % 2 else 1]:
                    if what == "prefill" and code != ROOT:
                        continue  # another checkout may have no filler
                    instance = folder / f"instance-{len(details)}"
                    instance.mkdir()
                    rendered = folder / f"rendered-{number}"
                    found = run_child(what, url, instance, code, args.format, rendered)
                    found.update({"what": what, "code": str(code), "load": load_average()})
                    details.append(found)
                    label = "this tree" if code == ROOT else str(code)
                    if what == "prefill":
                        print(
                            f"{what:7s} {label}: missing before (blank forms, codebooks) "
                            f"{found['missing_before']}, rendered {found['rendered']}, after "
                            f"{found['missing_after']}, in {found['seconds']:.1f} s (CPU "
                            f"{found['cpu_s']:.1f} s in the process); peak {found['VmHWM']:.0f}"
                            f" MB, largest child {found['children_peak_mb']:.0f} MB",
                            flush=True,
                        )
                    elif what == "export":
                        print(
                            f"{what:7s} {label}: baseline {found['baseline_mb']:.0f} MB, "
                            f"peak {found['peak_mb']:.0f} MB "
                            f"(+{found['peak_mb'] - found['baseline_mb']:.0f} MB; before the "
                            f"codebook PDF: {found['peak_before_pdf_mb'] or 0:.0f} MB; peak "
                            f"{'in' if found['peak_in_pdf'] else 'before'} the PDF), job "
                            f"{found['job_status']} in {found['seconds']:.1f} s "
                            f"(CPU {found['cpu_s']:.1f} s); largest child process "
                            f"{found.get('children_peak_mb', 0):.0f} MB; together (sampled "
                            f"sum) {found.get('together_mb', 0):.0f} MB; heavy after: "
                            f"{', '.join(found['heavy_after'])}",
                            flush=True,
                        )
                    else:
                        print(
                            f"{what:7s} {label}: {found['VmRSS']:.0f} MB resident "
                            f"(peak {found['VmHWM']:.0f} MB), built in "
                            f"{found['build_cpu_s']:.2f} s CPU / {found['build_wall_s']:.2f} s; "
                            f"{found['modules']} modules; heavy: {', '.join(found['heavy'])}",
                            flush=True,
                        )
        print(uptime(), flush=True)
    mine = [d for d in details if d["code"] == str(ROOT)]
    for what, figure in (("web", "web worker at start"), ("worker", "job worker at start")):
        values = [d["VmRSS"] for d in mine if d["what"] == what]
        summary.append(
            row(figure, min(values), "MB", goal="informative", database=database, met=None)
        )
    exports = [d for d in mine if d["what"] == "export"]
    peak = min(d["peak_mb"] for d in exports)
    together = max(d["together_mb"] for d in exports)
    summary.append(
        row(
            f"export ({args.format}, wide): job worker and its processes at once, worst",
            together,
            "MB",
            goal=f"< {GOAL_MB:.0f} MB",
            database=database,
            met=together < GOAL_MB,
        )
    )
    summary.append(
        row(
            f"export ({args.format}, wide, {target:,} answer rows): peak of the job worker",
            peak,
            "MB",
            goal=f"< {GOAL_MB:.0f} MB",
            database=database,
            baseline="the job worker before the job",
            baseline_value=min(d["baseline_mb"] for d in exports),
            met=peak < GOAL_MB,
        )
    )
    write_result("memory", summary, answer_rows=target, details=details)
    return 0


def first_jobs(args: argparse.Namespace) -> int:
    """`--first-job`: each checkout in turn, the same prepared population (`--url`)."""
    if not (args.url and args.reuse):
        raise SystemExit("--first-job needs --url and --reuse (a prepared population)")
    codes = [ROOT, *(Path(code).resolve() for code in args.code)]
    details: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        folder = Path(tmp)
        print(uptime(), flush=True)
        for number, code in enumerate(codes):
            instance = folder / f"first-{number}"
            instance.mkdir()
            found = first_job(
                args.url,
                instance,
                code,
                folder / f"rendered-{number}",
                args.format,
                args.first_job,
            )
            found.update({"what": "first-job", "code": str(code), "load": load_average()})
            details.append(found)
            label = "this tree" if code == ROOT else str(code)
            print(
                f"first job ({args.first_job}) {label}: dispatch to end "
                f"{found['dispatch_to_end_s']:.1f} s (in the queue {found['queued_s']:.1f} s, "
                f"ran {found['ran_s']:.1f} s), job {found['job_status']}; the worker's "
                f"processes at once {found['together_mb']:.0f} MB (its process's peak "
                f"{found['process_peak_mb']:.0f} MB); codebooks kept at the end: "
                f"{found['codebooks_kept']}"
                + (
                    f" (the worker's start, before: {found['start_together_mb']:.0f} MB)"
                    if "start_together_mb" in found
                    else ""
                ),
                flush=True,
            )
        print(uptime(), flush=True)
    mine = next(d for d in details if d["code"] == str(ROOT))
    database = "postgresql" if args.url.startswith("postgresql") else "sqlite"
    summary = [
        row(
            f"first export after a cold worker start (job queued {args.first_job}): dispatch "
            "to end",
            mine["dispatch_to_end_s"],
            "s",
            goal="about one codebook render and a worker start, plus the export",
            database=database,
            met=None,
        ),
        row(
            "... the worker's processes at once, worst",
            mine["together_mb"],
            "MB",
            goal=f"< {GOAL_MB:.0f} MB",
            database=database,
            met=mine["together_mb"] < GOAL_MB,
        ),
    ]
    write_result(f"memory-first-job-{args.first_job}", summary, details=details)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
