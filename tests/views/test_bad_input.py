"""Bad or hostile input: a clear 4xx page, never a 500, never a half-written response."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask.testing import FlaskClient

from selfcheck.platform import codes
from selfcheck.platform.db import Database
from selfcheck.platform.models import Answer, Beneficiary, Response, Structure
from tests.support import (
    BEFORE,
    CSRF_FIELD,
    RETRO,
    Visitor,
    count,
    error_summary,
    path_of,
    responses,
    stored,
    text_of,
    words,
)

NOT_AN_OPTION = "Cette réponse ne fait pas partie des choix proposés. Choisissez dans la liste."
EXPIRED = "Votre page a expiré"


def snapshot(database: Database) -> tuple[int, int, int, list[dict[str, tuple[str, ...]]]]:
    """Everything a bad request must leave untouched."""
    people = count(database, Beneficiary)
    rows = count(database, Response)
    answers = count(database, Answer)
    return people, rows, answers, [stored(database, r.id) for r in responses(database)]


def after(visitor: Visitor, structure: Structure) -> None:
    """A submitted 'before', then its 'after' form opened through the code."""
    code = visitor.complete(structure.slug)
    visitor.follow(visitor.enter_code(code))
    visitor.follow(visitor.post("/welcome-back"))


@pytest.fixture
def on_page(visitor: Visitor, structure: Structure) -> Callable[[str, str], Visitor]:
    """Open page `code` of a new `form` response (pages are reachable by their URL)."""

    def open_page(code: str, form: str = "before") -> Visitor:
        if form == "after":  # a number and a free text: the after form (not the light retro)
            after(visitor, structure)
        else:
            visitor.follow(visitor.start(structure.slug, form))
        page = visitor.get(f"/q/{code}")
        assert page.status_code == 200, page.status_code
        return visitor

    return open_page


@pytest.fixture
def unchanged(database: Database) -> Iterator[Callable[[], None]]:
    """Call it to take a snapshot; at the end of the test the database must still match."""
    taken: list[tuple[int, int, int, list[dict[str, tuple[str, ...]]]]] = []

    def take() -> None:
        taken.append(snapshot(database))

    yield take
    assert taken, "no snapshot taken"
    assert snapshot(database) == taken[0]


# --- tampered answers --------------------------------------------------------------------


def test_tampered_radio_value_is_refused_and_nothing_is_saved(
    on_page: Callable[..., Visitor], unchanged: Callable[[], None]
) -> None:
    visitor = on_page("p_age")
    unchanged()
    refused = visitor.answer({"AGE": ["cent_ans"], "GENDER": ["feminin"]})
    assert refused.status_code == 422
    assert error_summary(text_of(refused)) == [f"Quel âge avez-vous ? {NOT_AN_OPTION}"]
    html = text_of(refused)
    assert "<title>Erreur : " in words(html)
    assert 'id="err-AGE"' in html
    assert 'href="#f-AGE-moins_de_douze"' in html  # the summary links to the first radio
    # the valid answer on the same page is shown again, still not saved
    assert 'value="feminin" checked' in html


def test_an_arabic_question_mark_is_not_followed_by_a_colon(
    visitor: Visitor, structure: Structure
) -> None:
    visitor.follow(visitor.start(structure.slug, lang="ar"))
    visitor.get("/q/p_age")
    refused = visitor.answer({"AGE": ["cent_ans"], "GENDER": ["feminin"]})
    assert refused.status_code == 422
    [entry] = error_summary(text_of(refused))
    # « كم عمرك؟ » ends with the Arabic question mark: the message follows, with no « ؟: »
    assert entry.startswith("كم عمرك؟ ")
    assert "؟:" not in entry


def test_saved_answer_survives_a_tampered_resend(
    on_page: Callable[..., Visitor], database: Database
) -> None:
    visitor = on_page("p_help")
    assert visitor.answer({"ASSIST": ["proche"]}).status_code == 302
    visitor.get("/q/p_help")
    assert visitor.answer({"ASSIST": ["<script>alert(1)</script>"]}).status_code == 422
    assert "<script>alert(1)</script>" not in visitor.client.get("/q/p_help").get_data(as_text=True)
    [response] = responses(database)
    assert stored(database, response.id) == {"ASSIST": ("proche",)}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"DEVICES": ["smartphone", "minitel"]}, NOT_AN_OPTION),
        ({"DEVICES": ["aucun", "tablette"]}, "Vous avez coché « Aucun de ces appareils » avec"),
    ],
)
def test_tampered_or_contradictory_checkboxes(
    on_page: Callable[..., Visitor],
    unchanged: Callable[[], None],
    values: dict[str, list[str]],
    message: str,
) -> None:
    visitor = on_page("p_devices")
    unchanged()
    refused = visitor.answer(values)
    assert refused.status_code == 422
    [entry] = error_summary(text_of(refused))
    assert entry.startswith("Quels appareils avez-vous ? " + message)


def test_fields_of_other_pages_are_ignored(
    on_page: Callable[..., Visitor], database: Database
) -> None:
    visitor = on_page("p_help")
    sent = visitor.answer({"ASSIST": ["seul"]}, T01=["4"], COMFORT_PRE=["1"], AGE=["cent_ans"])
    assert sent.status_code == 302
    [response] = responses(database)
    assert stored(database, response.id) == {"ASSIST": ("seul",)}


@pytest.mark.parametrize("value", ["0", "201", "-1", "trois", "2.5", "1e2", "٣", "１２"])
def test_number_out_of_range_or_not_a_number(
    on_page: Callable[..., Visitor], unchanged: Callable[[], None], value: str
) -> None:
    visitor = on_page("p_modality", "after")
    unchanged()
    refused = visitor.answer({"SESSIONS": [value], "MODALITY": ["individuel"]})
    assert refused.status_code == 422
    [entry] = error_summary(text_of(refused))
    assert entry.startswith("Combien de fois êtes-vous venu·e, à peu près ? Écrivez un")
    assert f'value="{value}"' in text_of(refused)  # shown back so it can be corrected


@pytest.mark.parametrize("text", ["nul\x00byte", "bell\x07", "\x1b[2J", "x" * 501])
def test_text_with_control_characters_or_too_long(
    on_page: Callable[..., Visitor], unchanged: Callable[[], None], text: str
) -> None:
    visitor = on_page("p_comment", "after")
    unchanged()
    refused = visitor.answer({"COMMENT": [text]})
    assert refused.status_code == 422
    [entry] = error_summary(text_of(refused))
    assert entry.startswith("Voulez-vous ajouter quelque chose ? ")


def test_accepted_text_is_stored_as_typed(
    on_page: Callable[..., Visitor], database: Database
) -> None:
    visitor = on_page("p_comment", "after")
    comment = "Très bien <b>merci</b> & à bientôt\r\nNadia 👍"
    assert visitor.answer({"COMMENT": [comment]}).status_code == 302
    response = next(r for r in responses(database) if r.form == "after")
    assert stored(database, response.id) == {"COMMENT": (comment,)}
    visitor.get("/q/p_comment")
    assert "&lt;b&gt;merci&lt;/b&gt; &amp; à bientôt" in visitor.html


def test_invalid_utf8_is_not_a_server_error(
    on_page: Callable[..., Visitor], unchanged: Callable[[], None]
) -> None:
    visitor = on_page("p_help")
    unchanged()
    hidden = visitor.page_form().hidden()
    body = (
        b"csrf_token="
        + hidden[CSRF_FIELD].encode()
        + b"&response_id="
        + hidden["response_id"].encode()
        + b"&ASSIST=%FF%FE"
    )
    refused = visitor.client.post(
        "/q/p_help", data=body, content_type="application/x-www-form-urlencoded"
    )
    assert refused.status_code == 422


# --- actions, pages, places --------------------------------------------------------------


@pytest.mark.parametrize("action", ["submit", "", "NEXT", "delete"])
def test_unknown_action_is_a_bad_request(
    on_page: Callable[..., Visitor], unchanged: Callable[[], None], action: str
) -> None:
    visitor = on_page("p_help")
    unchanged()
    refused = visitor.answer({"ASSIST": ["seul"]}, action=action)
    assert refused.status_code == 400
    assert "Nous n'avons pas compris la demande" in words(refused)


def test_unknown_page_is_not_found(on_page: Callable[..., Visitor]) -> None:
    visitor = on_page("p_help")
    for url in ("/q/p_nothing", "/q/p_modality", "/q/P_HELP", "/q/%00"):
        page = visitor.get(url)  # p_modality exists, but not in the 'before' form
        assert page.status_code == 404, url
        assert "Page introuvable" in words(page)


def test_post_to_an_unknown_page_is_not_found(
    on_page: Callable[..., Visitor], unchanged: Callable[[], None]
) -> None:
    visitor = on_page("p_help")
    unchanged()
    assert visitor.post("/q/p_nothing", {"action": "next"}).status_code == 404


def test_unknown_structure_is_not_found(
    visitor: Visitor, structure: Structure, database: Database
) -> None:
    assert visitor.get("/s/nowhere").status_code == 404
    assert "Page introuvable" in visitor.text
    visitor.get(f"/s/{structure.slug}")
    form = next(f for f in visitor.forms() if f.hidden().get("form") == "before")
    assert visitor.post("/s/nowhere", form.hidden()).status_code == 404
    assert count(database, Response) == 0


def test_unknown_url_is_not_found(client: FlaskClient) -> None:
    page = client.get("/wp-admin.php")
    assert page.status_code == 404
    assert "Cette adresse ne correspond à aucune page" in words(page)


@pytest.mark.parametrize(
    "change",
    [
        {"form": "after"},
        {"form": "admin"},
        {"token": "short"},
        {"token": ""},
        {"token": "a" * 65},
        {"token": "aaaaaaaaaaaaaaaa'; DROP TABLE response;--"},
    ],
)
def test_tampered_start_form_is_a_bad_request(
    visitor: Visitor, structure: Structure, database: Database, change: dict[str, str]
) -> None:
    visitor.get(f"/s/{structure.slug}")
    form = next(f for f in visitor.forms() if f.hidden().get("form") == "before")
    refused = visitor.post(f"/s/{structure.slug}", {**form.hidden(), **change})
    assert refused.status_code == 400
    assert count(database, Response) == 0
    assert count(database, Beneficiary) == 0


def test_pages_without_a_session_ask_for_the_code(client: FlaskClient) -> None:
    for url in ("/q/p_help", "/check", "/done", "/pause", "/summary", "/welcome-back"):
        page = client.get(url)
        assert page.status_code == 302, url
        assert page.headers["Location"].endswith("/code?expired=1"), url


def test_a_session_pointing_to_a_deleted_response_asks_for_the_code(
    visitor: Visitor, structure: Structure, database: Database
) -> None:
    visitor.follow(visitor.start(structure.slug))
    with visitor.client.session_transaction() as session:
        session["response_id"] = 999_999
        session["beneficiary_id"] = "not an id"
    for url in ("/q/p_help", "/summary"):
        page = visitor.get(url)
        assert page.status_code == 302 and "/code?expired=1" in page.headers["Location"]


@pytest.mark.parametrize(
    ("method", "url"), [("get", "/leave"), ("delete", "/check"), ("put", "/code")]
)
def test_wrong_method(client: FlaskClient, method: str, url: str) -> None:
    page = getattr(client, method)(url)
    assert page.status_code == 405
    assert "Action impossible" in words(page)


# --- codes -------------------------------------------------------------------------------


def test_unknown_code(visitor: Visitor, structure: Structure) -> None:
    unknown = "ABCDEFGH" + codes.check_character("ABCDEFGH")
    refused = visitor.enter_code(codes.display(unknown))
    assert refused.status_code == 422
    [entry] = error_summary(words(refused))
    assert entry.startswith("Nous ne trouvons pas ce code.")
    assert 'aria-invalid="true"' in text_of(refused)
    assert codes.display(unknown) in text_of(refused)  # what was typed stays in the box


def test_mistyped_code_is_reported_as_a_typo(
    visitor: Visitor, new_visitor: Callable[[], Visitor], structure: Structure
) -> None:
    code = visitor.complete(structure.slug)
    wrong_check = code[:-1] + next(c for c in codes.ALPHABET if c != code[-1])
    other = new_visitor()
    refused = other.enter_code(wrong_check)
    assert refused.status_code == 422
    assert error_summary(text_of(refused)) == [
        "Ce code contient sans doute une erreur de frappe. Vérifiez chaque caractère."
    ]
    wrong_letter = code[:3] + next(c for c in codes.ALPHABET if c != code[3]) + code[4:]
    refused = other.enter_code(wrong_letter.lower())
    assert refused.status_code == 422
    assert "erreur de frappe" in words(refused)


def test_typed_code_is_escaped_when_shown_back(visitor: Visitor) -> None:
    refused = visitor.enter_code('"><script>alert(1)</script>')
    assert refused.status_code == 422
    assert "<script>alert(1)</script>" not in text_of(refused)
    assert "&lt;script&gt;" in text_of(refused)


@pytest.mark.parametrize(
    ("typed", "start"),
    [
        ("", "Écrivez votre code."),
        ("K7M-2QX", "Un code a 9 caractères"),
        ("K7M-2QX-9R?", "Un code contient seulement des chiffres et des lettres"),
        ("x" * 5000, "Un code a 9 caractères"),
    ],
)
def test_badly_shaped_codes(visitor: Visitor, typed: str, start: str) -> None:
    refused = visitor.enter_code(typed)
    assert refused.status_code == 422
    [entry] = error_summary(text_of(refused))
    assert entry.startswith(start)


# --- CSRF and size limits ----------------------------------------------------------------


def test_post_without_csrf_token_is_refused_with_an_explanation(
    visitor: Visitor, structure: Structure, database: Database
) -> None:
    visitor.get(f"/s/{structure.slug}")
    form = next(f for f in visitor.forms() if f.hidden().get("form") == "before")
    data = {k: v for k, v in form.hidden().items() if k != CSRF_FIELD}
    refused = visitor.post(f"/s/{structure.slug}", data, csrf=False)
    assert refused.status_code == 400
    html = words(refused)
    assert f"<h1>{EXPIRED}</h1>" in html
    assert "Les réponses déjà enregistrées sont conservées" in html
    assert count(database, Response) == 0


@pytest.mark.parametrize("url", ["/code", "/check", "/welcome-back", "/leave", "/q/p_help"])
def test_every_post_checks_the_csrf_token(
    on_page: Callable[..., Visitor], unchanged: Callable[[], None], url: str
) -> None:
    visitor = on_page("p_help")
    unchanged()
    for token in (None, "forged-token"):
        data = {"ASSIST": "seul", "action": "next", "code": "ABC"}
        if token:
            data[CSRF_FIELD] = token
        refused = visitor.post(url, data, csrf=False)
        assert refused.status_code == 400, (url, token)
        assert EXPIRED in words(refused)


def test_csrf_token_of_another_session_is_refused(
    visitor: Visitor, new_visitor: Callable[[], Visitor], structure: Structure, database: Database
) -> None:
    visitor.get(f"/s/{structure.slug}")
    form = next(f for f in visitor.forms() if f.hidden().get("form") == "before")
    stranger = new_visitor()
    stranger.get(f"/s/{structure.slug}")
    refused = stranger.post(f"/s/{structure.slug}", form.hidden(), csrf=False)
    assert refused.status_code == 400
    assert count(database, Response) == 0


def test_body_larger_than_the_limit_gets_our_413_page(
    on_page: Callable[..., Visitor], unchanged: Callable[[], None]
) -> None:
    visitor = on_page("p_comment", "after")
    unchanged()
    limit = visitor.client.application.config["MAX_CONTENT_LENGTH"]
    refused = visitor.answer({"COMMENT": ["a" * (limit + 1)]})
    assert refused.status_code == 413
    html = text_of(refused)
    assert "<h1>Envoi trop volumineux</h1>" in html
    assert "Les réponses déjà enregistrées sont conservées" in html


def test_a_small_limit_from_the_configuration_applies(
    make_app: Callable[..., object], structure: Structure
) -> None:
    from flask import Flask

    app = make_app(MAX_CONTENT_LENGTH=2000, MAX_FORM_MEMORY_SIZE=2000)
    assert isinstance(app, Flask)
    visitor = Visitor(app.test_client())
    after(visitor, structure)
    visitor.get("/q/p_comment")
    assert visitor.answer({"COMMENT": ["a" * 400]}).status_code == 302
    visitor.get("/q/p_comment")
    assert visitor.answer({"COMMENT": ["a" * 2500]}).status_code == 413


def test_repeated_checkbox_values_are_refused(
    on_page: Callable[..., Visitor], unchanged: Callable[[], None]
) -> None:
    visitor = on_page("p_devices")
    unchanged()
    refused = visitor.answer({"DEVICES": ["smartphone"] * 1500})
    assert refused.status_code == 422
    assert error_summary(text_of(refused)) == [f"Quels appareils avez-vous ? {NOT_AN_OPTION}"]


def test_too_many_multipart_fields_is_refused(
    on_page: Callable[..., Visitor], unchanged: Callable[[], None]
) -> None:
    visitor = on_page("p_devices")
    unchanged()
    data = {CSRF_FIELD: visitor.page_form().hidden()[CSRF_FIELD], "action": "next"}
    data.update({f"junk{i}": "x" for i in range(1200)})
    refused = visitor.client.post("/q/p_devices", data=data, content_type="multipart/form-data")
    assert refused.status_code == 413
    assert "Envoi trop volumineux" in words(refused)


# --- the after form only for those who finished a before ----------------------------------


def test_welcome_back_does_not_open_an_after_form_while_the_before_is_unfinished(
    visitor: Visitor, structure: Structure, database: Database
) -> None:
    visitor.follow(visitor.start(structure.slug))
    shown = visitor.client.get("/welcome-back")
    assert shown.status_code == 302 and path_of(shown.headers["Location"]) == "/q/p_help"
    posted = visitor.post("/welcome-back")  # token from the question page
    assert posted.status_code == 302
    assert path_of(posted.headers["Location"]) == "/q/p_help"
    assert [r.form for r in responses(database)] == ["before"]


def test_welcome_back_does_not_open_an_after_form_after_a_retro(
    visitor: Visitor, structure: Structure, database: Database
) -> None:
    visitor.complete(structure.slug, "retro", RETRO)
    # A retrospective form ends the accompaniment: its code leads to when to come back.
    shown = visitor.client.get("/welcome-back")
    assert shown.status_code == 302 and path_of(shown.headers["Location"]) == "/come-back"
    posted = visitor.post("/welcome-back")  # token from the 'done' page
    assert posted.status_code == 302
    assert path_of(posted.headers["Location"]) == "/come-back"
    assert [r.form for r in responses(database)] == ["retro"]
    assert stored(database, responses(database)[0].id) == RETRO


def test_check_page_of_a_complete_before_matches_the_answers(
    visitor: Visitor, structure: Structure
) -> None:
    visitor.fill(BEFORE, visitor.start(structure.slug))
    assert error_summary(visitor.html) == []
