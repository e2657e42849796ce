"""An export racing an erasure (round 18, note17's untested race): on SQLite an export does not
hold the evaluator's memory while it reads its selection, so an erasure can commit between
the selection's read (the person under their own hash) and the comparison with the memory
(the person already a stranger there, evaluation/forgetting.py). The export read the
evaluator's forgetting mark before its selection and compares it once it holds the memory
(`differencing.hold_unchanged`): withheld with the 503 "try again", nothing written nor
remembered, as a view in the same race (attack9 A9-1, test_attack9_findings.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from selfcheck.evaluation import bundle, differencing
from selfcheck.evaluation.export import Shape
from selfcheck.evaluation.scope import ScopeError
from selfcheck.platform.db import Database
from selfcheck.platform.models import ExportLog, ExportSelection, StaffUser
from selfcheck.privacy import operations as privacy
from selfcheck.questionnaire.model import Definition
from tests.conftest import is_postgres
from tests.services.evaluation.test_attack9_findings import (
    SECRET,
    K,
    _filters,
    _someone_of_the_first_structure,
)

REQUEST = bundle.ExportRequest("csv", Shape.WIDE)


def _exports(db: Session) -> int:
    exports = select(func.count()).select_from(ExportLog).where(ExportLog.kind == "csv-wide")
    return int(db.scalar(exports) or 0)


def _raced(
    populated: Session,
    admin: StaffUser,
    database: Database,
    definition: Definition,
    out: Path,
) -> ScopeError | None:
    """The export of everyone, with an erasure of someone of the first structure committed
    by another session right after the export read its selection."""
    everyone, _first = _filters(populated, admin)
    code = _someone_of_the_first_structure(populated).code
    populated.commit()  # no snapshot held (a request's reads; pysqlite)
    read = differencing.selection_records
    erased: list[str] = []

    def erased_meanwhile(*args: Any, **kwargs: Any) -> Any:
        found = read(*args, **kwargs)
        if not erased:
            erased.append(code)
            with database.session() as other:
                privacy.erase_by_code(other, code, secret=SECRET)
                other.commit()
        return found

    out.mkdir()
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(differencing, "selection_records", erased_meanwhile)
        try:
            bundle.run_export(populated, definition, admin, everyone, REQUEST, K, out, SECRET)
        except ScopeError as refused:
            populated.rollback()
            assert erased
            return refused
    populated.commit()
    assert erased
    return None


# On PostgreSQL the race cannot happen: the export holds the memory and the erasure waits.
SQLITE_ONLY = pytest.mark.skipif(
    is_postgres(), reason="PostgreSQL: the export holds the memory, the erasure waits for it"
)


@pytest.mark.usefixtures("request_context")
@SQLITE_ONLY
def test_an_export_racing_an_erasure_is_withheld(
    populated: Session,
    admin: StaffUser,
    database: Database,
    definition: Definition,
    tmp_path: Path,
) -> None:
    everyone, first = _filters(populated, admin)
    differencing.guard_view(populated, admin, first, K, SECRET)
    populated.commit()
    # The control, in sequence: everyone is 15 people from the first structure (k = 17).
    with pytest.raises(ScopeError) as before:
        bundle.run_export(populated, definition, admin, everyone, REQUEST, K, tmp_path, SECRET)
    assert before.value.status == 422
    populated.rollback()
    remembered = populated.scalar(select(func.count()).select_from(ExportSelection))

    refused = _raced(populated, admin, database, definition, tmp_path / "raced")
    # Withheld as stale (try again), not let through nor refused as a difference: nothing
    # logged, nothing remembered.
    assert refused is not None and refused.status == 503
    assert _exports(populated) == 0
    assert populated.scalar(select(func.count()).select_from(ExportSelection)) == remembered
    # (The zip written before the memory's check stays in the job's own folder, which the job
    # deletes whatever happens: export_job.run. The job says "changed, run it again":
    # test_export_joins.py.)
    # Then, in sequence: refused as before the erasure.
    with pytest.raises(ScopeError) as after:
        bundle.run_export(populated, definition, admin, everyone, REQUEST, K, tmp_path, SECRET)
    assert after.value.status == 422


@pytest.mark.usefixtures("request_context")
@SQLITE_ONLY
def test_without_the_mark_the_race_would_release_the_export(
    populated: Session,
    admin: StaffUser,
    database: Database,
    definition: Definition,
    tmp_path: Path,
) -> None:
    """What the mark guards against, shown: the same race with the mark made blind lets the
    export through (the person under their own hash in the file's selection, a stranger's
    in the memory: 17 apart, no longer fewer than k), the difference the check exists to
    refuse."""
    _everyone, first = _filters(populated, admin)
    differencing.guard_view(populated, admin, first, K, SECRET)
    populated.commit()
    with pytest.MonkeyPatch.context() as blind:
        blind.setattr(differencing, "forgetting_mark", lambda _db, _user_id: 0)
        refused = _raced(populated, admin, database, definition, tmp_path / "raced")
    assert refused is None
    assert _exports(populated) == 1
