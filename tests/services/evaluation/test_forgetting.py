"""A person who goes (erasure, purge, deletion by staff) leaves no keyed hash in what the
evaluators' memory keeps (evaluation/forgetting.py, issue 17), and the differencing check
is unchanged: the person's lines are a stranger's, the same in every row of the memory.

Checked independently of the code that cleans: every column of every table is searched
for the person's hashes (both formats, binary and hexadecimal) and code, and on SQLite the
database file itself once its log is checkpointed."""

from __future__ import annotations

import hmac
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from selfcheck.evaluation import bundle, differencing, forgetting, joins
from selfcheck.evaluation.scope import ScopeError
from selfcheck.followup import operations as followup
from selfcheck.journey import operations as journey
from selfcheck.platform.db import Database
from selfcheck.platform.models import (
    Base,
    Beneficiary,
    DashboardSeal,
    ExportLog,
    ExportSelection,
    FiguresSeal,
    Job,
    Response,
    Role,
    StaffUser,
    utcnow,
)
from selfcheck.privacy import operations as privacy
from selfcheck.questionnaire.model import Definition, FormKind
from tests.conftest import is_postgres
from tests.services.evaluation.test_differencing_sealed import SECRET, Evaluated, K
from tests.services.evaluation.test_facts import random_values
from tests.staff import add_staff
from tests.support import fill_and_submit


@pytest.fixture
def evaluated(
    db_session: Session, database: Database, definition: Definition, request_context: None
) -> Evaluated:
    return Evaluated(db_session, database, definition)


def traces(person: int, user_id: int, code: str | None = None) -> tuple[bytes, set[str]]:
    """The person's hash in the evaluator's memory (12 bytes), and every text form of a
    hash of theirs: hexadecimal (records, text lines, figures), the HMAC kept before, the
    code."""
    hasher = differencing.Hasher(SECRET, user_id)
    raw = hasher._blocks(differencing.Hasher.PERSON, np.array([person]))[0, :12].tobytes()
    legacy = hmac.digest(SECRET.encode(), f"selection:{user_id}:{person}".encode(), "sha256")
    texts = {raw.hex(), legacy.hex()[:24]}
    if code:
        texts.add(code)
    return raw, texts


def found_anywhere(db: Session, raw: bytes, texts: set[str]) -> list[str]:
    """Every column of every table where the person's hash or code is (independent of what
    forgetting.py cleans)."""
    found = []
    for table in Base.metadata.sorted_tables:
        for row in db.execute(select(table)).all():
            for column, value in zip(table.columns, row, strict=True):
                if isinstance(value, bytes | memoryview):
                    value = bytes(value)
                    if raw in value or any(t.encode() in value for t in texts):
                        found.append(f"{table.name}.{column.name}")
                elif isinstance(value, str) and any(t.lower() in value.lower() for t in texts):
                    found.append(f"{table.name}.{column.name}")
    return found


def found_in_file(db: Session, raw: bytes, texts: set[str]) -> bool:
    """On SQLite: whether the database file holds the hash or code anywhere (old pages
    included, once the log is checkpointed: `privacy.scrub_storage`)."""
    privacy.scrub_storage(db)
    db.commit()
    name = db.get_bind().engine.url.database
    assert name
    data = Path(name).read_bytes()
    return raw in data or any(t.encode() in data for t in texts)


def whole_rows(db: Session, user: StaffUser) -> dict[int, np.ndarray]:  # type: ignore[type-arg]
    """Every remembered selection and group of the evaluator, as whole sorted records."""
    rows = {}
    for (row_id,) in db.execute(
        select(ExportSelection.id).where(
            ExportSelection.user_id == user.id, ExportSelection.lines.is_not(None)
        )
    ):
        records, _depth = differencing.remembered_records(db, row_id)
        assert records is not None
        rows[row_id] = records
    return rows


