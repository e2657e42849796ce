"""`differencing.isolates`: sums and differences of selections that isolate fewer than k."""

from __future__ import annotations

from selfcheck.evaluation.differencing import isolates

K = 5


def people(prefix: str, count: int) -> frozenset[str]:
    return frozenset(f"{prefix}{i}" for i in range(count))


def test_composition_isolates_the_overlap_of_two_selections() -> None:
    # January-February, February-March, then January-March: the first two minus the third
    # is February, 3 people, though every pair differs by 10 or more.
    january, february, march = people("j", 10), people("f", 3), people("m", 10)
    first, second = january | february, february | march
    whole = january | february | march
    assert min(len(a ^ b) for a, b in ((first, second), (first, whole), (second, whole))) >= K
    assert isolates(whole, [first, second], K)
    assert isolates(second, [first, whole], K)  # in any order
    assert not isolates(second, [first], K)  # two of them are not enough


def test_disjoint_parts_and_their_union_isolate_nobody() -> None:
    a, b = people("a", 10), people("b", 12)
    assert not isolates(a | b, [a, b], K)
    assert not isolates(b, [a, a | b], K)


def test_the_same_selection_after_a_few_new_answers_is_caught() -> None:
    before = people("p", 20)
    assert isolates(before | people("new", 2), [before], K)
    assert not isolates(before | people("new", K), [before], K)  # k new people: fine


def test_only_what_the_new_selection_adds_counts() -> None:
    # Earlier selections that already isolate 2 people (before this check existed) do not
    # block an unrelated selection forever.
    base = people("p", 20)
    old = [base, base | people("x", 2)]
    assert not isolates(people("q", 30), old, K)
    # The same selection again adds nothing either.
    assert not isolates(base, old, K)


def test_a_small_atom_not_in_the_span_is_not_flagged() -> None:
    # Two selections overlapping by 3 people, neither inside the other: counts alone give
    # |A| + |B| - |A and B| only with the union, which was never shown.
    a = people("a", 10) | people("o", 3)
    b = people("b", 10) | people("o", 3)
    assert not isolates(b, [a], K)
