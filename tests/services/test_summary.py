"""A person's progress summary, from a before/after pair, a retro form, or a 'before' alone."""

from __future__ import annotations

from sqlalchemy.orm import Session

from selfcheck.journey import operations as journey
from selfcheck.journey.summary import Summary, SummaryKind, TaskProgress, build_summary
from selfcheck.platform.models import Beneficiary, Structure
from selfcheck.questionnaire import Definition, FormKind
from tests.support import (
    AFTER,
    BEFORE,
    NEEDS_HELP_AFTER,
    NEWLY_ALONE,
    RETRO,
    TASKS_AFTER,
    TASKS_BEFORE,
    fill_and_submit,
    fill_response,
    new_token,
    submitted,
)

ALL_DOMAINS = ["operational", "informational", "communication", "creative", "strategic"]


def pre_post(
    session: Session,
    definition: Definition,
    structure: Structure,
    before: dict[str, tuple[str, ...]] = BEFORE,
    after: dict[str, tuple[str, ...]] = AFTER,
) -> Beneficiary:
    first = submitted(session, definition, structure, FormKind.BEFORE, before)
    second = journey.start_after(session, definition, first.beneficiary, "fr")
    session.commit()
    fill_and_submit(session, definition, second, after)
    session.expire_all()
    return first.beneficiary


def summary_of(definition: Definition, beneficiary: Beneficiary) -> Summary:
    result = build_summary(definition, beneficiary)
    assert result is not None
    return result


def codes(tasks: tuple[TaskProgress, ...]) -> list[str]:
    return [task.item.code for task in tasks]


def with_tasks(
    base: dict[str, tuple[str, ...]], tasks: dict[str, str], suffix: str = ""
) -> dict[str, tuple[str, ...]]:
    changed = dict(base)
    changed.update({code + suffix: (value,) for code, value in tasks.items()})
    return changed


