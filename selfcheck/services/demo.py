"""Realistic sample data, entered through the same services as real answers.

People are drawn from the four profiles of the reference survey (Asdo/ANCT 2023): beginner
seniors 26 %, initiated seniors 35 %, improvement path 26 %, integration path 13 %. Each
profile sets age, status, diploma, equipment, a starting level and a typical gain; task
answers follow from the level and each task's difficulty (its place in the definition).
Items the generator does not know get a random valid answer, so a new item never breaks it.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from selfcheck.models import Response, Structure, utcnow
from selfcheck.questionnaire.model import Definition, FormKind, Item, Moment, Page, Variable
from selfcheck.services import journey
from selfcheck.services.structures import create_structure

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

    def improved(self, moment: Moment) -> bool:
        return self.accompanied and moment is Moment.NOW


@dataclass(frozen=True)
class DemoReport:
    structure_slug: str
    people: int
    pre_post: int
    before_only: int
    retro: int


def _pick(rng: random.Random, weights: Mapping[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _ladder(person: Person, item: Item, difficulty: float, moment: Moment) -> str:
    """A rung of the autonomy ladder from the person's level and the task's difficulty.

    Calibrated so beginner seniors often cannot switch a device on yet (15 % overall in the
    reference survey) and at-ease people still need help with the hardest tasks.
    """
    rng = person.rng
    if item.code in {"T11", "T12", "T13"} and rng.random() < 0.06:
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
            if variable.item.type == "multiple":
                return _some(person.rng, weights, variable.item.option_codes)
            return [_pick(person.rng, weights)]

        return choose

    chooser: dict[str, Chooser] = {item.code: task for item in tasks}
    chooser.update(
        {
            "ASSIST": lambda p, v, a: [
                _pick(p.rng, {"seul": 0.4, "mediateur": 0.45, "proche": 0.15})
            ],
            "AGE": from_profile("ages"),
            "GENDER": woman,
            "STATUS": from_profile("statuses"),
            "DIPLOMA": from_profile("diplomas"),
            "AREA": lambda p, v, a: [
                _pick(p.rng, {"urbain": 0.43, "periurbain": 0.3, "rural": 0.27})
            ],
            "INTERNET_HOME": lambda p, v, a: ["oui" if p.rng.random() < 0.87 else "non"],
            "DEVICES": from_profile("devices"),
            "REASONS": from_profile("reasons"),
            "PRESCRIBED": lambda p, v, a: [
                "service"
                if p.rng.random() < p.profile.prescribed
                else _pick(p.rng, {"personne": 0.6, "proche": 0.35, "autre": 0.05})
            ],
            "MODALITY": from_profile("modality"),
            "SESSIONS": lambda p, v, a: [str(max(1, round(p.rng.gauss(6 * (1.2 - p.level), 2))))],
            "TOPICS": from_profile("topics"),
            "COMFORT": lambda p, v, a: [_comfort(p, v.moment)],
            "NEW_THINGS": new_things,
            "PROGRESS": progress,
            "COMMENT": lambda p, v, a: [],
        }
    )
    return chooser


def _random_answer(person: Person, variable: Variable) -> list[str]:
    item, rng = variable.item, person.rng
    if item.type == "multiple":
        plain = [o.code for o in item.options if not o.exclusive]
        return rng.sample(plain, k=rng.randint(1, min(3, len(plain))))
    if item.options:
        return [rng.choice(item.option_codes)]
    if item.type == "number":
        return [str(rng.randint(item.minimum or 0, min(item.maximum or 10, 12)))]
    return []


def fill_response(
    session: Session, definition: Definition, response: Response, person: Person
) -> None:
    """Answer every visible page in order, then submit, as a person would."""
    choosers = _choosers(definition)
    form = FormKind(response.form)
    person.accompanied = form is not FormKind.BEFORE
    page: Page | None = journey.visible_pages(definition, form, journey.answers_of(response))[0]
    while page is not None:
        answers = journey.answers_of(response)
        values = {}
        for variable in journey.page_variables(page, form, answers):
            choose = choosers.get(variable.item.code)
            values[variable.code] = tuple(
                choose(person, variable, answers) if choose else _random_answer(person, variable)
            )
        journey.save_page(session, definition, response, page, values)
        page = journey.neighbour_page(definition, form, page.code, journey.answers_of(response), 1)
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


def generate_demo(
    session: Session, definition: Definition, respondents: int = 300, seed: int = 2023
) -> DemoReport:
    rng = random.Random(seed)
    structure = demo_structure(session)
    counts = {"pre_post": 0, "before_only": 0, "retro": 0}
    for _ in range(respondents):
        profile = rng.choices(PROFILES, weights=[p.share for p in PROFILES])[0]
        person = Person(
            profile,
            rng.uniform(*profile.level),
            rng.gauss(profile.gain, 0.3),
            random.Random(rng.random()),
        )
        path = _pick(rng, {"pre_post": 0.55, "before_only": 0.15, "retro": 0.30})
        counts[path] += 1
        first_form = FormKind.RETRO if path == "retro" else FormKind.BEFORE
        first = journey.start_response(
            session, definition, structure, first_form, "fr", secrets.token_urlsafe(16)
        )
        fill_response(session, definition, first, person)
        started = rng.uniform(20, 180)
        _backdate(first, started)
        if path == "pre_post":
            after = journey.start_after(session, definition, first.beneficiary, "fr")
            fill_response(session, definition, after, person)
            _backdate(after, started - rng.uniform(14, min(90, started - 1)))
        session.commit()
    return DemoReport(
        structure.slug, respondents, counts["pre_post"], counts["before_only"], counts["retro"]
    )


DEMO_STAFF = (
    ("mediatrice@demo.invalid", "mediator"),
    ("responsable@demo.invalid", "structure_admin"),
    ("evaluateur@demo.invalid", "evaluator"),
)


def create_demo_staff(session: Session, structure: Structure) -> dict[str, str]:
    """Demo accounts with random passwords (returned once, to be printed); skips existing ones."""
    from sqlalchemy import select

    from selfcheck.models import Role, StaffUser
    from selfcheck.services import auth

    created = {}
    for email, role in DEMO_STAFF:
        if session.scalar(select(StaffUser).where(StaffUser.email == email)) is not None:
            continue
        password = secrets.token_urlsafe(12)
        structure_id = None if role == "evaluator" else structure.id
        user = auth.create_user(session, auth.NewUser(email, Role(role), structure_id), password)
        if role == "evaluator":
            auth.grant(session, user, department=structure.department)
        created[email] = password
    return created
