"""Discrepancy rates (data quality) and the structure settings of double entry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from selfcheck.entry.lookup import EntryError, check_access
from selfcheck.entry.saving import MAX_PERCENT
from selfcheck.journey.reminders import forget_for_structure
from selfcheck.journey.schedule import FOLLOWUP_MONTHS_RANGE, SECOND_FOLLOWUP_MONTHS_RANGE
from selfcheck.platform import audit
from selfcheck.platform.models import (
    EntryDiscrepancy,
    Response,
    SecondEntry,
    StaffUser,
    Structure,
)
from selfcheck.questionnaire.model import (
    Definition,
    FormKind,
    Variable,
)

WEEKS_RANGE = (1, 52)

# --- discrepancy rates -------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    compared: int
    differing: int

    @property
    def percent(self) -> float:
        return 100.0 * self.differing / self.compared if self.compared else 0.0


@dataclass(frozen=True)
class StructureRate:
    structure: Structure
    entries: int
    rate: Rate


@dataclass(frozen=True)
class ItemRate:
    variable: Variable
    rate: Rate


@dataclass(frozen=True)
class Rates:
    structures: tuple[StructureRate, ...]
    items: tuple[ItemRate, ...]

    @property
    def overall(self) -> Rate:
        return Rate(
            sum(s.rate.compared for s in self.structures),
            sum(s.rate.differing for s in self.structures),
        )


def discrepancy_rates(
    session: Session, definition: Definition, structure_ids: Sequence[int]
) -> Rates:
    """Differing / compared fields of the completed second entries, per structure and item."""
    completed = (
        select(SecondEntry.id, Response.structure_id, Response.form)
        .join(Response, Response.id == SecondEntry.response_id)
        .where(SecondEntry.completed_at.is_not(None), Response.structure_id.in_(structure_ids))
        .subquery()
    )
    per_structure = session.execute(
        select(
            Structure,
            func.count(SecondEntry.id),
            func.coalesce(func.sum(SecondEntry.compared_fields), 0),
            func.coalesce(func.sum(SecondEntry.differing_fields), 0),
        )
        .join(completed, completed.c.structure_id == Structure.id)
        .join(SecondEntry, SecondEntry.id == completed.c.id)
        .group_by(Structure.id)
        .order_by(Structure.name)
    ).all()
    per_form: dict[str, int] = {
        form: int(number)
        for form, number in session.execute(
            select(completed.c.form, func.count()).group_by(completed.c.form)
        )
    }
    differing: dict[str, int] = {
        variable: int(number)
        for variable, number in session.execute(
            select(EntryDiscrepancy.variable, func.count())
            .join(completed, completed.c.id == EntryDiscrepancy.second_entry_id)
            .group_by(EntryDiscrepancy.variable)
        )
    }
    compared: dict[str, int] = {}
    order: dict[str, Variable] = {}
    for form in FormKind:
        for variable in definition.variables(form):
            order.setdefault(variable.code, variable)
            compared[variable.code] = compared.get(variable.code, 0) + per_form.get(form.value, 0)
    items = tuple(
        ItemRate(variable, Rate(compared[code], differing.get(code, 0)))
        for code, variable in order.items()
        if compared[code]
    )
    structures = tuple(
        StructureRate(structure, int(entries), Rate(int(fields), int(differ)))
        for structure, entries, fields, differ in per_structure
    )
    return Rates(structures, items)


# --- structure settings ------------------------------------------------------------------------


def update_settings(
    session: Session,
    user: StaffUser,
    structure: Structure,
    percent: int,
    weeks: int,
    followup_months: int | None = None,
    second_followup_months: int | None = None,
) -> bool:
    """Set the double-entry share, the "after due" delay and the follow-up delays (months
    after the end form; the second follow-up None for none); True if anything changed."""
    check_access(user, structure)
    if not (0 <= percent <= MAX_PERCENT and WEEKS_RANGE[0] <= weeks <= WEEKS_RANGE[1]):
        raise EntryError("bad_settings")
    first = structure.followup_months if followup_months is None else followup_months
    low, high = FOLLOWUP_MONTHS_RANGE
    if not low <= first <= high:
        raise EntryError("bad_settings")
    low, high = SECOND_FOLLOWUP_MONTHS_RANGE
    if second_followup_months is not None and not (
        low <= second_followup_months <= high and second_followup_months > first
    ):
        raise EntryError("bad_settings")
    settings: list[tuple[str, int | None]] = [
        ("double_entry_percent", percent),
        ("after_due_weeks", weeks),
    ]
    if followup_months is not None:
        settings += [
            ("followup_months", followup_months),
            ("second_followup_months", second_followup_months),
        ]
    changes = {}
    for name, new in settings:
        old = getattr(structure, name)
        if old != new:
            changes[name] = {"old": [str(old)], "new": [str(new)]}
            setattr(structure, name, new)
    if changes:
        audit.record(
            session, user, "edit", audit.Entity.STRUCTURE, structure.id, structure.id, changes
        )
    return bool(changes)


def set_followup_reminder(
    session: Session, user: StaffUser, structure: Structure, offered: bool
) -> bool:
    """Offer (or not) the consented follow-up reminder by e-mail (journey/reminders.py);
    True if it changed. Turned off, the addresses already left are deleted unsent: they were
    given for this one use. Audited (the setting, never an address). Never commits."""
    check_access(user, structure)
    if structure.followup_reminder == offered:
        return False
    structure.followup_reminder = offered
    changes = {"followup_reminder": {"old": [str(not offered)], "new": [str(offered)]}}
    if not offered:
        forgotten = forget_for_structure(session, structure)
        if forgotten:
            changes["reminders_deleted"] = {"old": [str(forgotten)], "new": []}
    audit.record(session, user, "edit", audit.Entity.STRUCTURE, structure.id, structure.id, changes)
    return True
