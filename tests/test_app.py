"""create_app: settings, definition, extensions, blueprints."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from selfcheck import DEFINITION_KEY, FORMS_KEY, create_app
from selfcheck.platform.db import EXTENSION_KEY
from selfcheck.questionnaire import DefinitionError
from tests.questionnaire.test_loader_errors import MINIMAL


def test_create_app_with_the_real_loader(database_url: str, tmp_path: Path) -> None:
    app = create_app({"DATABASE_URL": database_url, "INSTANCE_PATH": tmp_path, "TESTING": True})
    try:
        definition = app.extensions[DEFINITION_KEY]
        assert definition.id == "selfcheck-core"
        assert FORMS_KEY in app.extensions
        assert app.extensions[EXTENSION_KEY].url == database_url
        assert app.config["TESTING"] is True
        assert app.config["SESSION_COOKIE_HTTPONLY"] is True
        assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
        assert app.config["WTF_CSRF_TIME_LIMIT"] is None
        assert app.config["SELFCHECK_LANGUAGES"] == ("fr", "en", "es", "ar")
        assert "DATABASE_URL" not in app.config and "INSTANCE_PATH" not in app.config
        assert (tmp_path / "secret_key_id").exists() and not (tmp_path / "secret_key").exists()
        rules = {rule.rule for rule in app.url_map.iter_rules()}
        assert {"/", "/s/<slug>", "/q/<page_code>", "/check", "/code", "/summary"} <= rules
    finally:
        app.extensions[EXTENSION_KEY].dispose()


def test_another_definition_file(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "INSTANCE_PATH": tmp_path,
            "DEFINITION_PATH": path,
        }
    )
    try:
        assert app.extensions[DEFINITION_KEY].id == "tiny"
    finally:
        app.extensions[EXTENSION_KEY].dispose()


def test_a_broken_definition_stops_the_app_at_start(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(MINIMAL.replace("type: number", "type: slider"), encoding="utf-8")
    with pytest.raises(DefinitionError) as caught:
        create_app(
            {"DATABASE_URL": database_url, "INSTANCE_PATH": tmp_path, "DEFINITION_PATH": path}
        )
    assert str(path) in str(caught.value)
    assert "item COUNT" in str(caught.value)


def test_security_headers_of_the_session_cookie(app: Flask) -> None:
    assert app.config["SESSION_COOKIE_NAME"] == "selfcheck_session"
    assert app.config["SESSION_COOKIE_SECURE"] is False
    assert app.config["MAX_CONTENT_LENGTH"] == 64 * 1024
    assert app.config["MAX_FORM_MEMORY_SIZE"] == 64 * 1024


def test_static_stylesheet_is_served(app: Flask) -> None:
    page = app.test_client().get("/static/css/selfcheck.css")
    assert page.status_code == 200
    assert page.mimetype == "text/css"
    page.close()