def comparisons(rows: dict[int, Any]) -> dict[tuple[int, int], int]:
    """What the check computes between remembered selections: how many people differ."""
    return {(a, b): differencing.differing(rows[a], rows[b]) for a in rows for b in rows if a < b}


def assert_consistent(db: Session, user: StaffUser) -> None:
    """Each row's lines sorted and one per person, its count theirs, and every digest kept
    in a report that of the whole lines now."""
    for row_id, records in whole_rows(db, user).items():
        persons = differencing._persons(records)
        assert persons.size == records.size  # one line per person
        assert np.array_equal(np.sort(records), records)
        people, count, base, report = db.execute(
            select(
                ExportSelection.people,
                ExportSelection.count,
                ExportSelection.base_id,
                ExportLog.report,
            )
            .join(ExportLog)
            .where(ExportSelection.id == row_id)
        ).one()
        assert count == records.size
        kept = json.loads(report)
        name = people.partition("|")[0] if "|" in people else ""
        digest = kept.get(differencing.DIGESTS, {}).get(name) if name else kept.get("digest")
        if digest is not None:
            digests = differencing._Digests({name: records}, differencing.Hasher(SECRET, user.id))
            assert digests.matches(name, digest, count)
        del base


def views_with_patches(evaluated: Evaluated) -> None:
    """A dozen people, a full check (sealed), then new people and views patched from it
    (rows of changed lines on a base), views of the other filters and figures."""
    for seed in range(12):
        evaluated.run("new", seed)
    evaluated.view(0)
    for seed in range(4):
        evaluated.run("new", 100 + seed)
        evaluated.view(0)
    evaluated.view(1)
    evaluated.view(2)
    evaluated.figures(0)


def someone_remembered(evaluated: Evaluated, base_row: bool) -> Beneficiary:
    """A person of the whole selection whose hash is in a base row (`base_row`), or only in
    rows of changed lines."""
    db, user = evaluated.db, evaluated.user
    bases = set(
        db.scalars(select(ExportSelection.base_id).where(ExportSelection.base_id.is_not(None)))
    )
    assert bases, "no view was patched"
    for person in evaluated.people():
        raw, _texts = traces(person.id, user.id)
        holders = {
            row_id
            for row_id, blob in db.execute(select(ExportSelection.id, ExportSelection.lines))
            if blob is not None and raw in bytes(blob)
        }
        if holders and bool(holders & bases) == base_row:
            return person
    raise AssertionError("nobody remembered so")


@pytest.mark.slow  # a dozen people through the journey, a dozen views: about 10 s
@pytest.mark.parametrize("base_row", [True, False], ids=["in-a-base", "in-changed-lines-only"])
def test_an_erased_person_is_a_stranger_in_every_remembered_row(
    evaluated: Evaluated, base_row: bool
) -> None:
    views_with_patches(evaluated)
    db, user = evaluated.db, evaluated.user
    assert db.scalar(select(func.count()).select_from(DashboardSeal))
    person = someone_remembered(evaluated, base_row)
    code = person.code
    raw, texts = traces(person.id, user.id, code)
    assert found_anywhere(db, raw, texts)
    before = whole_rows(db, user)
    whole = evaluated.selections()[0]
    lines = differencing.selection_lines(db, whole, user, SECRET)

    privacy.erase_by_code(db, code, secret=SECRET)
    db.commit()

    assert found_anywhere(db, raw, texts) == []
    if not is_postgres():
        assert not found_in_file(db, raw, texts)
    after = whole_rows(db, user)
    # The same rows, the same sizes, the same comparisons between them: the check unchanged.
    assert after.keys() == before.keys()
    assert {r: a.size for r, a in after.items()} == {r: b.size for r, b in before.items()}
    assert comparisons(after) == comparisons(before)
    assert_consistent(db, user)
    # The seals counted the person's responses: gone; the next view checks in full.
    assert db.scalar(select(func.count()).select_from(DashboardSeal)) == 0
    assert db.scalar(select(func.count()).select_from(FiguresSeal)) == 0
    # An evaluator cannot use the erasure to difference the person out: the whole selection
    # now (everyone but the person) is one person away from what was exported before.
    without = [line for line in lines if not line.startswith(raw.hex())]
    assert len(without) == len(lines) - 1
    with pytest.raises(ScopeError):
        bundle.check_differencing(db, user, without, K)
    # Views go on: patched, sealed or full, their lines are a full read's (Evaluated checks).
    evaluated.view(0)
    evaluated.view(0)
    evaluated.run("new", 999)
    evaluated.view(0)
    assert_consistent(db, user)


