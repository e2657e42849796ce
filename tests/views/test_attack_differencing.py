"""Differencing two aggregate views (outside review): the dashboard of January 2025 to
February 2026 minus the one of January 2025 to January 2026 was the one person who
answered in February 2026, cell by cell (each view had k people, and k left out of the
whole scope). An evaluator's views are now remembered and a selection differing from an
earlier one by 1 to k - 1 people is refused, on the dashboard, its CSV tables, the export
preview and the export itself."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from selfcheck.evaluation import bundle, differencing
from selfcheck.evaluation.scope import EvaluationFilters, ScopeError, parse_filters
from selfcheck.platform.db import Database
from selfcheck.platform.models import (
    Beneficiary,
    ExportLog,
    ExportSelection,
    Response,
    Role,
    StaffUser,
)
from selfcheck.questionnaire.model import Definition
from tests.services.evaluation.support import populate
from tests.staff import add_staff, signed_in
from tests.support import Visitor

WIDE = "from=2025-01&to=2026-02"  # everyone of the scope but the 6 people of 2024
NARROW = "from=2025-01&to=2026-01"  # the same but the one person of February 2026
REFUSAL = "Cette sélection diffère d'une sélection que vous avez déjà consultée"


@pytest.fixture
def evaluator(
    app: Flask, db_session: Session, definition: Definition, database: Database
) -> tuple[Visitor, int]:
    first, _other = populate(db_session, definition, people=40, moved=15)
    people = list(
        db_session.scalars(
            select(Beneficiary.id)
            .where(Beneficiary.structure_id == first.id)
            .order_by(Beneficiary.id)
        )
    )
    for chosen, when in (
        (people[:6], datetime(2024, 3, 10, tzinfo=UTC)),
        (people[6:7], datetime(2026, 2, 10, tzinfo=UTC)),
        (people[7:], datetime(2025, 6, 10, tzinfo=UTC)),
    ):
        db_session.execute(
            update(Response).where(Response.beneficiary_id.in_(chosen)).values(submitted_at=when)
        )
    db_session.commit()
    account = add_staff(database, Role.EVALUATOR, departments=("44",))
    return signed_in(app, account), account.id


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
def test_attack_two_months_apart_dashboards_are_not_both_shown(
    evaluator: tuple[Visitor, int],
) -> None:
    visitor, _id = evaluator
    assert visitor.get(f"/evaluate/?{WIDE}").status_code == 200
    assert visitor.get(f"/evaluate/tables/status.csv?{WIDE}").status_code == 200
    narrow = visitor.get(f"/evaluate/?{NARROW}")
    assert narrow.status_code == 422
    assert REFUSAL in visitor.text and "Base (effectif)" not in visitor.text
    table = visitor.get(f"/evaluate/tables/status.csv?{NARROW}")
    assert table.status_code == 422 and "retraite" not in table.get_data(as_text=True)
    assert visitor.get(f"/evaluate/exports/?{NARROW}").status_code == 422  # the preview too
    # The same selection again, and one k people away, are still shown.
    assert visitor.get(f"/evaluate/?{WIDE}").status_code == 200
    assert visitor.get("/evaluate/").status_code == 200


def test_attack_an_export_one_person_away_from_a_dashboard_is_refused(
    app: Flask, evaluator: tuple[Visitor, int], database: Database
) -> None:
    """Exports compare their people with the dashboard's selections too."""
    visitor, user_id = evaluator
    assert visitor.get(f"/evaluate/?{WIDE}").status_code == 200
    with app.test_request_context(), database.session() as session:
        user = session.get(StaffUser, user_id)
        assert user is not None
        filters = parse_filters(session, user, {"from": "2025-01", "to": "2026-02"})
        lines = differencing.selection_lines(session, filters, user, str(app.secret_key))
        of_kind = (
            select(ExportSelection.people, ExportSelection.lines)
            .join(ExportLog, ExportLog.id == ExportSelection.export_id)
            .where(ExportLog.kind == differencing.KIND)
        )
        ((people_text, blob),) = session.execute(of_kind).all()
        # Keyed hashes only (no id, no code), as binary records (branch dash4).
        assert people_text == "" and blob is not None
        assert differencing.stored_lines(people_text, blob) == lines
        # The retention figures' groups (differencing.guard_figures): keyed hashes too.
        figures_rows = session.scalars(
            select(ExportSelection.people)
            .join(ExportLog, ExportLog.id == ExportSelection.export_id)
            .where(ExportLog.kind == differencing.FIGURES_KIND)
        ).all()
        for figures in figures_rows:
            assert all(re.fullmatch(r"[^|]+\|[0-9a-f]{24}", x) for x in figures.split("\n"))
        # "<person>:<responses>" (an HMAC per person with a "." before: differencing.Hasher)
        assert all(re.fullmatch(r"[0-9a-f]{24}:[0-9a-f]{16}", line) for line in lines)
        people = sorted(differencing.person_of(line) for line in lines)
        bundle.check_differencing(session, user, people, 5)  # the same people: allowed
        with pytest.raises(ScopeError) as refused:
            bundle.check_differencing(session, user, people[1:], 5)  # one person away
        assert refused.value.status == 422
        assert session.scalar(select(func.count()).select_from(of_kind.subquery())) == 1


