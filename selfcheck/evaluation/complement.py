"""The people of a wider selection who are not in a narrower one, counted up to k (issue 18).

`scope.require_complement_at_least_k` refuses a view when a wider selection the evaluator
could see holds 1 to k - 1 people more. Counting both selections' people in full took 0.8 s
each at 1,000,000 people, while only "none", "a few" or "k or more" matters. So this reads
the difference directly, in the dashboard's facts (`response_fact`, kept by every writing
transaction):

1. the responses of the wider selection outside the narrower one, as a few range reads of
   the covering index `ix_response_fact_scope` (structure, month, form, channel, person):
   per filter that differs, its extra values (one read per form or channel, two for the
   months before and after), the filters before it as the narrower selection has them, those
   after it as the wider one has them (`outside`). Nothing is read when the filters keep the
   same responses, and the responses in common are never scanned;
2. of those, the people with no response inside the narrower selection: an anti-join probing
   the responses' (person, form) index (their rows are a seventh of the facts': they stay in
   cache), stopped as soon as the rows found make k people. The usual case, a large
   complement, reads a few dozen rows;
3. each read gives at most `SAMPLE_ROWS` rows: when none had more, the count is exact; when
   one had more and fewer than k people were found (people outside rare among many
   responses outside, e.g. two forms that almost everyone of the wider selection also sent
   one of), both selections' people are counted in full, as before.

The verdict is the one of counting both selections in full; only the cost differs
(tests/services/evaluation/test_complement.py compares them).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, func, select, union_all
from sqlalchemy.orm import InstrumentedAttribute, Session

from selfcheck.evaluation import indicators
from selfcheck.evaluation.scope import EvaluationFilters, count_people, response_conditions
from selfcheck.platform.models import Channel, Response, ResponseFact
from selfcheck.questionnaire.model import FormKind

# Rows of each read of the responses outside (`outside`) examined before counting in full:
# a few milliseconds of index probes.
SAMPLE_ROWS = 500


def people_outside(db: Session, wider: EvaluationFilters, narrow: EvaluationFilters, k: int) -> int:
    """How many people have a submitted response in `wider` and none in `narrow`, a selection
    within it: exact when under k, otherwise some number of at least k."""
    pieces = outside(wider, narrow)
    if pieces is None:
        return in_full(db, wider, narrow)
    if not pieces:
        return 0  # the same responses
    rows = db.scalars(_sample(pieces, narrow, k)).all()
    found = len(set(rows))
    if found >= k:
        return found
    if len(rows) < _enough(k) and _all_examined(db, pieces):
        return found  # every response outside was examined: exact
    return in_full(db, wider, narrow)


def in_full(db: Session, wider: EvaluationFilters, narrow: EvaluationFilters) -> int:
    """Both selections' people counted from the responses (the previous computation)."""
    return count_people(db, wider) - count_people(db, narrow)


def _enough(k: int) -> int:
    """Rows of people outside that make k people: k - 1 people have at most one response
    per form, so one row more than their most."""
    return (k - 1) * len(FormKind) + 1


def _sample(pieces: list[Select[int]], narrow: EvaluationFilters, k: int) -> Select[int]:
    """The people of the first SAMPLE_ROWS rows of each piece who have no response in
    `narrow`, up to `_enough(k)` rows. Each piece has its own rows: the people outside may
    all be in one of them (the retrospective forms, not the 'after' forms read first)."""
    first = union_all(
        *(select(piece.limit(SAMPLE_ROWS).subquery().c.beneficiary_id) for piece in pieces)
    ).subquery()
    inside = (
        select(Response.id)
        .where(Response.beneficiary_id == first.c.beneficiary_id, *response_conditions(narrow))
        .exists()
    )
    return select(first.c.beneficiary_id).where(~inside).limit(_enough(k))


def _all_examined(db: Session, pieces: list[Select[int]]) -> bool:
    """Whether no piece holds more than SAMPLE_ROWS rows (each read up to one more)."""
    counts = (
        select(func.count()).select_from(piece.limit(SAMPLE_ROWS + 1).subquery()).scalar_subquery()
        for piece in pieces
    )
    return all(int(n or 0) <= SAMPLE_ROWS for n in db.execute(select(*counts)).one())


