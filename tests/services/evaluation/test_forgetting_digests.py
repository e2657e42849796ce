"""An erasure's forgetting digests each row it rewrote in the one kind its report keeps
(round 18: it made both, SHA-256 and the set digest, and kept one): rows kept with a set
digest (`set1:`, every view since dash17) cost no SHA-256, rows kept before with SHA-256 no
set digest; either way every digest kept is that of the lines now."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from selfcheck.evaluation import differencing
from selfcheck.evaluation.scope import parse_filters
from selfcheck.platform.models import (
    Beneficiary,
    ExportLog,
    ExportSelection,
    Response,
    StaffUser,
    Status,
)
from selfcheck.privacy import operations as privacy
from tests.services.evaluation.test_forgetting import SECRET, assert_consistent, whole_rows


def _erase_counting(db: Session, monkeypatch: pytest.MonkeyPatch, nth: int) -> dict[str, int]:
    """Erase the nth person, counting the digests made of each kind."""
    made = {"sha256": 0, "set": 0}
    of, mark = differencing._Digests.of, differencing._Digests.mark

    def counted_of(self: Any, name: str, *args: Any, **kwargs: Any) -> str:
        made["sha256"] += 1
        return of(self, name, *args, **kwargs)

    def counted_mark(self: Any, name: str) -> str:
        made["set"] += 1
        return mark(self, name)

    answered = (
        select(Beneficiary.code)
        .join(Response, Response.beneficiary_id == Beneficiary.id)
        .where(Response.status == Status.SUBMITTED.value)
        .distinct()
        .order_by(Beneficiary.code)
    )
    code = db.scalars(answered).all()[nth]
    with monkeypatch.context() as patched:
        patched.setattr(differencing._Digests, "of", counted_of)
        patched.setattr(differencing._Digests, "mark", counted_mark)
        privacy.erase_by_code(db, code, secret=SECRET)
        db.commit()
    return made


def _kinds(db: Session) -> set[str]:
    found = set()
    for (report,) in db.execute(select(ExportLog.report)):
        digest = json.loads(report).get(differencing.DIGEST)
        if isinstance(digest, str):
            found.add("set" if digest.startswith(differencing.MARK_PREFIX) else "sha256")
    return found


@pytest.mark.usefixtures("request_context")
def test_each_rewritten_row_is_digested_once_in_its_own_kind(
    populated: Session, admin: StaffUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    everyone = parse_filters(populated, admin, {})
    differencing.guard_view(populated, admin, everyone, 5, SECRET)
    populated.commit()
    rows = len(whole_rows(populated, admin))
    assert rows and _kinds(populated) == {"set"}
    made = _erase_counting(populated, monkeypatch, 0)
    assert made == {"sha256": 0, "set": rows}
    assert _kinds(populated) == {"set"}
    assert_consistent(populated, admin)
    # A row kept before dash17: its report holds the SHA-256 of its lines, which stays one.
    for row_id, records in whole_rows(populated, admin).items():
        export_id = populated.scalar(
            select(ExportSelection.export_id).where(ExportSelection.id == row_id)
        )
        report = json.loads(populated.get_one(ExportLog, export_id).report)
        report[differencing.DIGEST] = differencing._Digests({"": records}).of("")
        populated.execute(
            update(ExportLog).where(ExportLog.id == export_id).values(report=json.dumps(report))
        )
    populated.commit()
    assert _kinds(populated) == {"sha256"}
    made = _erase_counting(populated, monkeypatch, 1)
    assert made == {"sha256": rows, "set": 0}
    assert _kinds(populated) == {"sha256"}
    assert_consistent(populated, admin)
