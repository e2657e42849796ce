"""Realistic sample data, entered through the same services as real answers.

People are drawn from the four profiles of the reference survey (Asdo/ANCT 2023): beginner
seniors 26 %, initiated seniors 35 %, improvement path 26 %, integration path 13 %. Each
profile sets age, status, diploma, equipment, a starting level and a typical gain; task
answers follow from the level and each task's difficulty (its place in the definition).
Items the generator does not know get a random valid answer, so a new item never breaks it.
"""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck.accounts import auth
from selfcheck.accounts.structures import create_structure
from selfcheck.entry.lookup import open_entry, open_uncoded
from selfcheck.entry.saving import save_entry
from selfcheck.journey import operations as journey
from selfcheck.platform.models import Channel, Response, Role, StaffUser, Structure, utcnow
from selfcheck.questionnaire.model import (
    NO_ANSWER,
    Definition,
    FormKind,
    Item,
    Moment,
    Page,
    Variable,
)
from selfcheck.questionnaire.model import Role as ItemRole

DEMO_SLUG = "demo"


@dataclass(frozen=True)
class Profile:
    name: str
    share: float
    ages: Mapping[str, float]
    statuses: Mapping[str, float]
    diplomas: Mapping[str, float]
    level: tuple[float, float]  # starting level range, 0 (beginner) to 1 (at ease)
    gain: float  # mean gain in ladder steps
    women: float
    devices: Mapping[str, float]
    reasons: Mapping[str, float]
    topics: Mapping[str, float]
    prescribed: float
    modality: Mapping[str, float]


PROFILES = (
    Profile(
        "beginner_seniors",
        0.26,
        ages={"soixante_soixante_neuf": 0.3, "soixante_dix_plus": 0.7},
        statuses={"retraite": 0.97, "autre": 0.03},
        diplomas={"aucun": 0.3, "brevet": 0.3, "cap_bep": 0.25, "bac": 0.1, "superieur": 0.05},
        level=(0.0, 0.3),
        gain=1.1,
        women=0.75,
        devices={"smartphone": 0.7, "tablette": 0.3, "portable": 0.2, "fixe": 0.1},
        reasons={"utiliser_appareil": 0.9, "rassurer": 0.5, "proches": 0.5, "aide_demarche": 0.4},
        topics={
            "prendre_en_main_du_materiel": 0.9,
            "email": 0.4,
            "reseaux_sociaux": 0.4,
            "navigation_sur_internet": 0.5,
        },
        prescribed=0.25,
        modality={"individuel": 0.5, "collectif": 0.3, "les_deux": 0.2},
    ),
    Profile(
        "initiated_seniors",
        0.35,
        ages={"soixante_soixante_neuf": 0.5, "soixante_dix_plus": 0.5},
        statuses={"retraite": 0.95, "en_emploi": 0.05},
        diplomas={"brevet": 0.2, "cap_bep": 0.3, "bac": 0.25, "superieur": 0.25},
        level=(0.3, 0.6),
        gain=1.0,
        women=0.72,
        devices={"smartphone": 0.9, "tablette": 0.4, "portable": 0.5, "fixe": 0.3},
        reasons={"se_former": 0.7, "demarches_seul": 0.6, "aide_demarche": 0.5},
        topics={
            "aide_aux_demarches_administratives": 0.7,
            "sante": 0.5,
            "banque_et_achats_en_ligne": 0.4,
            "securite_numerique": 0.4,
        },
        prescribed=0.2,
        modality={"individuel": 0.5, "collectif": 0.3, "les_deux": 0.2},
    ),
    Profile(
        "improvement_path",
        0.26,
        ages={
            "vingt_cinq_trente_neuf": 0.2,
            "quarante_cinquante_neuf": 0.4,
            "soixante_soixante_neuf": 0.4,
        },
        statuses={"en_emploi": 0.55, "retraite": 0.35, "sans_emploi": 0.1},
        diplomas={"cap_bep": 0.2, "bac": 0.35, "superieur": 0.45},
        level=(0.55, 0.85),
        gain=0.6,
        women=0.65,
        devices={"smartphone": 0.98, "portable": 0.7, "tablette": 0.4, "fixe": 0.3},
        reasons={"se_former": 0.8, "aide_demarche": 0.3},
        topics={
            "bureautique": 0.5,
            "gere_ses_contenus_numeriques": 0.5,
            "creer_avec_le_numerique": 0.4,
            "securite_numerique": 0.3,
        },
        prescribed=0.1,
        modality={"ponctuel": 0.5, "individuel": 0.4, "collectif": 0.1},
    ),
    Profile(
        "integration_path",
        0.13,
        ages={
            "dix_huit_vingt_quatre": 0.45,
            "vingt_cinq_trente_neuf": 0.4,
            "quarante_cinquante_neuf": 0.15,
        },
        statuses={"sans_emploi": 0.65, "scolarise": 0.3, "en_emploi": 0.05},
        diplomas={"aucun": 0.45, "brevet": 0.2, "cap_bep": 0.25, "bac": 0.1},
        level=(0.3, 0.65),
        gain=0.9,
        women=0.55,
        devices={"smartphone": 0.97, "portable": 0.3, "fixe": 0.1},
        reasons={"emploi": 0.9, "aide_demarche": 0.6, "demarches_seul": 0.3},
        topics={
            "insertion_professionnelle": 0.9,
            "aide_aux_demarches_administratives": 0.6,
            "email": 0.4,
            "bureautique": 0.3,
        },
        prescribed=0.7,
        modality={"individuel": 0.7, "collectif": 0.2, "les_deux": 0.1},
    ),
)


