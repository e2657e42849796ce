"""What a page shows: numbered questions, inputs, values, errors, and the check page lines."""

from __future__ import annotations

from selfcheck.journey import page_cache, page_view
from selfcheck.journey.page_view import answers_by_page, build_questions, input_id
from selfcheck.questionnaire import Definition, FormKind, Moment, Page
from selfcheck.questionnaire.answer_types import ANSWER_TYPES
from tests.support import AFTER, ANSWERS, BEFORE, RETRO


def page(definition: Definition, form: FormKind, code: str) -> Page:
    found = definition.page(form, code)
    assert found is not None
    return found


def test_question_numbers_are_stable_per_form(definition: Definition) -> None:
    before = page_view.question_numbers(definition, FormKind.BEFORE)
    assert before["ASSIST"] == 1
    assert before["AGE"] == 2
    assert list(before.values()) == list(range(1, 31))
    after = page_view.question_numbers(definition, FormKind.AFTER)
    assert after["MODALITY"] == 2
    assert after["COMMENT"] == 27


def test_widgets_follow_item_types(definition: Definition) -> None:
    asked = ((FormKind.RETRO, "p_help"), (FormKind.BEFORE, "p_devices"))
    asked += ((FormKind.AFTER, "p_modality"), (FormKind.AFTER, "p_comment"))
    questions = {
        q.item.code: q
        for form, code in asked
        for q in build_questions(definition, form, page(definition, form, code), ANSWERS[form])
    }
    assert questions["ASSIST"].widget == "radios"
    assert questions["DEVICES"].widget == "checkboxes"
    assert questions["SESSIONS"].widget == "number"
    assert questions["COMMENT"].widget == "textarea"
    assert {kind.web_widget for kind in ANSWER_TYPES.values()} == {
        "radios",
        "checkboxes",
        "number",
        "textarea",
    }


def test_saved_answers_are_checked(definition: Definition) -> None:
    [devices] = build_questions(
        definition, FormKind.BEFORE, page(definition, FormKind.BEFORE, "p_devices"), BEFORE
    )
    [variable] = devices.variables
    assert [o.code for o in variable.options if o.checked] == ["smartphone", "tablette"]
    assert [o.code for o in variable.options if o.exclusive] == ["aucun"]
    assert variable.options[0].input_id == "f-DEVICES-smartphone"
    assert devices.hint_id == "hint-DEVICES"
    assert devices.describedby == "hint-DEVICES"
    assert not devices.paired


def test_posted_values_and_errors_override_saved_answers(definition: Definition) -> None:
    [question] = build_questions(
        definition,
        FormKind.BEFORE,
        page(definition, FormKind.BEFORE, "p_help"),
        {"ASSIST": ("seul",)},
        shown={"ASSIST": ["pirate"]},
        errors={"ASSIST": ["Choisissez dans la liste."]},
    )
    [variable] = question.variables
    assert not any(o.checked for o in variable.options)
    assert variable.errors == ("Choisissez dans la liste.",)
    assert question.errors == ((variable, "Choisissez dans la liste."),)
    assert question.describedby == "err-ASSIST"
    assert variable.first_input_id == "f-ASSIST-seul"


def test_retro_questions_are_paired_before_and_today(definition: Definition) -> None:
    questions = build_questions(
        definition, FormKind.RETRO, page(definition, FormKind.RETRO, "p_tasks_device"), RETRO
    )
    assert [q.item.code for q in questions] == ["T01", "T02", "T03"]
    t01 = questions[0]
    assert t01.paired
    assert [(v.code, v.moment) for v in t01.variables] == [
        ("T01_PRE", Moment.PRE),
        ("T01", Moment.NOW),
    ]
    assert [o.code for o in t01.variables[0].options if o.checked] == ["2"]
    assert [o.code for o in t01.variables[1].options if o.checked] == ["4"]
    assert t01.variables[0].options[0].input_id == "f-T01_PRE-1"


def test_number_and_text_values(definition: Definition) -> None:
    [_modality, sessions, _length] = build_questions(
        definition,
        FormKind.AFTER,
        page(definition, FormKind.AFTER, "p_modality"),
        {"SESSIONS": ("6",)},
    )
    assert sessions.variables[0].value == "6"
    assert sessions.variables[0].first_input_id == input_id("SESSIONS") == "f-SESSIONS"
    assert sessions.describedby == "hint-SESSIONS"


def test_conditional_questions_only_when_shown(definition: Definition) -> None:
    use_page = page(definition, FormKind.BEFORE, "p_device_use")
    questions = build_questions(definition, FormKind.BEFORE, use_page, {"DEVICES": ("tablette",)})
    assert [q.item.code for q in questions] == ["USE_TABLET"]
    assert (
        questions[0].number == page_view.question_numbers(definition, FormKind.BEFORE)["USE_TABLET"]
    )


