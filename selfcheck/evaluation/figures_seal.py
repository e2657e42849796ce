"""Sealed verdicts of the follow-up figures' differencing check (issue 18, branch dash3).

The follow-up figures (evaluation/retention.py) are shown only when each figure's group of
people passes `differencing.guard_figures`: compared with the same figure's groups in the
evaluator's earlier views with other filters, refused when 1 to k - 1 people apart or when a
rest of them is (the privacy contract of differencing.py). The full check needs the people
themselves: at 1,000,000 people, `retention.load` reads 900,000 rows and the check hashes
them (0.7-1.4 s and 0.65-0.8 s on PostgreSQL). This module lets a view skip both when the
check has already passed on the very same groups, as `differencing.sealed_view` does for the
selection and its tables.

**The groups' digests.** The groups depend on the responses and on the day (who is due a
follow-up moves with the date), so neither the data stamp nor the selection's cells
(`fact_cell`) tell that they are the same. The facts keep, in `fact_followup`, per cell and
per UTC day of the first end form, how many people and four sums of 32-bit pieces of a
pseudo-random permutation (AES, under the cells' key derived from the app's secret,
facts.figure_parts) of each person (facts.followup_sums, in the transaction of every write;
backfilled by migration 0021_dash3). `retention.count` adds them up for a selection and a day:
per figure ("response", "kept", "kept:<competence>") the number of people of its group and
the four sums (`retention.Digest`), the people of the boundary day read one by one. Sums of
a keyed pseudo-random function over two different sets of people are equal with odds of
2**-128 (the number is compared too), as for `fact_cell` (differencing.py, where attack5
shows why the key must be secret); tests/services/evaluation/test_facts.py checks that they
are those of the groups `retention.load` reads (`retention.digests_of`), after random writes,
today and once every follow-up has opened.

**The seal.** After a full check passes on groups whose digests, computed from the people it
compared, equal those of the cells (`digests_of` = `count`'s: the facts agree), `seal` keeps
an HMAC, under the evaluator's key (`Hasher.seal`), of (k, every figure's name and digest),
with the evaluator's filters, their newest remembered figures' groups as the check began
(`last_log`, `snapshot`) and how many they had up to it (`remembered`). A refused check is
rolled back and never sealed. (The snapshot is taken before the check: a row committed by
another request while the check runs is then newer than `last_log`, and seen by `sealed`.)
Two full checks of one evaluator at once remember their groups one after the other, each
re-checked when the other remembered first (`differencing.hold_unchanged`, "Two views at
once" in differencing.py): what a check remembered was compared with every figures' row
committed before, as in sequence. A sealed view takes no lock: it remembers nothing, and
shows groups the memory already holds, which any later check compares with.

**Why a sealed verdict is the full check's.** `guard_figures` reads nothing but (i) the
groups of this view, hashed under the evaluator's key, (ii) k and the filters, and (iii) the
evaluator's remembered figures' groups (`export_selection` rows under `export_log` rows of
kind `FIGURES_KIND`; it reads no other kind). Its verdict and what it remembers are a
function of these. `sealed` answers only when: the same evaluator, filters and k; the same
digests for every figure, hence (but with odds of 2**-128) the same groups, whatever the day
(the day only matters through the groups); as many figures' rows up to `last_log` as then
(none removed, none committed late under a smaller id); and every figures' row remembered
since is a view of the same filters. At the seal, the full check compared (i) with the rows
of (iii) up to `last_log` (and perhaps a few newer ones), and passed. Now it would compare
the same groups with the same rows up to `last_log` (the same computations: the same
verdict, a pass) and with the rows since, all of the same filters, which it does not
compare: views of the same filters are skipped (the same dashboard as the data grows,
differencing.py), or recognised as this very view by their digest. And it would remember
nothing: the groups it passed on were remembered by that check (or recognised as already
remembered), under their digest, and it recognises them again (`seen`). So the sealed
answer, "shown, nothing to remember", is exactly the full check's. Any other row since
(figures of other filters), other groups (a new answer in the selection, or a day that
moved someone past their opening) or another k: the full check runs, and seals again if it
passes.

What is trusted: the cells, as the figures are (the figures shown on a sealed view are the
cells' numbers, of the very groups their digests bind); data written around the sessions
needs `selfcheck facts rebuild` (facts.py); a new secret, `selfcheck facts cells` (until
then no digest matches and the full check always runs). Nothing here commits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from selfcheck.evaluation.differencing import (
    FIGURES_KIND,
    SEAL_WINDOW,
    Hasher,
    _same_filters,
)
from selfcheck.evaluation.retention import Digest
from selfcheck.evaluation.scope import EvaluationFilters
from selfcheck.platform.models import ExportLog, ExportSelection, FiguresSeal, StaffUser


def message(k: int, digests: Mapping[str, Digest]) -> bytes:
    """What a seal hashes: k and every figure's name and digest."""
    return json.dumps(
        ["figures", k, {name: list(digest) for name, digest in digests.items()}], sort_keys=True
    ).encode()


