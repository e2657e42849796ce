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
    pages: int  # screens on the web
    items: int
    conditional_items: int
    answers: int  # stored variables, counting the before/today pairs of the retro form
    seconds_typical: int  # conditional items counted as half likely, free text as skipped

    @property
    def minutes(self) -> float:
        return round(self.seconds_typical / 60, 1)


def form_stats(definition: Definition, form: FormKind) -> FormStats:
    """The form as the web shows it: its screens (`Definition.screens`: the retrospective
    form's layout), each answer once; an item asked again about another moment (retro
    "today" after "before") costs `typical_seconds_again`."""
    screens = definition.screens(form)
    seconds = SECONDS_PER_PAGE * len(screens)
    asked: set[str] = set()
    for screen in screens:
        for variable in screen.variables_for(form):
            item = variable.item
            weight = 0.5 if item.show_if is not None else 1.0
            again = item.code in asked
            cost = (
                item.type.typical_seconds_again(item) if again else item.type.typical_seconds(item)
            )
            seconds += round(weight * cost)
            asked.add(item.code)
    items = list(definition.items(form))
    return FormStats(
        form=form,
        pages=len(screens),
        items=len(items),
        conditional_items=sum(1 for item in items if item.show_if is not None),
        answers=len(definition.variables(form)),
        seconds_typical=seconds,
    )
