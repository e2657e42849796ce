"""Coded batches: render a blank once and stamp each copy, against WeasyPrint per copy.

Run from the repository root:

    .venv/bin/python benchmarks/bench_stamping.py            # 200 copies, 3 rounds
    .venv/bin/python benchmarks/bench_stamping.py --quick    # 20 copies, 1 round

Targets, all in the same process and the same run, on the "before" form in French:

- `blank`: one blank (uncoded) form through the product's renderer (`PaperRenderer`), the
  single-form goal (<= 0.5 s); also timed once as the very first render of the process
  (`cold`: fonts, templates and WeasyPrint's first use);
- `served`: the same blank form read back from the cache of blank forms
  (`paper/blank_cache.py`: rendered once, then served from disk);
- `template`: rendering the blank with placeholders and parsing it (`stamping.render_template`),
  paid once per (form, language, wording, print size);
- `stamp`: N coded copies as one tagged PDF (`stamping.stamp`, pikepdf / qpdf), the goal
  (N = 200 in <= 10 s, template included);
- `stamp_each`: N copies, one PDF each (pikepdf);
- `pypdf_each`: the pypdf counterpart of `stamp_each`, reduced to its least work: clone the
  blank (`PdfWriter(clone_from=...)`), append the same stamp contents to each page, write. It
  does not even copy a tag element per copy, so it is a lower bound for pypdf;
- baseline `weasyprint`: K coded copies rendered by the product's renderer in one call (the
  way a batch is made today), K = min(N, 10) by default, as seconds per copy.

Then the first blank form a fresh **worker** serves (`--workers P` fresh processes per
variant, alternating, 0 to skip): each process builds the app as a gunicorn worker does (not
in testing mode, blank-form cache off so the form is rendered), calls gunicorn.conf.py's own
`post_worker_init` hook with it, signs a mediator in (session cookie) and times the request
`POST /staff/print` for one blank "before" form in French through the test client, then the
same request again (warm). Variants: `no-warmup` (SELFCHECK_PAPER_WARMUP=0: the baseline, as
before paper/warmup.py), `warmed` (the request once the worker's warm-up has ended; how long
the warm-up took is printed: a request in that window shares the CPU with it) and `at-once`
(the request sent the moment the hook returns, during the warm-up: the worst case).

Ratios are per copy against the WeasyPrint baseline measured in the same run, so a busy
machine slows both. Exit status 0 when the run completed, whether or not a goal is met.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import runpy
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
GOAL_BATCH_SECONDS = 10.0
GOAL_BATCH_COPIES = 200
GOAL_BLANK_SECONDS = 0.5
BUSY_LOAD = 0.5
WORKER_VARIANTS = ("no-warmup", "warmed", "at-once")
WORKER_TIMEOUT = 300
BENCH_EMAIL = "bench-stamping@example.invalid"
PRINT_PATH = "/staff/print"
BLANK_FORM = {"kind": "blank", "form": "before", "language": "fr", "copies": "1"}

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from common import load_average, row, signed_in_cookie, write_result  # noqa: E402


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def pypdf_each(template: Any, batch: list[str]) -> list[bytes]:
    """The least pypdf can do per copy: clone the blank, add the stamps, write it out."""
    import pypdf
    from pypdf.generic import ArrayObject, DecodedStreamObject, NameObject

    from selfcheck.paper import stamping
    from selfcheck.platform import codes

    reader = pypdf.PdfReader(io.BytesIO(template.pdf))
    out: list[bytes] = []
    for code in batch:
        writer = pypdf.PdfWriter(clone_from=reader)
        display = codes.display(code)
        for page, page_template in zip(writer.pages, template.pages, strict=True):
            stream = DecodedStreamObject()
            stream.set_data(
                b"".join(
                    stamping._stamp(cut, display, code, template, page_template)
                    for cut in page_template.cuts
                )
            )
            contents = page.get("/Contents")
            items = list(contents) if isinstance(contents, ArrayObject) else [contents]
            page[NameObject("/Contents")] = ArrayObject([*items, writer._add_object(stream)])
        buffer = io.BytesIO()
        writer.write(buffer)
        out.append(buffer.getvalue())
    return out


# --- the first blank form of a fresh worker ---------------------------------------------------


def worker_config(folder: Path) -> dict[str, Any]:
    return {
        "DATABASE_URL": f"sqlite:///{folder / 'worker.db'}",
        "INSTANCE_PATH": folder / "instance",
        "SELFCHECK_PAPER_CACHE_DIR": "",  # rendered, not read back (the cache is measured above)
        "SELFCHECK_JOBS_URL": "immediate",
        "WTF_CSRF_ENABLED": False,  # the app's time: no page fetched for a token
    }


def prepare_worker_database(folder: Path) -> None:
    """A migrated SQLite database with a structure and a mediator, for the worker children."""
    from sqlalchemy import create_engine

    from selfcheck import create_app
    from selfcheck.accounts import auth
    from selfcheck.accounts.structures import add_structure
    from selfcheck.platform import migrate
    from selfcheck.platform.db import get_session
    from selfcheck.platform.models import Role

    engine = create_engine(worker_config(folder)["DATABASE_URL"])
    migrate.upgrade(engine)
    engine.dispose()
    app = create_app({**worker_config(folder), "TESTING": True})
    with app.app_context():
        db = get_session()
        structure = add_structure(db, "Banc d'essai", "urbain", "75")
        auth.create_user(db, auth.NewUser(BENCH_EMAIL, Role.MEDIATOR, structure.id), "x" * 16)
        db.commit()


def signed_in_client(app: Any) -> Any:
    """A test client whose session cookie stands for a mediator's finished sign-in."""
    from sqlalchemy import select

    from selfcheck.platform.db import get_session
    from selfcheck.platform.models import StaffUser

    client = app.test_client()
    with app.app_context():
        user = get_session().scalars(select(StaffUser).where(StaffUser.email == BENCH_EMAIL)).one()
        cookie = signed_in_cookie(user)
    with client.session_transaction() as browser:
        browser.update(cookie)
    return client


