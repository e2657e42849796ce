"""Time to render paper forms and a progress summary as PDF, each against trivial WeasyPrint
documents of the same page count rendered in the same run.

Run from the repository root:

    .venv/bin/python benchmarks/bench_pdf.py            # 5 rounds; the batch of 100: 1 round
    .venv/bin/python benchmarks/bench_pdf.py --quick    # 2 rounds, a batch of 20: smoke check

Targets, rendered by the product's code (`services/paper.PaperRenderer`, the same call the
views make: Jinja, WeasyPrint layout, tagged PDF/UA-1 output):

- `form`: one blank "before" questionnaire, normal print;
- `summary`: the progress summary of a demo person with a before and an after form;
- `batch`: N coded "before" questionnaires in one document (100 by default), one call.

Baselines, rendered in the same round right after each target, with the same page size,
margins, font (DejaVu Sans), PDF/UA-1 options, language and title, and the same page count:

- `trivial`: each page holds a heading and one sentence (WeasyPrint's cost per page);
- `text`: each page is filled with plain paragraphs, no tables, boxes or images (the cost of
  laying out a page of text).

Goal (issue 4): a single form within 1 s and within twice the trivial document. Both ratios
are reported; missing a goal is printed, not an error (exit status 1 only when the benchmark
could not run). Nothing touches the network; the demo database is a throw-away SQLite file.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
GOAL_SECONDS = 1.0
GOAL_RATIO = 2.0
MAX_ROUNDS = 20
MAX_BATCH = 200
BUSY_LOAD = 0.5

if str(ROOT) not in sys.path:  # so `selfcheck` imports when run as a plain script
    sys.path.insert(0, str(ROOT))
if str(BENCH_DIR) not in sys.path:  # benchmarks/common.py
    sys.path.insert(0, str(BENCH_DIR))

import pydyf  # type: ignore[import-untyped]  # noqa: E402
import weasyprint  # type: ignore[import-untyped]  # noqa: E402


class BenchError(RuntimeError):
    """The benchmark could not measure (as opposed to: it measured a missed goal)."""


# --- baselines ----------------------------------------------------------------------------

PAGE_CSS = """
@page { size: A4; margin: 17mm 14mm 17mm 24mm; font-family: "DejaVu Sans"; font-size: 9pt;
        @bottom-left { content: "Page " counter(page); } }