def test_a_person_with_other_responses_counts_as_different() -> None:
    mine = {"aaa.1", "bbb.1", "ccc.1"}
    assert differencing.people_differing(mine, {"aaa.1", "bbb.2", "ccc.1"}) == 1
    assert differencing.people_differing(mine, {"aaa.1", "bbb.1"}) == 1
    assert differencing.people_differing(mine, {"aaa", "bbb", "ccc"}) == 0  # an export's
    assert differencing.people_differing(mine, set(mine)) == 0


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
@pytest.mark.parametrize("last", [0, 1, 2])
def test_attack_a_selection_minus_two_others_inside_it_is_refused(
    app: Flask, db_session: Session, definition: Definition, database: Database, last: int
) -> None:
    """Months 2025-01..12 minus 2025-01..08 minus 2025-10..12 is the one person of September
    2025, though every pair of the three differs by k people or more: the third view to be
    shown, whichever it is, is refused."""
    first, _other = populate(db_session, definition, people=40, moved=15)
    people = list(
        db_session.scalars(
            select(Beneficiary.id)
            .where(Beneficiary.structure_id == first.id)
            .order_by(Beneficiary.id)
        )
    )
    for chosen, when in (
        (people[:6], datetime(2024, 3, 10, tzinfo=UTC)),
        (people[6:7], datetime(2025, 9, 10, tzinfo=UTC)),
        (people[7:13], datetime(2025, 12, 10, tzinfo=UTC)),
        (people[13:], datetime(2025, 6, 10, tzinfo=UTC)),
    ):
        db_session.execute(
            update(Response).where(Response.beneficiary_id.in_(chosen)).values(submitted_at=when)
        )
    db_session.commit()
    visitor = signed_in(app, add_staff(database, Role.EVALUATOR, departments=("44",)))
    views = ["from=2025-01&to=2025-12", "from=2025-01&to=2025-08", "from=2025-10&to=2025-12"]
    views.append(views.pop(last))
    assert visitor.get(f"/evaluate/tables/status.csv?{views[0]}").status_code == 200
    assert visitor.get(f"/evaluate/tables/status.csv?{views[1]}").status_code == 200
    assert visitor.get(f"/evaluate/?{views[2]}").status_code == 422
    assert REFUSAL in visitor.text
    # A view that leaves no small rest is still shown: the whole scope (2024 is 6 people).
    assert visitor.get("/evaluate/").status_code == 200


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
def test_withheld_retention_figures_leave_the_rest_of_the_first_page(
    evaluator: tuple[Visitor, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the retention figures' groups are one person away from an earlier view's
    (differencing.guard_figures, tested in test_retention.py), the first page is still shown,
    with a sentence in their place and none of their figures (attack2)."""
    visitor, _id = evaluator
    page = visitor.get(f"/evaluate/?{WIDE}")
    assert page.status_code == 200 and "ont répondu au questionnaire de suivi" in visitor.text
    monkeypatch.setattr(
        "selfcheck.evaluation.views.guard_figures_here", lambda _filters, _counted, _load: None
    )
    page = visitor.get(f"/evaluate/?{WIDE}")
    assert page.status_code == 200
    assert "Ces chiffres ne sont pas donnés" in visitor.text
    assert "ont répondu au questionnaire de suivi" not in visitor.text
    assert "Ce qui dure, quelques mois après" in visitor.text
    assert "section-retention" in visitor.text and "<h1>Tableau de bord</h1>" in visitor.text


WITHHELD = "Ce tableau n'est pas affiché"


@pytest.mark.slow  # about 10 s on the loaded shared machine: twelve dashboard requests
def test_withheld_tables_leave_the_rest_of_each_page(
    evaluator: tuple[Visitor, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the 'after' forms' people are one person away from an earlier view's
    (differencing.guard_tables, tested in tests/services/evaluation/test_differencing_tables.py),
    every table of 'after' forms and of pairs says why in their place, on screen and as CSV,
    and the other tables are shown (attack2)."""
    visitor, _id = evaluator
    monkeypatch.setattr(
        "selfcheck.evaluation.guard_views.guard_tables",
        lambda *_args, **_kwargs: frozenset({"after", "after+retro"}),
    )
    assert visitor.get(f"/evaluate/people?{WIDE}").status_code == 200
    assert WITHHELD not in visitor.text and 'id="table-age"' in visitor.text
    assert visitor.get(f"/evaluate/evolution?{WIDE}").status_code == 200
    assert WITHHELD in visitor.text and 'id="table-comfort"' not in visitor.text
    assert "Aisance avec le numérique, avant et aujourd'hui" in visitor.text  # its title stays
    assert visitor.get(f"/evaluate/path?{WIDE}").status_code == 200
    assert 'id="table-reasons"' in visitor.text and 'id="table-modality"' not in visitor.text
    refused = visitor.get(f"/evaluate/tables/modality.csv?{WIDE}")
    assert refused.status_code == 422 and WITHHELD in visitor.text
    assert visitor.get(f"/evaluate/tables/age.csv?{WIDE}").status_code == 200
    assert visitor.get(f"/evaluate/tasks?{WIDE}").status_code == 200
    assert WITHHELD in visitor.text and 'id="table-tasks_retro"' in visitor.text
    assert 'id="table-tasks_pairs"' not in visitor.text
    assert visitor.get(f"/evaluate/figures/change_pairs.csv?{WIDE}").status_code == 422
    assert visitor.get(f"/evaluate/figures/change_retro.csv?{WIDE}").status_code == 200
    assert visitor.get(f"/evaluate/?{WIDE}").status_code == 200
    assert "non affiché" in visitor.text and "Les chiffres marqués" in visitor.text
    assert "60 ans ou plus" in visitor.text  # the profile figures are still there


def test_the_figures_checked_are_remembered_with_their_groups(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The follow-up figures' groups change with the day, not only with the data (the stamp):
    a check remembered for other groups (other digests) is not reused for these (dash2's
    doubt); the same groups again are not checked twice."""
    from types import SimpleNamespace

    from selfcheck.evaluation import guard_views, retention

    calls: list[frozenset[int]] = []

    def counted(
        _db: object,
        _user: object,
        _filters: object,
        groups: dict[str, frozenset[int]],
        *_rest: object,
    ) -> bool:
        calls.append(groups["response"])
        return True

    def digests(people: frozenset[int]) -> dict[str, retention.Digest]:
        return {"response": (len(people), sum(people), 0, 0, 0)}

    monkeypatch.setattr(guard_views, "guard_figures", counted)
    monkeypatch.setattr(guard_views, "evaluator", lambda: SimpleNamespace(id=7))
    monkeypatch.setattr(guard_views, "_stamp", lambda: ("unchanged data",))
    monkeypatch.setattr(guard_views, "get_session", lambda: SimpleNamespace(commit=lambda: None))
    monkeypatch.setattr(guard_views, "forgetting_mark", lambda *_args: 0)  # no memory forgotten
    monkeypatch.setattr(guard_views.figures_seal, "sealed", lambda *_args: False)
    monkeypatch.setattr(guard_views.figures_seal, "snapshot", lambda *_args: (0, 0))
    monkeypatch.setattr(guard_views.figures_seal, "seal", lambda *_args: None)
    monkeypatch.setattr(guard_views.facts, "session_cell_key", lambda _session: b"k" * 32)
    monkeypatch.setattr(
        guard_views.retention, "digests_of", lambda followed, *_rest: digests(followed.opened)
    )
    filters = EvaluationFilters(structure_ids=(1,))
    with app.test_request_context():
        for people in (frozenset({1, 2}), frozenset({1, 2}), frozenset({1, 3})):
            followed = retention.Followed({}, {}, people, frozenset())
            numbers = retention.Counted({}, {}, len(people), 0, digests(people))
            assert guard_views.guard_figures_here(filters, numbers, lambda f=followed: f)
    assert calls == [frozenset({1, 2}), frozenset({1, 3})]
