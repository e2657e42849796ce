"""attack11: a session kept by the question pages served before Flask (page18) whose person
was erased meanwhile is not served from what was kept; a hostile answer is escaped the same
on both paths."""

from __future__ import annotations

import io

from flask import Flask
from sqlalchemy import delete, select

from selfcheck.platform.db import Database
from selfcheck.platform.models import Answer, Response, Structure
from selfcheck.questionnaire.model import FormKind
from tests.support import ANSWERS, Visitor
from tests.views.test_fast_page import (
    COOKIE,
    _fast_served,
    _session_cookie,
    access_lines,  # noqa: F401 (fixture)
    assert_same,
    both_paths,
    on_page,  # noqa: F401 (fixture)
    walk,
)

HOSTILE = '</textarea><script>alert("x")</script>\'&amp;<b>'


def _latest_response(database: Database) -> int:
    with database.session() as session:
        found = session.scalar(select(Response.id).order_by(Response.id.desc()))
    assert found is not None
    return found


def test_a_kept_session_whose_response_is_erased_goes_to_flask(
    visitor: Visitor,
    app: Flask,
    on_page: str,  # noqa: F811
    access_lines: io.StringIO,  # noqa: F811
    database: Database,
) -> None:
    cookie = f"{COOKIE}={_session_cookie(visitor)}"
    assert _fast_served(app, on_page, cookie, access_lines)
    assert _fast_served(app, on_page, cookie, access_lines)  # from what was kept
    response_id = _latest_response(database)
    with database.session() as session:
        session.execute(delete(Answer).where(Answer.response_id == response_id))
        session.execute(delete(Response).where(Response.id == response_id))
        session.commit()
    flask_result, _fast, served = both_paths(app, on_page, cookie, access_lines)
    assert not served
    assert flask_result[0].startswith("302")


def test_a_hostile_comment_is_escaped_the_same_on_both_paths(
    visitor: Visitor,
    structure: Structure,
    app: Flask,
    access_lines: io.StringIO,  # noqa: F811
) -> None:
    """The after form's comment, typed with markup and quotes, shown back on its page: the
    bytes joined from pre-encoded texts (`Template.fill_bytes`) escape it as Flask's path."""
    code = visitor.complete(structure.slug)
    visitor.follow(visitor.enter_code(code))
    started = visitor.post("/welcome-back")
    answers = {**ANSWERS[FormKind.AFTER], "COMMENT": (HOSTILE,)}
    walk(visitor, app, started.headers["Location"], answers, access_lines)
    cookie = f"{COOKIE}={_session_cookie(visitor)}"
    flask_result, fast_result, served = both_paths(app, "/q/p_comment", cookie, access_lines)
    assert flask_result[0] == "200 OK" and served
    assert_same(flask_result, fast_result)
    body = fast_result[2]
    assert b"<script>" not in body and b"</textarea><script>" not in body
    assert b"&lt;/textarea&gt;&lt;script&gt;" in body