html { font-family: "DejaVu Sans", sans-serif; }
body { margin: 0; font-size: 11.5pt; line-height: 1.3; }
section { break-before: page; }
section:first-child { break-before: auto; }
"""
SENTENCE = "Une phrase simple pour remplir la page, comme dans un questionnaire papier. "


def baseline_html(pages: int, paragraphs: int) -> str:
    """`pages` sections of one heading and `paragraphs` paragraphs (0: a single sentence)."""
    body = "<p>" + SENTENCE * 6 + "</p>"
    filler = body * paragraphs if paragraphs else "<p>" + SENTENCE + "</p>"
    sections = "".join(
        f"<section><h1>Page {number}</h1>{filler}</section>" for number in range(1, pages + 1)
    )
    return (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        f"<title>Document de référence</title><style>{PAGE_CSS}</style></head>"
        f"<body>{sections}</body></html>"
    )


def render_html(html: str) -> tuple[bytes, int]:
    document = weasyprint.HTML(string=html).render(pdf_variant="pdf/ua-1")
    pdf: bytes = document.write_pdf(pdf_variant="pdf/ua-1")
    return pdf, len(document.pages)


def paragraphs_per_page() -> int:
    """Most paragraphs that still fit one page (the `text` baseline fills each page)."""
    best = 1
    for paragraphs in range(1, 40):
        _, pages = render_html(baseline_html(1, paragraphs))
        if pages > 1:
            break
        best = paragraphs
    return best


# --- results ------------------------------------------------------------------------------


@dataclass
class Round:
    """One round: the target, then both baselines of the same page count, back to back."""

    seconds: float
    trivial: float
    text: float

    @property
    def ratio_trivial(self) -> float:
        return self.seconds / self.trivial

    @property
    def ratio_text(self) -> float:
        return self.seconds / self.text


@dataclass
class Target:
    name: str
    description: str
    copies: int = 1
    pages: int = 0
    bytes: int = 0
    first_call: float = 0.0
    rounds: list[Round] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        return float(statistics.median(getattr(r, attribute) for r in self.rounds))

    def per_round(self, attribute: str) -> list[float]:
        return [round(getattr(r, attribute), 2) for r in self.rounds]


def page_count(pdf: bytes) -> int:
    import io

    import pypdf

    return len(pypdf.PdfReader(io.BytesIO(pdf)).pages)


def timed(call: Callable[[], bytes]) -> tuple[float, bytes]:
    start = time.perf_counter()
    pdf = call()
    return time.perf_counter() - start, pdf


def measure(target: Target, call: Callable[[], bytes], rounds: int, paragraphs: int) -> None:
    """First call (cold), then `rounds` rounds of target, trivial and text documents."""
    print(f"{target.name}: first call", flush=True)
    target.first_call, pdf = timed(call)
    target.pages, target.bytes = page_count(pdf), len(pdf)
    trivial_html = baseline_html(target.pages, 0)
    text_html = baseline_html(target.pages, paragraphs)
    for html, name in ((trivial_html, "trivial"), (text_html, "text")):
        _, pages = render_html(html)
        if pages != target.pages:
            raise BenchError(f"{name} baseline has {pages} pages, not {target.pages}")
    for number in range(1, rounds + 1):
        seconds, pdf = timed(call)
        if page_count(pdf) != target.pages:
            raise BenchError(f"{target.name}: page count changed between calls")
        trivial, _ = timed(lambda: render_html(trivial_html)[0])
        text, _ = timed(lambda: render_html(text_html)[0])
        target.rounds.append(Round(seconds, trivial, text))
        print(
            f"{target.name}: round {number}/{rounds}: {seconds:.3f} s, trivial {trivial:.3f} s,"
            f" text {text:.3f} s",
            flush=True,
        )


# --- the product's data -------------------------------------------------------------------


def demo_summary(directory: Path) -> tuple[Any, str]:
    """The summary and code of a demo person with a before and an after form."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session, selectinload

    from selfcheck.demo import demo_structure, generate_demo
    from selfcheck.journey import summary
    from selfcheck.platform import migrate
    from selfcheck.platform.db import make_engine
    from selfcheck.platform.models import Beneficiary
    from selfcheck.questionnaire import load_definition
    from selfcheck.questionnaire.loader import DEFAULT_DEFINITION

    definition = load_definition(DEFAULT_DEFINITION)
    engine = make_engine(f"sqlite:///{directory / 'bench.db'}")
    try:
        migrate.upgrade(engine)
        with Session(engine, expire_on_commit=False) as session:
            demo_structure(session)
            session.commit()
            generate_demo(session, definition, 30)
            session.commit()
            query = select(Beneficiary).options(selectinload(Beneficiary.responses))
            for person in session.scalars(query):
                for response in person.responses:
                    _ = response.answers  # load while the session is open
                result = summary.build_summary(definition, person)
                if result is not None and result.kind is summary.SummaryKind.PRE_POST:
                    return result, person.code
    finally:
        engine.dispose()
    raise BenchError("no demo person with a before and an after form")


# --- report -------------------------------------------------------------------------------


