"""Differencing through one table (issue 17, attack2): two views whose people differ by k or
more can differ by 1 to k - 1 inside one table (the people of one form, the paired people).
Such a table is withheld from the second view, the rest is shown (differencing.guard_tables).

The selections are built as id arrays (`differencing.Selection`), so no answers are written:
what is tested is the comparison and what it remembers."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import date, timedelta

import numpy as np
import pytest
from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from selfcheck.evaluation import differencing
from selfcheck.evaluation.guard_views import GROUPS
from selfcheck.evaluation.scope import EvaluationFilters, ScopeError
from selfcheck.platform.db import Database
from selfcheck.platform.models import ExportLog, ExportSelection, Role, StaffUser
from tests.staff import add_staff

K = 3
BEFORE, AFTER = differencing.FORM_CODES.index("before"), differencing.FORM_CODES.index("after")


def selection(*responses: tuple[int, int, int]) -> differencing.Selection:
    """(person, response, form index) per response."""
    table = np.array(sorted(responses), dtype=np.int64).reshape(-1, 3)
    return differencing.Selection(table[:, 0], table[:, 1], table[:, 2].astype(np.int8))


def people(ids: range, form: int, start: int) -> list[tuple[int, int, int]]:
    """One response of `form` per person, response ids from `start`."""
    return [(person, start + n, form) for n, person in enumerate(ids)]


@pytest.fixture
def user(database: Database, db_session: Session) -> StaffUser:
    account = add_staff(database, Role.EVALUATOR, departments=("44",))
    found = db_session.get(StaffUser, account.id)
    assert found is not None
    return found


def view(db: Session, user: StaffUser, months: int, found: differencing.Selection) -> set[str]:
    """The view of `months` months from March 2027 (the filters differ by their end)."""
    year, month = 2027, 2 + months
    last = date(year + (month > 12), (month - 1) % 12 + 1, 1) + timedelta(days=31)
    filters = EvaluationFilters(
        structure_ids=(1,),
        date_from=date(2027, 3, 1),
        date_to=last.replace(day=1) - timedelta(days=1),
    )
    differencing.guard_view(db, user, filters, K, "s", found)  # the whole selections pass
    return set(differencing.guard_tables(db, user, filters, GROUPS, K, "s", found))


# March: 4 people with a 'before' and an 'after'. April adds one who ended (both forms) and 3
# who only started: the selections differ by 4 people (>= k), the 'after' tables by one.
MARCH = [*people(range(1, 5), BEFORE, 100), *people(range(1, 5), AFTER, 200)]
APRIL = [*people(range(5, 9), BEFORE, 300), (5, 400, AFTER)]


def test_attack_a_form_table_one_person_apart_is_withheld_alone(
    db_session: Session, user: StaffUser, caplog: pytest.LogCaptureFixture
) -> None:
    assert view(db_session, user, 2, selection(*MARCH, *APRIL)) == set()
    with caplog.at_level(logging.WARNING, logger="selfcheck.evaluation.differencing"):
        refused = view(db_session, user, 1, selection(*MARCH))
    # The tables of 'after' forms (and of 'after' or retrospective forms: the path tables,
    # the pairs) are withheld; the 'before' tables (4 people apart) are shown.
    assert refused == {"after", "after+retro"}
    assert "before" in GROUPS and "before+retro" in GROUPS
    assert any("table withheld" in r.getMessage() for r in caplog.records)
    # What was withheld is not remembered: the first view again refuses nothing.
    assert view(db_session, user, 2, selection(*MARCH, *APRIL)) == set()
    # ... and the second view again withholds the same tables.
    assert view(db_session, user, 1, selection(*MARCH)) == {"after", "after+retro"}


def test_ordinary_comparisons_show_every_table(db_session: Session, user: StaffUser) -> None:
    """Two periods far apart, and one period inside a longer one with k or more people of
    each form between them: nothing withheld. The same view again: nothing withheld."""
    january = [*people(range(1, 6), BEFORE, 100), *people(range(1, 6), AFTER, 200)]
    june = [*people(range(11, 16), BEFORE, 300), *people(range(11, 16), AFTER, 400)]
    assert view(db_session, user, 1, selection(*january)) == set()
    assert view(db_session, user, 6, selection(*june)) == set()
    assert view(db_session, user, 7, selection(*january, *june)) == set()
    assert view(db_session, user, 7, selection(*january, *june)) == set()


def test_a_person_with_another_response_in_the_table_counts_as_different(
    db_session: Session, user: StaffUser
) -> None:
    """Same people in the 'before+retro' tables, but one of them has a retrospective form
    in one view only: that person's answers would be the difference."""
    retro = differencing.FORM_CODES.index("retro")
    base = [*people(range(1, 9), BEFORE, 100)]
    assert view(db_session, user, 1, selection(*base)) == set()
    # Three people with an 'after' only make the selections k apart.
    others = people(range(20, 23), AFTER, 600)
    refused = view(db_session, user, 2, selection(*base, (1, 500, retro), *others))
    assert refused == {"before+retro"}


