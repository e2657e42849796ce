"""An archived structure takes no new people: its start link shows a kind page (410, in the
person's language), and so does a paper code nobody has answered with. People who already
answered there keep going: they finish a started form, answer the 'after' one, see their
progress."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from selfcheck.journey import operations as journey
from selfcheck.platform.models import Response, Structure, utcnow
from selfcheck.questionnaire import Definition
from tests.support import AFTER, BEFORE, Visitor, path_of

CLOSED_FR = "Ce lieu ne prend plus de nouveaux questionnaires"


def archive(db_session: Session, structure: Structure) -> None:
    found = db_session.get(Structure, structure.id)
    assert found is not None
    found.archived_at = utcnow()
    db_session.commit()


def count_responses(db_session: Session) -> int:
    db_session.expire_all()
    return int(db_session.scalar(select(func.count()).select_from(Response)) or 0)


def test_the_start_link_of_an_archived_structure_is_gone(
    visitor: Visitor, structure: Structure, db_session: Session
) -> None:
    visitor.get(f"/s/{structure.slug}")
    forms = [f for f in visitor.forms() if f.method == "post" and f.hidden().get("form")]
    opened_before = next(f for f in forms if f.hidden()["form"] == "before")
    archive(db_session, structure)
    page = visitor.get(f"/s/{structure.slug}")
    assert page.status_code == 410
    assert CLOSED_FR in visitor.text and structure.name in visitor.text
    assert 'href="/code"' in visitor.html
    assert not [f for f in visitor.forms() if f.hidden().get("form")]
    # A start page opened before the archiving and sent after: refused, nothing written.
    assert opened_before.action is not None
    sent = visitor.post(opened_before.action, opened_before.hidden())
    assert sent.status_code == 410
    assert count_responses(db_session) == 0


def test_the_closed_page_speaks_the_persons_language(
    visitor: Visitor, structure: Structure, db_session: Session
) -> None:
    archive(db_session, structure)
    for lang in ("en", "es", "ar"):
        page = visitor.get(f"/s/{structure.slug}?lang={lang}")
        assert page.status_code == 410
        assert f'lang="{lang}"' in visitor.html


def test_people_already_there_finish_and_come_back(
    visitor: Visitor, structure: Structure, db_session: Session, definition: Definition
) -> None:
    # One person finished 'before', another stopped half-way.
    code = visitor.complete(structure.slug, "before")
    halfway = Visitor(visitor.client.application.test_client())
    started = halfway.start(structure.slug, "before")
    halfway.fill(BEFORE, started, until="p_tasks_safety")
    archive(db_session, structure)
    # The half-way person goes on (the session still holds the form) and sends it.
    halfway.fill(BEFORE, "/q/p_tasks_safety")
    assert halfway.url == "/check"
    assert path_of(halfway.submit().headers["Location"]) == "/done"
    # The first comes back with the code: the 'after' form is theirs to answer.
    back = Visitor(visitor.client.application.test_client())
    assert back.enter_code(code).status_code == 302
    welcome = back.get("/welcome-back")
    assert welcome.status_code == 200
    chosen = next(f for f in back.forms() if f.method == "post")
    after = back.post("/welcome-back", chosen.hidden())
    assert after.status_code == 302 and path_of(after.headers["Location"]).startswith("/q/")
    back.fill(AFTER, after)
    assert back.url == "/check"
    assert path_of(back.submit().headers["Location"]) == "/done"


def test_an_unused_paper_code_of_an_archived_structure_is_refused(
    visitor: Visitor, structure: Structure, db_session: Session
) -> None:
    found = db_session.get(Structure, structure.id)
    assert found is not None
    (person,) = journey.create_codes(db_session, found, 1)
    db_session.commit()
    code = person.code
    archive(db_session, structure)
    page = visitor.enter_code(code)
    assert page.status_code == 410
    visitor.last = page
    assert CLOSED_FR in visitor.text
    assert count_responses(db_session) == 0
