"""Review attack5 (2026-12-06) of the sealed dashboard verdicts (differencing.sealed_view).

The seal trusts `fact_cell`'s four 32-bit sums of `facts.cell_parts` as a 128-bit digest of a
selection's responses ("different otherwise but with odds of 2**-128"). Those parts are AES
under a fixed key written in the source: anyone can compute them, and sums of public
pseudo-random values are not collision resistant against someone who chooses which values
are summed (a subset-sum: lattice reduction finds two sets with the same sums). Someone who
can submit and erase responses inside a selection (a mediator, paper entries) chooses the set.

data/cell_collision.json holds two disjoint sets of 307 (response, person, 'before') triples
with the same count and the same four sums, found with fpylll among 15,000 candidates in
about 75 s on one core (not a test dependency: the sets are stored). An attacker holding a
pool of ids (responses started and left in progress consume ids and count for nothing)
submits one set before a view and swaps it for the other after.

Fixed: the parts are now AES under a key derived from the app's secret (`facts.cell_key`), which
a mediator never sees: the stored sets collide under the old public key only, and no set can be
chosen to collide under a key one cannot compute with.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session

from selfcheck.evaluation import differencing
from selfcheck.evaluation.guard_views import GROUPS
from selfcheck.evaluation.scope import EvaluationFilters
from selfcheck.platform.db import Database
from selfcheck.platform.models import Beneficiary, Response, Status
from selfcheck.questionnaire.model import Definition, FormKind
from tests.services.evaluation.test_differencing_sealed import SECRET, Evaluated, K

COLLISION = json.loads((Path(__file__).parent / "data" / "cell_collision.json").read_text())


def _add(evaluated: Evaluated, structure_id: int, response_id: int, person_id: int) -> None:
    db = evaluated.db
    db.add(Beneficiary(id=person_id, code=f"A5{person_id}", structure_id=structure_id))
    db.add(
        Response(
            id=response_id,
            beneficiary_id=person_id,
            structure_id=structure_id,
            form=FormKind.BEFORE.value,
            definition_id=evaluated.definition.id,
            definition_version=evaluated.definition.version,
            channel="online",
            locale="fr",
            status=Status.SUBMITTED.value,
            submitted_at=datetime.now(UTC),
        )
    )


def _add_set(evaluated: Evaluated, name: str) -> list[int]:
    structure = evaluated.structures[0].id
    people = []
    for index in COLLISION[name]:
        person = COLLISION["first_person"] + index
        _add(evaluated, structure, COLLISION["first_response"] + index, person)
        people.append(person)
    evaluated.db.flush()
    return people


def _view(
    evaluated: Evaluated, filters: EvaluationFilters, seals: bool, used: list[bool]
) -> object:
    """The dashboard's check as guard_views.guard_view_here runs it (a sealed verdict first,
    when `seals`); `used` gets whether a sealed verdict was taken."""
    db = evaluated.db
    sums = differencing.cell_sums_of(db, filters)
    seal = differencing.Seal(sums, GROUPS) if sums is not None else None
    sealed = (
        differencing.sealed_view(db, evaluated.user, filters, K, SECRET, seal)
        if seal and seals
        else None
    )
    used.append(sealed is not None)
    if sealed is not None:
        db.commit()
        return sealed.refused
    verdict = evaluated.full(filters, seal)
    if verdict == "refused":
        db.rollback()
    else:
        db.commit()
    return verdict


def _scenario(evaluated: Evaluated, seals: bool) -> tuple[list[bool], object]:
    """A view of both structures; the attacker's set swapped for its twin; the same view
    again; then the first structure alone: the same people minus the victim (one person of
    the second structure). Returns which views took a sealed verdict, and the last verdict."""
    db: Session = evaluated.db
    both = EvaluationFilters(structure_ids=tuple(s.id for s in evaluated.structures))
    first_only = EvaluationFilters(structure_ids=(evaluated.structures[0].id,))
    used: list[bool] = []
    _add(evaluated, evaluated.structures[1].id, 990_001, 990_001)  # the victim
    before = _add_set(evaluated, "before")
    db.commit()
    assert _view(evaluated, both, seals, used) == frozenset()  # in full: remembered, sealed
    # The swap: the first set erased, its twin submitted (same count, same four sums).
    db.execute(delete(Response).where(Response.beneficiary_id.in_(before)))
    db.execute(delete(Beneficiary).where(Beneficiary.id.in_(before)))
    _add_set(evaluated, "after")
    db.commit()
    assert _view(evaluated, both, seals, used) == frozenset()  # shown either way
    return used, _view(evaluated, first_only, seals, used)


@pytest.fixture
def evaluated(
    db_session: Session, database: Database, definition: Definition, request_context: None
) -> Evaluated:
    return Evaluated(db_session, database, definition)


@pytest.mark.slow  # about 600 people written
def test_without_seals_the_view_that_isolates_the_victim_is_refused(evaluated: Evaluated) -> None:
    used, verdict = _scenario(evaluated, seals=False)
    assert verdict == "refused" and not any(used)


@pytest.mark.slow  # about 600 people written
def test_a_crafted_digest_collision_does_not_reuse_a_seal(evaluated: Evaluated) -> None:
    used, verdict = _scenario(evaluated, seals=True)
    assert verdict == "refused", f"shown; sealed verdicts taken: {used}"
