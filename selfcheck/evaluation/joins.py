"""Exports of one evaluator joined on the people they share stay k-anonymous.

Each export is k-anonymous on its own (`anonymise._verify`), but two exports that share
people can be joined on those people's answers (dozens of columns, the same in both files).
Their generalisations and masked cells differ, so a person masked in one file is shown in
the other: joined, the quasi-identifiers (QI) leave classes under k.

The invariant kept, per evaluator: in the OUTER JOIN of everything that evaluator was ever
released, each person's key is the tuple of their released QI vectors, one per export
("absent" where the export did not have them), the vector as `_verify` sees it (the forms
pattern as shown); every class of identical keys holds at least k people. Then joining any
set of their files on answers gives no class under k (a coarser key than the whole tuple
only merges classes).

Memory (`JoinMemory`, per evaluator and person): `person`, an HMAC of the person under the
app secret with the evaluator's id (never ids nor codes), and `digest`, an HMAC chain
`H(previous digest || export || released vector)`, `export` a random token drawn for each
export. Two people share a digest exactly when the same exports released them with the same
vectors, that is when they have the same key (up to hash collisions). A person not in an
export keeps their digest, so an export only writes the rows of the people it releases.
The token is needed: without it (the lead's first design) someone released with v by one
export and absent from the next, and someone absent from the first and released with v by
the next, both got H(none || v), and the memory merged two classes of the join (a test
of random exports found classes of 1).

A new export, after its plan (`restrict`):
0. the people of one earlier class d (and one forms pattern) whom the new plan splits into
   vectors of which one holds fewer than k of them are all given the same vector: every
   column on which they differ is masked (the lead's design left such parts out, then the
   rest of d by step 2: 300 people then 30 more, 54 left out without this step, 36 with
   it; 2,000 then 20 more, 49 and 33);
then it groups the plan's people by (previous digest or none, new vector):
1. a group of fewer than k people is left out of this export;
2. then, per previous digest d, when the people of d NOT released now (left out, out of
   scope, or never asked for again) number 1 to k - 1, the whole d group is left out.

Proof that one pass keeps the invariant (step 0 only changes vectors: any vectors will do),
by induction (every class of the memory has at least k people before the export). After
it, the classes are: (d, v) for the people of d released with vector v, (none, v) for people
released for the first time, and (d, absent) for the people of d not released now. A (d, v)
or (none, v) group that is released survived step 1 (>= k), and step 2 removes whole d
groups only, so it is still >= k. A (d, absent) class is either all of d (step 2 left d out,
or nobody of d was released: >= k by induction), or what step 2 let through: 0 or >= k
people. People never released stay in no class. The export's own k still holds: each of its
vectors is a union of groups of >= k.

The people left out by this are counted apart in the report ("because of your earlier
exports"). The same selection exported again with nothing new loses nobody: the plan is
deterministic, so each class d is released again whole with the same vector. After a few
new people or new answers the plan may choose other levels or mask other cells: a class it
splits is released alike with more cells masked (step 0), or left out when fewer than k of
it are still in the selection; new people go out only once k of them share a vector (at
10,000 people then 100 more, 98 were left out). A narrower selection after a wider one
leaves out every earlier class with 1 to k - 1 people outside it. The report counts them.

Two exports of one evaluator at once: `load(lock=True)` holds the evaluator's row on
PostgreSQL; SQLite ignores FOR UPDATE, so `record` checks the memory's stamp again once the
export's log row is written (the write lock then held): another export recorded meanwhile
fails this one (MemoryChanged), as both planned on the same memory and their join was never
checked (attack round 13: classes of 1). The dashboard's views hold the same row (`hold`)
before they remember a selection, and check their own memory's stamp again
(differencing.py, "Two views at once").

Not covered: two evaluators pooling their files (each has a memory of their own), and an
evaluator who knows the data some other way. Erasure and purge forget the person's rows
(`forget`); the rows already released about them stay in the files, so a later export may
leave their old class under k in the join, about data released before the erasure.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from selfcheck.evaluation.anonymity import MASKED
from selfcheck.platform.models import JoinMemory, StaffUser

CHUNK = 500  # hashes per IN (...) when deleting
WRITTEN_AT_ONCE = 2000  # rows of the memory inserted or updated by one statement (`record`)
SEPARATOR = "\x1f"


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def person_hashes(secret: str | bytes, user_id: int, people: Iterable[int]) -> dict[int, str]:
    """Each person's keyed hash for this evaluator (never their id nor their code)."""
    key = _key(secret)
    return {
        person: hmac.digest(key, f"join:{user_id}:{person}".encode(), "sha256").hex()[:32]
        for person in people
    }


