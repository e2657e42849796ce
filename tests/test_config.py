"""Settings from the environment: defaults, the secret key file, refusals of bad values."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import event

from selfcheck.platform.config import (
    SECRET_KEY_FILE,
    ConfigError,
    Settings,
    key_folder,
    load_or_create_secret_key,
    secret_key_path,
)
from selfcheck.platform.db import make_engine


def test_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env(tmp_path)
    # The file name of before the package move (existing instances keep their database)
    assert settings.database_url == f"sqlite:///{tmp_path / 'selfcheck.db'}"
    assert settings.languages == ("fr", "en", "es", "ar")
    assert settings.default_language == "fr"
    assert settings.max_content_length == 64 * 1024
    assert settings.cookie_secure is False
    assert settings.sqlite_synchronous == "NORMAL"
    assert settings.postgres_pre_ping is True
    assert settings.postgres_synchronous_commit == "on"
    assert settings.postgres_page_saves_wait is False
    config = settings.flask_config()
    assert config["SECRET_KEY"] == settings.secret_key
    assert config["BABEL_DEFAULT_LOCALE"] == "fr"


def test_secret_key_is_created_once_with_mode_0600_and_reused(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    first = Settings.from_env(instance).secret_key
    path = secret_key_path(instance)
    assert path.is_file() and path.parent == key_folder()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 64
    assert path.read_text(encoding="ascii") == first
    assert Settings.from_env(instance).secret_key == first
    assert load_or_create_secret_key(instance) == first


def test_secret_key_file_content_is_stripped(tmp_path: Path) -> None:
    (tmp_path / SECRET_KEY_FILE).write_text("  a-key-written-by-hand\n", encoding="ascii")
    assert Settings.from_env(tmp_path).secret_key == "a-key-written-by-hand"


def test_environment_secret_key_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFCHECK_SECRET_KEY", "from-the-environment")
    assert Settings.from_env(tmp_path).secret_key == "from-the-environment"
    assert list(tmp_path.iterdir()) == []
    (tmp_path / SECRET_KEY_FILE).write_text("from-the-file", encoding="ascii")
    assert Settings.from_env(tmp_path).secret_key == "from-the-environment"


def test_two_instances_get_different_keys(tmp_path: Path) -> None:
    assert (
        Settings.from_env(tmp_path / "a").secret_key != Settings.from_env(tmp_path / "b").secret_key
    )


def test_values_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "DATABASE_URL": "postgresql+psycopg://u:p@db/selfcheck",
        "LANGUAGES": " en , fr ,, ",
        "DEFAULT_LANGUAGE": "en",
        "MAX_CONTENT_LENGTH": "1000",
        "COOKIE_SECURE": "yes",
        "SQLITE_SYNCHRONOUS": "full",
        "POSTGRES_PRE_PING": "0",
        "POSTGRES_SYNCHRONOUS_COMMIT": " OFF ",
        "POSTGRES_PAGE_SAVES_WAIT": "1",
        "SECRET_KEY": "k",
    }.items():
        monkeypatch.setenv("SELFCHECK_" + name, value)
    settings = Settings.from_env(tmp_path)
    assert settings.database_url == "postgresql+psycopg://u:p@db/selfcheck"
    assert settings.languages == ("en", "fr")
    assert settings.default_language == "en"
    assert settings.max_content_length == 1000
    assert settings.cookie_secure is True
    assert settings.sqlite_synchronous == "FULL"
    assert settings.postgres_pre_ping is False
    assert settings.postgres_synchronous_commit == "off"
    assert settings.postgres_page_saves_wait is True
    config = settings.flask_config()
    assert config["MAX_CONTENT_LENGTH"] == config["MAX_FORM_MEMORY_SIZE"] == 1000
    assert config["SESSION_COOKIE_SECURE"] is True


def test_bad_synchronous_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFCHECK_POSTGRES_SYNCHRONOUS_COMMIT", "sometimes")
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(tmp_path)
    assert "SELFCHECK_POSTGRES_SYNCHRONOUS_COMMIT must be one of" in str(caught.value)


class _Stop(Exception):
    pass


def test_postgres_engine_options() -> None:
    # No server needed: the connection parameters are caught before anything connects.
    url = "postgresql+psycopg://u:p@127.0.0.1:1/none"
    seen: dict[str, object] = {}

    def catch(_dialect: object, _record: object, _args: object, params: dict[str, object]) -> None:
        seen.update(params)
        raise _Stop

    engine = make_engine(url, pre_ping=False, synchronous_commit="off")
    event.listen(engine, "do_connect", catch)
    with pytest.raises(_Stop):
        engine.connect()
    assert engine.pool._pre_ping is False
    assert not engine.pool.dispatch.checkout  # no test of pooled connections at all
    assert seen["options"] == "-c synchronous_commit=off"  # in the start-up packet
    engine.dispose()
    seen.clear()
    default = make_engine(url)
    event.listen(default, "do_connect", catch)
    with pytest.raises(_Stop):
        default.connect()
    # Tested on checkout by platform/db.py, which pings only when needed (not pool_pre_ping).
    assert default.pool._pre_ping is False
    assert default.pool.dispatch.checkout
    assert "options" not in seen
    default.dispose()


@pytest.mark.parametrize("value", ["64k", "", "1.5", "lots"])
def test_bad_max_content_length(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SELFCHECK_MAX_CONTENT_LENGTH", value)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(tmp_path)
    assert "SELFCHECK_MAX_CONTENT_LENGTH must be an integer" in str(caught.value)
    assert repr(value) in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("TRUE", True), ("on", True), ("0", False), ("off", False), ("", False)],
)
def test_booleans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    monkeypatch.setenv("SELFCHECK_COOKIE_SECURE", value)
    assert Settings.from_env(tmp_path).cookie_secure is expected


def test_bad_boolean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFCHECK_COOKIE_SECURE", "maybe")
    with pytest.raises(ConfigError, match="SELFCHECK_COOKIE_SECURE must be a boolean"):
        Settings.from_env(tmp_path)


def test_default_language_must_be_offered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFCHECK_DEFAULT_LANGUAGE", "de")
    with pytest.raises(
        ConfigError,
        match="SELFCHECK_DEFAULT_LANGUAGE='de' is not in SELFCHECK_LANGUAGES=fr,en,es,ar",
    ):
        Settings.from_env(tmp_path)


def test_bad_sqlite_synchronous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFCHECK_SQLITE_SYNCHRONOUS", "OFF")
    with pytest.raises(ConfigError, match="SQLITE_SYNCHRONOUS"):
        Settings.from_env(tmp_path)


def test_create_app_reads_the_environment(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SELFCHECK_MAX_CONTENT_LENGTH", "4096")
    monkeypatch.setenv("SELFCHECK_SECRET_KEY", "shared-by-every-instance")
    app = make_app()
    assert app.config["MAX_CONTENT_LENGTH"] == 4096
    assert app.secret_key == "shared-by-every-instance"


def test_create_app_refuses_a_bad_environment(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SELFCHECK_MAX_CONTENT_LENGTH", "big")
    with pytest.raises(ConfigError):
        make_app()


def test_overrides_win_over_the_environment(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SELFCHECK_DATABASE_URL", "sqlite:////nonexistent/never-used.db")
    app = make_app(SECRET_KEY="override")
    assert app.secret_key == "override"
    assert "never-used" not in app.extensions["selfcheck.platform.db"].url


def test_site_address_and_folder_of_rendered_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings.from_env(tmp_path)
    assert (settings.site_url, settings.paper_cache_dir) == ("", None)  # instance/paper-blanks
    monkeypatch.setenv("SELFCHECK_SITE_URL", " https://selfcheck.example.org/ ")
    monkeypatch.setenv("SELFCHECK_PAPER_CACHE_DIR", "")  # no cache
    settings = Settings.from_env(tmp_path)
    assert settings.flask_config()["SELFCHECK_SITE_URL"] == "https://selfcheck.example.org"
    assert settings.paper_cache_dir == ""
    monkeypatch.setenv("SELFCHECK_SITE_URL", "selfcheck.example.org")
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(tmp_path)
    assert "SELFCHECK_SITE_URL must start with https://" in str(caught.value)
