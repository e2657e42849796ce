"""The real questionnaire definition: it loads, and it says what the domain brief asks."""

from __future__ import annotations

from collections import Counter

import pytest

from selfcheck.questionnaire import Definition, FormKind, Moment, load_definition
from selfcheck.questionnaire.loader import DEFAULT_DEFINITION
from selfcheck.questionnaire.model import PRE_SUFFIX, Role, Wording
from selfcheck.questionnaire.stats import form_stats

COMPETENCES = {"operational", "informational", "communication", "creative", "strategic"}


def codes(definition: Definition, form: FormKind) -> list[str]:
    return [item.code for item in definition.items(form)]


def test_the_shipped_definition_loads_and_names_its_source() -> None:
    definition = load_definition()
    assert definition.id == "selfcheck-core"
    assert definition.version.count(".") == 2
    assert definition.language == "fr"
    assert definition.source == str(DEFAULT_DEFINITION)
    assert set(definition.titles) == set(FormKind)


def test_item_counts_per_form(definition: Definition) -> None:
    # A change detector: adding or removing an item must be a conscious decision (and a
    # version bump), so update these numbers together with definition.yaml.
    assert len(codes(definition, FormKind.BEFORE)) == 30
    assert len(codes(definition, FormKind.AFTER)) == 27
    assert len(codes(definition, FormKind.RETRO)) == 24
    assert len(definition.pages(FormKind.BEFORE)) == 14
    assert len(definition.pages(FormKind.AFTER)) == 16
    assert len(definition.pages(FormKind.RETRO)) == 13  # on paper: before and today together
    assert len(definition.screens(FormKind.RETRO)) == 14  # on the web: retro_layout


def test_retro_form_asks_only_what_before_and_after_ask(definition: Definition) -> None:
    retro = set(codes(definition, FormKind.RETRO))
    assert retro <= set(codes(definition, FormKind.BEFORE)) | set(codes(definition, FormKind.AFTER))
    # The same codes as before and after for what both compare: comfort and every task.
    compared = set(codes(definition, FormKind.BEFORE)) & set(codes(definition, FormKind.AFTER))
    assert {item.code for item in definition.task_items()} <= compared <= retro


def test_the_retrospective_form_is_light(definition: Definition) -> None:
    """Issue 12: at most 14 pages and 6 minutes typical time, as `questionnaire stats` says;
    the items it keeps are the ones whose `forms:` list `retro` in definition.yaml."""
    stats = form_stats(definition, FormKind.RETRO)
    assert stats.pages == len(definition.screens(FormKind.RETRO)) <= 14
    assert stats.seconds_typical <= 6 * 60
    assert stats.minutes <= 6
    kept = set(codes(definition, FormKind.RETRO))
    assert {"ASSIST", "AGE", "GENDER", "COMFORT", "PROGRESS"} <= kept
    # Back within the budget: the two typology facts a retrospective person lacked.
    assert {"PRESCRIBED", "MODALITY"} <= kept


def test_the_retrospective_screens_ask_before_then_today(definition: Definition) -> None:
    """Issue 12: "before" for all the tasks of a domain on one screen, then "today" for the
    same tasks on the next, every retro answer asked exactly once, in the web's order."""
    screens = definition.screens(FormKind.RETRO)
    asked = [v.code for screen in screens for v in screen.variables_for(FormKind.RETRO)]
    assert sorted(asked) == sorted(v.code for v in definition.variables(FormKind.RETRO))
    tasks = {item.code for item in definition.task_items()}
    by_moment = [screen for screen in screens if screen.moment is not None]
    assert {item.code for s in by_moment for item in s.items_for(FormKind.RETRO)} >= tasks
    for before, today in zip(by_moment[::2], by_moment[1::2], strict=True):
        assert before.moment is Moment.PRE and today.moment is Moment.NOW
        assert screens.index(today) == screens.index(before) + 1
        assert [v.item for v in before.variables_for(FormKind.RETRO)] == [
            v.item for v in today.variables_for(FormKind.RETRO)
        ]
        assert all(today.shows_earlier(item, FormKind.RETRO) for item in today.items)
        assert not any(before.shows_earlier(item, FormKind.RETRO) for item in before.items)
        assert before.moment_title and today.moment_title and before.intro and today.intro
    # Each competence's tasks on one pair of screens.
    for competence in {item.competence for item in definition.task_items()}:
        holding = {s.code for s in by_moment for i in s.items if i.competence == competence}
        assert len(holding) == 2, competence
    # The other forms are shown page by page.
    assert definition.screens(FormKind.BEFORE) == definition.pages(FormKind.BEFORE)


def test_profile_questions_are_not_asked_again_in_the_after_form(definition: Definition) -> None:
    after = set(codes(definition, FormKind.AFTER))
    assert not after & {"AGE", "GENDER", "STATUS", "DIPLOMA", "AREA", "DEVICES", "REASONS"}
    assert {"MODALITY", "SESSIONS", "TOPICS", "PROGRESS", "NEW_THINGS"} <= after
    assert not {"MODALITY", "PROGRESS", "NEW_THINGS"} & set(codes(definition, FormKind.BEFORE))


def test_fifteen_task_items_cover_the_five_competence_types(definition: Definition) -> None:
    tasks = definition.task_items()
    assert [task.code for task in tasks] == [f"T{n:02d}" for n in range(1, 16)]
    assert {task.competence for task in tasks} == COMPETENCES
    assert set(definition.competences) == COMPETENCES
    per_type = Counter(task.competence for task in tasks)
    assert all(per_type[c] >= 2 for c in COMPETENCES), per_type
    for task in tasks:
        assert task.type.name == "scale" and task.scale == "autonomy"
        assert task.forms == frozenset(FormKind)
        assert task.ask_before_in_retro
        assert task.coop_topic in definition.coop_topics