def test_only_keyed_hashes_are_remembered(db_session: Session, user: StaffUser) -> None:
    view(db_session, user, 2, selection(*MARCH, *APRIL))
    rows = db_session.execute(
        select(ExportSelection.people, ExportSelection.lines, ExportSelection.count)
        .join(ExportLog, ExportLog.id == ExportSelection.export_id)
        .where(ExportLog.kind == differencing.TABLES_KIND)
    ).all()
    assert rows
    for people, blob, count in rows:
        # The group's name, then its lines as binary records (branch dash4).
        name = people.partition("|")[0]
        assert name in GROUPS and people == f"{name}|"
        assert blob is not None and len(blob) == differencing.RECORD_BYTES * count
        text = "\n".join(differencing.stored_lines(people, blob))
        for line in text.split("\n"):
            assert line.startswith(name + "|") and len(line) == len(name) + 42
            person, colon, responses = line[len(name) + 1 :].partition(":")
            assert colon and len(person) == 24 and len(responses) == 16
            int(person, 16), int(responses, 16)  # hexadecimal digits only: no id, no code


def test_hashes_are_keyed_per_evaluator_and_secret() -> None:
    found = selection(*MARCH)
    lines = differencing.Hasher("s", 1).lines(found)
    assert lines.size == 4 and np.array_equal(lines, differencing.Hasher("s", 1).lines(found))
    assert not set(lines) & set(differencing.Hasher("s", 2).lines(found))
    assert not set(lines) & set(differencing.Hasher("t", 1).lines(found))
    # The line of a person changes with their responses, not their person hash.
    more = differencing.Hasher("s", 1).lines(selection(*MARCH, (1, 999, AFTER)))
    assert differencing.differing(lines, more) == 1


def test_retention_groups_kept_as_hmacs_are_still_compared(
    db_session: Session, user: StaffUser
) -> None:
    """The retention figures' groups are hashed by `Hasher` now; groups kept before as HMACs
    (same shape, no mark in their log row) are compared with this view's groups hashed so."""
    march = EvaluationFilters(structure_ids=(1,), date_to=date(2027, 3, 31))
    april = EvaluationFilters(structure_ids=(1,), date_to=date(2027, 4, 30))
    earlier = list(range(1, 8))
    hmacs = differencing._person_hashes(b"s", user.id, earlier)
    differencing._record(
        db_session, user, differencing.FIGURES_KIND, '{"old": 1}',
        sorted(f"kept|{person}" for person in hmacs), rows=7, count=7, k=K,
    )  # fmt: skip
    # One person more in the same figure's group: refused, though hashed another way now.
    assert not differencing.guard_figures(
        db_session, user, april, {"kept": frozenset(range(1, 9))}, K, "s"
    )
    # k people more: shown, and kept marked as hashed by `Hasher`.
    assert differencing.guard_figures(
        db_session, user, march, {"kept": frozenset(range(1, 11))}, K, "s"
    )
    report = db_session.scalars(
        select(ExportLog.report).where(ExportLog.kind == differencing.FIGURES_KIND)
    ).all()
    assert sum(differencing.HASHED_BY in text for text in report) == 1


def _tables_rows(db: Session) -> list[tuple[str, str]]:
    return [
        (report, people)
        for report, people in db.execute(
            select(ExportLog.report, ExportSelection.people)
            .join(ExportLog, ExportLog.id == ExportSelection.export_id)
            .where(ExportLog.kind == differencing.TABLES_KIND)
        )
    ]


def test_a_group_remembered_with_its_digest_is_recognised_without_reading_it(
    db_session: Session, user: StaffUser
) -> None:
    """Issue 18: each group's SHA-256 digest is kept in its log row's report; the same view
    again finds every group by its digest (nothing new remembered), and another view one
    person apart still reads and compares the groups (the attack above still withheld)."""
    view(db_session, user, 2, selection(*MARCH, *APRIL))
    rows = _tables_rows(db_session)
    digests = json.loads(rows[0][0])[differencing.DIGESTS]
    assert set(digests) == {people.partition("|")[0] for _report, people in rows}
    assert view(db_session, user, 2, selection(*MARCH, *APRIL)) == set()
    assert len(_tables_rows(db_session)) == len(rows)  # recognised: not remembered again
    assert view(db_session, user, 1, selection(*MARCH)) == {"after", "after+retro"}


