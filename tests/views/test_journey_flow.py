"""The journey through the web pages: start, every page, check, submit, done, come back."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask.testing import FlaskClient

from selfcheck.platform import codes
from selfcheck.platform.db import Database
from selfcheck.platform.models import Answer, Beneficiary, Response, Structure
from selfcheck.questionnaire import Definition, FormKind
from tests.support import (
    AFTER,
    BEFORE,
    RETRO,
    Visitor,
    code_on_page,
    count,
    csrf_token,
    error_summary,
    path_of,
    responses,
    stored,
    text_of,
    words,
)


def test_home_page_links_to_the_code_page(client: FlaskClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    html = text_of(page)
    assert "<h1>Mon parcours numérique</h1>" in html
    assert 'href="/code"' in html


def test_start_page_offers_both_questionnaires(visitor: Visitor, structure: Structure) -> None:
    page = visitor.get(f"/s/{structure.slug}")
    assert page.status_code == 200
    assert "Médiathèque de Rezé" in visitor.text
    forms = {f.hidden().get("form"): f for f in visitor.forms() if f.method == "post"}
    assert {"before", "retro"} <= set(forms)
    tokens = {forms["before"].hidden()["token"], forms["retro"].hidden()["token"]}
    assert len(tokens) == 2
    # A new token on every display: two people on one PC never share a response.
    visitor.get(f"/s/{structure.slug}")
    again = {f.hidden().get("token") for f in visitor.forms() if f.method == "post"}
    assert not tokens & again


def test_whole_before_journey(
    visitor: Visitor, structure: Structure, database: Database, definition: Definition
) -> None:
    started = visitor.start(structure.slug, "before")
    assert started.status_code == 302
    assert path_of(started.headers["Location"]) == "/q/p_help"
    visited = visitor.fill(BEFORE, started)
    assert visited == [p.code for p in definition.pages(FormKind.BEFORE)]
    assert visitor.url == "/check"
    check = visitor.text
    assert "Vérifiez vos réponses" in check
    assert "Un téléphone avec écran tactile (smartphone), Une tablette" in check
    assert "Je ne suis pas concerné·e" in check  # T12
    # In Arabic the answers are joined as Arabic lists them, never with a Latin comma in a
    # right-to-left line (round 23; `i18n.format_list`).
    visitor.get("/check?lang=ar")
    assert "هاتف بشاشة لمس (هاتف ذكي) وجهاز لوحي" in visitor.text
    assert "هاتف بشاشة لمس (هاتف ذكي), " not in visitor.text
    visitor.get("/check?lang=fr")
    [response] = responses(database)
    assert response.status == "in_progress"
    assert response.furthest_page == "p_tasks_safety"

    sent = visitor.submit()
    assert sent.status_code == 302 and path_of(sent.headers["Location"]) == "/done"
    done = visitor.follow(sent)
    assert done.status_code == 200
    assert "Merci, vos réponses sont envoyées" in visitor.text
    assert "Voir mon point de départ" in visitor.text
    code = code_on_page(visitor.html)
    assert codes.normalise(code) == code

    [response] = responses(database)
    assert response.status == "submitted" and response.submitted_at is not None
    assert response.form == "before" and response.locale == "fr"
    assert response.definition_version == definition.version
    assert stored(database, response.id) == BEFORE
    with database.session() as session:
        person = session.get(Beneficiary, response.beneficiary_id)
        assert person is not None and person.code == code


def test_each_page_shows_its_step_and_questions(visitor: Visitor, structure: Structure) -> None:
    first = visitor.follow(visitor.start(structure.slug))
    assert first.status_code == 200
    html = visitor.text
    assert "Étape 1 sur 13" in html  # 14 pages, the device-use page hidden until DEVICES
    assert "Comment remplissez-vous ce questionnaire ?" in html
    form = visitor.page_form()
    assert form.options("ASSIST") == ["seul", "mediateur", "proche"]
    assert form.buttons() == [("action", "next"), ("action", "back"), ("action", "pause")]


def test_double_start_creates_one_response(
    visitor: Visitor, structure: Structure, database: Database
) -> None:
    visitor.get(f"/s/{structure.slug}")
    form = next(f for f in visitor.forms() if f.hidden().get("form") == "before")
    assert form.action is not None
    first = visitor.post(form.action, form.hidden())
    second = visitor.post(form.action, form.hidden())
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    assert count(database, Response) == 1
    assert count(database, Beneficiary) == 1


def test_resent_check_post_submits_once(
    visitor: Visitor, structure: Structure, database: Database
) -> None:
    visitor.fill(BEFORE, visitor.start(structure.slug))
    token_page = visitor.html
    first = visitor.submit()
    [submitted] = responses(database)
    second = visitor.client.post("/check", data={"csrf_token": csrf_token(token_page)})
    assert first.status_code == second.status_code == 302
    assert path_of(second.headers["Location"]) == "/done"
    [again] = responses(database)
    assert again.submitted_at == submitted.submitted_at
    assert count(database, Response) == 1
    assert count(database, Answer) == sum(len(v) for v in BEFORE.values())


def test_question_pages_after_submission_go_to_done(visitor: Visitor, structure: Structure) -> None:
    visitor.complete(structure.slug)
    for url in ("/q/p_help", "/check"):
        page = visitor.get(url)
        assert page.status_code == 302 and path_of(page.headers["Location"]) == "/done"


def test_resume_with_the_code_typed_loosely_on_another_device(
    visitor: Visitor,
    new_visitor: Callable[[], Visitor],
    structure: Structure,
    database: Database,
) -> None:
    started = visitor.start(structure.slug)
    visited = visitor.fill(BEFORE, started, until="p_devices")
    assert visited == ["p_help", "p_age", "p_situation", "p_home"]
    paused = visitor.answer({"DEVICES": ["smartphone"]}, action="pause")
    assert path_of(paused.headers["Location"]) == "/pause"
    visitor.follow(paused)
    assert "Vos réponses sont enregistrées" in visitor.text
    code = code_on_page(visitor.html)

    other = new_visitor()
    typed = " ".join(codes.display(code).lower().replace("-", " - "))
    routed = other.enter_code(typed)
    assert routed.status_code == 302
    assert path_of(routed.headers["Location"]) == "/q/p_device_use"
    resumed = other.follow(routed)
    assert resumed.status_code == 200
    assert other.page_form().question_names() == ["USE_SMARTPHONE"]
    assert other.page_form().checked("USE_SMARTPHONE") == []
    [response] = responses(database)
    assert stored(database, response.id)["DEVICES"] == ("smartphone",)


def test_resume_when_every_page_is_saved_goes_to_the_check_page(
    visitor: Visitor, new_visitor: Callable[[], Visitor], structure: Structure
) -> None:
    visitor.fill(BEFORE, visitor.start(structure.slug))
    visitor.get("/q/p_help")
    visitor.follow(visitor.answer({"ASSIST": ["seul"]}, action="pause"))
    assert 'href="/check"' in visitor.html  # "continue now" leads to the check page
    code = code_on_page(visitor.html)
    routed = new_visitor().enter_code(code)
    assert path_of(routed.headers["Location"]) == "/check"


def test_done_before_sending_goes_back_to_the_check_page(
    visitor: Visitor, structure: Structure
) -> None:
    visitor.follow(visitor.start(structure.slug))
    page = visitor.get("/done")
    assert page.status_code == 302
    assert path_of(page.headers["Location"]) == "/check"


def test_after_journey_through_the_code_and_welcome_back(
    visitor: Visitor,
    new_visitor: Callable[[], Visitor],
    structure: Structure,
    database: Database,
    definition: Definition,
) -> None:
    code = visitor.complete(structure.slug)

    later = new_visitor()
    routed = later.enter_code(code.lower())
    assert path_of(routed.headers["Location"]) == "/welcome-back"
    later.follow(routed)
    assert "Bon retour" in later.text
    started = later.post("/welcome-back")
    assert started.status_code == 302
    assert path_of(started.headers["Location"]) == "/q/p_help"
    visited = later.fill(AFTER, started)
    assert visited == [p.code for p in definition.pages(FormKind.AFTER)]
    later.follow(later.submit())
    assert "Voir mes progrès" in later.text
    assert code_on_page(later.html) == code

    before, after = responses(database)
    assert (before.form, after.form) == ("before", "after")
    assert before.beneficiary_id == after.beneficiary_id
    assert after.status == "submitted"
    assert stored(database, after.id) == AFTER

    summary = later.get("/summary")
    assert summary.status_code == 200
    html = later.text
    assert "<h1>Vos progrès</h1>" in html
    assert "vous vous sentiez « Pas du tout à l'aise ». Aujourd'hui : « Plutôt à l'aise »." in html
    assert "Bravo ! Vous faites mieux qu'avant pour 14 choses sur 14." in html
    assert "Vous faites maintenant 8 choses de plus sans aide." in html
    assert "Vous pouvez aider quelqu'un pour 1 chose." in html
    assert html.count("Allumer et éteindre mon appareil") == 1  # each task once
    assert "0 chose" not in html
    assert "Pour la suite" in html
    assert "Entretenir mon appareil, installer des applications" in html  # a suggestion
    assert "J'ai plus confiance en moi" in html
    assert code_on_page(html) == code


def test_welcome_back_twice_creates_one_after(
    visitor: Visitor, new_visitor: Callable[[], Visitor], structure: Structure, database: Database
) -> None:
    code = visitor.complete(structure.slug)
    later = new_visitor()
    later.follow(later.enter_code(code))
    first = later.post("/welcome-back")
    second = later.post("/welcome-back")
    assert first.headers["Location"] == second.headers["Location"]
    assert count(database, Response) == 2


def test_code_of_a_finished_pair_says_when_to_come_back(
    visitor: Visitor, new_visitor: Callable[[], Visitor], structure: Structure
) -> None:
    code = visitor.complete(structure.slug)
    later = new_visitor()
    later.follow(later.enter_code(code))
    later.fill(AFTER, later.post("/welcome-back"))
    later.follow(later.submit())
    third = new_visitor()
    routed = third.enter_code(codes.display(code))
    # Before the follow-up opens (3 months after the end): a kind page, then the summary.
    assert path_of(routed.headers["Location"]) == "/come-back"
    third.follow(routed)
    assert "Revenez le" in third.text
    third.get("/summary")
    assert "<h1>Vos progrès</h1>" in third.text


def test_retrospective_journey(
    visitor: Visitor, structure: Structure, database: Database, definition: Definition
) -> None:
    started = visitor.start(structure.slug, "retro")
    first = visitor.follow(started)
    assert first.status_code == 200
    visited = visitor.fill(RETRO, started)
    assert visited == [p.code for p in definition.screens(FormKind.RETRO)]
    assert "(avant l'accompagnement)" in visitor.text  # check page labels the pairs
    visitor.follow(visitor.submit())
    code = code_on_page(visitor.html)
    [response] = responses(database)
    assert response.form == "retro" and response.status == "submitted"
    assert stored(database, response.id) == RETRO

    visitor.get("/summary")
    assert "<h1>Vos progrès</h1>" in visitor.text
    assert "vous vous sentiez « Pas du tout à l'aise ». Aujourd'hui : « Plutôt à l'aise »." in (
        words(visitor.text)
    )
    assert code_on_page(visitor.html) == code


def test_retro_asks_before_then_today_with_the_before_answer(
    visitor: Visitor, structure: Structure
) -> None:
    """Issue 12: "before" for all the tasks of a domain on one screen, then "today" for the
    same tasks on the next, each with the person's before answer beside it."""
    started = visitor.start(structure.slug, "retro")
    visitor.fill(RETRO, started, until="p_tasks_documents_before")
    html = visitor.text
    assert "Avant l'accompagnement" in html
    assert visitor.page_form().question_names() == ["T08_PRE", "T09_PRE", "T10_PRE"]
    assert html.count("<fieldset") == 3 and "<table" not in html
    visitor.last = visitor.answer({"T08_PRE": "1", "T09_PRE": "2"})  # T10 blank: warned once
    posted = visitor.answer({"T08_PRE": "1", "T09_PRE": "2"})
    assert posted.headers["Location"].endswith("/q/p_tasks_documents_today")
    visitor.get("/q/p_tasks_documents_today")
    html = visitor.text
    assert visitor.page_form().question_names() == ["T08", "T09", "T10"]
    assert "<title>Aujourd'hui : Mes documents et mes photos – Étape" in words(html)
    said = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", words(html)))
    assert "Avant, vous avez répondu : Je ne sais pas encore le faire" in said
    assert "Avant, vous avez répondu : Je le fais avec de l'aide" in said
    assert "Avant, vous n'avez pas répondu." in said
    assert 'aria-describedby="earlier-T08"' in html
    # Nothing of the other answers leaks from the cached page.
    assert said.count("Avant, vous avez répondu :") == 2 and "\x03" not in html