def child_worker(folder: Path, variant: str) -> dict[str, Any]:
    """One fresh worker: the app, gunicorn's `post_worker_init`, then two blank-form requests."""
    from types import SimpleNamespace

    from selfcheck import create_app
    from selfcheck.paper import warmup

    began = time.perf_counter()
    app = create_app(worker_config(folder))
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    settings["post_worker_init"](SimpleNamespace(wsgi=app))  # as gunicorn calls it
    hooked = time.perf_counter()
    thread = app.extensions.get(warmup.EXTENSION_KEY)
    assert (thread is None) == (variant == "no-warmup"), "warm-up not as the variant says"
    client = signed_in_client(app)
    warmed_up = None
    if variant == "warmed":
        thread.join(timeout=WORKER_TIMEOUT)
        warmed_up = time.perf_counter() - hooked
    headers = {"Sec-Fetch-Site": "same-origin"}
    times = []
    for _ in range(2):
        start = time.perf_counter()
        answer = client.post(PRINT_PATH, data=BLANK_FORM, headers=headers)
        times.append(time.perf_counter() - start)
        assert answer.status_code == 200, answer.status_code
        assert answer.data.startswith(b"%PDF-"), "not a PDF"
    if thread is not None:
        thread.join(timeout=WORKER_TIMEOUT)
    return {
        "variant": variant,
        "app_seconds": hooked - began,
        "warmup_seconds": warmed_up,
        "first": times[0],
        "second": times[1],
    }


def measure_workers(processes: int) -> dict[str, list[dict[str, Any]]]:
    """`processes` fresh workers per variant, the variants alternating."""
    found: dict[str, list[dict[str, Any]]] = {v: [] for v in WORKER_VARIANTS}
    with tempfile.TemporaryDirectory(prefix="selfcheck-bench-worker-") as tmp:
        folder = Path(tmp)
        prepare_worker_database(folder)
        for number in range(processes):
            for variant in WORKER_VARIANTS:
                env = {
                    **os.environ,
                    "SELFCHECK_PAPER_WARMUP": "0" if variant == "no-warmup" else "1",
                }
                command = [sys.executable, __file__, "--child-worker", variant, "--folder", tmp]
                done = subprocess.run(
                    command,
                    capture_output=True,
                    text=True,
                    timeout=WORKER_TIMEOUT,
                    cwd=ROOT,
                    env=env,
                    check=False,
                )
                if done.returncode != 0:
                    raise RuntimeError(f"worker {variant} failed:\n{done.stderr[-3000:]}")
                result = json.loads(done.stdout.strip().splitlines()[-1])
                found[variant].append(result)
                print(
                    f"worker {number + 1} {variant}: first request {result['first']:.3f} s, "
                    f"second {result['second']:.3f} s"
                    + (
                        f", warm-up ended {result['warmup_seconds']:.2f} s after the hook"
                        if result["warmup_seconds"] is not None
                        else ""
                    ),
                    flush=True,
                )
    return found


