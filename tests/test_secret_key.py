"""The secret key file: created once, atomically, even when workers start together."""

from __future__ import annotations

import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from selfcheck.cli import main
from selfcheck.platform import config
from selfcheck.platform.config import (
    KEY_ID_FILE,
    SECRET_KEY_FILE,
    ConfigError,
    Settings,
    beside_the_database,
    key_folder,
    load_or_create_secret_key,
    secret_key_path,
)


def test_workers_starting_together_share_one_complete_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path.parent / f"{tmp_path.name}-state"))
    keys: list[str] = []
    barrier = threading.Barrier(8)

    def start_worker() -> None:
        barrier.wait()
        keys.append(load_or_create_secret_key(tmp_path))

    threads = [threading.Thread(target=start_worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1 and len(keys[0]) >= 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret_key_id"]  # no drafts left
    assert [p.name for p in key_folder().iterdir()] == [  # one key (the others' removed)
        (tmp_path / "secret_key_id").read_text(encoding="ascii").strip()
    ]


def test_an_empty_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("", encoding="ascii")
    with pytest.raises(ConfigError, match="is empty"):
        load_or_create_secret_key(tmp_path)


# --- attack24: the key away from the SQLite database's folder --------------------------------


def test_attack24_a_new_instance_folder_holds_no_key(tmp_path: Path) -> None:
    """A copy of the instance folder (the SQLite database beside) unseals nothing: it holds
    the key's name, the key is in the user's state folder, 0600 in a 0700 folder."""
    instance = tmp_path / "instance"
    settings = Settings.from_env(instance)
    key = settings.secret_key
    assert settings.database_url == f"sqlite:///{instance / 'selfcheck.db'}"
    for path in instance.rglob("*"):
        assert key not in path.read_text(encoding="ascii")
    assert settings.secret_key_file is not None
    assert settings.secret_key_file.parent == key_folder()
    assert not beside_the_database(settings.secret_key_file, settings.database_url)
    assert stat.S_IMODE(settings.secret_key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_folder().stat().st_mode) == 0o700


def test_attack24_an_older_instance_keeps_its_key_and_is_warned(
    make_app: Callable[..., Flask], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An instance folder of before keeps its `secret_key` (sealed values stay readable), and
    each start beside a SQLite file says so."""
    instance = tmp_path / "older"
    instance.mkdir()
    (instance / SECRET_KEY_FILE).write_text("the-key-of-before\n", encoding="ascii")
    app = make_app(INSTANCE_PATH=instance, DATABASE_URL=f"sqlite:///{instance / 'selfcheck.db'}")
    assert app.secret_key == "the-key-of-before"
    assert not (instance / KEY_ID_FILE).exists()
    assert "beside the SQLite database" in caplog.text
    caplog.clear()
    make_app(INSTANCE_PATH=instance, DATABASE_URL=f"sqlite:///{tmp_path / 'elsewhere.db'}")
    assert "beside the SQLite database" not in caplog.text


def test_attack24_the_move_keeps_the_key_and_takes_it_out(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    instance = tmp_path / "older"
    instance.mkdir()
    (instance / SECRET_KEY_FILE).write_text("the-key-of-before\n", encoding="ascii")
    app = make_app(INSTANCE_PATH=instance)
    result = app.test_cli_runner().invoke(main, ["move-secret-key"])
    assert result.exit_code == 0, result.output
    assert not (instance / SECRET_KEY_FILE).exists()
    moved = secret_key_path(instance)
    assert moved.parent == key_folder() and str(moved) in result.output
    assert stat.S_IMODE(moved.stat().st_mode) == 0o600
    assert load_or_create_secret_key(instance) == "the-key-of-before"
    again = app.test_cli_runner().invoke(main, ["move-secret-key"])
    assert again.exit_code == 0 and "nothing to move" in again.output
    assert load_or_create_secret_key(instance) == "the-key-of-before"


def test_attack24_a_named_key_that_is_missing_stops_the_start(tmp_path: Path) -> None:
    """The instance folder moved to another user or machine without its key: no new key in
    silence (every sealed value would be lost), a plain refusal naming what to restore."""
    instance = tmp_path / "instance"
    first = Settings.from_env(instance)
    assert first.secret_key_file is not None
    first.secret_key_file.unlink()
    with pytest.raises(ConfigError, match="is not in"):
        Settings.from_env(instance)
    (instance / KEY_ID_FILE).write_text("../../etc/passwd\n", encoding="ascii")
    with pytest.raises(ConfigError, match="does not name a key"):
        Settings.from_env(instance)


def test_attack24_a_stop_between_the_key_and_its_name_leaves_a_working_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key is written before its name: a stop between them costs an unused file, never
    a name without its key."""
    instance = tmp_path / "instance"
    instance.mkdir()
    real = config._write_once

    def stop_at_the_name(path: Path, text: str, mode: int) -> bool:
        if path.name == KEY_ID_FILE:
            raise KeyboardInterrupt
        return real(path, text, mode)

    monkeypatch.setattr(config, "_write_once", stop_at_the_name)
    with pytest.raises(KeyboardInterrupt):
        Settings.from_env(instance)
    monkeypatch.setattr(config, "_write_once", real)
    assert Settings.from_env(instance).secret_key == Settings.from_env(instance).secret_key


def test_attack24_no_folder_for_the_key_is_a_plain_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A home that cannot be written (or none): a message naming the setting, not a trace."""
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a folder", encoding="ascii")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocked))
    with pytest.raises(ConfigError, match="SELFCHECK_SECRET_KEY"):
        Settings.from_env(tmp_path / "instance")
    assert not (tmp_path / "instance" / KEY_ID_FILE).exists()
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.delenv("HOME", raising=False)

    def homeless() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", homeless)
    with pytest.raises(ConfigError, match="SELFCHECK_SECRET_KEY"):
        Settings.from_env(tmp_path / "other")
    monkeypatch.setenv("SELFCHECK_SECRET_KEY", "from-the-environment")
    assert Settings.from_env(tmp_path / "other").secret_key == "from-the-environment"