def test_before_only_summary_is_the_starting_point(visitor: Visitor, structure: Structure) -> None:
    visitor.complete(structure.slug)
    page = visitor.get("/summary")
    assert page.status_code == 200
    html = visitor.text
    assert "<h1>Votre point de départ</h1>" in html
    assert "aujourd'hui, vous vous sentez : « Pas du tout à l'aise »." in words(html)
    assert "Vos progrès" not in html
    assert "maintenant seul·e" not in html


def test_summary_without_a_person_asks_for_the_code(client: FlaskClient) -> None:
    page = client.get("/summary")
    assert page.status_code == 302
    assert page.headers["Location"].endswith("/code?expired=1")


def test_summary_before_anything_is_submitted_asks_for_the_code(
    visitor: Visitor, structure: Structure
) -> None:
    visitor.follow(visitor.start(structure.slug))
    page = visitor.get("/summary")
    assert page.status_code == 302
    assert path_of(page.headers["Location"]) == "/code"


def test_back_keeps_answers_and_goes_to_the_previous_page(
    visitor: Visitor, structure: Structure, database: Database
) -> None:
    started = visitor.start(structure.slug)
    visitor.fill(BEFORE, started, until="p_situation")
    back = visitor.answer({"STATUS": ["retraite"]}, action="back")
    assert path_of(back.headers["Location"]) == "/q/p_age"
    visitor.follow(back)
    assert visitor.page_form().checked("AGE") == ["soixante_dix_plus"]
    [response] = responses(database)
    assert stored(database, response.id)["STATUS"] == ("retraite",)