def worker_rows(found: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    if not found["no-warmup"]:
        return []
    baseline = statistics.median(r["first"] for r in found["no-warmup"])
    second = statistics.median(r["second"] for v in found.values() for r in v)
    warmed = statistics.median(r["first"] for r in found["warmed"])
    at_once = statistics.median(r["first"] for r in found["at-once"])
    count = len(found["warmed"])
    return [
        row(
            f"first blank form a fresh worker serves, no warm-up (median of {count} processes)",
            baseline,
            "s",
            goal=f"<= {GOAL_BLANK_SECONDS} s",
            baseline="the same worker's second request",
            baseline_value=second,
            met=baseline <= GOAL_BLANK_SECONDS,
        ),
        row(
            f"first blank form a fresh worker serves, warm-up done (median of {count})",
            warmed,
            "s",
            goal=f"<= {GOAL_BLANK_SECONDS} s",
            baseline="the same without warm-up, same run",
            baseline_value=baseline,
            met=warmed <= GOAL_BLANK_SECONDS,
        ),
        row(
            f"first blank form of a fresh worker, asked during its warm-up (median of {count})",
            at_once,
            "s",
            goal="information (worst case)",
            baseline="the same without warm-up, same run",
            baseline_value=baseline,
        ),
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 copies, 1 round")
    parser.add_argument("--copies", type=int, default=None, help="copies per batch (200)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (3)")
    parser.add_argument("--baseline", type=int, default=None, help="WeasyPrint copies (10)")
    parser.add_argument(
        "--workers", type=int, default=None, help="fresh workers per variant (3; 0: none)"
    )
    parser.add_argument("--only-workers", action="store_true", help="only the fresh workers")
    parser.add_argument("--child-worker", choices=WORKER_VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.workers = min(args.workers if args.workers is not None else (1 if args.quick else 3), 10)
    args.copies = min(args.copies or (20 if args.quick else GOAL_BATCH_COPIES), 1000)
    args.rounds = min(args.rounds or (1 if args.quick else 3), 10)
    args.baseline = min(args.baseline or (5 if args.quick else 10), args.copies)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_worker:
        print(json.dumps(child_worker(Path(args.folder), args.child_worker)))
        return 0
    if args.only_workers:
        load_before = load_average()
        found = measure_workers(max(args.workers, 1))
        summary = worker_rows(found)
        print_summary(summary)
        load_after = load_average()
        print(f"load average {load_before} before, {load_after} after")
        return 0  # no results file: the suite's `stamping` result is the full run
    load_before = load_average()
    if (load_before or 0) > BUSY_LOAD:
        print(f"warning: load average {load_before:.2f} before the run: the CPU is shared")
    import pikepdf
    import pypdf

    from selfcheck import create_app
    from selfcheck.paper import blank_cache, stamping
    from selfcheck.paper import operations as paper
    from selfcheck.platform import codes
    from selfcheck.questionnaire.model import FormKind

    site = "https://selfcheck.example/code"
    qr_title = "Code personnel : %(code)s"
    batch = [codes.generate_code() for _ in range(args.copies)]
    times: dict[str, list[float]] = {
        k: []
        for k in (
            "blank",
            "served",
            "template",
            "stamp",
            "stamp_each",
            "pypdf_each",
            "weasyprint",
        )
    }
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="selfcheck-bench-") as tmp:
        workdir = Path(tmp)
        app = create_app(
            {"DATABASE_URL": f"sqlite:///{workdir / 'b.db'}", "INSTANCE_PATH": workdir / "i"}
        )
        with app.app_context():
            renderer = paper.renderer(app)
            blank_copy = paper.Copy(FormKind.BEFORE, "fr", None)
            # The first blank form of the process (cold: fonts, Jinja templates, WeasyPrint's
            # first use), then warm-up: page counts, the stamping font subset.
            cold, _pdf = timed(lambda: renderer.questionnaires([blank_copy], site_url=site))
            warm_up = [paper.Copy(FormKind.BEFORE, "fr", c) for c in batch[:2]]
            renderer.questionnaires(warm_up, site_url=site)  # the baseline's page count
            template = stamping.render_template(renderer, FormKind.BEFORE, "fr", site_url=site)
            stamping.stamp(template, batch[:2], qr_title)
            blanks = workdir / "blanks"
            blank_cache.blank_form(renderer, FormKind.BEFORE, "fr", site_url=site, cache=blanks)
            for number in range(args.rounds):
                seconds, pdf = timed(lambda: renderer.questionnaires([blank_copy], site_url=site))
                times["blank"].append(seconds)
                seconds, served = timed(
                    partial(
                        blank_cache.blank_form,
                        renderer,
                        FormKind.BEFORE,
                        "fr",
                        site_url=site,
                        cache=blanks,
                    )
                )
                times["served"].append(seconds)
                assert served.startswith(b"%PDF-"), "the served blank form is not a PDF"
                seconds, template = timed(
                    lambda: stamping.render_template(renderer, FormKind.BEFORE, "fr", site_url=site)
                )
                times["template"].append(seconds)
                seconds, pdf = timed(partial(stamping.stamp, template, batch, qr_title))
                times["stamp"].append(seconds)
                sizes["stamp"] = len(pdf)
                seconds, pdfs = timed(partial(stamping.stamp_each, template, batch, qr_title))
                times["stamp_each"].append(seconds)
                sizes["stamp_each"] = sum(map(len, pdfs))
                seconds, pdfs = timed(partial(pypdf_each, template, batch))
                times["pypdf_each"].append(seconds)
                sizes["pypdf_each"] = sum(map(len, pdfs))
                coded = [paper.Copy(FormKind.BEFORE, "fr", c) for c in batch[: args.baseline]]
                seconds, pdf = timed(partial(renderer.questionnaires, coded, site_url=site))
                times["weasyprint"].append(seconds)
                print(
                    f"round {number + 1}: "
                    + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items())
                )

    median = {key: statistics.median(values) for key, values in times.items()}
    per_copy_wp = median["weasyprint"] / args.baseline
    n = args.copies
    batch_total = median["template"] + median["stamp"]
    scaled = batch_total * GOAL_BATCH_COPIES / n  # the goal's 200 copies, if fewer were run
    summary = [
        row(
            "one blank form, the first of a fresh process (cold)",
            cold,
            "s",
            goal=f"<= {GOAL_BLANK_SECONDS} s",
            met=cold <= GOAL_BLANK_SECONDS,
        ),
        row(
            "one blank form (WeasyPrint, product renderer)",
            median["blank"],
            "s",
            goal=f"<= {GOAL_BLANK_SECONDS} s",
            met=median["blank"] <= GOAL_BLANK_SECONDS,
        ),
        row(
            "one blank form served again (paper/blank_cache.py, from disk)",
            median["served"],
            "s",
            goal=f"<= {GOAL_BLANK_SECONDS} s",
            baseline="one blank form rendered",
            baseline_value=median["blank"],
            met=median["served"] <= GOAL_BLANK_SECONDS,
        ),
        row(
            f"{n} coded forms, one PDF: template + stamp (pikepdf)",
            batch_total,
            "s",
            goal=f"{GOAL_BATCH_COPIES} copies <= {GOAL_BATCH_SECONDS} s",
            baseline=f"WeasyPrint per copy x {n} ({args.baseline} copies measured)",
            baseline_value=per_copy_wp * n,
            met=scaled <= GOAL_BATCH_SECONDS if n == GOAL_BATCH_COPIES else None,
        ),
    ]
    for key, label in (
        ("stamp", "stamp per copy, one PDF (pikepdf)"),
        ("stamp_each", "stamp per copy, one PDF each (pikepdf)"),
        ("pypdf_each", "stamp per copy, one PDF each (pypdf, lower bound)"),
    ):
        summary.append(
            row(
                label,
                median[key] / n,
                "s",
                goal="faster than WeasyPrint per copy",
                baseline="WeasyPrint per copy",
                baseline_value=per_copy_wp,
                met=median[key] / n < per_copy_wp,
            )
        )
    found = measure_workers(args.workers) if args.workers else {}
    if found:
        summary += worker_rows(found)
    load_after = load_average()
    print_summary(summary)
    print(f"\nfirst blank form of the process (cold): {cold:.3f} s")
    print(f"medians: { ({k: round(v, 3) for k, v in median.items()}) }")
    print(f"sizes (bytes): {sizes}; load average {load_before} before, {load_after} after")
    path = write_result(
        "stamping",
        summary,
        copies=n,
        rounds=args.rounds,
        baseline_copies=args.baseline,
        times=times,
        cold_blank=cold,
        sizes=sizes,
        load_average={"before": load_before, "after": load_after},
        versions={"pikepdf": pikepdf.__version__, "pypdf": pypdf.__version__},
        workers=found,
    )
    print(f"written: {path}")
    return 0


def print_summary(summary: list[dict[str, Any]]) -> None:
    print()
    print("| figure | value | baseline | ratio | goal | met |\n|---|---:|---:|---:|---|---|")
    for entry in summary:
        ratio = f"{entry['ratio']:.3f}" if entry["ratio"] else ""
        base = f"{entry['baseline_value']:.3f}" if entry["baseline_value"] else ""
        print(
            f"| {entry['figure']} | {entry['value']:.3f} {entry['unit']} | {base} | {ratio} "
            f"| {entry['goal']} | {entry['met']} |"
        )


if __name__ == "__main__":
    sys.exit(main())
