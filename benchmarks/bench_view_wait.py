"""How long a dashboard view waits for the same evaluator's export (attack round 16, A7-2).

On PostgreSQL an export holds the evaluator's row (`joins.load(lock=True)`) from its plan
until it is logged; a view that remembers its selection (`differencing.hold_unchanged`)
waits for it. This runs one export of everyone (as the job does: `bundle.run_export`, then
the commit) and, as soon as the export holds the row, a dashboard check of one structure by
the same evaluator in another thread: the export's time and the view's wait.

Needs a population made by bench_export.py (`--databases postgresql`, its bench account):

    SELFCHECK_BENCH_POSTGRES_URL=postgresql+psycopg://.../selfcheck_bench_NAME \\
        .venv/bin/python benchmarks/bench_view_wait.py --format csv --codebook fresh

`--codebook fresh`: an empty cache folder, so the export renders its codebook PDF (the first
export of a shape and language after a deployment, until the job worker rendered it ahead);
`kept`: rendered once before the measure.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_export import BENCH_EMAIL, POSTGRES_ENV  # noqa: E402

SECRET = "bench-view-wait"
K = 5


def measure(url: str, fmt: str, shape: str, kept: bool) -> dict[str, float]:
    from sqlalchemy import delete, select

    from selfcheck import create_app
    from selfcheck.evaluation import bundle, codebook, differencing, joins
    from selfcheck.evaluation.export import Shape
    from selfcheck.evaluation.scope import ScopeError, parse_filters
    from selfcheck.platform.db import EXTENSION_KEY, get_session
    from selfcheck.platform.models import (
        ExportLog,
        ExportSelection,
        JoinMemory,
        StaffUser,
        Structure,
    )

    with tempfile.TemporaryDirectory(prefix="bench-view-wait-") as tmp:
        folder = Path(tmp)
        app = create_app(
            {
                "DATABASE_URL": url,
                "INSTANCE_PATH": folder,
                "SELFCHECK_PAPER_CACHE_DIR": str(folder / "cache"),
            }
        )
        database = app.extensions[EXTENSION_KEY]
        request = bundle.ExportRequest(fmt, Shape(shape))
        held = threading.Event()
        hold = joins.hold
        times: dict[str, float] = {}

        def holding(*args: Any, **kwargs: Any) -> None:
            hold(*args, **kwargs)
            if threading.current_thread() is threading.main_thread():
                times.setdefault("held_at", time.perf_counter())  # its first hold
                held.set()

        def forget() -> None:
            # Each run from an empty memory: the view's selection is new (remembered, so it
            # takes the row), the export's too.
            with database.session() as db:
                user = db.scalars(select(StaffUser).where(StaffUser.email == BENCH_EMAIL)).one()
                for table in (ExportSelection, JoinMemory, ExportLog):
                    db.execute(delete(table).where(table.user_id == user.id))
                db.commit()

        def view() -> None:
            held.wait(timeout=600)
            began = time.perf_counter()
            with app.test_request_context("/"), database.session() as db:
                user = db.scalars(select(StaffUser).where(StaffUser.email == BENCH_EMAIL)).one()
                slug = db.scalars(select(Structure.slug).order_by(Structure.id)).first()
                narrower = parse_filters(db, user, {"structure": str(slug)})
                try:
                    differencing.guard_view(db, user, narrower, K, SECRET)
                    db.commit()
                except ScopeError:
                    db.rollback()
            times["view_wait"] = time.perf_counter() - began

        forget()
        held.set()
        view()  # alone: what the view takes without an export
        times["view_alone"] = times.pop("view_wait")
        forget()
        held.clear()
        with app.test_request_context("/"):
            db = get_session()
            user = db.scalars(select(StaffUser).where(StaffUser.email == BENCH_EMAIL)).one()
            everyone = parse_filters(db, user, {})
            if kept:
                codebook.pdf(
                    codebook.for_data_file(
                        codebook.build(app.extensions["selfcheck.definition"], Shape(shape), False),
                        f"data.{fmt}",
                        fmt,
                    )
                )
            thread = threading.Thread(target=view)
            thread.start()
            joins.hold = holding
            began = time.perf_counter()
            try:
                out = folder / "export"
                out.mkdir()
                bundle.run_export(
                    db,
                    app.extensions["selfcheck.definition"],
                    user,
                    everyone,
                    request,
                    K,
                    out,
                    SECRET,
                )
                db.commit()
            finally:
                joins.hold = hold
                held.set()
            ended = time.perf_counter()
            thread.join(timeout=600)
        times["export"] = ended - began
        times["held"] = ended - times.pop("held_at", ended)
        return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", default="csv", choices=["csv", "xlsx"])
    parser.add_argument("--shape", default="wide", choices=["wide", "long"])
    parser.add_argument("--codebook", default="kept", choices=["kept", "fresh"])
    args = parser.parse_args()
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        parser.error(f"{POSTGRES_ENV}: a population made by bench_export.py")
    found = measure(url, args.format, args.shape, args.codebook == "kept")
    print(
        f"{args.format} {args.shape}, codebook {args.codebook}: export {found['export']:.1f} s, "
        f"row held {found['held']:.1f} s, the view waited {found['view_wait']:.1f} s "
        f"(alone: {found['view_alone']:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
