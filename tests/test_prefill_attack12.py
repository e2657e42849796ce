"""attack12: the worker's codebooks-first step (round 19, mem19) attacked from outside: what a
killed chain, a corrupted note or a hostile file left in the cache folder does to the
worker's start (selfcheck/prefill.py, `_crashed`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfcheck import prefill

# --- codebooks first: the crashed-note file and what is left in the cache folder ----------


def _left_by_a_killed_link(cache: Path, name: str) -> None:
    """What a link SIGKILLed (or out of memory) mid-render leaves: its request as `.doing`."""
    stale = cache / (prefill.CHAIN_PREFIX + "abc123")
    stale.mkdir(parents=True)
    (stale / "0003.doing").write_text(json.dumps({"output": str(cache / name)}))


def test_a_crashed_codebook_stays_noted_at_every_later_start(tmp_path: Path) -> None:
    """Held (a guard): the note's name begins with the chain folders' prefix, so the sweep of
    stale chain folders meets it too; `shutil.rmtree(..., ignore_errors=True)` leaves a plain
    file alone (NotADirectoryError, ignored), so the crashed codebook stays skipped at every
    later start, not every second one."""
    cache = tmp_path / "cache"
    _left_by_a_killed_link(cache, "codebook-x.pdf")
    assert prefill._crashed(cache) == {"codebook-x.pdf"}  # the start after the kill
    for _ in range(3):  # every start after that
        assert prefill._crashed(cache) == {"codebook-x.pdf"}
        assert (cache / prefill.CRASHED_FILE).is_file()


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe\x00garbage \xc3\x28\n",  # not UTF-8 (a disk error, a hostile hand)
        b"codebook-a.pdf\n\xe9t\xe9\n",
    ],
)
def test_a_corrupted_crashed_note_does_not_stop_the_worker(tmp_path: Path, content: bytes) -> None:
    """A note that is not UTF-8 raised UnicodeDecodeError out of `codebooks_first`: the
    worker's command failed at every start (the service restarting it in a loop), and no
    job (export, print batch) ran."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / prefill.CRASHED_FILE).write_bytes(content)
    crashed = prefill._crashed(cache)
    assert isinstance(crashed, set)


@pytest.mark.parametrize(
    "content",
    [
        "[" * 200_000,  # nested past the recursion limit: RecursionError
        '{"output": "' + "x" * 5000 + '"}',  # a name too long for the file system
        '{"output": "\\u0000"}',  # a NUL in a path: ValueError
        "null",
    ],
)
def test_a_hostile_left_request_does_not_stop_the_worker(tmp_path: Path, content: str) -> None:
    cache = tmp_path / "cache"
    stale = cache / (prefill.CHAIN_PREFIX + "zz")
    stale.mkdir(parents=True)
    (stale / "0000.doing").write_text(content)
    crashed = prefill._crashed(cache)
    assert isinstance(crashed, set)
    assert not stale.exists()
