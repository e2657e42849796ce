"""The easy-read (FALC) wording on the journey: chosen at the start, kept with the response,
same codes and answers as the standard wording."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import select

from selfcheck.platform.db import Database
from selfcheck.platform.models import Beneficiary, Structure
from selfcheck.questionnaire import Definition, FormKind
from tests.support import AFTER, BEFORE, Visitor, code_on_page, csrf_token, responses, stored


def start_easy(visitor: Visitor, structure: Structure, form: str = "before") -> None:
    page = visitor.get(f"/s/{structure.slug}?wording=easy")
    assert page.status_code == 200
    chosen = next(f for f in visitor.forms() if f.hidden().get("form") == form)
    assert chosen.hidden()["wording"] == "easy"
    assert chosen.action is not None
    visitor.follow(visitor.post(chosen.action, chosen.hidden()))


def test_the_start_page_offers_both_wordings(visitor: Visitor, structure: Structure) -> None:
    visitor.get(f"/s/{structure.slug}")
    assert "Texte facile à lire" in visitor.text
    assert 'href="?wording=easy"' in visitor.html
    assert all(f.hidden().get("wording") == "standard" for f in visitor.forms() if f.action)
    visitor.get(f"/s/{structure.slug}?wording=easy")
    assert "Ce n'est pas un test." in visitor.text
    assert 'href="?wording=easy" aria-current="true"' in visitor.html
    assert "J'ai déjà eu de l'aide. Je n'ai pas de code." in visitor.text
    assert "·" not in visitor.text  # easy-read: no inclusive dot


def test_an_easy_questionnaire_shows_easy_texts_and_stores_the_same_codes(
    visitor: Visitor, structure: Structure, database: Database, definition: Definition
) -> None:
    start_easy(visitor, structure)
    easy = definition.in_wording("easy")
    first = easy.pages(FormKind.BEFORE)[0]
    assert easy.item("ASSIST").label in visitor.text
    assert definition.item("ASSIST").label not in visitor.text
    # a decorative pictogram: the title beside it says the same
    assert f'src="/static/img/pictograms/{first.pictogram}.svg" alt=""' in visitor.html
    assert visitor.url is not None
    visitor.fill(BEFORE, visitor.url)
    assert visitor.url == "/check"
    assert "Lisez vos réponses." in visitor.text
    assert easy.item("COMFORT").label in visitor.text
    done = visitor.follow(visitor.submit())
    assert done.status_code == 200
    assert "Gardez ce code." in visitor.text
    (response,) = responses(database)
    assert response.wording == "easy"
    assert stored(database, response.id)["ASSIST"] == BEFORE["ASSIST"]


def test_the_standard_wording_is_the_default(
    visitor: Visitor, structure: Structure, database: Database, definition: Definition
) -> None:
    visitor.follow(visitor.start(structure.slug))
    assert definition.item("ASSIST").label in visitor.text
    assert "pictograms" not in visitor.html
    (response,) = responses(database)
    assert response.wording == "standard"


def test_a_resumed_questionnaire_keeps_its_wording(
    client: FlaskClient, structure: Structure, definition: Definition, database: Database
) -> None:
    first = Visitor(client)
    start_easy(first, structure)
    with database.session() as session:
        code = session.scalars(select(Beneficiary.code)).one()
    client.post("/leave", data={"csrf_token": csrf_token(first.html)})
    again = Visitor(client)
    again.get(f"/s/{structure.slug}?wording=standard")  # a new visit, standard by default
    resumed = again.enter_code(code)
    again.follow(resumed)
    assert definition.in_wording("easy").item("ASSIST").label in again.text


def test_a_tampered_wording_is_refused(visitor: Visitor, structure: Structure) -> None:
    visitor.get(f"/s/{structure.slug}")
    chosen = next(f for f in visitor.forms() if f.hidden().get("form") == "before")
    assert chosen.action is not None
    sent = visitor.post(chosen.action, {**chosen.hidden(), "wording": "fancy"})
    assert sent.status_code == 400


def test_an_unknown_wording_parameter_is_ignored(visitor: Visitor, structure: Structure) -> None:
    page = visitor.get(f"/s/{structure.slug}?wording=fancy")
    assert page.status_code == 200
    assert 'href="?wording=standard" aria-current="true"' in visitor.html


def test_welcome_back_and_come_back_speak_the_easy_wording_of_the_forms(
    visitor: Visitor, new_visitor: Callable[[], Visitor], structure: Structure
) -> None:
    start_easy(visitor, structure)
    assert visitor.url is not None
    visitor.fill(BEFORE, visitor.url)
    visitor.follow(visitor.submit())
    code = code_on_page(visitor.html)
    later = new_visitor()  # another device: nothing chosen in this visit
    later.follow(later.enter_code(code))
    assert later.url == "/welcome-back"
    assert "Vous répondez encore une fois. Puis vous voyez ce qui a changé." in later.text
    assert "Voici maintenant celui de fin d'accompagnement" not in later.text
    later.fill(AFTER, later.post("/welcome-back"))
    later.follow(later.submit())
    third = new_visitor()
    third.follow(third.enter_code(code))
    assert third.url == "/come-back"
    assert "Merci. Vos réponses sont bien gardées." in third.text
