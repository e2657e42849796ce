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


# --- the chain's links (weasy.chain) under a hung render and the service's stop signals ---

_LINK = """
import sys, time
from pathlib import Path
from selfcheck.platform import weasy

def hung(*args, **kwargs):
    {hang}
    time.sleep(3600)

weasy.render = hung
for name, value in {settings}.items():
    setattr(weasy, name, value)
weasy.chain(Path(sys.argv[1]), None, sys.argv[2:])
"""


def _chain_link(
    tmp_path: Path, hang: str = "pass", settings: dict[str, int] | None = None
) -> tuple[Path, list[str]]:
    """A first link whose render hangs (`weasy.render` replaced), for one request; the next
    links are the real `weasy.py --chain`; `then` prints a line and ends."""
    import sys

    from selfcheck.platform import printing

    cache = tmp_path / "cache"
    folder = cache / (prefill.CHAIN_PREFIX + "hung")
    folder.mkdir(parents=True)
    directory = Path(printing.__file__).resolve().parent.parent / "paper" / "templates"
    request = printing.printer(directory).apart_request("<p>x</p>", ["codebook.css"])
    (folder / "0000.json").write_text(json.dumps({**request, "output": str(cache / "x.pdf")}))
    script = _LINK.format(hang=hang, settings=settings or {})
    then = [sys.executable, "-c", "print('then reached')"]
    return folder, [sys.executable, "-c", script, str(folder), *then]


def _repo() -> str:
    return str(Path(prefill.__file__).resolve().parent.parent)


def test_a_hung_codebook_render_does_not_keep_the_worker_from_starting(tmp_path: Path) -> None:
    """A render that never ends (a font server, a layout loop) kept the chain's link, which
    is the worker's own process, there for ever, holding the folder's lock: the worker never
    took a job (the former ExecStartPre had TimeoutStartSec and `-`; `pdf_apart` has
    APART_TIMEOUT). A link now gives up its render after `LINK_TIMEOUT` seconds."""
    import subprocess

    folder, command = _chain_link(tmp_path, settings={"LINK_TIMEOUT": 2})
    done = subprocess.run(
        command, cwd=_repo(), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "then reached" in done.stdout
    assert "not rendered" in done.stderr
    assert not folder.exists()


def test_a_render_stuck_beyond_its_signal_ends_the_link_its_request_noted(
    tmp_path: Path,
) -> None:
    """Stuck where the alarm's handler cannot run (SIGALRM blocked here, as a C library
    that never returns): the link ends itself a little later, its request left as `.doing`,
    so that the next start notes the codebook and does not try it again."""
    import subprocess

    folder, command = _chain_link(
        tmp_path,
        hang="import signal; signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})",
        settings={"LINK_TIMEOUT": 1, "LINK_GRACE": 1},
    )
    done = subprocess.run(
        command, cwd=_repo(), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode != 0
    assert "then reached" not in done.stdout
    assert prefill._crashed(folder.parent) == {"x.pdf"}


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_a_link_stopped_by_the_service_ends_by_its_signal(tmp_path: Path, signame: str) -> None:
    """Stopped mid-render (`systemctl stop`: KillSignal=SIGINT; a SIGTERM), the link puts its
    request back and ended with `_exit(128 + signum)`, a plain exit status: systemd counts
    only a death by the signal it sent as a clean stop, and marked the unit failed. The link
    now ends by the signal itself."""
    import signal
    import subprocess
    import time

    folder, command = _chain_link(tmp_path)
    process = subprocess.Popen(
        command,
        cwd=_repo(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As systemd starts it: SIGINT not ignored (a pytest-xdist worker ignores it, and the
        # link rightly keeps a SIGINT its parent ignored).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 60
        while not list(folder.glob("*.doing")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.2)  # in the hung render
        process.send_signal(getattr(signal, signame))
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()  # its pipes closed too
    assert process.returncode == -getattr(signal, signame), (process.returncode, err)
    assert [path.name for path in folder.iterdir()] == ["0000.json"]  # put back
    assert "then reached" not in out


def test_the_chain_passes_a_command_with_spaces_and_separators_whole(tmp_path: Path) -> None:
    """Held: a cache folder with spaces, and a worker command whose own arguments hold
    spaces, `--` and `--lock`, reach the worker's command unchanged (argv lists, no shell;
    the first `--` is the chain's)."""
    import subprocess
    import sys

    from selfcheck.platform import printing

    folder = tmp_path / "cache with spaces" / (prefill.CHAIN_PREFIX + "a b")
    folder.mkdir(parents=True)
    then = [
        sys.executable,
        "-c",
        "import json, sys; print(json.dumps(sys.argv[1:]))",
        "an argument with spaces",
        "--",
        "--lock",
        "7",
    ]
    done = subprocess.run(
        [sys.executable, "-P", str(printing.WEASY_SCRIPT), "--chain", str(folder), "--", *then],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == then[3:]
    assert not folder.exists()
