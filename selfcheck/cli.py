"""The `selfcheck` command: serve, demo, db upgrade, structures add."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from werkzeug.serving import run_simple

from selfcheck import migrate
from selfcheck.db import Database, get_db


def _create_app() -> Flask:
    from selfcheck import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False)
def main() -> None:
    """selfcheck: before/after self-assessment of digital mediation."""


def _database() -> Database:
    return get_db()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@with_appcontext
def serve(host: str, port: int) -> None:
    """Serve the app for local use (production: gunicorn, see README)."""
    from selfcheck.services.structures import list_structures

    with _database().session() as session:
        structures = list_structures(session)
    base = f"http://{host}:{port}"
    click.echo(f"selfcheck is running on {base}/")
    for structure in structures:
        click.echo(f"  start link for {structure.name}: {base}/s/{structure.slug}")
    # app.run() refuses to start inside the flask CLI; this is the same server, called directly.
    run_simple(host, port, current_app._get_current_object(), threaded=True)  # type: ignore[attr-defined]


@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command()
@click.argument("revision", default="head")
@with_appcontext
def upgrade(revision: str) -> None:
    """Bring the database schema up to REVISION (default: the latest)."""
    migrate.upgrade(_database().engine, revision)
    click.echo(f"database upgraded to {revision}")


@db.command()
@click.argument("revision")
@with_appcontext
def downgrade(revision: str) -> None:
    """Take the database schema back to REVISION."""
    migrate.downgrade(_database().engine, revision)
    click.echo(f"database downgraded to {revision}")


@main.group()
def structures() -> None:
    """Places of mediation."""


@structures.command("add")
@click.option("--name", required=True, help="Public name, e.g. 'Médiathèque de Rezé'.")
@click.option(
    "--territory",
    required=True,
    type=click.Choice(["urbain", "periurbain", "rural"]),
    help="Territory type of the place.",
)
@click.option("--department", required=True, help="Department code: 44, 2A, 974…")
@click.option("--slug", default=None, help="Public link name (default: from the name).")
@with_appcontext
def structures_add(name: str, territory: str, department: str, slug: str | None) -> None:
    """Create a place of mediation and print its public start link."""
    from selfcheck.services.structures import StructureError, create_structure

    with _database().session() as session:
        try:
            structure = create_structure(session, name, territory, department, slug)
        except StructureError as exc:
            raise click.BadParameter(str(exc)) from exc
        click.echo(f"created {structure.name}: start link /s/{structure.slug}")


@structures.command("list")
@with_appcontext
def structures_list() -> None:
    """List places of mediation with their start links."""
    from selfcheck.services.structures import list_structures

    with _database().session() as session:
        for structure in list_structures(session):
            click.echo(f"/s/{structure.slug}\t{structure.department}\t{structure.name}")


@main.command()
@click.option("--respondents", default=300, show_default=True, type=int)
@click.option("--seed", default=2023, show_default=True, type=int)
@with_appcontext
def demo(respondents: int, seed: int) -> None:
    """Create a demo structure and realistic sample responses (pre/post and retrospective)."""
    from selfcheck.services.demo import generate_demo

    definition = current_app.extensions["selfcheck.definition"]
    with _database().session() as session:
        report = generate_demo(session, definition, respondents=respondents, seed=seed)
    click.echo(
        f"demo: {report.people} people in '{report.structure_slug}' "
        f"({report.pre_post} before/after pairs, {report.before_only} awaiting their after, "
        f"{report.retro} retrospective)"
    )


@main.group()
def questionnaire() -> None:
    """The questionnaire definition."""


@questionnaire.command("stats")
@with_appcontext
def questionnaire_stats() -> None:
    """Item counts and estimated answering time of each form (Markdown table)."""
    from selfcheck.questionnaire.model import FormKind
    from selfcheck.questionnaire.stats import form_stats

    definition = current_app.extensions["selfcheck.definition"]
    click.echo(f"definition {definition.id} {definition.version}\n")
    click.echo("| form | pages | items | of which conditional | stored answers | typical time |")
    click.echo("|---|---|---|---|---|---|")
    for form in FormKind:
        s = form_stats(definition, form)
        click.echo(
            f"| {form.value} | {s.pages} | {s.items} | {s.conditional_items} | {s.answers} "
            f"| {s.minutes} min |"
        )