@pytest.mark.slow  # about 10 s
@pytest.mark.parametrize("few", [forgetting.FEW, 0], ids=["searched", "every-row-read"])
def test_purged_people_are_strangers_in_every_remembered_row(
    evaluated: Evaluated, few: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(forgetting, "FEW", few)
    views_with_patches(evaluated)
    db, user = evaluated.db, evaluated.user
    gone = [p for p in evaluated.people() if any(r.is_submitted for r in p.responses)][:3]
    all_traces = [traces(p.id, user.id, p.code) for p in gone]
    before = whole_rows(db, user)
    long_ago = privacy.months_before(utcnow(), 40)
    ids = [p.id for p in gone]
    db.execute(update(Response).where(Response.beneficiary_id.in_(ids)).values(updated_at=long_ago))
    db.execute(update(Beneficiary).where(Beneficiary.id.in_(ids)).values(created_at=long_ago))
    db.commit()
    report = privacy.purge(db, 24, dry_run=False, secret=SECRET)
    db.commit()
    assert report.people == len(gone)
    for raw, texts in all_traces:
        assert found_anywhere(db, raw, texts) == []
        if not is_postgres():
            assert not found_in_file(db, raw, texts)
    after = whole_rows(db, user)
    assert comparisons(after) == comparisons(before)
    assert_consistent(db, user)
    evaluated.view(0)
    assert_consistent(db, user)


@pytest.mark.slow  # about 5 s
def test_a_person_deleted_by_staff_is_forgotten_by_the_memory(evaluated: Evaluated) -> None:
    views_with_patches(evaluated)
    db, user = evaluated.db, evaluated.user
    person = someone_remembered(evaluated, True)
    raw, texts = traces(person.id, user.id)  # the code stays in the audit (PRIVACY.md)
    before = whole_rows(db, user)
    followup.delete_person(db, evaluated.mediator, person, secret=SECRET)
    db.commit()
    assert found_anywhere(db, raw, texts) == []
    assert comparisons(whole_rows(db, user)) == comparisons(before)


def test_lines_kept_as_text_are_made_strangers_too(db_session: Session, database: Database) -> None:
    # Rows kept before branch dash4 (text lines, and the HMACs kept before that), a table's
    # group, and the figures' groups: the person's lines replaced, the others kept.
    account = add_staff(database, Role.EVALUATOR)
    user = db_session.get(StaffUser, account.id)
    assert user is not None
    people = list(range(1, 9))
    hasher = differencing.Hasher(SECRET, user.id)
    current = hasher.persons(np.array(people))
    legacy = differencing._person_hashes(SECRET.encode(), user.id, people)
    responses = [f"{n:016x}" for n in people]
    stored = {
        "dashboard": "\n".join(sorted(f"{p}:{r}" for p, r in zip(current, responses, strict=True))),
        "csv-wide": "\n".join(sorted(f"{p}.{r}" for p, r in zip(legacy, responses, strict=True))),
        "xlsx-long": "\n".join(sorted(legacy)),
        differencing.TABLES_KIND: "\n".join(
            sorted(f"after|{p}:{r}" for p, r in zip(current, responses, strict=True))
        ),
        differencing.FIGURES_KIND: "\n".join(sorted(f"response|{p}" for p in current)),
    }
    for kind, text in stored.items():
        log = ExportLog(user_id=user.id, kind=kind, filters="{}", row_count=8, k=K, report="{}")
        db_session.add(log)
        db_session.flush()
        db_session.add(
            ExportSelection(export_id=log.id, user_id=user.id, count=8, people=text, lines=None)
        )
    db_session.commit()
    forgotten = privacy.forget_people(db_session, [3], SECRET)
    db_session.commit()
    assert forgotten.rows == 5 and forgotten.lines == 5
    for kind, text in stored.items():
        now = db_session.scalar(
            select(ExportSelection.people).join(ExportLog).where(ExportLog.kind == kind)
        )
        assert now is not None
        assert current[2] not in now and legacy[2] not in now
        assert responses[2] not in now
        lines = now.split("\n")
        assert lines == sorted(lines) and len(lines) == 8
        assert len(set(text.split("\n")) - set(lines)) == 1  # the person's line only


def test_nothing_to_forget_costs_nothing(db_session: Session) -> None:
    assert privacy.forget_people(db_session, [], SECRET) == forgetting.Forgotten()
    assert forgetting.forget(db_session, [1, 2], SECRET) == forgetting.Forgotten()


@pytest.mark.slow  # a dozen people through the journey, views: about 10 s
def test_after_an_erasure_nothing_anywhere_leads_to_the_person(evaluated: Evaluated) -> None:
    # The independent check (issue 17): after the erasure, every column of every table (and
    # on SQLite the file) is searched for the person's code, their free text, every keyed
    # hash of them (differencing, its HMACs kept before, joins) and their id where a column
    # refers to a person; not only the columns the erasure means to clean.
    for seed in range(12):
        evaluated.run("new", seed)
    db, user = evaluated.db, evaluated.user
    person = next(
        p
        for p in evaluated.people()
        if any(r.form == FormKind.BEFORE.value and r.is_submitted for r in p.responses)
    )
    comment = "texte-libre-unique-4f7a"
    after = journey.start_after(db, evaluated.definition, person, "fr")
    db.commit()
    values = random_values(evaluated.definition, FormKind.AFTER, random.Random(1))
    fill_and_submit(db, evaluated.definition, after, {**values, "COMMENT": [comment]})
    evaluated.view(0)
    evaluated.view(1)
    evaluated.figures(0)
    joins.record(db, user, {person.id: "0" * 32}, SECRET)
    others = [p.code for p in evaluated.people() if p.id != person.id][:2]
    printed = Job(
        id="f" * 32,
        kind="print_batch",
        user_id=evaluated.mediator.id,
        status="done",
        params=json.dumps(
            {
                "existing": [
                    [person.code, "followup", "fr"],
                    *[[c, "followup", "fr"] for c in others],
                ],
                "count": 3,
            }
        ),
    )
    db.add(printed)
    db.commit()
    code, person_id = person.code, person.id
    raw, texts = traces(person_id, user.id, code)
    texts |= {comment, joins.person_hashes(SECRET, user.id, [person_id])[person_id]}
    before = set(found_anywhere(db, raw, texts))
    assert before >= {"answer.value", "job.params", "beneficiary.code", "export_selection.lines"}

    privacy.erase_by_code(db, code, secret=SECRET)
    db.commit()

    assert found_anywhere(db, raw, texts) == []
    assert referring_to(db, person_id) == []
    if not is_postgres():
        assert not found_in_file(db, raw, texts)
    kept = json.loads(db.scalar(select(Job.params)) or "{}")
    assert [copy[0] for copy in kept["existing"]] == others and kept["count"] == 2


def referring_to(db: Session, person_id: int) -> list[str]:
    """Columns that refer to a person (a foreign key to `beneficiary`, or named so) and hold
    this id."""
    found = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            refers = any(key.column.table.name == "beneficiary" for key in column.foreign_keys)
            named = column.name in {"beneficiary_id", "person_id"}
            own = table.name == "beneficiary" and column.name == "id"
            if (refers or named or own) and db.scalar(
                select(func.count()).where(column == person_id)
            ):
                found.append(f"{table.name}.{column.name}")
    return found
