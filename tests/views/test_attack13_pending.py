"""attack13: the answers typed into a paper form when the staff session expired (kept in
the session cookie for the typist's next sign-in, docs/security.md) do not stay in the
cookie of someone else who signs in on that browser.

Finding A13-2: `sign_in` carried the kept fields into any account's new session; only a
visit of the very screen (`take_pending_post`) dropped them. A colleague (or the next
person at a shared computer) signing in without `next=` kept another typist's answers,
readable from the cookie jar, for their whole session. They are now kept only for the
account that typed them.
"""

from __future__ import annotations

from flask import Flask
from sqlalchemy.orm import Session

from selfcheck.accounts.session import PENDING_POST
from selfcheck.platform.models import Structure
from selfcheck.questionnaire.model import NO_ANSWER
from tests.staff import Account, sign_in, signed_in
from tests.support import Visitor
from tests.views.test_entry import (  # noqa: F401
    colleague,
    mediator,
    post_once_expired,
    printed,
    screen_url,
)


def test_a13_2_kept_answers_leave_the_cookie_when_someone_else_signs_in(
    app: Flask,
    db_session: Session,
    structure: Structure,
    mediator: Account,  # noqa: F811
    colleague: Account,  # noqa: F811
) -> None:
    visitor = signed_in(app, mediator)
    url = screen_url(visitor, printed(db_session, structure))
    typed = {"ASSIST": ["proche"], "AGE": [NO_ANSWER], "action": ["save"]}
    sent = post_once_expired(app, visitor, url, typed)
    assert "kept=1" in sent.headers["Location"]
    with visitor.client.session_transaction() as cookie:
        assert PENDING_POST in cookie
    other = Visitor(visitor.client)
    assert sign_in(other, colleague.email).status_code == 302  # no next=: the home page
    other.get("/staff/")
    with visitor.client.session_transaction() as cookie:
        assert PENDING_POST not in cookie