def vector(pattern: Any, values: Mapping[str, Any], skip: str) -> str:
    """A released QI vector as `_verify` sees it: the forms pattern as shown, then every
    other column's released value (`repr`: MASKED, None and values kept apart; a repr
    escapes control characters, so the separator cannot occur inside one)."""
    cells = [f"{name}={values[name]!r}" for name in sorted(values) if name != skip]
    return SEPARATOR.join([repr(pattern), *cells])


def chain(secret: str | bytes, previous: str | None, export: str, released: str) -> str:
    """The digest after the export `export` (its token) released `released` about the
    person."""
    message = f"{previous or ''}\n{export}\n{released}".encode()
    return hmac.digest(_key(secret), message, "sha256").hex()[:32]


@dataclass(frozen=True)
class Memory:
    """What one evaluator's earlier exports released, as the next export needs it.

    `previous`: beneficiary id (people in scope) -> their digest, for those released before;
    `sizes`: digest -> how many people of this evaluator have it (in scope or not);
    `export`: the token of the export to come, drawn at random."""

    secret: str | bytes
    previous: Mapping[int, str] = field(default_factory=dict)
    sizes: Mapping[str, int] = field(default_factory=dict)
    export: str = field(default_factory=lambda: secrets.token_hex(16))
    # What the evaluator's memory held when read (`stamp`); None: not read from a database.
    stamp: str | None = None

    def after(self, released: Mapping[int, str]) -> Memory:
        """The memory once `released` (id -> new digest) is recorded (for engine tests:
        `previous` then covers the people of both)."""
        previous = {**self.previous, **released}
        sizes = Counter(self.sizes)
        for person in released:
            old = self.previous.get(person)
            if old is not None:
                sizes[old] -= 1
        sizes.update(released.values())
        return Memory(self.secret, previous, {d: n for d, n in sizes.items() if n > 0})


@dataclass(frozen=True)
class Restricted:
    left_out: frozenset[int]  # people the plan released, left out of this export
    digests: dict[int, str]  # the people released now -> their new digest
    merged: dict[int, dict[str, Any]]  # people released with more cells masked (step 0)


def restrict(
    decisions: Mapping[int, Mapping[str, Any]],
    patterns: Mapping[int, Any],
    memory: Memory,
    k: int,
    fixed: str,
) -> Restricted:
    """Steps 0, 1 and 2 of the module doc, for the plan's people (`decisions`: id -> their
    released QI values; `patterns`: id -> their forms pattern as shown; `fixed`: the column
    of the pattern, never masked)."""
    # Step 0 replaces a person's values by a new dict, never changes one: the plan's own
    # dicts are shared, not copied (20,000 people: 16 MB and their copying saved).
    shown: dict[int, Mapping[str, Any]] = dict(decisions)
    vectors = {person: vector(patterns[person], shown[person], fixed) for person in shown}
    merged = _merge_split_classes(shown, vectors, patterns, memory, k, fixed)
    groups: dict[tuple[str | None, str], list[int]] = defaultdict(list)
    for person, released in vectors.items():
        groups[(memory.previous.get(person), released)].append(person)
    kept: dict[str | None, list[int]] = defaultdict(list)
    left: set[int] = set()
    for (previous, _released), people in groups.items():
        if len(people) < k:  # step 1
            left.update(people)
        else:
            kept[previous].extend(people)
    for previous, people in kept.items():  # step 2
        if previous is None:
            continue
        not_released = memory.sizes.get(previous, 0) - len(people)
        if 0 < not_released < k:
            left.update(people)
    digests = {
        person: chain(memory.secret, memory.previous.get(person), memory.export, released)
        for person, released in vectors.items()
        if person not in left
    }
    return Restricted(
        frozenset(left),
        digests,
        {person: dict(shown[person]) for person in merged if person not in left},
    )


