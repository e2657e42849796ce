"""attack11: what the `one_database` marker's check (tests/conftest.py, `pytest_runtest_call`)
does not see: statements sent while the test's fixtures are set up, and statements sent on a
raw DBAPI connection (no SQLAlchemy event). A marked test can so depend on a query and still
be left out of the PostgreSQL pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

INNER = """
import pytest
from sqlalchemy import create_engine, text


@pytest.fixture
def queried() -> int:
    engine = create_engine("sqlite://")
    with engine.connect() as connection:
        return int(connection.scalar(text("SELECT 41 + 1")))


@pytest.mark.one_database(reason="claims no query")
def test_in_fixture(queried: int) -> None:
    assert queried == 42


@pytest.mark.one_database(reason="claims no query")
def test_raw_dbapi() -> None:
    engine = create_engine("sqlite://")
    raw = engine.raw_connection()
    try:
        assert raw.cursor().execute("SELECT 1").fetchone() == (1,)
    finally:
        raw.close()
"""


def test_a_marked_test_that_queries_in_a_fixture_or_on_a_raw_cursor_fails(
    tmp_path: Path,
) -> None:
    inner = tmp_path / "test_inner.py"
    inner.write_text(INNER, encoding="utf-8")
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "tests.conftest", "-c", "pyproject.toml"),
            *("--rootdir", ".", str(inner), "-q", "-p", "no:randomly", "-p", "no:cacheprovider"),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert "2 failed" in run.stdout, run.stdout[-2000:]