def test_t01_is_switching_the_device_on_and_off(definition: Definition) -> None:
    t01 = definition.item("T01")
    assert "allumer" in t01.label.lower() and "éteindre" in t01.label.lower()
    assert t01.competence == "operational"


def test_a_task_is_about_online_administrative_procedures(definition: Definition) -> None:
    topics = {task.coop_topic: task for task in definition.task_items()}
    task = topics["aide_aux_demarches_administratives"]
    assert task.competence == "strategic"
    assert "FranceConnect" in task.label


def test_autonomy_ladder_has_four_ranked_rungs_and_an_unranked_not_concerned(
    definition: Definition,
) -> None:
    ladder = definition.scales["autonomy"].options
    assert [o.rank for o in ladder] == [1, 2, 3, 4, None]
    assert ladder[-1].code == "9"
    assert "pas concerné" in ladder[-1].label


@pytest.mark.parametrize("scale", ["comfort", "progress", "frequency"])
def test_attitude_scales_have_four_points_and_no_middle(definition: Definition, scale: str) -> None:
    options = definition.scales[scale].options
    assert [o.rank for o in options] == [1, 2, 3, 4]


def test_coop_topics_are_the_coop_api_values(definition: Definition) -> None:
    assert len(definition.coop_topics) == 18
    assert {
        "diagnostic_numerique",
        "prendre_en_main_du_materiel",
        "aide_aux_demarches_administratives",
        "intelligence_artificielle",
    } <= set(definition.coop_topics)
    topics = definition.item("TOPICS")
    assert topics.option_codes == tuple(definition.coop_topics)


def test_required_items(definition: Definition) -> None:
    required = {item.code for item in definition.items() if item.required}
    assert required == {"ASSIST", "COMFORT", "PROGRESS", "STILL_USE"}


def test_conditions_point_to_earlier_pages(definition: Definition) -> None:
    conditional = {item.code: item.show_if for item in definition.items() if item.show_if}
    assert set(conditional) == {
        "USE_SMARTPHONE",
        "USE_TABLET",
        "USE_LAPTOP",
        "USE_DESKTOP",
        "NEW_THINGS_WHICH",
        "PROGRESS_DOMAINS",
    }
    assert conditional["NEW_THINGS_WHICH"].accepted() == ("oui",)
    assert conditional["PROGRESS_DOMAINS"].accepted() == ("3", "4")
    for form in (FormKind.BEFORE, FormKind.AFTER):
        order = [page.code for page in definition.pages(form)]
        asked = set(codes(definition, form))
        for code, condition in conditional.items():
            if code not in asked:
                continue
            assert order.index(definition.item(condition.item).page) < order.index(
                definition.item(code).page
            )


def test_retro_variables_pair_before_and_today(definition: Definition) -> None:
    variables = {v.code: v for v in definition.variables(FormKind.RETRO)}
    assert len(variables) == 24 + 16  # the light retro form: comfort and 15 tasks paired
    assert variables["T01_PRE"].moment is Moment.PRE
    assert variables["T01"].moment is Moment.NOW
    assert variables["COMFORT_PRE"].item.code == "COMFORT"
    assert not any(code.endswith(PRE_SUFFIX) for code in codes(definition, FormKind.RETRO))
    before = [v.code for v in definition.variables(FormKind.BEFORE)]
    assert not any(code.endswith(PRE_SUFFIX) for code in before)


def test_every_label_is_short_enough_for_paper(definition: Definition) -> None:
    for item in definition.items():
        assert len(item.label) <= 120, item.code
        for option in item.options:
            assert len(option.label) <= 90, (item.code, option.code)


def test_exclusive_options_are_none_of_these(definition: Definition) -> None:
    exclusive = {
        (item.code, option.code)
        for item in definition.items()
        for option in item.options
        if option.exclusive
    }
    assert exclusive == {("DEVICES", "aucun"), ("CHANGES", "rien"), ("LOST", "rien")}


# --- the follow-up, months later (issue 15) ------------------------------------------------


def test_the_followup_asks_comfort_and_every_task_of_the_end_form(definition: Definition) -> None:
    followup = set(definition.items(FormKind.FOLLOWUP))
    after = set(definition.items(FormKind.AFTER))
    comfort = definition.item_with_role(Role.COMFORT)
    assert comfort is not None and comfort in followup
    tasks = set(definition.task_items())
    assert len(tasks) == 15
    assert tasks <= followup and tasks <= after  # the same codes: change is comparable
    # Its own items are declared by their meaning.
    own = followup - after
    assert {item.role for item in own} == {Role.STILL_USE, Role.HELP_AGAIN, Role.LOST}
    # Every follow-up item is stored "now" (no before/today pair).
    assert all(v.moment is Moment.NOW for v in definition.variables(FormKind.FOLLOWUP))


def test_the_second_followup_asks_the_same_items(definition: Definition) -> None:
    assert definition.variables(FormKind.FOLLOWUP_LATE) == definition.variables(FormKind.FOLLOWUP)
    assert definition.titles[FormKind.FOLLOWUP] and definition.titles[FormKind.FOLLOWUP_LATE]


def test_the_followup_takes_at_most_four_minutes(definition: Definition) -> None:
    for form in (FormKind.FOLLOWUP, FormKind.FOLLOWUP_LATE):
        assert form_stats(definition, form).seconds_typical <= 4 * 60


def test_the_followup_has_an_easy_wording(definition: Definition) -> None:
    easy = definition.in_wording(Wording.EASY)
    for item in definition.items(FormKind.FOLLOWUP):
        assert item.label and easy.item(item.code).label
    followup_places = [t for t in definition.texts if "later" in t.where or "followup" in t.where]
    assert followup_places and all(t.easy for t in followup_places)