def _merge_split_classes(
    shown: dict[int, Mapping[str, Any]],
    vectors: dict[int, str],
    patterns: Mapping[int, Any],
    memory: Memory,
    k: int,
    fixed: str,
) -> set[int]:
    """Step 0: the people of one earlier class (and one forms pattern) whom the new plan
    splits into a part under k are all released alike: each column they differ on masked.
    Changes `shown` and `vectors` in place; returns the people changed."""
    classes: dict[tuple[str, str], list[int]] = defaultdict(list)
    for person in shown:
        previous = memory.previous.get(person)
        if previous is not None:
            classes[(previous, repr(patterns[person]))].append(person)
    changed: set[int] = set()
    for people in classes.values():
        sizes = Counter(vectors[person] for person in people)
        if len(sizes) < 2 or min(sizes.values()) >= k:
            continue
        first = shown[people[0]]
        meet = {
            column: value
            if column == fixed or all(repr(shown[p][column]) == repr(value) for p in people)
            else MASKED
            for column, value in first.items()
        }
        for person in people:
            shown[person] = dict(meet)
            vectors[person] = vector(patterns[person], meet, fixed)
            changed.add(person)
    return changed


def load(
    db: Session,
    user: StaffUser,
    people: Sequence[int],
    secret: str | bytes,
    *,
    lock: bool = False,
) -> Memory:
    """The evaluator's memory for an export of `people`. `lock`: hold the evaluator's row
    until the transaction ends (PostgreSQL), so that two exports of theirs running at once
    do not both build on the same memory."""
    if lock:
        hold(db, user)
    wanted = {hashed: person for person, hashed in person_hashes(secret, user.id, people).items()}
    current, previous, sizes = _scan(db, user, wanted)
    return Memory(secret, previous, sizes, stamp=current)


STREAM_ROWS = 5000  # memory rows fetched at a time by `_scan`


def _scan(
    db: Session, user: StaffUser, wanted: Mapping[str, int]
) -> tuple[str, dict[int, str], dict[str, int]]:
    """One pass over the evaluator's memory, streamed in the rows' order: its stamp, the
    digest of each person of `wanted` (person hash -> id) who has one, and how many people
    have each digest. Only these are kept: not a dict of every row (about 6 MB at 20,000
    people remembered, on top of the export's own memory; docs/performance.md)."""
    whole = hashlib.sha256()
    found: dict[int, str] = {}
    sizes: Counter[str] = Counter()
    rows = db.execute(
        select(JoinMemory.person, JoinMemory.digest)
        .where(JoinMemory.user_id == user.id)
        .order_by(JoinMemory.id)
        .execution_options(yield_per=STREAM_ROWS)
    )
    for person, digest in rows:
        whole.update(f"{person}:{digest}\n".encode())
        sizes[digest] += 1
        who = wanted.get(person)
        if who is not None:
            found[who] = digest
    return whole.hexdigest(), found, dict(sizes)


# PostgreSQL advisory lock class of an evaluator's memory (the second key is their id): a
# lock of its own, so that their sign-in and job requests, which lock their `staff_user` row,
# never wait for an export (attack round 16, A7-4).
MEMORY_LOCK = 0x5E1F
# How often a bounded wait (`hold(..., wait=)`) tries the lock again.
RETRY_SECONDS = 0.1


class MemoryBusy(RuntimeError):
    """The evaluator's memory stayed held (by an export of theirs) for longer than a view may
    wait: the view is withheld, never shown unchecked (attack round 16, A7-2)."""


