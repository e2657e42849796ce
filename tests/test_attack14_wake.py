"""attack14: the job worker's wake file (platform/jobs.py `wake_token`, platform/weasy.py
`woken`) as something other than the small file `wake_workers` writes.

The file is read between two codebook renders and at a chain's start, and its content went
on the next link's command line (`--seen`). Before: a FIFO put there blocked the reader for
ever (the worker stuck, its jobs never taken); a huge file (or a link to /dev/zero) was read
whole into memory; a NUL in it made `os.execv` raise (ValueError: the worker ended, its
signals held), and a content of "--" was taken for the end of the link's options (IndexError:
the chain ended, no worker). Now: at most a few bytes of a regular file, opened without
waiting, and only letters and digits kept, the same on both sides (an unchanged file does not
wake the chain).
"""

from __future__ import annotations

import os
import threading
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from selfcheck.platform import jobs, weasy


def _queue(folder: Path) -> jobs.JobQueue:
    return cast(jobs.JobQueue, SimpleNamespace(results=folder))


def _promptly(read: object, wake: Path) -> None:
    """`read()` returns within 5 s; if not, the FIFO is opened for writing to let it go."""
    done = threading.Event()

    def target() -> None:
        assert callable(read)
        read()
        done.set()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    finished = done.wait(5)
    if not finished:
        os.close(os.open(wake, os.O_WRONLY))  # the blocked reader's open returns
        thread.join(5)
    assert finished, "the wake file's reader blocked on a FIFO"


def test_attack14_a_fifo_as_wake_file_blocks_no_reader(tmp_path: Path) -> None:
    wake = tmp_path / jobs.WAKE_FILE
    os.mkfifo(wake)
    queue = _queue(tmp_path)
    _promptly(lambda: jobs.wake_token(queue), wake)
    _promptly(lambda: weasy.woken(wake, ""), wake)
    assert jobs.wake_token(queue) == ""
    assert not weasy.woken(wake, "")


@pytest.mark.parametrize(
    "content", [b"--", b"-x", b"ab\x00cd", b"\xff\xfe--", b" 12 \n", b"a" * 100 + b"b"]
)
def test_attack14_the_token_is_safe_on_a_command_line_and_read_alike(
    tmp_path: Path, content: bytes
) -> None:
    wake = tmp_path / jobs.WAKE_FILE
    wake.write_bytes(content)
    token = jobs.wake_token(_queue(tmp_path))
    assert "\x00" not in token and not token.startswith("-")
    assert token.isascii() and (token == "" or token.isalnum())
    assert not weasy.woken(wake, token)  # the file has not changed: the chain goes on
    wake.write_bytes(b"0123abcd")
    assert weasy.woken(wake, token)


def test_attack14_a_huge_wake_file_is_not_read_whole(tmp_path: Path) -> None:
    wake = tmp_path / jobs.WAKE_FILE
    with wake.open("wb") as out:
        out.truncate(16 * 1024 * 1024)  # sparse: 16 MB of NUL, nothing on disk
    queue = _queue(tmp_path)
    tracemalloc.start()
    try:
        jobs.wake_token(queue)
        weasy.woken(wake, "")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024


def test_attack14_a_directory_or_a_dangling_link_reads_as_missing(tmp_path: Path) -> None:
    wake = tmp_path / jobs.WAKE_FILE
    wake.symlink_to(tmp_path / "nowhere")
    assert jobs.wake_token(_queue(tmp_path)) == ""
    wake.unlink()
    wake.mkdir()
    assert jobs.wake_token(_queue(tmp_path)) == ""
    assert not weasy.woken(wake, "")