def test_back_from_the_first_page_returns_to_the_start_page(
    visitor: Visitor, structure: Structure
) -> None:
    visitor.follow(visitor.start(structure.slug))
    back = visitor.answer({"ASSIST": ["proche"]}, action="back")
    assert path_of(back.headers["Location"]) == f"/s/{structure.slug}"


def test_pause_keeps_answers_and_offers_to_continue(
    visitor: Visitor, structure: Structure, database: Database
) -> None:
    visitor.follow(visitor.start(structure.slug))
    paused = visitor.answer({"ASSIST": ["mediateur"]}, action="pause")
    visitor.follow(paused)
    assert 'href="/q/p_age"' in visitor.text  # continue where I stopped
    [response] = responses(database)
    assert stored(database, response.id) == {"ASSIST": ("mediateur",)}


def test_back_and_pause_keep_the_saved_answer_when_the_new_one_is_invalid(
    visitor: Visitor, structure: Structure, database: Database
) -> None:
    visitor.follow(visitor.start(structure.slug))
    visitor.answer({"ASSIST": ["seul"]})
    visitor.get("/q/p_help")
    back = visitor.answer({"ASSIST": ["pirate"]}, action="back")
    assert back.status_code == 302
    paused = visitor.answer({"ASSIST": ["pirate"]}, action="pause")
    assert paused.status_code == 302
    [response] = responses(database)
    assert stored(database, response.id) == {"ASSIST": ("seul",)}


