"""CSRF tokens verified once per worker (`security.CheckedCSRFProtect`, issue 18, req21): a
token seen again is still tied to its own session, a time limit or a new key turns the
shortcut off, and Flask-WTF's steps around it are the ones pinned here."""

from __future__ import annotations

import hashlib
import inspect
import logging
import time

import flask_wtf.csrf
import itsdangerous.timed
import pytest
from flask import Flask

from selfcheck.platform import security
from selfcheck.platform.models import Structure
from tests.support import Visitor, csrf_token

# Flask-WTF 1.3's `CSRFProtect.protect` and `validate_csrf`, which `CheckedCSRFProtect.protect`
# and `_validate_csrf_once` follow step by step: if Flask-WTF changes them, read them again
# and update both (and these digests).
PINNED = {
    "protect": "60961f8ee3e9ef3f377bdbad69ebd0a23d8358417b7d52c6e707462046f56986",
    "validate_csrf": "647c0372b8c77385df37c7c3354812c215eef6fe8ffe6d3f476b6103f9be432c",
}


def _started(visitor: Visitor, structure: Structure) -> str:
    location = visitor.start(structure.slug).headers["Location"]
    assert visitor.get(location).status_code == 200
    return location


def _verified(app: Flask) -> dict[tuple[object, str], str]:
    found: dict[tuple[object, str], str] = app.extensions.get(security.CSRF_VERIFIED_KEY, {})
    return found


def test_flask_wtfs_steps_are_the_ones_followed() -> None:
    for function in (flask_wtf.csrf.CSRFProtect.protect, flask_wtf.csrf.validate_csrf):
        digest = hashlib.sha256(inspect.getsource(function).encode()).hexdigest()
        assert digest == PINNED[function.__name__], function.__name__


def test_the_app_uses_the_checked_protection(app: Flask) -> None:
    assert isinstance(app.extensions["csrf"], security.CheckedCSRFProtect)


def test_a_verified_token_is_kept_and_still_tied_to_its_session(
    visitor: Visitor, structure: Structure, app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    location = _started(visitor, structure)
    theirs = csrf_token(visitor.html)
    assert visitor.answer({"ASSIST": ["seul"]}).status_code == 302
    assert theirs in {token for _key, token in _verified(app)}
    # Seen again: accepted from the worker's memory, for the same session.
    visitor.get(location)
    assert visitor.answer({"ASSIST": ["seul"]}).status_code == 302
    # Another session posting that remembered token: refused, as Flask-WTF refuses it.
    other = Visitor(app.test_client())
    _started(other, structure)
    with caplog.at_level(logging.INFO, logger="flask_wtf.csrf"):
        refused = other.answer({"ASSIST": ["seul"]}, csrf_token=theirs)
    assert refused.status_code == 400
    assert "The CSRF tokens do not match." in caplog.messages
    assert other.answer({"ASSIST": ["seul"]}).status_code == 302  # its own token: saved


def test_a_remembered_token_without_a_session_secret_is_refused(
    visitor: Visitor, structure: Structure, app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    location = _started(visitor, structure)
    token = csrf_token(visitor.html)
    assert visitor.answer({"ASSIST": ["seul"]}).status_code == 302
    assert token in {kept for _key, kept in _verified(app)}
    stranger = app.test_client()  # no session at all
    with caplog.at_level(logging.INFO, logger="flask_wtf.csrf"):
        refused = stranger.post(location, data={"csrf_token": token, "action": "next"})
    assert refused.status_code == 400
    assert "The CSRF session token is missing." in caplog.messages
    with caplog.at_level(logging.INFO, logger="flask_wtf.csrf"):
        assert visitor.post(location, {"action": "next"}, csrf=False).status_code == 400
    assert "The CSRF token is missing." in caplog.messages


def test_with_a_time_limit_every_token_is_verified_again(
    visitor: Visitor,
    structure: Structure,
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    location = _started(visitor, structure)
    token = csrf_token(visitor.html)
    assert visitor.answer({"ASSIST": ["seul"]}).status_code == 302
    assert _verified(app)
    # A time limit set afterwards: the remembered token is not taken, its age is checked.
    app.config["WTF_CSRF_TIME_LIMIT"] = 3600
    later = time.time() + 3601
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: later)
    visitor.get(location)
    with caplog.at_level(logging.INFO, logger="flask_wtf.csrf"):
        expired = visitor.post(location, {"csrf_token": token, "action": "next", "ASSIST": "seul"})
    assert expired.status_code == 400
    assert "The CSRF token has expired." in caplog.messages


def test_a_new_csrf_key_does_not_take_what_the_old_one_verified(
    visitor: Visitor, structure: Structure, app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    location = _started(visitor, structure)
    token = csrf_token(visitor.html)
    assert visitor.answer({"ASSIST": ["seul"]}).status_code == 302
    app.config["WTF_CSRF_SECRET_KEY"] = "another CSRF key, long enough for the test"
    visitor.get(location)
    with caplog.at_level(logging.INFO, logger="flask_wtf.csrf"):
        refused = visitor.post(location, {"csrf_token": token, "action": "next", "ASSIST": "seul"})
    assert refused.status_code == 400
    assert "The CSRF token is invalid." in caplog.messages


def test_a_forged_token_is_never_remembered(
    visitor: Visitor, structure: Structure, app: Flask
) -> None:
    _started(visitor, structure)
    assert visitor.answer({"ASSIST": ["seul"]}, csrf_token="forged").status_code == 400
    assert "forged" not in {token for _key, token in _verified(app)}


def test_the_remembered_tokens_are_bounded(
    visitor: Visitor, structure: Structure, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(security, "CSRF_VERIFIED_MAX", 1)
    _started(visitor, structure)
    assert visitor.answer({"ASSIST": ["seul"]}).status_code == 302
    other = Visitor(app.test_client())
    _started(other, structure)
    assert other.answer({"ASSIST": ["seul"]}).status_code == 302
    assert len(_verified(app)) == 1
