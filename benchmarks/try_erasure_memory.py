"""What an erasure costs in the differencing memory (evaluation/forgetting.py, branch fix17).

Builds one evaluator's memory of `--views` dashboard views of `--people` people (each view:
its selection's records, 20 bytes a person, and three table groups of 60 % of them, with
their digests, as `differencing` keeps them), plus `--deltas` rows of changed lines on the
newest view, then times `forgetting.forget` for one person who is in every row (an erasure:
the rows found by the database) and for `--purged` people at once (a purge: every row
read), each in a transaction rolled back. Nothing else of the app is needed: the memory's
tables only (created from the models).

    .venv/bin/python benchmarks/try_erasure_memory.py --people 100000 --views 20
    .venv/bin/python benchmarks/try_erasure_memory.py --database-url postgresql+psycopg://...
    .venv/bin/python benchmarks/try_erasure_memory.py --set-digests   # reports as views keep
                                                                      # them since dash17
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from selfcheck.evaluation import differencing, forgetting
from selfcheck.platform.models import Base, ExportLog, ExportSelection, StaffUser

SECRET = "bench secret"


def records(hasher: differencing.Hasher, ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:  # type: ignore[type-arg]
    raw = np.empty((ids.size, differencing.RECORD_BYTES), dtype=np.uint8)
    raw[:, : differencing.PERSON_BYTES] = hasher._blocks(differencing.Hasher.PERSON, ids)[
        :, : differencing.PERSON_BYTES
    ]
    raw[:, differencing.PERSON_BYTES :] = rng.integers(0, 256, (ids.size, 8), dtype=np.uint8)
    return np.sort(raw.view(differencing.RECORD).ravel())


def build(db: Session, people: int, views: int, deltas: int, set_digests: bool = False) -> int:
    user = StaffUser(email="bench@example.org", password_hash="x", role="evaluator")
    db.add(user)
    db.flush()
    hasher = differencing.Hasher(SECRET, user.id)
    rng = np.random.default_rng(1)

    def digest(lines: dict[str, np.ndarray], name: str) -> str:  # type: ignore[type-arg]
        # As views keep them since dash17 (`set1:`), or as before (SHA-256).
        if set_digests:
            return differencing._Digests(lines, hasher).mark(name)
        return differencing._Digests(lines).of(name)

    everyone = np.arange(1, people + 1, dtype=np.int64)
    last = 0
    for view in range(views):
        lines = records(hasher, everyone, rng)
        log = ExportLog(
            user_id=user.id,
            kind=differencing.KIND,
            filters=json.dumps({"view": view}),
            row_count=people,
            k=5,
            report=json.dumps({"k": 5, "digest": digest({"": lines}, "")}),
        )
        db.add(log)
        db.flush()
        row = ExportSelection(
            export_id=log.id, user_id=user.id, count=lines.size, people="", lines=lines.tobytes()
        )
        db.add(row)
        groups = {
            name: records(hasher, everyone[rng.random(people) < 0.6], rng)
            for name in ("after", "pairs", "retro")
        }
        tables = ExportLog(
            user_id=user.id,
            kind=differencing.TABLES_KIND,
            filters=json.dumps({"view": view}),
            row_count=people,
            k=5,
            report=json.dumps(
                {
                    "k": 5,
                    "groups": sorted(groups),
                    differencing.DIGESTS: {n: digest(groups, n) for n in groups},
                }
            ),
        )
        db.add(tables)
        db.flush()
        for name, group in groups.items():
            db.add(
                ExportSelection(
                    export_id=tables.id,
                    user_id=user.id,
                    count=group.size,
                    people=f"{name}|",
                    lines=group.tobytes(),
                )
            )
        db.flush()
        last = row.id
        db.commit()
    for delta in range(deltas):  # rows of changed lines on the newest view (person 1 in each)
        changed = records(hasher, np.array([1, people + delta + 1], dtype=np.int64), rng)
        log = ExportLog(  # its digest (of the whole lines) is computed again
            user_id=user.id,
            kind=differencing.KIND,
            filters="{}",
            row_count=1,
            k=5,
            report=json.dumps(
                {"k": 5, "digest": differencing.marked(0, 0) if set_digests else "0" * 64}
            ),
        )
        db.add(log)
        db.flush()
        db.add(
            ExportSelection(
                export_id=log.id,
                user_id=user.id,
                count=changed.size,
                people="",
                lines=changed.tobytes(),
                base_id=last,
            )
        )
        db.flush()
    db.commit()
    return user.id


def timed(db: Session, people: list[int]) -> tuple[float, forgetting.Forgotten]:
    start = time.perf_counter()
    found = forgetting.forget(db, people, SECRET)
    db.flush()
    took = time.perf_counter() - start
    db.rollback()
    return took, found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--views", type=int, default=20)
    parser.add_argument("--deltas", type=int, default=4)
    parser.add_argument("--purged", type=int, default=1000)
    parser.add_argument("--database-url")
    parser.add_argument(
        "--set-digests",
        action="store_true",
        help="reports keep set digests (set1:, as views since dash17) instead of SHA-256",
    )
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="erasure-bench-")
    url = args.database_url or f"sqlite:///{Path(folder) / 'memory.db'}"
    engine = create_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as db:
        start = time.perf_counter()
        build(db, args.people, args.views, args.deltas, args.set_digests)
        rows, size = db.execute(
            select(func.count(), func.sum(func.length(ExportSelection.lines)))
        ).one()
        print(
            f"built {rows} rows, {int(size) / 1e6:.0f} MB of lines "
            f"in {time.perf_counter() - start:.0f} s ({engine.dialect.name})"
        )
        for label, people in (
            ("erasure (1 person in every row)", [1]),
            ("erasure (1 person in every row), again", [2]),
            (f"purge ({args.purged} people)", list(range(10, 10 + args.purged))),
        ):
            took, found = timed(db, people)
            print(
                f"{label}: {took:.2f} s; {found.rows} rows rewritten, {found.lines} lines, "
                f"{found.digests} digests"
            )
    Base.metadata.drop_all(engine)


if __name__ == "__main__":
    main()
