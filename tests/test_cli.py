"""The `selfcheck` command, driven through Flask's CLI runner (and once from the environment)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy import select

from selfcheck.cli import main
from selfcheck.platform.db import Database
from selfcheck.platform.models import Beneficiary, Response, Structure
from tests.conftest import AppFactory, is_postgres
from tests.support import count


def run(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(main, list(args))


def test_help_lists_the_commands(app: Flask) -> None:
    result = run(app, "--help")
    assert result.exit_code == 0
    for command in ("serve", "db", "structures", "demo"):
        assert command in result.output


def test_db_upgrade(app: Flask) -> None:
    result = run(app, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert result.output == "database upgraded to head\n"


def test_db_downgrade_then_upgrade(app: Flask, database: Database) -> None:
    result = run(app, "db", "downgrade", "base")
    assert result.exit_code == 0, result.output
    assert result.output == "database downgraded to base\n"
    result = run(app, "db", "upgrade")
    assert result.exit_code == 0
    assert count(database, Structure) == 0


def test_structures_add_and_list(app: Flask, database: Database) -> None:
    result = run(
        app,
        "structures",
        "add",
        "--name",
        "Médiathèque de Rezé",
        "--territory",
        "urbain",
        "--department",
        "44",
    )
    assert result.exit_code == 0, result.output
    assert result.output == "created Médiathèque de Rezé: start link /s/mediatheque-de-reze\n"
    result = run(
        app,
        "structures",
        "add",
        "--name",
        "Centre social",
        "--territory",
        "rural",
        "--department",
        "2a",
        "--slug",
        "cs-ajaccio",
    )
    assert result.exit_code == 0, result.output
    with database.session() as session:
        corsica = session.scalar(select(Structure).where(Structure.slug == "cs-ajaccio"))
        assert corsica is not None and corsica.department == "2A"
    listed = run(app, "structures", "list")
    assert listed.exit_code == 0
    assert listed.output.splitlines() == [
        "/s/cs-ajaccio\t2A\tCentre social",
        "/s/mediatheque-de-reze\t44\tMédiathèque de Rezé",
    ]


@pytest.mark.parametrize("department", ["100", "96", "XX"])
def test_structures_add_refuses_a_bad_department(
    app: Flask, database: Database, department: str
) -> None:
    result = run(
        app,
        "structures",
        "add",
        "--name",
        "Lieu",
        "--territory",
        "urbain",
        "--department",
        department,
    )
    assert result.exit_code == 2
    assert "is not a French department code" in result.output
    assert count(database, Structure) == 0


def test_structures_add_refuses_a_bad_territory(app: Flask, database: Database) -> None:
    result = run(
        app, "structures", "add", "--name", "Lieu", "--territory", "ville", "--department", "44"
    )
    assert result.exit_code == 2
    assert "'ville' is not one of" in result.output
    assert count(database, Structure) == 0


def test_structures_add_needs_a_name(app: Flask) -> None:
    result = run(app, "structures", "add", "--territory", "urbain", "--department", "44")
    assert result.exit_code == 2
    assert "Missing option '--name'" in result.output


def test_structures_list_when_empty(app: Flask) -> None:
    result = run(app, "structures", "list")
    assert result.exit_code == 0
    assert result.output == ""


def test_demo(app: Flask, database: Database) -> None:
    result = run(app, "demo", "--respondents", "5", "--seed", "1")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("demo: 5 people in 'demo' (")
    assert count(database, Beneficiary) == 5
    assert count(database, Response, Response.status != "submitted") == 0
    pairs = int(result.output.split("(")[1].split(" before/after pairs")[0])
    assert count(database, Response) == 5 + pairs
    again = run(app, "demo", "--respondents", "5", "--seed", "1")
    assert again.exit_code == 0
    assert count(database, Structure) == 1  # the demo place is reused
    assert count(database, Beneficiary) == 10


def test_demo_refuses_a_non_number(app: Flask) -> None:
    result = run(app, "demo", "--respondents", "many")
    assert result.exit_code == 2
    assert "'many' is not a valid integer" in result.output


def test_the_command_reads_its_database_from_the_environment(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`selfcheck …` as typed in a shell: the app is built from SELFCHECK_* variables."""
    import selfcheck

    built: list[Flask] = []
    real_create_app = selfcheck.create_app

    def recording_create_app(overrides: dict[str, object] | None = None) -> Flask:
        assert overrides is None  # nothing but the environment
        app = real_create_app(overrides)
        built.append(app)
        return app

    monkeypatch.setattr(selfcheck, "create_app", recording_create_app)
    monkeypatch.setenv("SELFCHECK_DATABASE_URL", database_url)
    monkeypatch.setenv("SELFCHECK_SECRET_KEY", "cli-test")
    runner = CliRunner()
    try:
        result = runner.invoke(main, ["db", "upgrade"])
        assert result.exit_code == 0, result.output
        result = runner.invoke(
            main,
            [
                "structures",
                "add",
                "--name",
                "Mairie",
                "--territory",
                "rural",
                "--department",
                "974",
            ],
        )
        assert result.exit_code == 0, result.output
        listed = runner.invoke(main, ["structures", "list"])
        assert listed.output == "/s/mairie\t974\tMairie\n"
    finally:
        for app in built:
            app.extensions["selfcheck.platform.db"].dispose()
    assert len(built) == 3
    assert all(app.extensions["selfcheck.platform.db"].url == database_url for app in built)