def test_editing_from_the_check_page_returns_to_it(
    visitor: Visitor, structure: Structure, database: Database
) -> None:
    visitor.fill(BEFORE, visitor.start(structure.slug))
    assert 'href="/q/p_comfort?return_to=check"' in visitor.text
    visitor.get("/q/p_comfort?return_to=check")
    assert visitor.page_form().hidden()["return_to"] == "check"
    edited = visitor.answer({"COMFORT": ["2"]})
    assert path_of(edited.headers["Location"]) == "/check"
    visitor.follow(edited)
    assert "Pas très à l'aise" in visitor.text
    [response] = responses(database)
    assert stored(database, response.id)["COMFORT"] == ("2",)


def test_changing_a_condition_hides_the_follow_up_page(
    visitor: Visitor, structure: Structure, database: Database, definition: Definition
) -> None:
    use_page = definition.page(FormKind.BEFORE, "p_device_use")
    assert use_page is not None
    visitor.fill(BEFORE, visitor.start(structure.slug))
    assert use_page.title in visitor.text
    visitor.get("/q/p_devices?return_to=check")
    visitor.follow(visitor.answer({"DEVICES": ["aucun"]}))
    assert use_page.title not in visitor.text
    hidden = visitor.get("/q/p_device_use")
    assert hidden.status_code == 302  # the page does not apply any more
    visitor.get("/check")
    visitor.follow(visitor.submit())
    [response] = responses(database)
    final = stored(database, response.id)
    assert final["DEVICES"] == ("aucun",)
    assert "USE_SMARTPHONE" not in final and "USE_TABLET" not in final


