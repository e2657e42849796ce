"""What an evaluator may look at, narrowed by the filters they chose.

Every evaluator screen and export goes through `parse_filters`: it turns the query string into
an `EvaluationFilters` limited to the structures of the person's grants, or raises
`ScopeError` with a message to show (never partial data). `response_conditions` gives the SQL
conditions that select the submitted responses in scope; aggregates build on them in SQL.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from selfcheck.evaluation.disclosure import is_small
from selfcheck.platform.models import (
    Channel,
    Response,
    Role,
    StaffUser,
    Status,
    Structure,
    TerritoryType,
)
from selfcheck.policy import can_access_structure
from selfcheck.questionnaire.model import FormKind

logger = logging.getLogger(__name__)

# Nothing was collected before the product existed; a range longer than this is a typo.
EARLIEST_DATE = date(2020, 1, 1)
LONGEST_RANGE = timedelta(days=366 * 10)


class ScopeError(Exception):
    """A request the evaluator may not make, or one that cannot give an answer.

    `status` is the HTTP status to answer with: 400 (bad filter), 403 (outside the grants),
    422 (fewer than k people: nothing may be shown). `field` is the filter the message is
    about (a key of FILTER_KEYS), when there is one: the error summary links to its box.
    """

    def __init__(self, message: object, status: int = 400, field: str | None = None) -> None:
        super().__init__(str(message))
        self.message = message
        self.status = status
        self.field = field


@dataclass(frozen=True)
class EvaluationFilters:
    """A validated selection. `structure_ids` is always the final allowed set (never empty)."""

    structure_ids: tuple[int, ...]
    date_from: date | None = None
    date_to: date | None = None
    structure: str | None = None  # slug chosen, if any
    department: str | None = None
    territory_type: str | None = None
    forms: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    raw: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """For the export log and the export report (JSON-serialisable, no ids of people)."""
        return {
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
            "structure": self.structure,
            "department": self.department,
            "territory_type": self.territory_type,
            "forms": list(self.forms),
            "channels": list(self.channels),
            "structures_in_scope": len(self.structure_ids),
        }

    def query_args(self) -> dict[str, str]:
        """The filters as query-string arguments, for links that keep them (downloads)."""
        return {key: value for key, value in self.raw.items() if value}


FILTER_KEYS = ("from", "to", "structure", "department", "territory", "form", "channel")


def allowed_structures(db: Session, user: StaffUser) -> list[Structure]:
    """Structures the user may evaluate: all for platform admins, their grants for evaluators."""
    structures = list(db.scalars(select(Structure).order_by(Structure.department, Structure.name)))
    if Role(user.role) is Role.PLATFORM_ADMIN:
        return structures
    return [s for s in structures if can_access_structure(user, s)]


def _parse_date(raw: str, label: object, field: str, *, end: bool = False) -> date:
    """A date of the filter: AAAA-MM (the month's first day, or last day for `end`) or
    AAAA-MM-JJ, which must then fall on that edge of a month (see `_whole_month`)."""
    try:
        if len(raw) == 7 and raw[4] == "-":
            first = date.fromisoformat(raw + "-01")
            if end:
                return first.replace(day=calendar.monthrange(first.year, first.month)[1])
            return first
        return date.fromisoformat(raw)
    except ValueError:
        raise ScopeError(
            _l(
                "La date « %(label)s » doit s'écrire AAAA-MM (un mois entier) ou AAAA-MM-JJ, "
                "par exemple 2026-03.",
                label=label,
            ),
            field=field,
        ) from None


def _whole_month(date_from: date | None, date_to: date | None, user: StaffUser) -> None:
    """Dates filter whole months only: two selections a day apart would differ by the few
    people who sent a form that day (differencing). ScopeError 422 otherwise, logged."""
    bad_start = date_from is not None and date_from.day != 1
    bad_end = (
        date_to is not None and date_to.day != calendar.monthrange(date_to.year, date_to.month)[1]
    )
    if bad_start or bad_end:
        logger.warning("filter refused: dates finer than a month", extra={"user_id": user.id})
        raise ScopeError(
            _l(
                "Les dates filtrent des mois entiers : la période doit commencer le premier "
                "jour d'un mois et finir le dernier jour d'un mois (ou s'écrire AAAA-MM). "
                "Un filtre plus fin permettrait de reconnaître des personnes par différence."
            ),
            422,
            field="from" if bad_start else "to",
        )


def _choice(raw: str, allowed: set[str], message: object, field: str) -> str:
    if raw not in allowed:
        raise ScopeError(message, field=field)
    return raw


def parse_filters(
    db: Session,
    user: StaffUser,
    args: Mapping[str, str],
    *,
    today: date | None = None,
    allowed: Sequence[Structure] | None = None,
) -> EvaluationFilters:
    """Validate the query string against the user's grants; raise ScopeError if it cannot be.

    `allowed`: the user's `allowed_structures`, when already read."""
    raw = {key: (args.get(key) or "").strip() for key in FILTER_KEYS}
    today = today or datetime.now(UTC).date()
    structures = list(allowed_structures(db, user) if allowed is None else allowed)
    if not structures:
        raise ScopeError(_l("Votre compte n'a accès à aucune structure. Demandez un accès."), 403)

    date_from = _parse_date(raw["from"], _l("du"), "from") if raw["from"] else None
    date_to = _parse_date(raw["to"], _l("au"), "to", end=True) if raw["to"] else None
    # The end of a period may be the end of the current month (`to=AAAA-MM` of this month):
    # the month is whole as a filter, its last days simply hold nobody yet.
    latest = today.replace(day=calendar.monthrange(today.year, today.month)[1])
    for key, day in (("from", date_from), ("to", date_to)):
        if day is not None and not (EARLIEST_DATE <= day <= latest):
            raise ScopeError(
                _l(
                    "Les dates doivent être comprises entre le %(first)s et aujourd'hui.",
                    first=EARLIEST_DATE.isoformat(),
                ),
                field=key,
            )
    if date_from and date_to:
        if date_from > date_to:
            raise ScopeError(_l("La date de début est après la date de fin."), field="from")
        if date_to - date_from > LONGEST_RANGE:
            raise ScopeError(
                _l("La période choisie est trop longue (10 ans au plus)."), field="from"
            )
    _whole_month(date_from, date_to, user)

    if raw["structure"]:
        chosen = [s for s in structures if s.slug == raw["structure"]]
        if not chosen:
            # Same answer whether the structure exists or not: no probing of other structures.
            raise ScopeError(_l("Vous n'avez pas accès à cette structure."), 403, "structure")
        structures = chosen
    if raw["department"]:
        structures = [s for s in structures if s.department == raw["department"].upper()]
        if not structures:
            raise ScopeError(
                _l("Vous n'avez accès à aucune structure de ce département."), 403, "department"
            )
    territory = raw["territory"] or None
    if territory:
        _choice(
            territory,
            {t.value for t in TerritoryType},
            _l("Type de territoire inconnu."),
            "territory",
        )
        structures = [s for s in structures if s.territory_type == territory]
    forms = tuple(
        _choice(f, {k.value for k in FormKind}, _l("Questionnaire inconnu."), "form")
        for f in _split(raw["form"])
    )
    channels = tuple(
        _choice(c, {k.value for k in Channel}, _l("Mode de passation inconnu."), "channel")
        for c in _split(raw["channel"])
    )
    return EvaluationFilters(
        structure_ids=tuple(s.id for s in structures) or (-1,),  # -1: matches nothing
        date_from=date_from,
        date_to=date_to,
        structure=raw["structure"] or None,
        department=raw["department"].upper() or None,
        territory_type=territory,
        forms=forms,
        channels=channels,
        raw=raw,
    )


def _split(raw: str) -> list[str]:
    return [part for part in (p.strip() for p in raw.split(",")) if part]


def response_conditions(filters: EvaluationFilters) -> list[ColumnElement[bool]]:
    """SQL conditions on `Response` for the submitted responses in scope."""
    conditions: list[ColumnElement[bool]] = [
        Response.status == Status.SUBMITTED.value,
        Response.structure_id.in_(filters.structure_ids),
    ]
    if filters.date_from:
        conditions.append(Response.submitted_at >= datetime.combine(filters.date_from, time(), UTC))
    if filters.date_to:
        end = datetime.combine(filters.date_to + timedelta(days=1), time(), UTC)
        conditions.append(Response.submitted_at < end)
    if filters.forms:
        conditions.append(Response.form.in_(filters.forms))
    if filters.channels:
        conditions.append(Response.channel.in_(filters.channels))
    return conditions


def count_people(db: Session, filters: EvaluationFilters) -> int:
    """How many distinct people have at least one submitted response in scope."""
    query = select(func.count(func.distinct(Response.beneficiary_id))).where(
        *response_conditions(filters)
    )
    return int(db.scalar(query) or 0)


def count_people_up_to(db: Session, filters: EvaluationFilters, limit: int) -> int:
    """`count_people`, but stops at `limit`: enough to tell "at least k" (a request that
    queues an export) at the cost of k people, not of every person in scope. The database
    reads the people in order from the (person, form) index and stops after `limit`."""
    first = (
        select(Response.beneficiary_id)
        .where(*response_conditions(filters))
        .distinct()
        .limit(limit)
        .subquery()
    )
    return int(db.scalar(select(func.count()).select_from(first)) or 0)


def require_at_least_k(
    db: Session,
    filters: EvaluationFilters,
    k: int,
    count: Callable[[Session, EvaluationFilters], int] = count_people,
) -> int:
    """The number of people in scope; ScopeError (422) when fewer than k: nothing is shown.

    `count` counts them (the dashboard counts them in its facts, `indicators.count_people`).
    """
    people = count(db, filters)
    if people < k:
        raise ScopeError(
            _l(
                "Moins de %(k)s personnes correspondent à ces filtres : pour protéger leur "
                "anonymat, rien n'est affiché. Élargissez la période ou le territoire.",
                k=k,
            ),
            422,
        )
    return people


# The dimensions of a selection: the filters that are dropped together (a period is one).
FILTER_DIMENSIONS = (
    ("from", "to"),
    ("structure",),
    ("department",),
    ("territory",),
    ("form",),
    ("channel",),
)


def wider_selections(
    db: Session,
    user: StaffUser,
    filters: EvaluationFilters,
    allowed: Sequence[Structure] | None = None,
) -> list[dict[str, str]]:
    """The selections the evaluator could view that hold this one: the same filters with any
    of them dropped (the whole scope when all are), and a structure's department in place of
    the structure. As query arguments; the selection itself is not among them."""
    raw = {key: value for key, value in filters.raw.items() if value}
    active = [dims for dims in FILTER_DIMENSIONS if any(raw.get(key) for key in dims)]
    wider: list[dict[str, str]] = []
    seen = {tuple(sorted(raw.items()))}

    def add(args: dict[str, str]) -> None:
        key = tuple(sorted(args.items()))
        if key not in seen:
            seen.add(key)
            wider.append(args)

    department = None
    if filters.structure:
        structures = allowed_structures(db, user) if allowed is None else allowed
        chosen = [s for s in structures if s.slug == filters.structure]
        department = chosen[0].department if chosen else None
    for mask in range(2 ** len(active)):  # each subset of the filters dropped
        dropped = {key for i, dims in enumerate(active) if mask >> i & 1 for key in dims}
        args = {key: value for key, value in raw.items() if key not in dropped}
        add(args)
        if department and "structure" in args and not args.get("department"):
            others = {key: value for key, value in args.items() if key != "structure"}
            add({**others, "department": department})
    return wider


def require_complement_at_least_k(
    db: Session, user: StaffUser, filters: EvaluationFilters, k: int
) -> None:
    """ScopeError (422) when, for a wider selection the evaluator could view (the whole
    scope, the structure's department, the same filters with one or more dropped: see
    `wider_selections`), the people in it but NOT in this selection are more than 0 and
    fewer than k: comparing the two views would show them.

    Those people are counted up to k only, from the responses outside this selection
    (`complement.people_outside`: milliseconds where counting both selections took seconds
    at 1,000,000 people); the verdicts are those of counting both in full."""
    if not any(filters.raw.values()):
        return  # no filter: the selection is the whole scope
    from selfcheck.evaluation.complement import people_outside  # it builds on this module

    allowed = allowed_structures(db, user)
    for args in wider_selections(db, user, filters, allowed):
        wider = parse_filters(db, user, args, allowed=allowed)
        complement = people_outside(db, wider, filters, k)
        if is_small(complement, k):
            whole = not args
            logger.warning(
                "view refused: its complement in %s has fewer than k people",
                "the scope" if whole else "a wider selection",
                extra={"user_id": user.id, "k": k, "wider": sorted(args)},
            )
            if whole:
                message = _l(
                    "Ces filtres laissent de côté moins de %(k)s personnes de votre périmètre : "
                    "comparer ce résultat à celui de tout le périmètre permettrait de les "
                    "reconnaître. Rien n'est affiché. Élargissez ou resserrez davantage la "
                    "sélection.",
                    k=k,
                )
            else:
                message = _l(
                    "Ces filtres laissent de côté moins de %(k)s personnes d'une sélection "
                    "plus large (la même sans l'un des filtres, ou le département de la "
                    "structure) : comparer les deux résultats permettrait de les reconnaître. "
                    "Rien n'est affiché. Élargissez ou resserrez davantage la sélection.",
                    k=k,
                )
            raise ScopeError(message, 422)


def structures_for_choice(db: Session, user: StaffUser) -> Sequence[Structure]:
    """The structures offered in the filter form (same list as the scope)."""
    return allowed_structures(db, user)