def test_answers_by_page_for_the_check_page(definition: Definition) -> None:
    groups = answers_by_page(definition, FormKind.RETRO, RETRO)
    by_page = {group.page.code: group for group in groups}
    # The retro layout: "before" on one screen, "today" on the next.
    before = by_page["p_comfort_before"].lines
    today = by_page["p_comfort_today"].lines
    assert [(line.moment, line.labels) for line in before[:1] + today[:1]] == [
        (Moment.PRE, ("Pas du tout à l'aise",)),
        (Moment.NOW, ("Plutôt à l'aise",)),
    ]
    assert [line.item.code for line in before] == [line.item.code for line in today]
    by_page = {
        group.page.code: group for group in answers_by_page(definition, FormKind.BEFORE, BEFORE)
    }
    assert "p_device_use" in by_page
    devices = by_page["p_devices"].lines[0]
    assert devices.labels == ("Un téléphone avec écran tactile (smartphone)", "Une tablette")
    by_page = {
        group.page.code: group for group in answers_by_page(definition, FormKind.AFTER, AFTER)
    }
    comment = by_page["p_comment"].lines[0]
    assert comment.labels == () and comment.text == AFTER["COMMENT"][0]
    sessions = next(line for line in by_page["p_modality"].lines if line.item.code == "SESSIONS")
    assert sessions.text == "6"


def test_answers_by_page_lists_unanswered_questions(definition: Definition) -> None:
    groups = answers_by_page(definition, FormKind.BEFORE, {})
    assert [g.page.code for g in groups] == [
        p.code for p in definition.pages(FormKind.BEFORE) if p.code != "p_device_use"
    ]
    assert all(line.labels == () and line.text == "" for g in groups for line in g.lines)


def test_a_today_screen_shows_the_before_answer(definition: Definition) -> None:
    """The retro layout's "today" screen: one fieldset per task, today's answer only, the
    "before" answer beside it (described by it), from the stored answers."""
    today = definition.screen(FormKind.RETRO, "p_tasks_information_today")
    assert today is not None
    answers = {**RETRO, "T04_PRE": ("2",)}
    answers.pop("T05_PRE", None)
    t04, t05 = build_questions(definition, FormKind.RETRO, today, answers)
    assert not t04.paired and [v.code for v in t04.variables] == ["T04"]
    [earlier] = t04.variables[0].earlier
    assert earlier.label == "Je le fais avec de l'aide" and earlier.pictogram == "ladder-with-help"
    assert t04.describedby == "earlier-T04"
    assert [e.label for e in t05.variables[0].earlier] == [None]  # not answered "before"
    before = definition.screen(FormKind.RETRO, "p_tasks_information_before")
    assert before is not None
    questions = build_questions(definition, FormKind.RETRO, before, answers)
    assert [v.code for q in questions for v in q.variables] == ["T04_PRE", "T05_PRE"]
    assert not any(v.earlier for q in questions for v in q.variables)


def test_a_cached_today_screen_keeps_only_the_stored_before_answer(
    definition: Definition,
) -> None:
    today = definition.screen(FormKind.RETRO, "p_tasks_information_today")
    assert today is not None
    questions = build_questions(definition, FormKind.RETRO, today, {}, placeholders=True)
    blocks = "".join(
        f"{e.open}<p>{e.label}</p>{e.close}" for q in questions for e in q.variables[0].earlier
    )
    # Every answer and none, for each of the screen's two tasks: one block each.
    assert blocks.count(page_cache.BLOCK_END) == (5 + 1) * 2
    values = page_view.state_values(today, FormKind.RETRO, {"T04_PRE": ("3",)})
    filled = page_cache.fill(blocks, values)
    assert filled == "<p>Je le fais seul·e</p><p>None</p>"
    assert page_cache.Template.parse(blocks).fill_bytes(values) == filled.encode()


def test_a_template_filled_as_bytes_is_the_text_filled_then_encoded() -> None:
    """`Template.fill_bytes` (the pages served before Flask) joins texts encoded once: the
    same bytes as `fill(...).encode()`, escaping, blocks and non-ASCII text included."""
    m = page_cache.marker
    html = (
        f"<p>Étape{m('csrf')}</p>{m('value:T01')}ن{page_cache.block_start('T04_PRE=3')}"
        f"<b>déjà</b>{m('value:T02')}{page_cache.BLOCK_END}{m('checked:x')}{m('empty')}€"
    )
    template = page_cache.Template.parse(html)
    for values in (
        {},
        {m("csrf"): "tok", m("value:T01"): '<é & "ü">', m("checked:x"): " checked"},
        {page_cache.block_start("T04_PRE=3"): "1", m("value:T02"): "l'été", m("empty"): ""},
    ):
        filled = template.fill(values)
        assert filled == page_cache.fill(html, values)
        assert template.fill_bytes(values) == filled.encode()
    assert "&lt;é &amp; &#34;ü&#34;&gt;" in template.fill({m("value:T01"): '<é & "ü">'})


def test_a_screen_joining_pages_titles_each_part(definition: Definition) -> None:
    joined = definition.screen(FormKind.RETRO, "p_tasks_procedures_before")
    assert joined is not None and [p.code for p in joined.parts] == [
        "p_tasks_procedures",
        "p_tasks_safety",
    ]
    questions = build_questions(definition, FormKind.RETRO, joined, RETRO)
    titles = [q.part_title for q in questions]
    assert titles == ["Mes démarches", None, None, "Me protéger", None]
