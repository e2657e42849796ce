"""What every benchmark shares: the machine description, summary rows, the result file.

The contract (HELPERS.md, "Benchmark contract"): each `benchmarks/bench_<name>.py` writes
`benchmarks/results/<name>.json` holding at least
`{"benchmark": name, "machine": {...}, "summary": [row, ...]}`; `run_all.py` reads those
files and builds BENCHMARKS.md. Standard library only, so any benchmark can import it
(`from common import ...` when run as a script: its folder is on sys.path).
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
POSTGRES_ENV = "SELFCHECK_BENCH_POSTGRES_URL"
ROW_KEYS = (
    "figure",
    "database",
    "value",
    "unit",
    "baseline",
    "baseline_value",
    "ratio",
    "goal",
    "met",
)


def row(
    figure: str,
    value: float | None,
    unit: str,
    *,
    goal: str,
    database: str | None = None,
    baseline: str | None = None,
    baseline_value: float | None = None,
    ratio: float | None = None,
    met: bool | None = None,
) -> dict[str, Any]:
    """One summary row; the ratio is value / baseline_value unless given."""
    if ratio is None and value is not None and baseline_value:
        ratio = value / baseline_value
    return {
        "figure": figure,
        "database": database,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_value": baseline_value,
        "ratio": ratio,
        "goal": goal,
        "met": met,
    }


def not_run(figure: str, unit: str, goal: str, database: str, why: str) -> dict[str, Any]:
    """A row for a figure that could not be measured (e.g. no PostgreSQL configured)."""
    entry = row(figure, None, unit, goal=goal, database=database)
    entry["note"] = f"not run: {why}"
    return entry


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except (OSError, ValueError):
        pass
    return None


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text(encoding="utf-8").splitlines():
            if line.startswith("PRETTY_NAME="):
                return f"{line.split('=', 1)[1].strip(chr(34))}, Linux {platform.release()}"
    except OSError:
        pass
    return platform.platform()


def postgres_version(url: str | None = None) -> str | None:
    """The server version behind SELFCHECK_BENCH_POSTGRES_URL, or None when unset/unreachable."""
    url = url or os.environ.get(POSTGRES_ENV)
    if not url:
        return None
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                return str(connection.execute(text("SHOW server_version")).scalar_one())
        finally:
            engine.dispose()
    except Exception:  # any failure: the version is informative only
        return None


def machine() -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _memory_gib(),
        "os": _os_name(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_version(),
    }


def load_average() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return None


def write_result(name: str, summary: list[dict[str, Any]], **extra: Any) -> Path:
    """benchmarks/results/<name>.json with the contract's keys first."""
    RESULTS_DIR.mkdir(exist_ok=True)
    payload = {
        "benchmark": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "summary": summary,
        **extra,
    }
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


# --- a server under test (gunicorn in its own process group) -------------------------------


def log_tail(log_path: Path, handle: Any, lines: int) -> str:
    """The last `lines` lines of a server's log file (flushing our handle on it first)."""
    handle.flush()
    text = log_path.read_text(encoding="utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def stop_process_group(process: Any, handle: Any, grace: float) -> None:
    """SIGTERM the server's whole process group, SIGKILL after `grace` seconds; close its log."""
    import signal
    import subprocess

    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        except ProcessLookupError:
            pass
    handle.close()


def signed_in_cookie(user: Any) -> dict[str, Any]:
    """The staff session of a finished sign-in (second factor included) for `user`: the
    benchmarks that time a request behind sign-in put it in the test client's session."""
    import time

    from selfcheck.accounts import session as staff_session

    now = int(time.time())
    return {
        staff_session.STAFF_ID: user.id,
        staff_session.SIGNED_IN_AT: now,
        staff_session.LAST_SEEN: now,
        staff_session.PASSWORD_STAMP: staff_session._password_stamp(user),
        staff_session.GENERATION: user.session_generation,
    }
