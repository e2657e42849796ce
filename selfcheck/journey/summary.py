"""A person's progress summary, from a linked before/after pair or a retrospective form.

Plain data for the web page (and later the PDF): comfort then and now, tasks now done
alone, tasks still needing help, domains of progress, suggested next topics, and per
competence type how many tasks were done alone before and now (the chart).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from selfcheck.journey.operations import Answers, answers_of
from selfcheck.platform.models import Beneficiary, Response
from selfcheck.questionnaire.model import PRE_SUFFIX, Definition, FormKind, Item, Option, Role

ALONE_RANK = 3  # "on my own" and above on the autonomy ladder
MAX_SUGGESTIONS = 3


class SummaryKind(enum.StrEnum):
    PRE_POST = "pre_post"
    RETROSPECTIVE = "retro"
    START_ONLY = "start_only"


@dataclass(frozen=True)
class TaskProgress:
    item: Item
    before: Option | None
    now: Option | None

    @property
    def concerned(self) -> bool:
        return any(o is not None and o.rank is not None for o in (self.before, self.now))

    @property
    def alone_before(self) -> bool:
        return _rank(self.before) >= ALONE_RANK

    @property
    def alone_now(self) -> bool:
        return _rank(self.now) >= ALONE_RANK

    @property
    def newly_alone(self) -> bool:
        return (
            self.alone_now
            and self.before is not None
            and not self.alone_before
            and (self.before.rank is not None)
        )

    @property
    def needs_help_now(self) -> bool:
        return self.now is not None and self.now.rank is not None and self.now.rank < ALONE_RANK

    @property
    def improved(self) -> bool:
        return _rank(self.now) > _rank(self.before) > 0


@dataclass(frozen=True)
class CompetenceBar:
    competence: Option
    total: int
    alone_before: int
    alone_now: int


@dataclass(frozen=True)
class Summary:
    kind: SummaryKind
    comfort_before: Option | None
    comfort_now: Option | None
    progress: Option | None
    tasks: tuple[TaskProgress, ...]
    bars: tuple[CompetenceBar, ...]
    domains: tuple[Option, ...]
    suggestions: tuple[Option, ...]
    changes: tuple[Option, ...]

    @property
    def newly_alone(self) -> tuple[TaskProgress, ...]:
        return tuple(task for task in self.tasks if task.newly_alone)

    @property
    def needs_help(self) -> tuple[TaskProgress, ...]:
        return tuple(task for task in self.tasks if task.needs_help_now)

    @property
    def comfort_improved(self) -> bool:
        return _rank(self.comfort_now) > _rank(self.comfort_before) > 0

    @property
    def has_before(self) -> bool:
        return self.kind is not SummaryKind.START_ONLY

    @property
    def chart_totals(self) -> tuple[int, int, int]:
        """(tasks concerned, done alone before, done alone now) over the chart's bars: the
        one-sentence text equivalent of the chart says the same as its bars."""
        return (
            sum(bar.total for bar in self.bars),
            sum(bar.alone_before for bar in self.bars),
            sum(bar.alone_now for bar in self.bars),
        )


def _rank(option: Option | None) -> int:
    return option.rank if option is not None and option.rank is not None else 0


def _option(item: Item, answers: Answers, variable: str) -> Option | None:
    given = answers.get(variable, ())
    return item.option(given[0]) if given else None


def _options(item: Item, answers: Answers) -> tuple[Option, ...]:
    given = answers.get(item.code, ())
    return tuple(option for option in item.options if option.code in given)


def submitted_by_form(beneficiary: Beneficiary) -> dict[FormKind, Response]:
    return {FormKind(r.form): r for r in beneficiary.responses if r.is_submitted}


def build_summary(definition: Definition, beneficiary: Beneficiary) -> Summary | None:
    """None when nothing is submitted yet."""
    done = submitted_by_form(beneficiary)
    if FormKind.RETRO in done:
        answers = answers_of(done[FormKind.RETRO])
        return _summarise(definition, SummaryKind.RETROSPECTIVE, _pre_view(answers), answers)
    if FormKind.BEFORE in done and FormKind.AFTER in done:
        return _summarise(
            definition,
            SummaryKind.PRE_POST,
            answers_of(done[FormKind.BEFORE]),
            answers_of(done[FormKind.AFTER]),
        )
    if FormKind.BEFORE in done:
        return _summarise(definition, SummaryKind.START_ONLY, {}, answers_of(done[FormKind.BEFORE]))
    return None


def _pre_view(answers: Answers) -> Answers:
    """Retro answers about 'before' (T01_PRE) seen under their item code (T01)."""
    return {
        code.removesuffix(PRE_SUFFIX): values
        for code, values in answers.items()
        if code.endswith(PRE_SUFFIX)
    }


def _summarise(definition: Definition, kind: SummaryKind, before: Answers, now: Answers) -> Summary:
    tasks = tuple(
        TaskProgress(item, _option(item, before, item.code), _option(item, now, item.code))
        for item in definition.task_items()
    )
    comfort = definition.item_with_role(Role.COMFORT)
    progress = definition.item_with_role(Role.PROGRESS)
    domains_item = definition.item_with_role(Role.PROGRESS_DOMAINS)
    changes_item = definition.item_with_role(Role.CHANGES)
    return Summary(
        kind=kind,
        comfort_before=_option(comfort, before, comfort.code) if comfort else None,
        comfort_now=_option(comfort, now, comfort.code) if comfort else None,
        progress=_option(progress, now, progress.code) if progress else None,
        tasks=tasks,
        bars=_bars(definition, tasks),
        domains=_domains(definition, tasks, domains_item, now),
        suggestions=_suggestions(definition, tasks),
        changes=_options(changes_item, now) if changes_item else (),
    )


def _bars(definition: Definition, tasks: tuple[TaskProgress, ...]) -> tuple[CompetenceBar, ...]:
    bars = []
    for competence in definition.competences.values():
        mine = [t for t in tasks if t.item.competence == competence.code and t.concerned]
        if mine:
            bars.append(
                CompetenceBar(
                    competence,
                    total=len(mine),
                    alone_before=sum(t.alone_before for t in mine),
                    alone_now=sum(t.alone_now for t in mine),
                )
            )
    return tuple(bars)


def _domains(
    definition: Definition, tasks: tuple[TaskProgress, ...], item: Item | None, now: Answers
) -> tuple[Option, ...]:
    """Domains the person said they progressed in, plus those where a task moved up."""
    said = {option.code for option in _options(item, now)} if item else set()
    seen = {task.item.competence for task in tasks if task.improved}
    return tuple(o for code, o in definition.competences.items() if code in said | seen)


def _suggestions(definition: Definition, tasks: tuple[TaskProgress, ...]) -> tuple[Option, ...]:
    """Coop topics of the tasks that still need help, most basic first (definition order)."""
    topics: list[Option] = []
    for task in tasks:
        topic = definition.coop_topics.get(task.item.coop_topic or "")
        if task.needs_help_now and topic is not None and topic not in topics:
            topics.append(topic)
    return tuple(topics[:MAX_SUGGESTIONS])