def test_serve_prints_the_start_links_and_runs_the_app(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    import selfcheck.cli

    calls: list[tuple[str, int, object]] = []
    monkeypatch.setattr(
        selfcheck.cli, "run_simple", lambda host, port, wsgi, **kw: calls.append((host, port, wsgi))
    )
    run(app, "structures", "add", "--name", "Mairie", "--territory", "rural", "--department", "35")
    result = run(app, "serve", "--port", "5123")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "selfcheck is running on http://127.0.0.1:5123/",
        "  start link for Mairie: http://127.0.0.1:5123/s/mairie",
    ]
    assert calls == [("127.0.0.1", 5123, app)]


def test_serve_starts_a_job_worker_beside_the_server_and_stops_it(
    make_app: AppFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a real queue (the embedded SQLite file), `serve` runs `selfcheck worker` in a
    process of its own and stops it when the server stops (tests/platform/test_jobs.py runs
    that worker for real)."""
    import subprocess

    import selfcheck.cli

    app = make_app(SELFCHECK_JOBS_URL="")
    started: list[list[str]] = []
    stopped: list[str] = []
    addresses: list[str | None] = []

    class Process:
        pid = 4242

        def __init__(self, command: list[str], env: dict[str, str]) -> None:
            started.append(command)
            addresses.append(env.get("SELFCHECK_SITE_URL"))

        def terminate(self) -> None:
            stopped.append("terminate")

        def wait(self, timeout: float) -> int:
            return 0

    monkeypatch.setattr(subprocess, "Popen", Process)
    monkeypatch.setattr(selfcheck.cli, "run_simple", lambda *args, **kwargs: None)
    result = run(app, "serve", "--port", "5124")
    assert result.exit_code == 0, result.output
    assert "  job worker: process 4242" in result.output.splitlines()
    assert len(started) == 1 and started[0][-1] == "worker"
    # The address its prefill prints on blank forms (selfcheck/prefill.py), unless configured.
    assert addresses == ["http://127.0.0.1:5124"]
    assert stopped == ["terminate"]
    if not is_postgres():
        assert (tmp_path / "instance" / "jobs-queue.db").exists()  # the embedded queue's file


def test_worker_refuses_the_immediate_queue(app: Flask) -> None:
    result = run(app, "worker")
    assert result.exit_code != 0 and "immediate" in result.output
