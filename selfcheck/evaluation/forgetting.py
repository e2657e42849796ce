"""What the evaluators' memory keeps of a person who goes (erasure, purge, a person deleted
by staff): their keyed hash leaves every remembered selection, and the person still counts.

The differencing memory (differencing.py) keeps, per evaluator, every selection shown or
exported as lines `<person hash>:<hash of their responses>` (binary records, rows of
changed lines on a base row, text rows kept before, figures' groups `<figure>|<person>`),
and `dashboard_seal` keeps a check's sums and, inline, the records of its small groups.
With the database and the app's secret, hashing every person id finds an erased id in
them (attack round 13, issue 17).

**Why not simply delete the person's lines.** The memory is what stops an evaluator from
differencing one person out of two views: January to June, minus January to May, minus
June alone. Were an erased June respondent P deleted from the remembered selections, the
memory would hold "January to June" without P; a view of June alone (now without P) then
looks like the rest of the two others and is let through, although the evaluator saw
January to June WITH P: the three views, compared, describe P. The erasure would have
opened the very difference the check exists to close.

**What is done instead.** Each line of a person who goes is replaced, in every row of
every evaluator's memory, by a line of a random stranger: the person's hash by a
pseudo-random permutation of it, and the hash of their responses likewise, under an AES key
drawn at random for this erasure and this evaluator and never kept (`_Mask`). In one
evaluator's memory the same person gets the same stranger everywhere (the same old hash,
the same new one; the same responses, the same new hash), so every comparison between the
remembered selections gives what it gave: sizes, equalities, differences, rests and
compositions are unchanged. The stranger is in no selection to come (the person is gone,
and nobody else has that hash but with odds of 2**-96), exactly as the erased person is
not: every later check compares as it would have with the person's own hash. The erasure
changes nothing for the check, and the memory holds nothing that leads to the person: the
key that made the stranger is gone, so nobody, with the secret or not, can tell whose
line it was. What stays is that someone, now gone, was in those selections (a line
matching no living person's hash), as the figures shown then said.

What changes with the lines: each row's lines are rewritten sorted as before (rows of
changed lines on a base too: their base's lines take the same stranger); the digests kept
in their log rows' reports (`differencing.DIGEST`, `DIGESTS`: of the whole lines, also for
the rows whose base changed) are computed again from the new lines, so that views go on
reading only the rows they must; and the evaluator's sealed verdicts (`dashboard_seal`,
`figures_seal`) are deleted: they are keyed hashes of sums that counted the person's
responses, and their `base` holds those sums and small groups' records. The next view of
each of those filters runs the full check (and seals again). Join memory rows
(joins.forget) are deleted as before.

**Cost.** The rows holding the person are found by the database itself when few people go
(an erasure: `position` on PostgreSQL, over the stored bytes: the lines are not sent to the
app; on SQLite, whose `instr` is slower than reading the rows, every row is read), then each
is read, its records replaced and re-inserted in order, written back and digested: about 5 to
10 ms per MB of lines holding the person (0.6 to 1 s for an evaluator's 20 views at 100,000
people, 112 MB). A purge of more than `FEW` people reads every row of every evaluator once.
docs/performance.md, "Erasure and the differencing memory".

**Two at once.** The forgetting holds each evaluator's memory (`joins.MEMORY_LOCK` on
PostgreSQL, in the order of their ids; SQLite has one writer) from before the person's
rows go until the erasure commits, so no view or export of theirs writes between. A view
that read its selection (or groups) before the erasure committed and checks it after would
compare the person's own hash with the stranger's (attack9 A9-1): the forgetting raises the
evaluator's mark (`mark_forgotten`, `differencing.forgetting_mark`), which a view reads
before its selection and again once it holds the memory (`differencing.hold_unchanged`):
moved, the view remembers nothing and is withheld (503, try again); an export's job fails
the same way (bundle.py; on PostgreSQL it holds the memory from its preview on). Nothing
here commits.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from flask import current_app, has_app_context
from sqlalchemy import LargeBinary, bindparam, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from selfcheck.evaluation import joins
from selfcheck.evaluation.differencing import (
    DIGEST,
    DIGESTS,
    FIGURES_KIND,
    HASHED_BY,
    MARK_PREFIX,
    PERSON,
    PERSON_BYTES,
    RECORD,
    RECORD_BYTES,
    Hasher,
    _byte_order,
    _Digests,
    _figures_text,
    _parsed_figures,
    _person_hashes,
    _records,
    _remembered_row,
    remembered_records,
)
from selfcheck.platform.models import (
    DashboardSeal,
    DataVersion,
    ExportLog,
    ExportSelection,
    FiguresSeal,
    JoinMemory,
)

# Up to this many people, the rows holding them are found by the database (a search in the
# stored bytes, one condition per person); more (a purge), every row is read.
FEW = 32


@dataclass(frozen=True)
class Forgotten:
    """What a forgetting changed: evaluators whose memory held someone of the people, rows
    rewritten, lines replaced by strangers', seals deleted, digests computed again."""

    evaluators: int = 0
    rows: int = 0
    lines: int = 0
    seals: int = 0
    digests: int = 0