def test_groups_kept_before_digests_are_still_compared(
    db_session: Session, user: StaffUser
) -> None:
    view(db_session, user, 2, selection(*MARCH, *APRIL))
    for log in db_session.scalars(
        select(ExportLog).where(ExportLog.kind == differencing.TABLES_KIND)
    ):
        log.report = json.dumps({"k": K})  # as kept before: no digests
    db_session.flush()
    count = len(_tables_rows(db_session))
    assert view(db_session, user, 2, selection(*MARCH, *APRIL)) == set()
    assert len(_tables_rows(db_session)) == count  # recognised by their lines
    assert view(db_session, user, 1, selection(*MARCH)) == {"after", "after+retro"}


def test_figures_remembered_with_their_digest_are_recognised_without_reading_them(
    db_session: Session, user: StaffUser
) -> None:
    march = EvaluationFilters(structure_ids=(1,), date_to=date(2027, 3, 31))
    april = EvaluationFilters(structure_ids=(1,), date_to=date(2027, 4, 30))
    groups = {"kept": frozenset(range(1, 11)), "response": frozenset(range(1, 21))}

    def logs() -> list[str]:
        return list(
            db_session.scalars(
                select(ExportLog.report).where(ExportLog.kind == differencing.FIGURES_KIND)
            )
        )

    assert differencing.guard_figures(db_session, user, march, groups, K, "s")
    assert differencing.DIGEST in json.loads(logs()[0])
    assert differencing.guard_figures(db_session, user, march, groups, K, "s")
    assert len(logs()) == 1  # the same view: recognised by its digest
    one_more = {**groups, "kept": frozenset(range(1, 12))}
    assert not differencing.guard_figures(db_session, user, april, one_more, K, "s")
    # Kept without a digest (before issue 18): read and compared as always.
    for log in db_session.scalars(
        select(ExportLog).where(ExportLog.kind == differencing.FIGURES_KIND)
    ):
        log.report = json.dumps({"k": K, "hashed": differencing.HASHED_BY})
    db_session.flush()
    assert differencing.guard_figures(db_session, user, march, groups, K, "s")
    assert len(logs()) == 1
    assert not differencing.guard_figures(db_session, user, april, one_more, K, "s")


def test_selections_remembered_with_their_digest_are_recognised_without_reading_them(
    db_session: Session, user: StaffUser
) -> None:
    march = EvaluationFilters(structure_ids=(1,), date_to=date(2027, 3, 31))
    april = EvaluationFilters(structure_ids=(1,), date_to=date(2027, 4, 30))
    may = EvaluationFilters(structure_ids=(1,), date_to=date(2027, 5, 31))
    found = selection(*people(range(1, 9), BEFORE, 100))
    one_more = selection(*people(range(1, 10), BEFORE, 100))

    def logs() -> list[str]:
        return list(
            db_session.scalars(select(ExportLog.report).where(ExportLog.kind == "dashboard"))
        )

    differencing.guard_view(db_session, user, march, K, "s", found)
    assert differencing.DIGEST in json.loads(logs()[0])
    differencing.guard_view(db_session, user, april, K, "s", found)  # the same people
    assert len(logs()) == 1  # recognised by its digest: not remembered again
    with pytest.raises(ScopeError):  # one person more, other filters: refused
        differencing.guard_view(db_session, user, may, K, "s", one_more)
    for log in db_session.scalars(select(ExportLog).where(ExportLog.kind == "dashboard")):
        log.report = json.dumps({"k": K})  # as kept before digests
    db_session.flush()
    differencing.guard_view(db_session, user, april, K, "s", found)
    assert len(logs()) == 1  # recognised by its lines
    with pytest.raises(ScopeError):
        differencing.guard_view(db_session, user, may, K, "s", one_more)


def test_integer_rows_are_read_packed_as_they_are_as_rows(
    db_session: Session, user: StaffUser
) -> None:
    """differencing.read_integers (PostgreSQL: string_agg of int8send; SQLite: group_concat
    parsed by numpy) gives the rows the plain reading gives, negative numbers and no rows
    included."""
    query = select(StaffUser.id, StaffUser.id * 1000 + 7, literal(-1)).order_by(StaffUser.id)
    connection = db_session.connection()
    rows = np.array(connection.execute(query).all(), dtype=np.int64)
    found = differencing.read_integers(connection, query)
    assert len(rows) >= 1
    assert np.array_equal(found[np.argsort(found[:, 0])], rows)
    empty = differencing.read_integers(connection, query.where(StaffUser.id < 0))
    assert empty.shape == (0, 3)