@dataclass(frozen=True)
class Filter:
    """One filter of a selection on `response_fact`, as the narrower and the wider selection
    have it (None: no condition), and what the wider keeps that the narrower does not."""

    narrow: ColumnElement[bool] | None
    wide: ColumnElement[bool] | None
    extra: tuple[ColumnElement[bool], ...]


def outside(wider: EvaluationFilters, narrow: EvaluationFilters) -> list[Select[int]] | None:
    """The people of the responses in `wider` but not in `narrow`, as disjoint reads: for each
    filter in the index's order, the values `wider` keeps and `narrow` does not, the filters
    before it as `narrow` has them, those after it as `wider` has them. None when `narrow`
    is not within `wider` filter by filter, or their dates are not whole months."""
    try:
        filters = (
            _structures(wider, narrow),
            _months(indicators.month_range(wider), indicators.month_range(narrow)),
            _choice(ResponseFact.form, wider.forms, narrow.forms, FormKind),
            _choice(ResponseFact.channel, wider.channels, narrow.channels, Channel),
        )
    except (indicators.NotWholeMonths, NotWithin):
        return None
    pieces: list[Select[int]] = []
    for index, one in enumerate(filters):
        before = [f.narrow for f in filters[:index]]
        after = [f.wide for f in filters[index + 1 :]]
        for extra in one.extra:
            where = [c for c in (*before, extra, *after) if c is not None]
            pieces.append(select(ResponseFact.beneficiary_id).where(*where))
    return pieces


class NotWithin(ValueError):
    """The narrower selection keeps something the wider one does not."""


def _structures(wider: EvaluationFilters, narrow: EvaluationFilters) -> Filter:
    column = ResponseFact.structure_id
    wide, kept = set(wider.structure_ids), set(narrow.structure_ids)
    kept.discard(-1)  # parse_filters' "no structure": matches nothing
    if not kept <= wide:
        raise NotWithin
    more = wide - kept - {-1}
    return Filter(
        column.in_(sorted(kept)),
        column.in_(sorted(wide)),
        (column.in_(sorted(more)),) if more else (),
    )


Months = tuple[str, str] | None  # first and last month kept; None: every month


def _months(wide: Months, narrow: Months) -> Filter:
    """Whole months: with no dates, `wide` also keeps the responses without a time (month
    "0000-00", before any first month)."""
    month = ResponseFact.month
    if narrow == wide:
        same = None if narrow is None else month.between(*narrow)
        return Filter(same, same, ())
    if narrow is None or (wide is not None and not (wide[0] <= narrow[0] <= narrow[1] <= wide[1])):
        raise NotWithin
    extra: list[ColumnElement[bool]] = []
    if wide is None:
        extra.append(month < narrow[0])
        if narrow[1] != "9999-12":
            extra.append(month > narrow[1])
    else:
        if wide[0] < narrow[0]:
            extra.append(and_(month >= wide[0], month < narrow[0]))
        if narrow[1] < wide[1]:
            extra.append(and_(month > narrow[1], month <= wide[1]))
    return Filter(
        month.between(*narrow), None if wide is None else month.between(*wide), tuple(extra)
    )


def _choice(
    column: InstrumentedAttribute[str],
    wide: tuple[str, ...],
    narrow: tuple[str, ...],
    kind: type[FormKind] | type[Channel],
) -> Filter:
    """A form or channel filter: nothing chosen keeps every value."""
    every = {value.value for value in kind}
    wide_values, narrow_values = set(wide or every), set(narrow or every)
    if not narrow_values <= wide_values:
        raise NotWithin
    # The column only holds the kind's values: a list of them reads the index, NOT IN would
    # filter every row of the range.
    more = sorted(wide_values - narrow_values)
    return Filter(
        column.in_(sorted(narrow)) if narrow else None,
        column.in_(sorted(wide)) if wide else None,
        tuple(column == value for value in more),  # one read each: see _sample
    )