def app_secret(secret: str | bytes | None) -> str | bytes:
    """`secret`, or the running app's secret key (RuntimeError without one: the memory's
    rows cannot be found, and erasing must not silently leave them)."""
    if secret is not None:
        return secret
    if not has_app_context() or not current_app.secret_key:
        raise RuntimeError("forgetting the evaluators' memory needs the app's secret key")
    return str(current_app.secret_key)


def evaluators_remembering(db: Session) -> list[int]:
    """Every evaluator with a memory (remembered selections or join memory), by id."""
    found = set(
        db.scalars(
            select(ExportSelection.user_id).where(ExportSelection.user_id.is_not(None)).distinct()
        )
    )
    found.update(db.scalars(select(JoinMemory.user_id).distinct()))
    return sorted(int(user) for user in found if user is not None)


def hold_memories(db: Session) -> list[int]:
    """Hold every evaluator's memory until the transaction ends (PostgreSQL: their advisory
    locks, `joins.MEMORY_LOCK`, in the order of their ids; SQLite: its one write lock, which
    the deletions take): call it before anything of the people is deleted, so that an export
    holding its evaluator's memory, which writes join rows, never waits for rows this
    transaction deleted while it waits for that export (no deadlock). Returns the
    evaluators."""
    users = evaluators_remembering(db)
    if db.connection().dialect.name == "postgresql":
        for user_id in users:
            db.execute(select(func.pg_advisory_xact_lock(joins.MEMORY_LOCK, user_id)))
    return users