def _kept_as_text_before_dash4(db: Session) -> int:
    """Every remembered view and group rewritten as branch dash4 found them: text lines
    (`<group>|<person>:<responses>`) in `people`, no `lines`, and digests of the text lines
    (SHA-256 of the name, "|", "<size>:41|" and the lines one after the other). Returns how
    many rows were rewritten."""
    rows = db.execute(
        select(ExportSelection, ExportLog)
        .join(ExportLog, ExportLog.id == ExportSelection.export_id)
        .where(ExportLog.kind.in_((differencing.KIND, differencing.TABLES_KIND)))
    ).all()
    for row, log in rows:
        assert row.lines is not None  # binary records since dash4
        lines = differencing.stored_lines(row.people, row.lines)
        name = row.people.rstrip("|")
        bare = [line.removeprefix(f"{name}|") if name else line for line in lines]
        assert all(len(line) == differencing.LINE_WIDTH for line in bare)
        digest = hashlib.sha256(
            name.encode() + b"|" + b"%d:41|" % len(bare) + "".join(bare).encode()
        ).hexdigest()
        report = json.loads(log.report)
        if log.kind == differencing.KIND:
            report[differencing.DIGEST] = digest
        else:
            report[differencing.DIGESTS][name] = digest
        log.report = json.dumps(report)
        row.people, row.lines = "\n".join(lines), None
        db.flush()  # one group row at a time: the log row's report is rewritten per group
    return len(rows)


def test_views_kept_as_text_before_dash4_are_recognised_and_compared(
    db_session: Session, user: StaffUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Branch dash4 keeps lines as binary records; rows kept before as text (with digests of
    the text) are recognised by their digest as the very same lines, and compared."""
    assert view(db_session, user, 2, selection(*MARCH, *APRIL)) == set()
    count = _kept_as_text_before_dash4(db_session)
    assert count > 1
    # The same view again (other filters, same lines): recognised by the digests of the text,
    # without reading the lines; nothing new remembered.
    april = EvaluationFilters(structure_ids=(1,), date_to=date(2027, 4, 30))
    found = selection(*MARCH, *APRIL)
    with monkeypatch.context() as patched:

        def unread(*_args: object) -> None:
            raise AssertionError("lines read")

        patched.setattr(differencing, "_stored", unread)
        differencing.guard_view(db_session, user, april, K, "s", found)
        assert differencing.guard_tables(db_session, user, april, GROUPS, K, "s", found) == set()
    assert db_session.scalar(select(func.count()).select_from(ExportSelection)) == count
    # One view one person away inside a table: the text groups are read and compared.
    assert view(db_session, user, 1, selection(*MARCH)) == {"after", "after+retro"}
    # A selection one person away from the text one: refused.
    with pytest.raises(ScopeError):
        differencing.guard_view(
            db_session,
            user,
            EvaluationFilters(structure_ids=(1,), date_to=date(2027, 5, 31)),
            K,
            "s",
            selection(*MARCH, *APRIL, (9, 900, BEFORE)),
        )


def test_records_and_text_lines_are_the_same_lines() -> None:
    found = selection(*MARCH, *APRIL, (1, 999, differencing.FORM_CODES.index("retro")))
    records = differencing.Hasher("s", 1).lines(found)
    assert records.dtype == np.dtype(differencing.RECORD) and records.size == 8
    assert list(records) == sorted(records)  # sorted as bytes, hence as their text
    text = differencing.text_lines(records)
    assert text == sorted(text)
    assert all(len(line) == differencing.LINE_WIDTH and line[24] == ":" for line in text)
    assert differencing.stored_lines("", records.tobytes()) == text
    assert differencing.stored_lines("after|", records.tobytes()) == [f"after|{x}" for x in text]
    assert differencing.stored_lines("\n".join(text), None) == text
    parsed = differencing._stored("\n".join(text), None)
    assert parsed is not None and np.array_equal(parsed, records)
    # Records whose bytes end in zeros stay whole (numpy's S type pads with them).
    zeros = np.array([b"\x00" * 20, b"\x01" + b"\x00" * 19], dtype=differencing.RECORD)
    assert differencing.text_lines(zeros) == [
        "0" * 24 + ":" + "0" * 16,
        "01" + "0" * 22 + ":" + "0" * 16,
    ]
    assert differencing.differing(zeros, zeros[:1]) == 1


def test_rows_are_ordered_as_bytes_even_when_their_first_eight_bytes_are_equal() -> None:
    rng = np.random.default_rng(7)
    raw = rng.integers(0, 256, size=(500, differencing.PERSON_BYTES), dtype=np.uint8)
    raw[:, 0] = rng.integers(0, 3, size=500)  # many small first bytes: 0x00, 0x01, 0x02
    expected = sorted(range(500), key=lambda row: raw[row].tobytes())
    assert differencing._byte_order(raw).tolist() == expected
    raw[10, :8] = raw[20, :8]  # two rows alike in their first 8 bytes: the whole rows decide
    raw[10, 8:], raw[20, 8:] = 255, 0
    expected = sorted(range(500), key=lambda row: raw[row].tobytes())
    assert differencing._byte_order(raw).tolist() == expected
