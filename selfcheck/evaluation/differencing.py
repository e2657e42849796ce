"""Differencing between the aggregate views of one evaluator (dashboard, its tables, the
export preview).

Two selections that are each big enough (k people, and k left out of the whole scope) can
still differ by one person: the dashboard of January to June minus the one of January to
May is the person who answered in June, cell by cell. So each selection an evaluator is
shown is remembered (`export_selection`, under an `export_log` row of kind "dashboard"), as
keyed hashes, and a selection whose people differ from an earlier one of theirs by more than
0 and fewer than k is refused (422), as exports are (bundle.check_differencing).

Pairs are not enough: months 1 to 5 minus months 1-2 minus months 4-5 is the people of
month 3, though each pair differs by k or more. So a selection is also refused when it, or
an earlier selection it lies inside, minus the earlier selections inside that one leaves 1
to k - 1 people (`_left_uncovered`), and when sums and differences of it and the earlier
selections isolate a group of 1 to k - 1 people that they did not isolate without it
(`isolates`: January-February plus February-March minus January-March is February). Only
single groups are tested, not a few small groups whose sum alone is isolable: only noise or
fixed publication cells would close every combination.

A person counts as different when they are in one selection only, or in both with other
responses (a form or channel filter that drops one person's "after" form): each line is
`<person hash>.<hash of the person's responses in the selection>`. Exports store the same
lines (those logged before stored the person hash alone: compared on the people only).

The same filters viewed again are not compared with earlier VIEWS of them: as the data
grows, the dashboard of the same filters changes with the people who answered since, and
refusing it would leave the evaluator without their dashboard. (That change over time is
what any live dashboard shows; docs/security.md says so.) They are compared with earlier
EXPORTS of the same filters: the rows of an export minus the tables of a later view would
describe the few people who answered between them. Nothing here commits.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Hashable, Sequence
from typing import NoReturn

import numpy as np
import numpy.typing as npt
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck.evaluation.disclosure import is_small
from selfcheck.evaluation.scope import EvaluationFilters, ScopeError, response_conditions
from selfcheck.platform.models import ExportLog, ExportSelection, Response, StaffUser

logger = logging.getLogger(__name__)

KIND = "dashboard"
# The people behind each figure of a view that reads a sub-group of its selection (retention:
# those whose follow-up or end form dates them): compared only with each other (guard_figures).
FIGURES_KIND = "dashboard-figures"


def selection_lines(
    db: Session, filters: EvaluationFilters, user: StaffUser, secret: str | bytes
) -> list[str]:
    """One line per person in the selection: their keyed hash and that of their responses."""
    query = select(Response.beneficiary_id, Response.id).where(*response_conditions(filters))
    rows = db.execute(query)
    responses: dict[int, list[int]] = defaultdict(list)
    for person, response in rows:
        responses[person].append(response)
    people = sorted(responses)
    key = secret.encode() if isinstance(secret, str) else secret
    hashed = dict(zip(people, _person_hashes(key, user.id, people), strict=True))
    lines = []
    for person in people:
        ids = ",".join(str(r) for r in sorted(responses[person]))
        message = f"responses:{user.id}:{person}:{ids}".encode()
        lines.append(f"{hashed[person]}.{hmac.digest(key, message, 'sha256').hex()[:16]}")
    return sorted(lines)


def _person_hashes(key: bytes, user_id: int, people: list[int]) -> list[str]:
    """Each person's keyed hash, in the order of `people`: views and exports
    (bundle.run_export) compare selections on it."""
    # hmac.digest: the one-shot HMAC (the same value as hmac.new(...).hexdigest()), several
    # times faster per person, which counts at 100,000 people on every view.
    return [
        hmac.digest(key, f"selection:{user_id}:{b}".encode(), "sha256").hex()[:24] for b in people
    ]


def person_of(line: str) -> str:
    return line.split(".", 1)[0]


def people_differing(mine: set[str], theirs: set[str]) -> int:
    """How many people are in one selection only, or in both with other responses."""
    if any("." not in line for line in theirs) or any("." not in line for line in mine):
        return len({person_of(x) for x in mine} ^ {person_of(x) for x in theirs})
    return len({person_of(x) for x in mine ^ theirs})


def guard_view(
    db: Session,
    user: StaffUser,
    filters: EvaluationFilters,
    k: int,
    secret: str | bytes,
) -> None:
    """ScopeError (422) when this selection differs from an earlier one of this evaluator
    (with other filters) by more than 0 and fewer than k people; else remember it."""
    lines = selection_lines(db, filters, user, secret)
    mine = set(lines)
    described = json.dumps(filters.as_dict(), ensure_ascii=False, sort_keys=True)
    earlier = db.execute(
        select(ExportSelection, ExportLog.filters, ExportLog.kind)
        .join(ExportLog, ExportLog.id == ExportSelection.export_id)
        .where(ExportSelection.user_id == user.id, ExportLog.kind != FIGURES_KIND)
        .order_by(ExportSelection.id.desc())
    )
    seen = False
    others: list[frozenset[str]] = []  # people of earlier selections with other filters
    for selection, their_filters, kind in earlier:
        theirs = set(selection.people.split("\n")) if selection.people else set()
        if theirs == mine:
            seen = True
            continue
        if kind == KIND and _same_filters(their_filters, described):
            # The same dashboard again as the data grows (see the module doc). Not an
            # export with these filters: its rows minus this view's tables would describe
            # the few people who answered since.
            continue
        others.append(frozenset(person_of(line) for line in theirs))
        if abs(selection.count - len(mine)) >= k:
            continue  # the sizes alone differ by k or more: so do the people
        differing = people_differing(mine, theirs)
        if is_small(differing, k):
            _refuse(user, k, "differs from an earlier selection by fewer than k people")
    if seen:
        return
    persons = frozenset(person_of(line) for line in mine)
    if _left_uncovered(persons, others, k):
        _refuse(user, k, "the rest of a selection once its parts are taken out is under k")
    if isolates(persons, linked(persons, others), k):
        _refuse(user, k, "with earlier selections, isolates fewer than k people")
    _record(db, user, KIND, described, lines, rows=len(mine), count=len(mine), k=k)


def guard_figures(
    db: Session,
    user: StaffUser,
    filters: EvaluationFilters,
    groups: dict[str, frozenset[int]],
    k: int,
    secret: str | bytes,
) -> bool:
    """Whether figures about sub-groups of a selection may be shown (else withheld: False).

    `guard_view` compares whole selections; a figure about a sub-group of one (the kept gains
    of the people whose follow-up is in it) can still differ from the same figure of an earlier
    view by one person while the selections differ by k or more (June's "before" forms and one
    June follow-up). So each figure's group (`groups`: figure name -> people) is compared, as
    `guard_view` compares selections, with that figure's groups in the evaluator's earlier
    views with other filters: refused when both could be shown (k people or more) and they
    differ by 1 to k - 1 people, or when one minus those inside it leaves 1 to k - 1. Else the
    groups are remembered (nothing here commits)."""
    key = secret.encode() if isinstance(secret, str) else secret
    everyone = sorted(set().union(*groups.values())) if groups else []
    hashed = dict(zip(everyone, _person_hashes(key, user.id, everyone), strict=True))
    mine = {name: frozenset(hashed[p] for p in people) for name, people in groups.items()}
    lines = sorted(f"{name}|{person}" for name, people in mine.items() for person in people)
    described = json.dumps(filters.as_dict(), ensure_ascii=False, sort_keys=True)
    earlier = db.execute(
        select(ExportSelection.people, ExportLog.filters)
        .join(ExportLog, ExportLog.id == ExportSelection.export_id)
        .where(ExportSelection.user_id == user.id, ExportLog.kind == FIGURES_KIND)
    )
    seen = False
    others: dict[str, list[frozenset[str]]] = defaultdict(list)
    shown_groups = {name: people for name, people in mine.items() if people}
    for stored, their_filters in earlier:
        theirs: dict[str, set[str]] = defaultdict(set)
        for line in stored.split("\n") if stored else []:
            name, _, person = line.rpartition("|")
            theirs[name].add(person)
        if {name: frozenset(members) for name, members in theirs.items()} == shown_groups:
            seen = True
            continue
        if _same_filters(their_filters, described):
            continue  # the same filters as the data grows: as guard_view
        for name, members in theirs.items():
            if len(members) >= k:  # a figure that could have been shown
                others[name].append(frozenset(members))
    for name, group in mine.items():
        if len(group) < k:
            continue  # withheld anyway (retention.guarded_share)
        if any(is_small(len(group ^ other), k) for other in others[name]):
            _refuse_figures(user, k, name)
            return False
        if _left_uncovered(group, others[name], k):
            _refuse_figures(user, k, name)
            return False
    if seen:
        return True
    _record(db, user, FIGURES_KIND, described, lines, rows=len(everyone), count=len(lines), k=k)
    return True


def _refuse_figures(user: StaffUser, k: int, figure: str) -> None:
    logger.warning(
        "figures withheld: their group differs from an earlier view's by fewer than k people",
        extra={"user_id": user.id, "k": k, "figure": figure},
    )


def _left_uncovered(mine: frozenset[str], others: list[frozenset[str]], k: int) -> bool:
    """Whether a selection minus the earlier selections inside it leaves 1 to k - 1 people,
    with this one counted among the earlier ones too: months 1 to 5 minus months 1-2 and
    4-5 is the people of month 3, though each pair differs by k or more."""
    everyone = [*others, mine]
    for whole in everyone:
        parts = [part for part in everyone if part < whole]
        if whole is not mine and mine not in parts:
            continue  # neither the whole nor one of its parts: checked when it was shown
        if len(parts) < 2:
            continue  # one part: the pairwise check above
        rest = whole.difference(*parts)
        if is_small(len(rest), k):
            return True
    return False


# Earlier selections weighed in the composition check (`isolates`), the most recent first
# among those linked to the new one (`linked`): it stays a fraction of a second; older ones
# are still compared pairwise.
COMPOSITION_WINDOW = 100


def linked(
    mine: frozenset[str], earlier: Sequence[frozenset[str]], window: int = COMPOSITION_WINDOW
) -> list[frozenset[str]]:
    """The earlier selections (most recent first) that share people with `mine`, directly
    or through other earlier selections, at most `window` of them.

    Only these can matter to `isolates`: a selection with nobody in common with them adds
    rows and atoms of its own (the selections-by-atoms matrix is block diagonal), which
    change no leverage of theirs. Without this, the most recent `window` selections were
    weighed whatever they were: January-February, then 100 views of other structures,
    then February-March and January-March isolated February unseen.
    """
    reached = set(mine)
    chosen: set[int] = set()
    grown = True
    while grown and len(chosen) < window:
        grown = False
        for index, selection in enumerate(earlier):
            if index in chosen or not selection or reached.isdisjoint(selection):
                continue
            chosen.add(index)
            reached.update(selection)
            grown = True
            if len(chosen) >= window:
                break
    return [earlier[index] for index in sorted(chosen)]


_ONE = 1.0 - 1e-9


def isolates(mine: frozenset[str], earlier: Sequence[frozenset[str]], k: int) -> bool:
    """Whether adding `mine` to the `earlier` selections lets sums and differences of
    their aggregates isolate 1 to k - 1 people that they did not isolate before.

    The people of all the selections fall into atoms: people in exactly the same
    selections. An aggregate (a count, a total of answers) over a set of atoms is known for
    each selection; adding and subtracting them gives the aggregate of an atom exactly when
    the atom's indicator is a linear combination of the selections' indicators, that is
    when its leverage in the selections-by-atoms matrix is 1. This covers composition
    (structure A, then A and B together, then B: the overlap of A and B), and time (the
    same filters after a few new answers: the new people). Only single atoms are checked:
    a few small atoms whose SUM is isolable (each not) are not (finding the sparsest
    combination is NP-hard in general); docs/PRIVACY.md says so.
    """
    others = [s for s in earlier if s]
    if not others or not mine:
        return False
    selections = [*others, mine]
    signature: dict[str, int] = {}
    for bit, selection in enumerate(selections):
        for person in selection:
            signature[person] = signature.get(person, 0) | (1 << bit)
    atoms = Counter(signature.values())
    small = [mask for mask, size in atoms.items() if size < k]
    if not small:
        return False
    masks = list(atoms)
    column = {mask: index for index, mask in enumerate(masks)}
    matrix = np.array(
        [[(mask >> bit) & 1 for mask in masks] for bit in range(len(selections))],
        dtype=np.float64,
    )
    with_mine = _leverage(matrix)
    without = _leverage(matrix[:-1])
    return any(with_mine[column[mask]] >= _ONE and without[column[mask]] < _ONE for mask in small)


def _leverage(matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Per column, the squared norm of its projection on the row space: 1 when its unit
    vector is a combination of the rows."""
    if not matrix.size:
        return np.zeros(matrix.shape[1])
    _, values, rows = np.linalg.svd(matrix, full_matrices=False)
    rank = int((values > values.max() * max(matrix.shape) * 1e-12).sum()) if values.size else 0
    basis = rows[:rank]
    leverage: npt.NDArray[np.float64] = (basis**2).sum(axis=0)
    return leverage


