"""How long a fresh job worker takes to fill the cache of rendered files by itself.

Run from the repository root (in the bench lock, boosted: see benchmarks/README.md):

    .venv/bin/python benchmarks/bench_prefill.py            # every language of the app
    .venv/bin/python benchmarks/bench_prefill.py --quick    # French only

A real `selfcheck worker --workers 1` starts on a fresh SQLite database with an empty folder of
rendered files (`SELFCHECK_PAPER_CACHE_DIR`) and `SELFCHECK_SITE_URL` set, as after a
deployment. Nothing else is done: its watcher (selfcheck/prefill.py) starts the filler process
by itself. Every 0.25 s the benchmark counts the whole PDFs in the folder and samples the
resident memory of the worker and of each of its descendants (the filler, and the codebook
renders it starts). Reported: seconds from the worker's start until the first blank form,
until every blank form (goal of issue 18, part 3: after deploy and warm-up no request
renders a blank form), and until every codebook (part 4: no export job renders one); the
worker's own memory before and after (the watcher must not make it import WeasyPrint), and
the peaks of the filler and of its largest child.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from common import load_average, row, write_result  # noqa: E402

SITE = "https://bench.invalid"
LIMIT_S = 900.0
WORDINGS = 2
SIZES = 2
SHAPES = 2
FREE_TEXT = 2


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    found: list[int] = []
    for listed in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found.extend(int(child) for child in listed.read_text().split())
    return found


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = [pid]
    while todo:
        below = children(todo.pop())
        found.extend(below)
        todo.extend(below)
    return found


def whole(path: Path) -> bool:
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="French only")
    parser.add_argument(
        "--forms", action="store_true", help="stop once every blank form is there (no codebooks)"
    )
    args = parser.parse_args()
    languages = ["fr"] if args.quick else ["fr", "en", "es", "ar"]
    from selfcheck.questionnaire.model import FormKind

    blanks = len(FormKind) * len(languages) * WORDINGS * SIZES
    books = SHAPES * FREE_TEXT * len(languages)
    selfcheck = str(Path(sys.executable).with_name("selfcheck"))
    print(uptime(), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-prefill-") as tmp:
        folder = Path(tmp)
        cache = folder / "rendered"
        env = {
            **os.environ,
            "SELFCHECK_DATABASE_URL": f"sqlite:///{folder / 'bench.db'}",
            "SELFCHECK_SECRET_KEY": "bench-prefill-secret-key-not-for-production",
            "SELFCHECK_JOBS_URL": f"sqlite:///{folder / 'queue.db'}",
            "SELFCHECK_JOBS_DIR": str(folder / "jobs"),
            "SELFCHECK_PAPER_CACHE_DIR": str(cache),
            "SELFCHECK_SITE_URL": SITE,
            "SELFCHECK_LANGUAGES": ",".join(languages),
        }
        subprocess.run([selfcheck, "db", "upgrade"], env=env, check=True, capture_output=True)
        first_files = most_asked(env, cache)
        first_ready: dict[str, float] = {}
        began = time.perf_counter()
        worker = subprocess.Popen(
            [selfcheck, "worker", "--workers", "1"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        first_blank = all_blanks = all_books = None
        worker_start = worker_peak = filler_peak = child_peak = together_peak = 0.0
        peaks: dict[int, float] = {}  # each filler process's peak
        try:
            while time.perf_counter() - began < LIMIT_S:
                time.sleep(0.25)
                now = time.perf_counter() - began
                worker_mb = rss_mb(worker.pid)
                worker_peak = max(worker_peak, worker_mb)
                fillers = children(worker.pid)
                if not fillers and first_blank is None:
                    worker_start = worker_mb  # built, before its filler
                together = worker_mb
                for filler in fillers:
                    peak = rss_mb(filler, "VmHWM")
                    peaks[filler] = max(peaks.get(filler, 0.0), peak)
                    filler_peak = max(filler_peak, peak)
                    together += rss_mb(filler)
                    for pid in descendants(filler):  # the codebooks rendered apart
                        child_peak = max(child_peak, rss_mb(pid, "VmHWM"))
                        together += rss_mb(pid)
                together_peak = max(together_peak, together)
                pdfs = [p for p in cache.glob("*.pdf") if whole(p)]
                forms = sum(1 for p in pdfs if not p.name.startswith("codebook-"))
                codebooks = len(pdfs) - forms
                if forms and first_blank is None:
                    first_blank = now
                names = {p.name for p in pdfs}
                for label, wanted in first_files.items():
                    if label not in first_ready and wanted <= names:
                        first_ready[label] = now
                if forms >= blanks and all_blanks is None:
                    all_blanks = now
                if codebooks >= books and all_books is None:
                    all_books = now
                if all_blanks is not None and (all_books is not None or args.forms):
                    break
            worker_end = rss_mb(worker.pid)
        finally:
            worker.send_signal(signal.SIGINT)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        log = worker.stderr.read().decode("utf-8", "replace") if worker.stderr else ""
    print(uptime(), flush=True)
    print(
        f"languages {','.join(languages)}: {blanks} blank forms, {books} codebooks; "
        f"first blank form after {first_blank or 0:.1f} s, every blank form after "
        f"{all_blanks or 0:.1f} s, every codebook after {all_books or 0:.1f} s; "
        + "".join(f"{label} after {first_ready.get(label, 0):.1f} s; " for label in first_files)
        + "job worker "
        f"{worker_start:.0f} MB at start, {worker_end:.0f} MB at the end (peak "
        f"{worker_peak:.0f} MB); fillers' peaks "
        f"{', '.join(f'{value:.0f}' for value in peaks.values())} MB, their largest child "
        f"{child_peak:.0f} MB; worker, fillers and children together at most "
        f"{together_peak:.0f} MB (resident, sampled); load {load_average()}",
        flush=True,
    )
    if all_blanks is None or (all_books is None and not args.forms):
        print(log[-3000:], file=sys.stderr)
    summary = [
        row(
            f"job worker start -> every blank form rendered ahead ({blanks})",
            all_blanks,
            "s",
            goal="informative: then no request renders a blank form",
            met=None,
        ),
        row(
            f"job worker start -> every codebook PDF rendered ahead ({books})",
            all_books,
            "s",
            goal="informative: then no export job renders one",
            met=None,
        ),
        row(
            "job worker resident memory, at start / after the fill",
            worker_end,
            "MB",
            goal="informative: the worker itself renders nothing",
            baseline="at start",
            baseline_value=worker_start,
            met=None,
        ),
    ]
    write_result(
        "prefill",
        summary,
        languages=languages,
        first_blank_s=first_blank,
        most_asked_s=first_ready,
        filler_peak_mb=filler_peak,
        filler_peaks_mb=list(peaks.values()),
        together_peak_mb=together_peak,
        filler_child_peak_mb=child_peak,
        worker_peak_mb=worker_peak,
    )
    return 0 if all_blanks is not None and (all_books is not None or args.forms) else 1


def most_asked(env: dict[str, str], cache: Path) -> dict[str, set[str]]:
    """The files of the most asked blank forms, named as the worker will name them: the
    default language's "before" form (standard wording, normal print), and its five forms."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        from selfcheck import create_app, prefill
        from selfcheck.paper import blank_cache
        from selfcheck.questionnaire.model import FormKind, Wording

        app = create_app()
        with app.app_context():
            address = prefill.site_url(app, cache)
            assert address is not None
            default = app.config["BABEL_DEFAULT_LOCALE"]
            files = [
                (blank, path.name)
                for blank, path in blank_cache._missing_files(app, address, cache)
                if (blank.wording, blank.locale, blank.large) == (Wording.STANDARD, default, False)
            ]
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {
        f"{default} standard normal-print before form": {
            name for blank, name in files if blank.form is FormKind.BEFORE
        },
        f"its {len(files)} {default} standard normal-print forms": {name for _, name in files},
    }


if __name__ == "__main__":
    raise SystemExit(main())