def test_pre_post_summary(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    summary = summary_of(definition, pre_post(db_session, definition, structure))
    assert summary.kind is SummaryKind.PRE_POST
    assert summary.has_before
    assert summary.comfort_before is not None and summary.comfort_before.code == "1"
    assert summary.comfort_now is not None and summary.comfort_now.code == "3"
    assert summary.comfort_improved
    assert summary.progress is not None and summary.progress.code == "4"
    assert codes(summary.newly_alone) == NEWLY_ALONE
    assert codes(summary.needs_help) == NEEDS_HELP_AFTER
    assert [o.code for o in summary.changes] == ["confiance", "autonomie"]
    assert len(summary.tasks) == 15
    t12 = next(task for task in summary.tasks if task.item.code == "T12")
    assert not t12.concerned  # "does not concern me" both times
    assert not t12.needs_help_now and not t12.newly_alone


def test_bars_count_tasks_done_alone_per_competence(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    summary = summary_of(definition, pre_post(db_session, definition, structure))
    bars = {
        bar.competence.code: (bar.total, bar.alone_before, bar.alone_now) for bar in summary.bars
    }
    assert list(bars) == ALL_DOMAINS
    assert bars == {
        "operational": (3, 0, 2),
        "informational": (2, 0, 1),
        "communication": (2, 0, 2),
        "creative": (3, 0, 1),
        "strategic": (4, 0, 2),  # T12 "not concerned" is left out
    }


def test_suggestions_are_coop_topics_of_tasks_needing_help_basic_first(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    summary = summary_of(definition, pre_post(db_session, definition, structure))
    assert [o.code for o in summary.suggestions] == [
        "maintenance_de_materiel",  # T03
        "culture_numerique",  # T05
        "gere_ses_contenus_numeriques",  # T08
    ]


def test_suggestions_are_unique_and_at_most_three(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    # Only T14 and T15 (both "digital safety") still need help.
    now = dict.fromkeys(TASKS_AFTER, "3")
    now.update(T14="1", T15="2")
    beneficiary = pre_post(db_session, definition, structure, after=with_tasks(AFTER, now))
    summary = summary_of(definition, beneficiary)
    assert codes(summary.needs_help) == ["T14", "T15"]
    assert [o.code for o in summary.suggestions] == ["securite_numerique"]


def test_domains_are_where_a_task_moved_up(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    flat = dict.fromkeys(TASKS_BEFORE, "2")
    before = with_tasks(BEFORE, flat)
    now = dict(flat, T04="3")  # one informational task moved up
    after = with_tasks(AFTER, now)
    after["PROGRESS_DOMAINS"] = ("creative",)  # said, but no creative task moved up
    summary = summary_of(definition, pre_post(db_session, definition, structure, before, after))
    assert [o.code for o in summary.domains] == ["informational"]
    assert codes(summary.progressed) == ["T04"]
    assert codes(summary.newly_alone) == ["T04"]


def test_no_domain_when_nothing_moved_and_none_was_said(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    flat = dict.fromkeys(TASKS_BEFORE, "2")
    after = with_tasks(AFTER, flat)
    after["PROGRESS"] = ("2",)  # hides PROGRESS_DOMAINS
    after["COMFORT"] = ("1",)
    summary = summary_of(
        definition, pre_post(db_session, definition, structure, with_tasks(BEFORE, flat), after)
    )
    assert summary.domains == ()
    assert summary.newly_alone == ()
    assert not summary.comfort_improved
    assert codes(summary.needs_help) == list(TASKS_BEFORE)


def test_a_task_not_concerned_before_is_not_newly_alone(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    before = with_tasks(BEFORE, {"T11": "9"})
    after = with_tasks(AFTER, {"T11": "4"})
    summary = summary_of(definition, pre_post(db_session, definition, structure, before, after))
    t11 = next(task for task in summary.tasks if task.item.code == "T11")
    assert t11.concerned and t11.alone_now and not t11.newly_alone and not t11.improved


def test_retrospective_summary_reads_the_pre_answers(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    response = submitted(db_session, definition, structure, FormKind.RETRO, RETRO)
    summary = summary_of(definition, response.beneficiary)
    assert summary.kind is SummaryKind.RETROSPECTIVE
    assert summary.has_before
    assert summary.comfort_before is not None and summary.comfort_before.code == "1"
    assert summary.comfort_now is not None and summary.comfort_now.code == "3"
    assert codes(summary.newly_alone) == NEWLY_ALONE
    assert codes(summary.needs_help) == NEEDS_HELP_AFTER
    bars = {bar.competence.code: (bar.alone_before, bar.alone_now) for bar in summary.bars}
    assert bars["operational"] == (0, 2)


def test_before_only_summary_is_a_starting_point(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    response = submitted(db_session, definition, structure, FormKind.BEFORE, BEFORE)
    summary = summary_of(definition, response.beneficiary)
    assert summary.kind is SummaryKind.START_ONLY
    assert not summary.has_before
    assert summary.comfort_before is None
    assert summary.comfort_now is not None and summary.comfort_now.code == "1"
    assert summary.progress is None
    assert summary.newly_alone == ()
    assert summary.changes == ()
    # Before: T01, T04, T07, T10, T15 with help (2), the others not yet (1), T12 not concerned.
    assert len(summary.needs_help) == 14
    # Nearest rung first: the tasks done with help (T01, T04, T07...) before the others.
    assert codes(tuple(step.task for step in summary.next_steps))[:5] == [
        "T01",
        "T04",
        "T07",
        "T10",
        "T15",
    ]
    assert [o.code for o in summary.suggestions] == [
        "prendre_en_main_du_materiel",
        "navigation_sur_internet",
        summary.next_steps[2].topic.code if summary.next_steps[2].topic else "",
    ]
    assert all(bar.alone_before == 0 and bar.alone_now == 0 for bar in summary.bars)
    # ... but the starting point counts what is done with help: never a page of zeros.
    assert codes(summary.already_done) == ["T01", "T04", "T07", "T10", "T15"]


def test_before_submitted_and_after_in_progress_shows_the_starting_point(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    response = submitted(db_session, definition, structure, FormKind.BEFORE, BEFORE)
    journey.start_after(db_session, definition, response.beneficiary, "fr")
    db_session.commit()
    db_session.expire_all()
    assert summary_of(definition, response.beneficiary).kind is SummaryKind.START_ONLY


def test_no_summary_before_anything_is_submitted(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    response = journey.start_response(
        db_session, definition, structure, FormKind.BEFORE, "fr", new_token()
    )
    db_session.commit()
    fill_response(db_session, definition, response, BEFORE)
    db_session.commit()
    assert build_summary(definition, response.beneficiary) is None
