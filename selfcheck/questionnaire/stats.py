"""Item counts and an estimate of answering time for each form, computed from the definition.

The estimate uses the assumed reading-and-answering time of each answer type
(`AnswerType.typical_seconds`), chosen generously for slow readers and first-time users; it
is a planning figure, not a measurement.
"""

from __future__ import annotations

from dataclasses import dataclass

from selfcheck.questionnaire.model import Definition, FormKind

SECONDS_PER_PAGE = 5  # finding and pressing "Continue"


@dataclass(frozen=True)
class FormStats:
    form: FormKind
    pages: int
    items: int
    conditional_items: int
    answers: int  # stored variables, counting the before/today pairs of the retro form
    seconds_typical: int  # conditional items counted as half likely, free text as skipped

    @property
    def minutes(self) -> float:
        return round(self.seconds_typical / 60, 1)


def form_stats(definition: Definition, form: FormKind) -> FormStats:
    seconds = SECONDS_PER_PAGE * len(definition.pages(form))
    for variable in definition.variables(form):
        item = variable.item
        weight = 0.5 if item.show_if is not None else 1.0
        seconds += round(weight * item.type.typical_seconds(item))
    items = list(definition.items(form))
    return FormStats(
        form=form,
        pages=len(definition.pages(form)),
        items=len(items),
        conditional_items=sum(1 for item in items if item.show_if is not None),
        answers=len(definition.variables(form)),
        seconds_typical=seconds,
    )