def _described(filters: EvaluationFilters) -> str:
    return json.dumps(filters.as_dict(), ensure_ascii=False, sort_keys=True)


def _remembered(user: StaffUser) -> Select[int, str]:
    """The evaluator's remembered figures' groups (what `guard_figures` reads)."""
    return (
        select(ExportLog.id, ExportLog.filters)
        .select_from(ExportSelection)
        .join(ExportLog, ExportLog.id == ExportSelection.export_id)
        .where(ExportSelection.user_id == user.id, ExportLog.kind == FIGURES_KIND)
    )


def snapshot(db: Session, user: StaffUser) -> tuple[int, int]:
    """(the newest id, how many) of the evaluator's remembered figures' groups: taken BEFORE
    the full check, so that a row another request commits while it runs is either read by
    the check and counted here, or newer than the snapshot (then `sealed` sees it)."""
    mine = _remembered(user).subquery()
    last, remembered = db.execute(select(func.max(mine.c.id), func.count()).select_from(mine)).one()
    return int(last or 0), int(remembered or 0)


def seal(
    db: Session,
    user: StaffUser,
    filters: EvaluationFilters,
    k: int,
    secret: str | bytes,
    digests: Mapping[str, Digest],
    before: tuple[int, int],
) -> None:
    """Keep the verdict of a full check that passed on groups of these `digests` (the module
    doc), in place of the evaluator's earlier one for these filters. `before`: the
    evaluator's memory as the check began (`snapshot`)."""
    described = _described(filters)
    db.execute(
        delete(FiguresSeal).where(FiguresSeal.user_id == user.id, FiguresSeal.filters == described)
    )
    last, remembered = before
    db.add(
        FiguresSeal(
            user_id=user.id,
            filters=described,
            seal=Hasher(secret, user.id).seal(message(k, digests)),
            last_log=last,
            remembered=remembered,
        )
    )
    db.flush()


def sealed(
    db: Session,
    user: StaffUser,
    filters: EvaluationFilters,
    k: int,
    secret: str | bytes,
    digests: Mapping[str, Digest],
) -> bool:
    """Whether the full check would pass now on groups of these `digests` and remember
    nothing, as a sealed earlier one did (the module doc); False: run it."""
    described = _described(filters)
    found = db.execute(
        select(FiguresSeal.last_log, FiguresSeal.remembered).where(
            FiguresSeal.user_id == user.id,
            FiguresSeal.filters == described,
            FiguresSeal.seal == Hasher(secret, user.id).seal(message(k, digests)),
        )
    ).first()
    if found is None:
        return False
    last, remembered = found
    mine = _remembered(user)
    before = db.scalar(
        select(func.count()).select_from(mine.where(ExportLog.id <= last).subquery())
    )
    if before != remembered:
        return False  # one removed, or committed since under an earlier id
    since = db.execute(
        mine.where(ExportLog.id > last).order_by(ExportLog.id).limit(SEAL_WINDOW + 1)
    ).all()
    if len(since) > SEAL_WINDOW:
        return False
    return all(_same_filters(their_filters, described) for _id, their_filters in since)