class _Mask:
    """A pseudo-random permutation under a key drawn now and never kept: the same hash
    always gives the same stranger's (within one evaluator's memory, one forgetting), and
    nothing leads back from it."""

    PERSON = 1
    RESPONSES = 2

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def rows(self, domain: int, raw: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """Each row of bytes (at most 15) as a stranger's of the same width."""
        width = raw.shape[1]
        blocks = np.zeros((raw.shape[0], 16), dtype=np.uint8)
        blocks[:, 0] = domain
        blocks[:, 1 : 1 + width] = raw
        encryptor = Cipher(algorithms.AES(self._key), modes.ECB()).encryptor()
        out = encryptor.update(blocks.tobytes()) + encryptor.finalize()
        return np.frombuffer(out, dtype=np.uint8).reshape(-1, 16)[:, :width].copy()

    def hexadecimal(self, domain: int, digits: str) -> str:
        raw = np.frombuffer(bytes.fromhex(digits), dtype=np.uint8).reshape(1, -1)
        return self.rows(domain, raw).tobytes().hex()

    def records(
        self, records: npt.NDArray[np.bytes_], targets: npt.NDArray[np.bytes_]
    ) -> tuple[npt.NDArray[np.bytes_], int]:
        """Sorted records (one per person) with those of `targets` (sorted person hashes)
        replaced by strangers', still sorted; and how many were."""
        if not records.size or not targets.size:
            return records, 0
        grid = records.view(np.uint8).reshape(records.size, RECORD_BYTES)
        # Each target's record, if any, is the first at or after its hash followed by zeros.
        keys = np.zeros((targets.size, RECORD_BYTES), dtype=np.uint8)
        keys[:, :PERSON_BYTES] = targets.view(np.uint8).reshape(targets.size, PERSON_BYTES)
        at = np.searchsorted(records, keys.view(RECORD).ravel())
        inside = at < records.size
        at = at[inside]
        same = (grid[at, :PERSON_BYTES] == keys[inside, :PERSON_BYTES]).all(axis=1)
        found = np.unique(at[same])
        if not found.size:
            return records, 0
        changed = grid[found].copy()
        changed[:, :PERSON_BYTES] = self.rows(self.PERSON, changed[:, :PERSON_BYTES])
        changed[:, PERSON_BYTES:] = self.rows(self.RESPONSES, changed[:, PERSON_BYTES:])
        strangers = changed[_byte_order(changed)].view(RECORD).ravel()
        kept = np.delete(records, found)
        merged: npt.NDArray[np.bytes_] = np.insert(
            kept, np.searchsorted(kept, strangers), strangers
        )
        return merged, int(found.size)

    def text(self, stored: str, hashes: set[str]) -> tuple[str, int]:
        """Text lines kept before (`<person>:<responses>`, `<person>.<responses>`, a bare
        person hash, each perhaps after `<group>|`; figures' `<figure>|<person>`) with the
        lines of `hashes` (hexadecimal person hashes) made strangers', sorted."""
        if not stored:
            return stored, 0
        if len(hashes) <= 2 * FEW and not any(person in stored for person in hashes):
            return stored, 0
        lines = stored.split("\n")
        count = 0
        for index, line in enumerate(lines):
            prefix, bar, rest = line.rpartition("|")
            separator = ":" if ":" in rest else "." if "." in rest else ""
            person, _sep, responses = rest.partition(separator) if separator else (rest, "", "")
            if person not in hashes:
                continue
            person = self.hexadecimal(self.PERSON, person)
            if responses:
                responses = self.hexadecimal(self.RESPONSES, responses)
            lines[index] = prefix + bar + person + separator + responses
            count += 1
        return ("\n".join(sorted(lines)), count) if count else (stored, 0)


def forget(db: Session, people: Sequence[int], secret: str | bytes | None = None) -> Forgotten:
    """Replace the lines of `people` (ids) by strangers' in every evaluator's remembered
    selections, compute their digests again and delete those evaluators' seals (the module
    doc). `secret`: the app's secret key (by default that of the running app). Call
    `hold_memories` first, before the people's rows are deleted."""
    if not people:
        return Forgotten()
    users = [
        int(user)
        for user in db.scalars(
            select(ExportSelection.user_id).where(ExportSelection.user_id.is_not(None)).distinct()
        )
        if user is not None
    ]
    if not users:
        return Forgotten()
    key = app_secret(secret)
    ids = np.unique(np.fromiter((int(p) for p in people), dtype=np.int64))
    total = Forgotten()
    for user_id in sorted(users):
        found = _forget_for(db, user_id, ids, key)
        total = Forgotten(
            total.evaluators + (1 if found.rows else 0),
            total.rows + found.rows,
            total.lines + found.lines,
            total.seals + found.seals,
            total.digests + found.digests,
        )
    db.flush()
    return total


def _forget_for(
    db: Session, user_id: int, ids: npt.NDArray[np.int64], secret: str | bytes
) -> Forgotten:
    hasher = Hasher(secret, user_id)
    raw = np.ascontiguousarray(hasher._blocks(Hasher.PERSON, ids)[:, :PERSON_BYTES])
    targets = np.sort(raw.view(PERSON).ravel())
    hashes = set(hasher.persons(ids))
    as_text = db.scalar(
        select(func.count())
        .select_from(ExportSelection)
        .where(ExportSelection.user_id == user_id, ExportSelection.lines.is_(None))
    )
    if as_text:  # rows kept before as text: their hashes may be the HMACs kept before too
        key = secret.encode() if isinstance(secret, str) else secret
        hashes.update(_person_hashes(key, user_id, ids.tolist()))
    mask = _Mask()
    rewritten: list[int] = []
    # The digests of the rows rewritten whole, made now, of the kind the row's report keeps
    # (SHA-256, or the set digest `MARK_PREFIX`): only that one (round 18: both were made).
    digested: dict[int, str] = {}
    kinds = _DigestKinds(db)
    replaced = 0
    for row_id in _candidates(db, user_id, targets, hashes):
        people, blob, base = _remembered_row(db, row_id)
        if blob is not None:
            records, count = mask.records(_records(blob), targets)
            if count and base is None:  # its whole lines: digested now, not read again
                name, bar, _rest = people.partition("|")
                label = name if bar else ""
                kind = kinds.of(row_id, people)
                if kind is not None:
                    made = _Digests({label: records}, hasher if kind else None)
                    digested[row_id] = made.mark(label) if kind else made.of(label)
            if count:
                db.execute(
                    update(ExportSelection)
                    .where(ExportSelection.id == row_id)
                    .values(lines=records.tobytes()),
                    execution_options={"synchronize_session": False},
                )
        else:
            stored, count = mask.text(people, hashes)
            if count:
                db.execute(
                    update(ExportSelection)
                    .where(ExportSelection.id == row_id)
                    .values(people=stored),
                    execution_options={"synchronize_session": False},
                )
        if count:
            rewritten.append(row_id)
            replaced += count
    if not rewritten:
        return Forgotten()
    digests = _digests_again(db, user_id, rewritten, digested, hasher)
    seals = _count_seals(db, user_id)
    db.execute(
        delete(DashboardSeal).where(DashboardSeal.user_id == user_id),
        execution_options={"synchronize_session": False},
    )
    db.execute(
        delete(FiguresSeal).where(FiguresSeal.user_id == user_id),
        execution_options={"synchronize_session": False},
    )
    mark_forgotten(db, user_id)
    db.expire_all()  # the rows' and seals' objects this session may hold
    return Forgotten(1, len(rewritten), replaced, seals, digests)


def mark_forgotten(db: Session, user_id: int) -> None:
    """Raise the evaluator's forgetting mark (`differencing.forgetting_mark`) in this
    transaction: a check of theirs that read its selection before this commits remembers
    nothing after (`differencing.hold_unchanged`: 503, try again)."""
    dialect = postgresql if db.connection().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(DataVersion).values(id=-user_id, n=1)
    db.execute(
        statement.on_conflict_do_update(index_elements=["id"], set_={"n": DataVersion.n + 1})
    )


def _count_seals(db: Session, user_id: int) -> int:
    dashboard = db.scalar(
        select(func.count()).select_from(DashboardSeal).where(DashboardSeal.user_id == user_id)
    )
    figures = db.scalar(
        select(func.count()).select_from(FiguresSeal).where(FiguresSeal.user_id == user_id)
    )
    return int(dashboard or 0) + int(figures or 0)


def _candidates(
    db: Session, user_id: int, targets: npt.NDArray[np.bytes_], hashes: set[str]
) -> Iterable[int]:
    """The evaluator's rows that may hold one of the people: found by the database when
    they are few (a search in the stored bytes and text), else every row."""
    mine = select(ExportSelection.id).where(ExportSelection.user_id == user_id)
    dialect = db.connection().dialect.name
    # SQLite's `instr` on a blob compares at every byte (memcmp), once per person: slower
    # than reading the rows (100 MB of records: 0.85 s for one person, 24 s for 32, 0.56 s
    # read whole; attack9, load 9 on 2 cores), with its one write lock held by the erasure
    # (every writer of the app waits). PostgreSQL's `position` is faster than sending the
    # rows (0.12 s, 4.7 s, 6.1 s).
    if targets.size > FEW or dialect == "sqlite":
        return list(db.scalars(mine.order_by(ExportSelection.id)))
    # Each hash's 12 bytes (`tolist` of fixed-width byte strings drops trailing zeros).
    grid = targets.view(np.uint8).reshape(targets.size, PERSON_BYTES)
    needles = [row.tobytes() for row in grid]
    if dialect == "postgresql":
        in_lines = [f"position(:n{i} in lines) > 0" for i in range(len(needles))]
    else:
        in_lines = [f"instr(lines, :n{i}) > 0" for i in range(len(needles))]
    in_text = [f"people LIKE :h{i}" for i in range(len(hashes))]
    where = f"(lines IS NOT NULL AND ({' OR '.join(in_lines)}))"
    if in_text:
        where += f" OR (lines IS NULL AND ({' OR '.join(in_text)}))"
    statement = text(
        f"SELECT id FROM export_selection WHERE user_id = :user AND ({where}) ORDER BY id"
    ).bindparams(
        bindparam("user", user_id),
        *(bindparam(f"n{i}", needle, type_=LargeBinary) for i, needle in enumerate(needles)),
        *(bindparam(f"h{i}", f"%{person}%") for i, person in enumerate(sorted(hashes))),
    )
    return [int(row_id) for row_id in db.scalars(statement)]


def _digest_holder(report: dict[str, object], people: str) -> tuple[dict[str, object], str] | None:
    """Where a row's digest is kept in its log row's report (a view's `DIGEST`, or a table's
    group under `DIGESTS`), with its key; None when none is (an export, a row kept before
    digests). Not for figures' rows (kept as text, digested as `_figures_text` writes them)."""
    name, bar, _rest = people.partition("|")
    named = report.get(DIGESTS)
    if bar and isinstance(named, dict) and name in named:
        return named, name
    if not bar and DIGEST in report:
        return report, DIGEST
    return None


class _DigestKinds:
    """The kind of digest each remembered row's report keeps: True for a set digest
    (`MARK_PREFIX`, a patched view updates it), False for SHA-256, None for none. Read
    once per log row (a view's row and its tables' groups share one)."""

    def __init__(self, db: Session) -> None:
        self._db = db
        self._reports: dict[int, dict[str, object] | None] = {}

    def of(self, row_id: int, people: str) -> bool | None:
        export_id, kind, report = self._db.execute(
            select(ExportSelection.export_id, ExportLog.kind, ExportLog.report)
            .join(ExportLog, ExportLog.id == ExportSelection.export_id)
            .where(ExportSelection.id == row_id)
        ).one()
        if kind == FIGURES_KIND:
            return None
        if export_id not in self._reports:
            try:
                found = json.loads(report or "{}")
            except ValueError:
                found = None
            self._reports[export_id] = found if isinstance(found, dict) else None
        parsed = self._reports[export_id]
        held = None if parsed is None else _digest_holder(parsed, people)
        if held is None:
            return None
        holder, label = held
        return str(holder.get(label, "")).startswith(MARK_PREFIX)


def _digests_again(
    db: Session,
    user_id: int,
    rewritten: Sequence[int],
    digested: Mapping[int, str],
    hasher: Hasher,
) -> int:
    """The digests kept in the log rows' reports of the rows rewritten and of every row of
    changed lines built on them (their whole lines changed too), computed again from the
    lines now; how many."""
    rows = db.execute(
        select(
            ExportSelection.id,
            ExportSelection.export_id,
            ExportSelection.people,
            ExportSelection.lines.is_(None),
            ExportLog.kind,
            ExportLog.report,
        )
        .join(ExportLog, ExportLog.id == ExportSelection.export_id)
        .where(ExportSelection.id.in_(sorted(_built_on(db, user_id, rewritten))))
    ).all()
    reports: dict[int, dict[str, object]] = {}
    done = 0
    for row_id, export_id, people, as_text, kind, report in rows:
        try:
            found = reports.setdefault(export_id, json.loads(report or "{}"))
        except ValueError:
            continue
        if not isinstance(found, dict):
            continue
        if kind == FIGURES_KIND:
            done += _figures_digest_again(db, row_id, people, report, found)
        else:
            done += _lines_digest_again(db, row_id, people, as_text, found, digested, hasher)
    for export_id, kept in reports.items():
        db.execute(
            update(ExportLog)
            .where(ExportLog.id == export_id)
            .values(report=json.dumps(kept, ensure_ascii=False)),
            execution_options={"synchronize_session": False},
        )
    return done


def _built_on(db: Session, user_id: int, rewritten: Sequence[int]) -> set[int]:
    """The rows `rewritten` and every row of changed lines built on them, at any depth."""
    children: dict[int, list[int]] = defaultdict(list)
    for row_id, base in db.execute(
        select(ExportSelection.id, ExportSelection.base_id).where(
            ExportSelection.user_id == user_id, ExportSelection.base_id.is_not(None)
        )
    ):
        if base is not None:
            children[int(base)].append(int(row_id))
    changed: set[int] = set()
    waiting = list(rewritten)
    while waiting:
        row_id = waiting.pop()
        if row_id not in changed:
            changed.add(row_id)
            waiting.extend(children.get(row_id, ()))
    return changed


def _figures_digest_again(
    db: Session, row_id: int, people: str, report: str | None, found: dict[str, object]
) -> bool:
    """A figures view's digest computed again from its text kept (stored again as
    `_figures_text` writes it, so that its digest is a view's), or dropped when it was not
    hashed; whether it was computed again."""
    if DIGEST in found and HASHED_BY in (report or ""):
        canonical, _count = _figures_text(_parsed_figures(people))
        db.execute(
            update(ExportSelection).where(ExportSelection.id == row_id).values(people=canonical),
            execution_options={"synchronize_session": False},
        )
        found[DIGEST] = _sha256(canonical)
        return True
    found.pop(DIGEST, None)
    return False


def _lines_digest_again(
    db: Session,
    row_id: int,
    people: str,
    as_text: bool | None,
    found: dict[str, object],
    digested: Mapping[int, str],
    hasher: Hasher,
) -> bool:
    """A selection's digest, kept in its report, computed again from its lines now (or the
    one made when the row was rewritten); whether there was one."""
    name, bar, _rest = people.partition("|")
    name = name if bar else ""
    held = _digest_holder(found, people)
    if held is None:
        return False  # no digest kept (an export, or a row kept before digests)
    holder, label = held
    # A set digest (branch dash17) stays one: a patched view updates it in place.
    as_mark = str(holder.get(label, "")).startswith(MARK_PREFIX)
    if row_id in digested:  # made of this kind when the row was rewritten
        holder[label] = digested[row_id]
        return True
    whole, _depth = remembered_records(db, row_id)
    if whole is None:
        holder.pop(label)  # lines kept in an earlier format: read as always
    elif as_mark:
        holder[label] = _Digests({name: whole}, hasher).mark(name)
    else:
        holder[label] = _Digests({name: whole}).of(name, as_text=bool(as_text))
    return True


def _sha256(stored: str) -> str:
    return hashlib.sha256(stored.encode("utf-8")).hexdigest()
