"""The secret key file: created once, atomically, even when workers start together."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from selfcheck.platform.config import ConfigError, load_or_create_secret_key


def test_workers_starting_together_share_one_complete_key(tmp_path: Path) -> None:
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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret_key"]  # no drafts left


def test_an_empty_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("", encoding="ascii")
    with pytest.raises(ConfigError, match="is empty"):
        load_or_create_secret_key(tmp_path)