def test_check_page_refuses_to_send_without_required_answers(
    visitor: Visitor, structure: Structure, database: Database
) -> None:
    # "Next" insists on the required answers; "Finish later" lets a page be left empty.
    visitor.follow(visitor.start(structure.slug))
    assert visitor.answer({}).status_code == 422
    skipped = visitor.answer({}, action="pause")
    assert skipped.status_code == 302
    visited = visitor.fill(BEFORE, "/q/p_age", until="p_comfort")
    assert visited[-1] == "p_reasons"
    assert visitor.answer({}, action="pause").status_code == 302
    visitor.fill(BEFORE, "/q/p_tasks_device")
    assert visitor.url == "/check"
    refused = visitor.submit()
    assert refused.status_code == 422
    summary = error_summary(text_of(refused))
    assert summary == [
        "Comment remplissez-vous ce questionnaire ? Cette question attend une réponse.",
        "Avec le numérique (téléphone, tablette, ordinateur, internet), vous vous sentez… "
        "Cette question attend une réponse.",
    ]
    [response] = responses(database)
    assert response.status == "in_progress"


def test_leave_forgets_the_person_on_this_device(visitor: Visitor, structure: Structure) -> None:
    visitor.complete(structure.slug)
    left = visitor.post("/leave")
    assert left.status_code == 302 and left.headers["Location"].endswith("/?left=1")
    visitor.get("/?left=1")
    assert "ne sont plus affichées sur cet appareil" in visitor.text
    for url in ("/done", "/summary", "/q/p_help", "/check", "/pause", "/welcome-back"):
        page = visitor.get(url)
        assert page.status_code == 302 and "/code?expired=1" in page.headers["Location"], url


def test_code_page_after_an_expired_session_explains(client: FlaskClient) -> None:
    page = client.get("/code?expired=1")
    assert page.status_code == 200
    assert "Pour retrouver vos réponses, entrez votre code." in words(page)