@dataclass
class Person:
    profile: Profile
    level: float
    gain: float
    rng: random.Random
    # False while filling the before form: "now" is then the starting point.
    accompanied: bool = False
    # Answers drawn in advance from the marginals, keyed by item role (age, status, ...;
    # comfort@start, comfort@now).
    fixed: dict[str, list[str]] = field(default_factory=dict)

    def improved(self, moment: Moment) -> bool:
        return self.accompanied and moment is Moment.NOW


@dataclass(frozen=True)
class DemoReport:
    structure_slug: str
    people: int
    pre_post: int
    before_only: int
    retro: int
    paper: int = 0


def _pick(rng: random.Random, weights: Mapping[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _ladder(person: Person, item: Item, difficulty: float, moment: Moment) -> str:
    """A rung of the autonomy ladder from the person's level and the task's difficulty.

    Calibrated so beginner seniors often cannot switch a device on yet (15 % overall in the
    reference survey) and at-ease people still need help with the hardest tasks.
    """
    rng = person.rng
    # Procedures (tax, bank, health), not safety: some people have nobody to do them for.
    procedure = item.competence == "strategic" and item.coop_topic != "securite_numerique"
    if procedure and rng.random() < 0.06:
        return "9"  # does not concern me
    score = 1.2 + 4.7 * (person.level - 0.15) - 1.6 * (difficulty - 0.05) + rng.gauss(0, 0.45)
    if person.improved(moment):
        score += person.gain * rng.uniform(0.5, 1.3)
    return str(max(1, min(4, round(score))))


def _comfort(person: Person, moment: Moment) -> str:
    score = 1.5 + 4.0 * (person.level - 0.15) + person.rng.gauss(0, 0.4)
    if person.improved(moment):
        score += 0.8 * person.gain
    return str(max(1, min(4, round(score))))


def _some(rng: random.Random, weights: Mapping[str, float], allowed: tuple[str, ...]) -> list[str]:
    chosen = [code for code, p in weights.items() if code in allowed and rng.random() < p]
    return chosen or [rng.choice([c for c in weights if c in allowed] or list(allowed))]


Chooser = Callable[[Person, Variable, journey.Answers], list[str]]


def _choosers(definition: Definition) -> dict[str, Chooser]:
    tasks = definition.task_items()
    difficulty = {
        item.code: 0.05 + 0.75 * i / max(1, len(tasks) - 1) for i, item in enumerate(tasks)
    }

    def task(person: Person, variable: Variable, _answers: journey.Answers) -> list[str]:
        return [_ladder(person, variable.item, difficulty[variable.item.code], variable.moment)]

    def woman(person: Person, _v: Variable, _a: journey.Answers) -> list[str]:
        roll = person.rng.random()
        return [
            "feminin" if roll < person.profile.women else "masculin" if roll < 0.99 else "autre"
        ]

    def progress(person: Person, _v: Variable, _a: journey.Answers) -> list[str]:
        return [_pick(person.rng, {"4": 0.62, "3": 0.35, "2": 0.02, "1": 0.01})]

    def new_things(person: Person, _v: Variable, _a: journey.Answers) -> list[str]:
        return ["oui" if person.rng.random() < 0.93 else "non"]

    def from_profile(attribute: str) -> Chooser:
        def choose(person: Person, variable: Variable, _a: journey.Answers) -> list[str]:
            weights: Mapping[str, float] = getattr(person.profile, attribute)
            if variable.item.type.several:
                return _some(person.rng, weights, variable.item.option_codes)
            return [_pick(person.rng, weights)]

        return choose

    by_role: dict[ItemRole, Chooser] = {
        ItemRole.ASSISTANCE: lambda p, v, a: [
            _pick(p.rng, {"seul": 0.4, "mediateur": 0.45, "proche": 0.15})
        ],
        ItemRole.AGE: from_profile("ages"),
        ItemRole.GENDER: woman,
        ItemRole.STATUS: from_profile("statuses"),
        ItemRole.DIPLOMA: from_profile("diplomas"),
        ItemRole.AREA: lambda p, v, a: [
            _pick(p.rng, {"urbain": 0.43, "periurbain": 0.3, "rural": 0.27})
        ],
        ItemRole.INTERNET_HOME: lambda p, v, a: ["oui" if p.rng.random() < 0.87 else "non"],
        ItemRole.DEVICES: from_profile("devices"),
        ItemRole.REASONS: from_profile("reasons"),
        ItemRole.PRESCRIBER: lambda p, v, a: [
            "service"
            if p.rng.random() < p.profile.prescribed
            else _pick(p.rng, {"personne": 0.6, "proche": 0.35, "autre": 0.05})
        ],
        ItemRole.MODALITY: from_profile("modality"),
        ItemRole.SESSIONS: lambda p, v, a: [
            str(max(1, round(p.rng.gauss(6 * (1.2 - p.level), 2))))
        ],
        ItemRole.TOPICS: from_profile("topics"),
        ItemRole.COMFORT: lambda p, v, a: [_comfort(p, v.moment)],
        ItemRole.NEW_THINGS: new_things,
        ItemRole.PROGRESS: progress,
        ItemRole.COMMENT: lambda p, v, a: [],
    }
    chooser: dict[str, Chooser] = {item.code: task for item in tasks}
    for role, choose in by_role.items():
        chooser.update((item.code, choose) for item in definition.items_with_role(role))
    return chooser


_CHOOSERS: dict[int, tuple[Definition, dict[str, Chooser]]] = {}


def _cached_choosers(definition: Definition) -> dict[str, Chooser]:
    found = _CHOOSERS.get(id(definition))
    if found is None or found[0] is not definition:
        found = (definition, _choosers(definition))
        _CHOOSERS[id(definition)] = found
    return found[1]


def _random_answer(person: Person, variable: Variable) -> list[str]:
    return variable.item.type.demo_value(variable.item, person.rng)


def _answer(
    choosers: Mapping[str, Chooser], person: Person, variable: Variable, answers: journey.Answers
) -> list[str]:
    """A drawn-in-advance answer (marginals) if there is one, else the profile's chooser."""
    moment = "now" if person.improved(variable.moment) else "start"
    role = variable.item.role
    for key in (f"{role.value}@{moment}", role.value) if role is not None else ():
        if key in person.fixed:
            return list(person.fixed[key])
    choose = choosers.get(variable.item.code)
    return choose(person, variable, answers) if choose else _random_answer(person, variable)


def fill_response(
    session: Session, definition: Definition, response: Response, person: Person
) -> None:
    """Answer every visible page in order, then submit, as a person would."""
    choosers = _cached_choosers(definition)
    form = FormKind(response.form)
    person.accompanied = form is not FormKind.BEFORE
    page: Page | None = journey.visible_pages(definition, form, journey.answers_of(response))[0]
    while page is not None:
        answers = journey.answers_of(response)
        values = {}
        for variable in journey.page_variables(page, form, answers):
            values[variable.code] = tuple(_answer(choosers, person, variable, answers))
        journey.save_page(session, definition, response, page, values)
        page = journey.neighbour_page(definition, form, page.code, journey.answers_of(response), 1)
    journey.submit(session, definition, response)


def fill_in_batches(
    session: Session, definition: Definition, response: Response, person: Person
) -> None:
    """The same answers as `fill_response`, saved by `journey.save_page` in a few batches.

    One save of every question the form shows at first, then one per level of follow-up
    questions (USE_* after DEVICES, "which ones?" after a yes), then `journey.submit`: the
    same validation and storage as the web journey, with 3 saves a form instead of ~20
    (the demo of 1,000 people is then several times faster).
    """
    choosers = _cached_choosers(definition)
    form = FormKind(response.form)
    person.accompanied = form is not FormKind.BEFORE
    pages = definition.pages(form)
    saved: set[str] = set()
    for _level in range(4):
        answers = journey.answers_of(response)
        values: dict[str, tuple[str, ...]] = {}
        items = []
        for page in pages:
            for variable in journey.page_variables(page, form, answers):
                if variable.code not in saved:
                    values[variable.code] = tuple(_answer(choosers, person, variable, answers))
                    if variable.item not in items:
                        items.append(variable.item)
        if not values:
            break
        batch = Page(code=pages[-1].code, title="", section="", items=tuple(items))
        journey.save_page(session, definition, response, batch, values)
        saved |= set(values)
    journey.submit(session, definition, response)


def _backdate(response: Response, days_ago: float) -> None:
    moment = utcnow() - timedelta(days=days_ago)
    response.created_at = moment
    response.submitted_at = moment + timedelta(minutes=6)


def demo_structure(session: Session) -> Structure:
    found = journey.find_structure(session, DEMO_SLUG)
    if found is not None:
        return found
    return create_structure(session, "Médiathèque de démonstration", "periurbain", "44", DEMO_SLUG)


# --- chosen marginals ---------------------------------------------------------------------------

BELOW_BACCALAUREATE = ("aucun", "brevet", "cap_bep")
ABOVE = ("bac", "superieur")
# How much more (or less) often than average each profile is below the baccalauréat.
BELOW_BAC_FACTOR = {
    "beginner_seniors": 1.35,
    "initiated_seniors": 0.95,
    "improvement_path": 0.55,
    "integration_path": 1.4,
}


class MarginalsError(ValueError):
    """A marginals file that cannot be used (unknown key, share outside 0-1, sum not 1)."""


@dataclass(frozen=True)
class Marginals:
    """Shares the generated population follows; defaults: the reference survey (ANCT 2023).

    Shares of people (0 to 1) among those who answered the question. `typology` and `paths`
    must add up to 1. The typology is the dashboard's written rule
    (services/evaluation/typology.py): each person is drawn in a profile, then given answers
    that the rule classifies in that profile, with age, status and diploma drawn so that the
    population's shares match the targets below. `aged_60_plus` can only be met between the
    share of the two senior profiles and that share plus the improvement path's (60+ people
    of the improvement path work, were at ease or came for a one-off help); outside, the
    nearest is used.
    """

    typology: Mapping[str, float] = field(
        default_factory=lambda: {
            "beginner_seniors": 0.26,
            "initiated_seniors": 0.35,
            "improvement_path": 0.26,
            "integration_path": 0.13,
        }
    )
    aged_60_plus: float = 0.75
    retired: float = 0.70
    women: float = 0.72
    below_baccalaureate: float = 0.59
    urban: float = 0.43
    internet_home: float = 0.87
    new_things: float = 0.93  # manage tasks they could not do before
    feel_progress: float = 0.97  # "yes, completely" or "yes, somewhat"
    administrative_topic: float = 0.54  # procedures among the topics worked on
    paper: float = 0.21  # share of people answering on paper (typed in by a mediator)
    phone: float = 0.0
    alone: float = 0.4  # filled in alone (ASSIST), else helped
    paths: Mapping[str, float] = field(
        default_factory=lambda: {"pre_post": 0.55, "before_only": 0.15, "retro": 0.30}
    )

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            shares = value.values() if isinstance(value, Mapping) else [value]
            if any(not 0 <= float(share) <= 1 for share in shares):
                raise MarginalsError(f"{name}: every share must be between 0 and 1")
        for name, keys in (("typology", PROFILE_NAMES), ("paths", PATHS)):
            given = getattr(self, name)
            if set(given) != set(keys):
                raise MarginalsError(f"{name}: give exactly {', '.join(keys)}")
            if abs(sum(given.values()) - 1) > 0.001:
                raise MarginalsError(f"{name}: the shares must add up to 1")
        if self.paper + self.phone > 1:
            raise MarginalsError("paper + phone must not exceed 1")


PROFILE_NAMES = tuple(profile.name for profile in PROFILES)
PATHS = ("pre_post", "before_only", "retro")


def load_marginals(path: Path) -> Marginals:
    """Marginals from a JSON file: an object giving any of Marginals' fields (others default)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MarginalsError(f"cannot read {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise MarginalsError("the marginals file must hold a JSON object")
    known = {f.name for f in fields(Marginals)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise MarginalsError(
            f"unknown keys: {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    try:
        return Marginals(**raw)
    except (TypeError, AttributeError) as exc:
        raise MarginalsError(str(exc)) from exc


@dataclass(frozen=True)
class Plan:
    """Conditional probabilities solved once from the marginals."""

    improvement_60_plus: float
    retired_60_plus: float
    below_bac: Mapping[str, float]


def plan(marginals: Marginals) -> Plan:
    shares = marginals.typology
    seniors = shares["beginner_seniors"] + shares["initiated_seniors"]
    improvement = shares["improvement_path"]
    old_improvers = (
        min(1.0, max(0.0, (marginals.aged_60_plus - seniors) / improvement)) if improvement else 0.0
    )
    sixty_plus = seniors + improvement * old_improvers
    young_retired = 0.05 * improvement * (1 - old_improvers)
    retired = (
        min(1.0, max(0.0, (marginals.retired - young_retired) / sixty_plus)) if sixty_plus else 0.0
    )
    average = sum(shares[name] * BELOW_BAC_FACTOR[name] for name in PROFILE_NAMES)
    below = {
        name: min(1.0, BELOW_BAC_FACTOR[name] * marginals.below_baccalaureate / average)
        for name in PROFILE_NAMES
    }
    return Plan(old_improvers, retired, below)


def draw_facts(
    rng: random.Random, profile: Profile, marginals: Marginals, p: Plan
) -> dict[str, list[str]]:
    """Profile facts and outcomes of one person, consistent with the typology rule."""
    name = profile.name
    facts: dict[str, list[str]] = {}
    if name in ("beginner_seniors", "initiated_seniors"):
        old = True
    elif name == "improvement_path":
        old = rng.random() < p.improvement_60_plus
    else:
        old = False
    if old:
        older = 0.6 if name == "beginner_seniors" else 0.45
        age = "soixante_dix_plus" if rng.random() < older else "soixante_soixante_neuf"
    elif name == "integration_path":
        age = _pick(
            rng,
            {
                "dix_huit_vingt_quatre": 0.45,
                "vingt_cinq_trente_neuf": 0.4,
                "quarante_cinquante_neuf": 0.15,
            },
        )
    else:
        age = _pick(rng, {"vingt_cinq_trente_neuf": 0.35, "quarante_cinquante_neuf": 0.65})
    retired = rng.random() < p.retired_60_plus if old else False
    if name == "integration_path":
        status = "sans_emploi" if rng.random() < 0.65 else "scolarise"
        comfort = rng.choice(["2", "3"])
        prescribed = (
            "service" if rng.random() < 0.7 else _pick(rng, {"personne": 0.6, "proche": 0.4})
        )
    elif name == "improvement_path":
        if old:
            status = "retraite" if retired else "en_emploi"
            comfort = "4" if retired or rng.random() < 0.6 else "3"
        else:
            status = _pick(rng, {"en_emploi": 0.85, "autre": 0.1, "retraite": 0.05})
            comfort = rng.choice(["3", "4"])
        prescribed = _pick(rng, {"personne": 0.7, "proche": 0.25, "autre": 0.05})
    else:
        status = "retraite" if retired else "autre"
        # Both not at ease before; the beginners needed help with the very basics.
        if name == "beginner_seniors":
            comfort = rng.choice(["1", "2"])
            facts[f"{ItemRole.BASIC_TASK.value}@start"] = [rng.choice(["1", "2"])]
        else:
            comfort = rng.choice(["1", "2", "2"])
            facts[f"{ItemRole.BASIC_TASK.value}@start"] = [rng.choice(["3", "4"])]
        prescribed = (
            "service"
            if rng.random() < 0.15
            else _pick(rng, {"personne": 0.6, "proche": 0.35, "autre": 0.05})
        )
    below = rng.random() < p.below_bac[name]
    weights = {
        code: w
        for code, w in profile.diplomas.items()
        if code in (BELOW_BACCALAUREATE if below else ABOVE)
    }
    diploma = _pick(rng, weights or dict.fromkeys(BELOW_BACCALAUREATE if below else ABOVE, 1.0))
    roll = rng.random()
    gender = "feminin" if roll < marginals.women else "masculin" if roll < 0.995 else "autre"
    area = "urbain" if rng.random() < marginals.urban else rng.choice(["periurbain", "rural"])
    internet = (
        "oui"
        if rng.random() < marginals.internet_home
        else rng.choice(["non", "non", "ne_sait_pas"])
    )
    gain = (
        1
        if comfort == "4"
        else rng.choice([0, 1, 1, 2])
        if comfort != "1"
        else rng.choice([1, 1, 2])
    )
    now = str(min(4, int(comfort) + gain))
    new_things = "oui" if rng.random() < marginals.new_things else "non"
    felt = rng.random() < marginals.feel_progress
    progress = rng.choice(["4", "4", "3"]) if felt else rng.choice(["2", "1"])
    topics = _some(
        rng,
        {k: v for k, v in profile.topics.items() if k != "aide_aux_demarches_administratives"},
        tuple(profile.topics),
    )
    if rng.random() < marginals.administrative_topic:
        topics = [*topics, "aide_aux_demarches_administratives"]
    elif not topics:
        topics = ["navigation_sur_internet"]
    facts.update(
        {
            ItemRole.AGE.value: [age],
            ItemRole.STATUS.value: [status],
            ItemRole.DIPLOMA.value: [diploma],
            ItemRole.GENDER.value: [gender],
            ItemRole.AREA.value: [area],
            ItemRole.INTERNET_HOME.value: [internet],
            ItemRole.PRESCRIBER.value: [prescribed],
            f"{ItemRole.COMFORT.value}@start": [comfort],
            f"{ItemRole.COMFORT.value}@now": [now],
            ItemRole.NEW_THINGS.value: [new_things],
            ItemRole.PROGRESS.value: [progress],
            ItemRole.TOPICS.value: topics,
            ItemRole.ASSISTANCE.value: [
                "seul"
                if rng.random() < marginals.alone
                else rng.choice(["mediateur", "mediateur", "proche"])
            ],
        }
    )
    return facts


LEVELS = {"1": (0.0, 0.2), "2": (0.2, 0.4), "3": (0.4, 0.65), "4": (0.65, 0.9)}


def _profile(name: str) -> Profile:
    return next(profile for profile in PROFILES if profile.name == name)


def _paper_values(
    definition: Definition, form: FormKind, person: Person
) -> dict[str, tuple[str, ...]]:
    """Every variable of the form as a mediator types it from paper (blank: "no answer")."""
    choosers = _cached_choosers(definition)
    person.accompanied = form is not FormKind.BEFORE
    values: dict[str, tuple[str, ...]] = {}
    for variable in definition.variables(form):
        if not journey.is_visible(variable.item, values):
            continue
        given = _answer(choosers, person, variable, values)
        values[variable.code] = tuple(given) if given else (NO_ANSWER,)
    return values


def _demo_typist(session: Session, structure: Structure) -> StaffUser:
    """The (password-less in practice) mediator account that types the demo's paper forms."""
    found = session.scalar(select(StaffUser).where(StaffUser.email == DEMO_TYPIST))
    if found is not None:
        return found
    return auth.create_user(
        session,
        auth.NewUser(DEMO_TYPIST, Role.MEDIATOR, structure.id),
        secrets.token_urlsafe(24),
    )


def _enter_on_paper(
    session: Session,
    definition: Definition,
    typist: StaffUser,
    structure: Structure,
    form: FormKind,
    person: Person,
    code: str | None,
) -> Response:
    if code is None:
        response = open_uncoded(
            session, definition, typist, structure, form, "fr", secrets.token_urlsafe(16)
        )
    else:
        response = open_entry(session, definition, typist, code, form, "fr")
    save_entry(
        session, definition, typist, response, _paper_values(definition, form, person), finish=True
    )
    return response


def generate_demo(
    session: Session,
    definition: Definition,
    respondents: int = 300,
    seed: int = 2023,
    marginals: Marginals | None = None,
) -> DemoReport:
    """N people following `marginals` (the reference survey by default), typed in or answered
    online through the same services as real answers; dates spread over the last 6 months."""
    marginals = marginals or Marginals()
    solved = plan(marginals)
    rng = random.Random(seed)
    structure = demo_structure(session)
    typist = _demo_typist(session, structure) if marginals.paper > 0 else None
    structure_id, typist_id = structure.id, typist.id if typist is not None else None
    counts = {"pre_post": 0, "before_only": 0, "retro": 0, "paper": 0}
    for _ in range(respondents):
        profile = _profile(_pick(rng, marginals.typology))
        facts = draw_facts(rng, profile, marginals, solved)
        person = Person(
            profile,
            rng.uniform(*LEVELS[facts[f"{ItemRole.COMFORT.value}@start"][0]]),
            rng.gauss(profile.gain, 0.3),
            random.Random(rng.random()),
            fixed=facts,
        )
        path = _pick(rng, marginals.paths)
        counts[path] += 1
        roll = rng.random()
        channel = (
            Channel.PAPER
            if roll < marginals.paper
            else Channel.PHONE
            if roll < marginals.paper + marginals.phone
            else Channel.ONLINE
        )
        first_form = FormKind.RETRO if path == "retro" else FormKind.BEFORE
        started = rng.uniform(20, 180)
        if channel is Channel.PAPER and typist is not None:
            counts["paper"] += 1
            first = _enter_on_paper(
                session, definition, typist, structure, first_form, person, None
            )
        else:
            first = journey.start_response(
                session, definition, structure, first_form, "fr", secrets.token_urlsafe(16), channel
            )
            fill_in_batches(session, definition, first, person)
        _backdate(first, started)
        if path == "pre_post":
            if channel is Channel.PAPER and typist is not None:
                after = _enter_on_paper(
                    session,
                    definition,
                    typist,
                    structure,
                    FormKind.AFTER,
                    person,
                    first.beneficiary.code,
                )
            else:
                after = journey.open_form(
                    session, definition, first.beneficiary, FormKind.AFTER, "fr", channel
                )
                fill_in_batches(session, definition, after, person)
            _backdate(after, started - rng.uniform(14, min(90, started - 1)))
        # A session keeps every object it loaded: flushes would slow down as N grows. The
        # rows stay in the caller's transaction (the `demo` command commits once).
        session.flush()
        session.expunge_all()
        structure = session.get_one(Structure, structure_id)
        typist = session.get(StaffUser, typist_id) if typist_id is not None else None
    return DemoReport(
        structure.slug,
        respondents,
        counts["pre_post"],
        counts["before_only"],
        counts["retro"],
        counts["paper"],
    )


DEMO_TYPIST = "saisie-papier@demo.invalid"
DEMO_STAFF = (
    ("mediatrice@demo.invalid", Role.MEDIATOR),
    ("responsable@demo.invalid", Role.STRUCTURE_ADMIN),
    ("evaluateur@demo.invalid", Role.EVALUATOR),
)


def create_demo_staff(session: Session, structure: Structure) -> dict[str, str]:
    """Demo accounts with random passwords (returned once, to be printed); skips existing ones."""
    created = {}
    for email, role in DEMO_STAFF:
        if session.scalar(select(StaffUser).where(StaffUser.email == email)) is not None:
            continue
        password = secrets.token_urlsafe(12)
        structure_id = None if role is Role.EVALUATOR else structure.id
        user = auth.create_user(session, auth.NewUser(email, role, structure_id), password)
        if role is Role.EVALUATOR:
            auth.grant(session, user, department=structure.department)
        created[email] = password
    return created