def load_average() -> float | None:
    """1-minute load average: other processes sharing the CPU make the figures noisy."""
    try:
        return float(Path("/proc/loadavg").read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return None


def machine() -> dict[str, Any]:
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "weasyprint": importlib.metadata.version("weasyprint"),
        "pydyf": importlib.metadata.version("pydyf"),
    }


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(info: dict[str, Any], targets: list[Target]) -> dict[str, Any]:
    lines = [
        "| target | pages | PDF bytes | first call s | time s (median) | trivial s | "
        "x trivial (per round) | text s | x text (per round) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in targets:
        lines.append(
            f"| {t.description} | {t.pages} | {t.bytes:,} | {t.first_call:.2f} | "
            f"{t.median('seconds'):.3f} | {t.median('trivial'):.3f} | "
            f"**{t.median('ratio_trivial'):.1f}** {tuple(t.per_round('ratio_trivial'))} | "
            f"{t.median('text'):.3f} | "
            f"**{t.median('ratio_text'):.2f}** {tuple(t.per_round('ratio_text'))} |"
        )
    form = next(t for t in targets if t.name == "form")
    goals = {
        "form_within_1_s": form.median("seconds") <= GOAL_SECONDS,
        "form_within_2x_trivial": form.median("ratio_trivial") <= GOAL_RATIO,
        "form_within_2x_text": form.median("ratio_text") <= GOAL_RATIO,
    }
    lines += [
        "",
        f"Goal, one form: within {GOAL_SECONDS:g} s: **{_verdict(goals['form_within_1_s'])}**"
        f" ({form.median('seconds'):.2f} s); within {GOAL_RATIO:g}x the trivial document: "
        f"**{_verdict(goals['form_within_2x_trivial'])}** "
        f"({form.median('ratio_trivial'):.1f}x); within {GOAL_RATIO:g}x the text document: "
        f"**{_verdict(goals['form_within_2x_text'])}** ({form.median('ratio_text'):.2f}x).",
    ]
    batch = next((t for t in targets if t.name == "batch"), None)
    if batch is not None:
        per_form = batch.median("seconds") / batch.copies
        lines.append(
            f"Batch: {batch.copies} forms in {batch.median('seconds'):.1f} s, "
            f"{per_form:.2f} s per form ({batch.pages} pages)."
        )
    markdown = "\n".join(lines)
    print("\n" + markdown)
    load = info.get("load_average", {})
    print(f"\nload average: before {load.get('before')}, after {load.get('after')}")
    return {
        **info,
        "targets": [
            {
                **asdict(t),
                "median": {
                    key: t.median(key)
                    for key in ("seconds", "trivial", "text", "ratio_trivial", "ratio_text")
                },
            }
            for t in targets
        ],
        "goals": goals,
        "markdown": markdown,
    }


def summary_rows(targets: list[Target]) -> list[dict[str, Any]]:
    """The contract's rows (benchmarks/common.py): each PDF against the trivial document."""
    from common import row

    rows = []
    for t in targets:
        is_form = t.name == "form"
        rows.append(
            row(
                f"PDF: {t.description} ({t.pages} pages), time",
                t.median("seconds"),
                "s",
                baseline="trivial PDF, same page count",
                baseline_value=t.median("trivial"),
                ratio=t.median("ratio_trivial"),  # median of the per-round ratios
                goal=f"<= {GOAL_RATIO:g}x trivial" if is_form else "information",
                met=t.median("ratio_trivial") <= GOAL_RATIO if is_form else None,
            )
        )
        rows.append(
            row(
                f"PDF: {t.description}, against a text document",
                t.median("seconds"),
                "s",
                baseline="text-only PDF, same page count",
                baseline_value=t.median("text"),
                ratio=t.median("ratio_text"),
                goal=f"<= {GOAL_RATIO:g}x text" if is_form else "information",
                met=t.median("ratio_text") <= GOAL_RATIO if is_form else None,
            )
        )
        if is_form:
            rows.append(
                row(
                    f"PDF: {t.description}, absolute",
                    t.median("seconds"),
                    "s",
                    goal=f"<= {GOAL_SECONDS:g} s",
                    met=t.median("seconds") <= GOAL_SECONDS,
                )
            )
    return rows


def write_json(result: dict[str, Any], targets: list[Target]) -> Path:
    """benchmarks/results/pdf.json (the suite's contract) and a dated copy."""
    from common import machine as common_machine

    RESULTS_DIR.mkdir(exist_ok=True)
    result = {
        "benchmark": "pdf",
        **result,
        "machine": {**common_machine(), **result["machine"]},
        "summary": summary_rows(targets),
    }
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    (RESULTS_DIR / f"bench_pdf-{stamp}.json").write_text(text, encoding="utf-8")
    path = RESULTS_DIR / "pdf.json"
    path.write_text(text, encoding="utf-8")
    return path


# --- the run ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, help="rounds for the form and summary (default 5)")
    parser.add_argument("--batch", type=int, help="forms in the batch (default 100, max 200)")
    parser.add_argument("--batch-rounds", type=int, help="rounds for the batch (default 1)")
    parser.add_argument("--quick", action="store_true", help="2 rounds, a batch of 20")
    parser.add_argument(
        "--without-memo",
        action="store_true",
        help="also time the batch with pydyf's own page_references (before the fix)",
    )
    args = parser.parse_args(argv)
    args.rounds = args.rounds if args.rounds is not None else (2 if args.quick else 5)
    args.batch = args.batch if args.batch is not None else (20 if args.quick else 100)
    args.batch_rounds = args.batch_rounds if args.batch_rounds is not None else 1
    if not 1 <= args.rounds <= MAX_ROUNDS or not 1 <= args.batch_rounds <= MAX_ROUNDS:
        parser.error(f"rounds must be between 1 and {MAX_ROUNDS}")
    if not 1 <= args.batch <= MAX_BATCH:
        parser.error(f"--batch must be between 1 and {MAX_BATCH}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = load_average()
    if (load_before or 0) > BUSY_LOAD:
        print(f"warning: load average {load_before:.2f} before the run: the CPU is shared")
    from selfcheck import create_app
    from selfcheck.paper import operations as paper
    from selfcheck.platform import codes
    from selfcheck.questionnaire.model import FormKind

    with tempfile.TemporaryDirectory(prefix="selfcheck-bench-") as tmp:
        workdir = Path(tmp)
        try:
            result, code = demo_summary(workdir)
            app = create_app(
                {
                    "DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
                    "INSTANCE_PATH": workdir / "instance",
                }
            )
            site = "https://selfcheck.example/code"
            with app.app_context():
                renderer = paper.renderer(app)
                paragraphs = paragraphs_per_page()
                form = Target("form", "one blank before form")
                summary_target = Target("summary", "progress summary (before/after)")
                batch_codes = [codes.generate_code() for _ in range(args.batch)]
                batch = Target("batch", f"{args.batch} coded before forms", copies=args.batch)

                def one_form() -> bytes:
                    copy = paper.Copy(FormKind.BEFORE, "fr", None)
                    return renderer.questionnaires([copy], site_url=site)

                def one_summary() -> bytes:
                    return renderer.summary(result, code, "fr", site_url=site)

                def many_forms() -> bytes:
                    copies = [paper.Copy(FormKind.BEFORE, "fr", c) for c in batch_codes]
                    return renderer.questionnaires(copies, site_url=site)

                measure(form, one_form, args.rounds, paragraphs)
                measure(summary_target, one_summary, args.rounds, paragraphs)
                measure(batch, many_forms, args.batch_rounds, paragraphs)
                targets = [form, summary_target, batch]
                without = None
                if args.without_memo:
                    without = time_without_memo(many_forms)
            info: dict[str, Any] = {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": machine(),
                "config": {
                    "rounds": args.rounds,
                    "batch": args.batch,
                    "batch_rounds": args.batch_rounds,
                    "text_paragraphs_per_page": paragraphs,
                },
                "load_average": {"before": load_before, "after": load_average()},
            }
            if without is not None:
                info["batch_without_page_references_memo_s"] = without
                print(f"batch without the page_references memo: {without:.1f} s")
            output = report(info, targets)
            print(f"\nJSON: {write_json(output, targets).relative_to(ROOT)}")
        except BenchError as error:
            print(f"benchmark error: {error}", file=sys.stderr)
            return 1
    return 0


def time_without_memo(call: Callable[[], bytes]) -> float:
    """The batch once more with pydyf's original, O(pages) `page_references`."""
    memoised = pydyf.PDF.page_references
    original = getattr(memoised.fget, "selfcheck_original", None)
    if original is None:
        raise BenchError("the page_references memo is not installed")
    pydyf.PDF.page_references = property(original)
    try:
        seconds, _ = timed(call)
    finally:
        pydyf.PDF.page_references = memoised
    return seconds


if __name__ == "__main__":
    raise SystemExit(main())