def hold(db: Session, user: StaffUser, *, write: bool = False, wait: float | None = None) -> None:
    """Hold the evaluator's memory until the transaction ends, so that its writers run one
    after the other (exports here and their memory stamp; the views of differencing.py,
    `differencing.hold_unchanged`). Taken before anything else of theirs is locked: waits,
    never a deadlock.

    PostgreSQL: an advisory lock of the transaction keyed by the evaluator (`MEMORY_LOCK`);
    with `wait`, tried again until `wait` seconds have passed, then MemoryBusy (a view waits
    that long at most for an export, which holds it for its plan and rows: tens of seconds at
    a million answers). SQLite has one write lock, taken by a transaction's first write and
    kept until it ends: `write` takes it now (a write that changes nothing: the row's id set
    to itself; SQLite's busy timeout bounds the wait). Exports do not (their plan takes
    seconds, and every writer of the app would wait that long): they write their log row
    first, then check the stamp (`record`)."""
    if db.connection().dialect.name == "sqlite":
        if write:
            db.execute(
                update(StaffUser).where(StaffUser.id == user.id).values(id=StaffUser.id),
                execution_options={"synchronize_session": False},
            )
        return
    if wait is None:
        db.execute(select(func.pg_advisory_xact_lock(MEMORY_LOCK, user.id)))
        return
    deadline = time.monotonic() + wait
    tried = select(func.pg_try_advisory_xact_lock(MEMORY_LOCK, user.id))
    while not db.execute(tried).scalar_one():
        if time.monotonic() >= deadline:
            raise MemoryBusy("the evaluator's memory is held by an export of theirs")
        time.sleep(RETRY_SECONDS)


class MemoryChanged(RuntimeError):
    """Another writer of the same evaluator's memory recorded after this one read it (two
    export jobs at once, on SQLite where `lock` holds nothing; two views at once,
    differencing.py): what this one checked against is gone, so it fails (an export's job
    fails, nothing released nor remembered; a view checks again)."""


def record(
    db: Session,
    user: StaffUser,
    digests: Mapping[int, str],
    secret: str | bytes,
    expected: str | None = None,
) -> None:
    """Remember what an export released (id -> new digest), in the caller's transaction:
    call it once the file is written, with the export's log row (written first: on SQLite
    the transaction then holds the write lock, so nothing changes the memory in between).

    `expected`: the memory's stamp when the export read it (`Memory.stamp`); another stamp
    now means another export of this evaluator recorded since: MemoryChanged."""
    hashed = person_hashes(secret, user.id, digests)
    current, existing, _sizes = _scan(db, user, {h: p for p, h in hashed.items()})
    if expected is not None and current != expected:
        raise MemoryChanged("another export of this evaluator was recorded meanwhile")
    statement = (
        update(JoinMemory)
        .where(JoinMemory.user_id == user.id, JoinMemory.person == bindparam("who"))
        .values(digest=bindparam("new"))
    )
    # WRITTEN_AT_ONCE rows a statement: the parameters of every person released at once (and
    # the driver's copies of them) were the export's peak of memory, about 12 MB more for
    # 20,000 people (docs/performance.md, "The export's memory under 170 MB").
    people = list(digests)
    for start in range(0, len(people), WRITTEN_AT_ONCE):
        chunk = people[start : start + WRITTEN_AT_ONCE]
        updates = [{"who": hashed[p], "new": digests[p]} for p in chunk if p in existing]
        inserts = [
            {"user_id": user.id, "person": hashed[p], "digest": digests[p]}
            for p in chunk
            if p not in existing
        ]
        if updates:
            db.connection().execute(statement, updates)
        if inserts:
            db.execute(insert(JoinMemory), inserts)
    db.flush()


def forget(db: Session, people: Sequence[int], secret: str | bytes | None = None) -> int:
    """Delete every memory row of these people (erasure, purge); how many went.

    `secret`: the app's secret key (by default that of the running app). Without one, and
    with rows to look at, RuntimeError: the rows cannot be found, and erasing must not
    silently leave them."""
    if not people:
        return 0
    users = list(db.scalars(select(JoinMemory.user_id).distinct()))
    if not users:
        return 0
    if secret is None:
        if not has_app_context() or not current_app.secret_key:
            raise RuntimeError("forgetting exports' memory needs the app's secret key")
        secret = str(current_app.secret_key)
    removed = 0
    for user_id in users:
        hashed = list(person_hashes(secret, user_id, people).values())
        for start in range(0, len(hashed), CHUNK):
            chunk = hashed[start : start + CHUNK]
            removed += int(
                db.scalar(
                    select(func.count())
                    .select_from(JoinMemory)
                    .where(JoinMemory.user_id == user_id, JoinMemory.person.in_(chunk))
                )
                or 0
            )
            db.execute(
                delete(JoinMemory).where(
                    JoinMemory.user_id == user_id, JoinMemory.person.in_(chunk)
                ),
                execution_options={"synchronize_session": False},
            )
    return removed
