"""The health endpoint: 200 with the database, 503 without, nothing leaked, no cookie."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.exc import OperationalError

from selfcheck.platform import health
from selfcheck.platform.db import EXTENSION_KEY
from selfcheck.platform.log import REQUEST_LOGGER


def test_ok_when_the_database_answers(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers


def test_503_without_detail_when_the_database_fails(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = app.extensions[EXTENSION_KEY].engine

    def broken() -> None:
        raise OperationalError("SELECT 1", {}, Exception("password authentication failed"))

    monkeypatch.setattr(engine, "connect", broken)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable"}
    assert b"password" not in response.data
    assert "Set-Cookie" not in response.headers


def test_unreachable_postgres_is_unavailable() -> None:
    from selfcheck.platform.db import make_engine

    # Port 9 (discard) on the loopback: nothing listens, the connection is refused.
    engine = make_engine("postgresql+psycopg://nobody:secret@127.0.0.1:9/none")
    try:
        assert health.database_ok(engine) is False
    finally:
        engine.dispose()


def test_not_logged_at_info(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=REQUEST_LOGGER):
        client.get("/healthz")
        client.get("/")
    routes = [getattr(record, "status", None) for record in caplog.records]
    assert len(routes) == 1  # the other page only, not the probe


def test_a_post_is_refused(client: FlaskClient) -> None:
    assert client.post("/healthz").status_code in {400, 405}
