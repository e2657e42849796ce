"""attack12: the export plan's independent k check (`anonymise._verify`) against values that
are equal as dict keys but written apart (round 19, csv19)."""

from __future__ import annotations

from typing import Any

import pytest

from selfcheck.evaluation import anonymise

# --- the export plan: the independent k check codes values as the file shows them ---------


@pytest.mark.parametrize(
    ("one", "other"),
    [(1, 1.0), (1, True), (0.0, -0.0), (True, 1.0)],
)
def test_verify_keeps_apart_values_the_plan_keeps_apart(one: Any, other: Any) -> None:
    """`_shared_decisions` keeps 1, 1.0 and True (and 0.0, -0.0) apart (type and `repr`:
    they are written apart), but `_verify`, the independent check of k over the released
    columns, coded them with `dict.fromkeys` (equal values one key): two combinations of 2
    people each counted as one of 4, and a k of 3 passed for people alone in the file with 1
    other."""
    ids = [11, 12, 13, 14]
    records = [{anonymise.FORMS_PRESENT: "I"} for _ in ids]
    first = {"a": one, "b": "x", anonymise.FORMS_PRESENT: "I"}
    second = {"a": other, "b": "x", anonymise.FORMS_PRESENT: "I"}
    decisions = {11: first, 12: first, 13: second, 14: second}
    # Each its own dict, as `_shared_decisions` gives them (type and repr).
    shared = anonymise._shared_decisions(
        ids, [0, 1, 2, 3], ["a", "b"], {"a": [one, one, other, other], "b": ["x"] * 4}
    )
    assert shared[11] is not shared[13]
    assert sorted(anonymise._verify(decisions, records, ids, 3)) == ids
    assert anonymise._verify(decisions, records, ids, 2) == []
    # One column only (the path without itemgetter of several names).
    alone = {11: {"a": one}, 12: {"a": one}, 13: {"a": other}, 14: {"a": other}}
    assert sorted(anonymise._verify(alone, records, ids, 3)) == ids
