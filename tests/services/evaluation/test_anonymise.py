"""The k-anonymity plan and the department table, without a database."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from selfcheck.evaluation import anonymise
from selfcheck.evaluation.anonymise import Profile
from selfcheck.evaluation.regions import DEPARTMENT_REGION, REGIONS, region_of
from selfcheck.questionnaire.loader import load_definition

DEFINITION = load_definition()

PLACES = {1: ("mairie-a", "44"), 2: ("mairie-b", "44"), 3: ("centre-c", "59"), 4: ("x", "971")}
AGES = ("douze_dix_huit", "vingt_cinq_trente_neuf", "soixante_dix_plus", None)


def test_every_department_has_its_region() -> None:
    metropolitan = [d for d in DEPARTMENT_REGION if len(d) == 2]
    assert len(metropolitan) == 96  # 01-95 without 20, with 2A and 2B
    assert {"2A", "2B"} <= set(metropolitan) and "20" not in metropolitan
    assert [region_of(d) for d in ("971", "972", "973", "974", "976")] == [
        "01",
        "02",
        "03",
        "04",
        "06",
    ]
    assert region_of("44") == "52" and region_of("2a") == "94" and region_of("99") is None
    assert len(REGIONS) == 19


def test_pseudonyms_are_stable_within_a_key_and_differ_across_keys() -> None:
    key, other = anonymise.new_key(), anonymise.new_key()
    assert anonymise.pseudonym(key, 7) == anonymise.pseudonym(key, 7)
    assert anonymise.pseudonym(key, 7) != anonymise.pseudonym(key, 8)
    assert anonymise.pseudonym(key, 7) != anonymise.pseudonym(other, 7)


def test_large_groups_are_released_as_they_are() -> None:
    counts = Counter({Profile(1, "douze_dix_huit", "feminin"): 10, Profile(2, None, "masculin"): 6})
    plan = anonymise.plan(counts, 5, PLACES, DEFINITION)
    assert (plan.geography, plan.age) == ("structure", "bands")
    assert plan.people_suppressed == plan.values_suppressed == 0


def test_small_groups_are_generalised_then_suppressed() -> None:
    counts = Counter(
        {
            Profile(1, "douze_dix_huit", "feminin"): 3,
            Profile(2, "douze_dix_huit", "feminin"): 3,
            Profile(3, "soixante_dix_plus", "masculin"): 1,
        }
    )
    plan = anonymise.plan(counts, 5, PLACES, DEFINITION)
    assert plan.geography in ("department", "region", "national")
    assert plan.people_exported + plan.people_suppressed == 7
    assert min(plan.group_sizes.values()) >= 5


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=2, max_value=10))
def test_every_released_group_holds_at_least_k_people(seed: int, k: int) -> None:
    rng = random.Random(seed)
    counts: Counter[Profile] = Counter()
    for _ in range(rng.randint(1, 120)):
        profile = Profile(
            rng.choice(list(PLACES)),
            rng.choice(AGES),
            rng.choice(("feminin", "masculin", None)),
            rng.choice(("aucun", "bac", None)),
            rng.choice(("retraite", "en_emploi")),
            rng.choice(("urbain", "rural")),
        )
        counts[profile] += 1
    plan = anonymise.plan(counts, k, PLACES, DEFINITION)
    released: Counter[anonymise.Released] = Counter()
    for profile, n in counts.items():
        decision = plan.release(profile)
        if decision is not None:
            released[decision] += n
    assert all(size >= k for size in released.values())
    assert sum(released.values()) == plan.people_exported
    assert plan.release(Profile(99)) is None  # unknown to the plan: left out