def _refuse(user: StaffUser, k: int, why: str) -> NoReturn:
    logger.warning("view refused: %s", why, extra={"user_id": user.id, "k": k})
    raise ScopeError(_refused(k), 422)


def _refused(k: int) -> object:
    return _l(
        "Cette sélection diffère d'une sélection que vous avez déjà consultée de moins de "
        "%(k)s personnes : comparer les deux permettrait de reconnaître ces personnes. Rien "
        "n'est affiché. Reprenez la même sélection ou élargissez-la.",
        k=k,
    )


def _same_filters(stored: str, described: str) -> bool:
    try:
        parsed = json.loads(stored or "{}")
    except ValueError:
        return False
    return json.dumps(parsed, ensure_ascii=False, sort_keys=True) == described


class Checked:
    """Views already checked and remembered, keyed by evaluator, selection and data stamp
    (bounded, thread-safe): the same view on the same data again needs no new check, since
    every selection remembered after it was compared with it then (the check is symmetric).
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._keys: OrderedDict[Hashable, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            if key in self._keys:
                self._keys.move_to_end(key)
                return True
            return False

    def add(self, key: Hashable) -> None:
        with self._lock:
            self._keys[key] = None
            self._keys.move_to_end(key)
            while len(self._keys) > self.size:
                self._keys.popitem(last=False)


def _record(
    db: Session,
    user: StaffUser,
    kind: str,
    described: str,
    lines: Sequence[str],
    *,
    rows: int,
    count: int,
    k: int,
) -> None:
    """Remember a selection shown to `user` (keyed hashes only), for later comparisons."""
    log = ExportLog(
        user_id=user.id,
        kind=kind,
        filters=described,
        row_count=rows,
        k=k,
        report=json.dumps({"k": k}),
    )
    db.add(log)
    db.flush()
    people = "\n".join(lines)
    db.add(ExportSelection(export_id=log.id, user_id=user.id, count=count, people=people))
    db.flush()
