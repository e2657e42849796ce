"""A synthetic population resembling the reference survey (Asdo études for ANCT, 2023).

Built from what the survey published, not from our typology rule (docs/typology.md says
how): each person is first drawn in one of the survey's four profiles with its published
share (26 / 35 / 26 / 13 %), then given answers from that profile's description in the
survey's slides (/work/shared/seeds: age, status, diploma, comfort and level before,
prescribed or not, intensity), with conditional shares chosen so that the whole population
meets the published marginals: 75 % aged 60+, 70 % retired, 59 % below the baccalauréat,
15 % not mastering switching their device on and off, and about three people in four not at
ease before. A latent starting level (0 to 1) ties comfort and the basic tasks together, with
noise, so profiles overlap as real people do.

The answers are (form, variable, value) triples, as stored, for the items found by role:
the same person can be classified in Python (`typology.person_facts` + `classify`) or stored
and classified by the dashboard's SQL.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from selfcheck.questionnaire.model import PRE_SUFFIX, Definition, FormKind, Role

SEED = 2023
SHARES = {
    "beginner_seniors": 0.26,
    "initiated_seniors": 0.35,
    "improvement_path": 0.26,
    "integration_path": 0.13,
}
# How people answered: a before form and later an after form, or one retrospective form
# (the reference survey's design). A before form alone says nothing of the path.
PATHS = {"pre_post": 0.55, "before_only": 0.15, "retro": 0.30}


@dataclass(frozen=True)
class Drawn:
    profile: str  # the profile the person was drawn in (the survey's, not our rule's)
    answers: tuple[tuple[str, str, str], ...]  # (form, variable, value)


def _pick(rng: random.Random, weights: Mapping[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


# Per profile, from the survey's descriptions (docs/typology.md quotes them).
AGES = {
    # Seniors: the beginners are the older ones.
    "beginner_seniors": {"soixante_soixante_neuf": 0.35, "soixante_dix_plus": 0.65},
    "initiated_seniors": {"soixante_soixante_neuf": 0.55, "soixante_dix_plus": 0.45},
    # "Plus jeunes": a little over half are 60-69 all the same (75 % of the sample is 60+).
    "improvement_path": {
        "vingt_cinq_trente_neuf": 0.12,
        "quarante_cinquante_neuf": 0.34,
        "soixante_soixante_neuf": 0.42,
        "soixante_dix_plus": 0.12,
    },
    # "Les plus jeunes".
    "integration_path": {
        "dix_huit_vingt_quatre": 0.35,
        "vingt_cinq_trente_neuf": 0.35,
        "quarante_cinquante_neuf": 0.25,
        "soixante_soixante_neuf": 0.05,
    },
}
STATUSES_60_PLUS = {
    "beginner_seniors": {"retraite": 0.96, "autre": 0.04},
    "initiated_seniors": {"retraite": 0.93, "en_emploi": 0.05, "autre": 0.02},
    "improvement_path": {"retraite": 0.78, "en_emploi": 0.2, "autre": 0.02},
    "integration_path": {"sans_emploi": 0.6, "retraite": 0.3, "autre": 0.1},
}
STATUSES_UNDER_60 = {
    # "Plus souvent en emploi"; some between jobs.
    "improvement_path": {"en_emploi": 0.7, "sans_emploi": 0.12, "scolarise": 0.06, "autre": 0.12},
    # "En formation ou en recherche d'emploi".
    "integration_path": {"sans_emploi": 0.6, "scolarise": 0.25, "en_emploi": 0.08, "autre": 0.07},
}
DIPLOMAS = {
    "beginner_seniors": {
        "aucun": 0.3,
        "brevet": 0.32,
        "cap_bep": 0.23,
        "bac": 0.1,
        "superieur": 0.05,
    },
    # "Un niveau de diplôme plus élevé que les séniors débutants".
    "initiated_seniors": {
        "aucun": 0.08,
        "brevet": 0.22,
        "cap_bep": 0.25,
        "bac": 0.25,
        "superieur": 0.2,
    },
    # "Plus diplômés".
    "improvement_path": {"brevet": 0.08, "cap_bep": 0.2, "bac": 0.3, "superieur": 0.42},
    # "Majoritairement sans aucun diplôme".
    "integration_path": {
        "aucun": 0.52,
        "brevet": 0.15,
        "cap_bep": 0.18,
        "bac": 0.1,
        "superieur": 0.05,
    },
}
# "Prescrit dans la majorité des cas" for the integration path only.
PRESCRIBED = {
    "beginner_seniors": 0.2,
    "initiated_seniors": 0.15,
    "improvement_path": 0.08,
    "integration_path": 0.62,
}
# Seniors: "soutenus et intensifs"; the two paths: "ponctuel et individuel".
MODALITIES = {
    "beginner_seniors": {"individuel": 0.45, "collectif": 0.3, "les_deux": 0.2, "ponctuel": 0.05},
    "initiated_seniors": {"individuel": 0.4, "collectif": 0.3, "les_deux": 0.22, "ponctuel": 0.08},
    "improvement_path": {"ponctuel": 0.45, "individuel": 0.45, "collectif": 0.07, "les_deux": 0.03},
    "integration_path": {"individuel": 0.55, "ponctuel": 0.4, "collectif": 0.05},
}
SESSIONS = {
    "beginner_seniors": (5, 14),
    "initiated_seniors": (4, 12),
    "improvement_path": (1, 3),
    "integration_path": (1, 4),
}


def _level(rng: random.Random, profile: str) -> float:
    """The starting level: least at ease beginners, medium initiated, at ease improvers,
    polarised integration ("à l'aise" or "pas du tout à l'aise")."""
    if profile == "beginner_seniors":
        return rng.uniform(0.0, 0.3)
    if profile == "initiated_seniors":
        return rng.uniform(0.2, 0.48)
    if profile == "improvement_path":
        return rng.uniform(0.42, 0.9)
    return rng.uniform(0.0, 0.2) if rng.random() < 0.5 else rng.uniform(0.5, 0.85)


def _comfort(rng: random.Random, level: float) -> str:
    score = 0.6 + 3.3 * level + rng.gauss(0, 0.45)
    return str(max(1, min(4, round(score))))


def _task(rng: random.Random, level: float, difficulty: float) -> str:
    """A rung of the autonomy ladder before any help (difficulty 0: switch the device on)."""
    score = 1.95 + 4.5 * level - 2.5 * difficulty + rng.gauss(0, 0.5)
    return str(max(1, min(4, round(score))))


def draw_population(definition: Definition, people: int = 2000, seed: int = SEED) -> list[Drawn]:
    """`people` persons, the same ones for the same seed."""
    rng = random.Random(seed)

    def code(role: Role) -> str:
        item = definition.item_with_role(role)
        assert item is not None, role
        return item.code

    tasks = definition.task_items()
    difficulty = {item.code: i / max(1, len(tasks) - 1) for i, item in enumerate(tasks)}
    comfort = code(Role.COMFORT)
    drawn = []
    for _ in range(people):
        profile = _pick(rng, SHARES)
        age = _pick(rng, AGES[profile])
        senior = age.startswith("soixante")
        status = _pick(rng, (STATUSES_60_PLUS if senior else STATUSES_UNDER_60)[profile])
        diploma = _pick(rng, DIPLOMAS[profile])
        prescribed = (
            "service"
            if rng.random() < PRESCRIBED[profile]
            else _pick(rng, {"personne": 0.6, "proche": 0.35, "autre": 0.05})
        )
        level = _level(rng, profile)
        path = _pick(rng, PATHS)
        first = FormKind.RETRO if path == "retro" else FormKind.BEFORE
        suffix = PRE_SUFFIX if first is FormKind.RETRO else ""
        profile_answers = {
            code(Role.AGE): age,
            code(Role.STATUS): status,
            code(Role.DIPLOMA): diploma,
            code(Role.PRESCRIBER): prescribed,
            comfort + suffix: _comfort(rng, level),
        }
        for item in tasks:
            profile_answers[item.code + suffix] = _task(rng, level, difficulty[item.code])
        answers = [(first.value, variable, value) for variable, value in profile_answers.items()]
        if path != "before_only":
            later = FormKind.RETRO if path == "retro" else FormKind.AFTER
            low, high = SESSIONS[profile]
            answers += [
                (later.value, code(Role.MODALITY), _pick(rng, MODALITIES[profile])),
                (later.value, code(Role.SESSIONS), str(rng.randint(low, high))),
            ]
        drawn.append(Drawn(profile, tuple(answers)))
    return drawn
