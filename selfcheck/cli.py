"""The `selfcheck` command: serve, demo, db, structures, users, purge, backup, restore."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup
from sqlalchemy.orm import Session
from werkzeug.serving import WSGIRequestHandler, run_simple

from selfcheck.platform import migrate
from selfcheck.platform.db import Database, get_db, unit_of_work
from selfcheck.platform.models import Role

if TYPE_CHECKING:
    from selfcheck.platform.models import StaffUser
    from selfcheck.questionnaire.model import Definition

# A staff account's role as typed on the command line: the stored values of `Role`.
ROLE_CHOICE = click.Choice([role.value for role in Role])


def _create_app() -> Flask:
    from selfcheck import create_app

    return create_app()


# Every command runs inside the app's context: FlaskGroup and its subgroups (AppGroup) wrap each
# command in `with_appcontext`. Each command that writes does it in one `_unit_of_work`.
@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False)
def main() -> None:
    """selfcheck: before/after self-assessment of digital mediation."""


def _database() -> Database:
    return get_db()


def _definition() -> Definition:
    definition: Definition = current_app.extensions["selfcheck.definition"]
    return definition


@contextmanager
def _unit_of_work() -> Iterator[Session]:
    """A command's session and its one unit of work: committed when the block ends, rolled
    back if it raises (operations never commit; a command reports success after this)."""
    with _database().session() as session, unit_of_work(session):
        yield session


@contextmanager
def _refused(*errors: type[Exception], failure: str = "") -> Iterator[None]:
    """An operation saying no (an error of one of `errors`, its message the reason) ends the
    command with "Error: <failure>: <reason>" (or the bare reason) and exit status 1."""
    try:
        yield
    except errors as exc:
        raise click.ClickException(f"{failure}: {exc}" if failure else str(exc)) from exc


@contextmanager
def _bad_value(*errors: type[Exception], param_hint: str | None = None) -> Iterator[None]:
    """An error of one of `errors` is a bad value given to the command: a usage error with
    its message (exit status 2)."""
    try:
        yield
    except errors as exc:
        raise click.BadParameter(str(exc), param_hint=param_hint) from exc


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Serve the app for local use (production: gunicorn, see docs/operations.md)."""
    from selfcheck.accounts.structures import list_structures

    with _database().session() as session:
        structures = list_structures(session)
    base = f"http://{host}:{port}"
    click.echo(f"selfcheck is running on {base}/")
    for structure in structures:
        click.echo(f"  start link for {structure.name}: {base}/s/{structure.slug}")
    # Background jobs (exports, print batches): one worker process beside the server, on the
    # same queue (embedded default: a SQLite file in the instance folder, nothing to install).
    # The address the worker's prefill prints on blank forms, unless configured.
    worker_process = _start_worker(base if host not in {"0.0.0.0", "::"} else None)
    # SIGTERM (a service manager) ends the server like Ctrl-C does, so the worker is stopped.
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))
    try:
        # app.run() refuses to start inside the flask CLI; this is the same server, called
        # directly, without its access log: it prints raw paths (a person's code) and client
        # addresses. The app writes its own access line (selfcheck.request). The demo runs
        # gunicorn.
        run_simple(
            host,
            port,
            current_app._get_current_object(),  # type: ignore[attr-defined]
            threaded=True,
            request_handler=_QuietHandler,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
        if worker_process is not None:
            worker_process.terminate()  # SIGTERM: huey stops, the sweep fails a cut job
            try:
                worker_process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker_process.kill()


def _start_worker(site_url: str | None = None) -> subprocess.Popen[bytes] | None:
    from selfcheck.platform import jobs

    if jobs.queue().huey.immediate:
        return None
    command = [sys.executable, "-c", "from selfcheck.cli import main; main()", "worker"]
    environment = dict(os.environ)  # the same database and queue
    if site_url:
        environment.setdefault("SELFCHECK_SITE_URL", site_url)
    process = subprocess.Popen(command, env=environment)
    click.echo(f"  job worker: process {process.pid}")
    return process


@main.command()
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--codebooks-first-only",
    is_flag=True,
    hidden=True,
    help="Only the start's codebooks-first step, then exit (benchmarks/bench_memory.py).",
)
def worker(workers: int, codebooks_first_only: bool) -> None:
    """Run background jobs (exports, print batches) until stopped (SIGTERM / Ctrl-C).

    Embedded (SQLite): one worker beside the web server, on the same machine. PostgreSQL:
    as many as wanted, on as many machines (see docs/jobs.md). Before its first job it
    renders the export codebooks missing from the cache folder; while the queue is idle,
    the blank paper forms and whatever else is missing (selfcheck/prefill.py;
    SELFCHECK_PREFILL=0 turns both off).
    """
    import logging

    from selfcheck import prefill
    from selfcheck.evaluation import codebook
    from selfcheck.platform import jobs

    prefill.stops_let_in()  # a stop held by the chain's `execv` (started again by it)
    queue = jobs.queue()
    if queue.huey.immediate:
        raise click.ClickException("SELFCHECK_JOBS_URL=immediate runs jobs in the web request")
    if not logging.getLogger("huey").handlers and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # Before any job: the codebooks missing from the cache folder, rendered by this process
    # given up for WeasyPrint, then this command again (selfcheck/prefill.py).
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    chains = not (app.debug or app.testing) and prefill.enabled(app)
    if chains:
        prefill.codebooks_first(app, prefill.worker_command())
    if codebooks_first_only:
        return
    # Jobs queued whose message was lost (a worker killed between putting a job back in the
    # queue and queueing its message, a web process between its commit and `dispatch`):
    # queued again now, and by the sweep every minute (jobs.requeue_lost).
    try:
        with _database().session() as session:
            jobs.requeue_lost(session, queue)
    except Exception:  # a database not answering yet: the sweep does it in a minute
        logging.getLogger(__name__).warning("jobs: lost messages not looked for", exc_info=True)
    # Back into the chain while running, for the codebooks still missing: when the queue is
    # idle (the watcher), or for an export that waits for its codebook (codebook.render_ahead).
    rechain = prefill.Rechain(app) if chains else None
    if rechain is not None:
        app.extensions[codebook.WAIT_KEY] = rechain.wait_for
    first_look = prefill.FIRST_LOOK_AFTER
    while True:
        consumer = queue.huey.create_consumer(workers=workers, worker_type="thread", periodic=True)
        if rechain is not None:
            rechain.stop_consumer = consumer.stop_flag.set
        # Blank forms and codebooks rendered ahead when the queue is idle (prefill.py).
        watcher = prefill.start(app, rechain, first_look)
        try:
            consumer.run()
        finally:
            if watcher is not None:
                watcher.stop()
        if rechain is None or not rechain.wanted.is_set():
            return  # stopped (SIGINT, SIGTERM)
        consumer.stop(graceful=True)  # the jobs under way finish first (a stop is noted)
        # From here to the chain's `execv` or the next consumer's handlers, a stop ends the
        # worker by its signal; the consumer's handlers would only note it (a stop lost).
        prefill.stops_by_default()
        if consumer._signum is not None:  # stopped meanwhile: no chain
            return
        prefill.chain_codebooks(app, prefill.worker_command(), rechain.take())
        # Nothing to chain (rendered meanwhile, jobs came in, the lock taken): take jobs
        # again; the watcher looks again later, not at once (never a loop of stops).
        first_look = prefill.LOOK_AGAIN


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No raw path, no address (see `serve`)."""


@main.command("move-secret-key")
def move_secret_key() -> None:
    """Move the generated secret key out of the instance folder (beside the SQLite database)
    into the user's state folder, the same key: sealed values and sessions stay readable."""
    from selfcheck.platform.config import move_secret_key as move

    moved = move(Path(current_app.instance_path))
    if moved is None:
        click.echo("No secret_key in the instance folder: nothing to move.")
        return
    click.echo(
        f"The key is now {moved} (mode 0600). Keep a copy of it apart from the database's "
        "backups; restart the app and the job workers."
    )


@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command()
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Bring the database schema up to REVISION (default: the latest)."""
    migrate.upgrade(_database().engine, revision)
    click.echo(f"database upgraded to {revision}")


@db.command()
@click.argument("revision")
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
def structures_add(name: str, territory: str, department: str, slug: str | None) -> None:
    """Create a place of mediation and print its public start link."""
    from selfcheck.accounts.structures import StructureError, create_structure

    with _unit_of_work() as session, _bad_value(StructureError):
        structure = create_structure(session, name, territory, department, slug)
    click.echo(f"created {structure.name}: start link /s/{structure.slug}")


@structures.command("list")
def structures_list() -> None:
    """List places of mediation with their start links."""
    from selfcheck.accounts.structures import list_structures

    with _database().session() as session:
        for structure in list_structures(session):
            click.echo(f"/s/{structure.slug}\t{structure.department}\t{structure.name}")


@main.command()
@click.option("--respondents", default=300, show_default=True, type=click.IntRange(0, 1_000_000))
@click.option("--seed", default=2023, show_default=True, type=int)
@click.option(
    "--marginals",
    "marginals_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON object overriding the reference survey's shares (see docs/evaluation.md).",
)
def demo(respondents: int, seed: int, marginals_file: Path | None) -> None:
    """Create a demo structure and sample people following chosen marginals."""
    from selfcheck.demo import (
        MarginalsError,
        create_demo_staff,
        demo_structure,
        generate_demo,
        load_marginals,
    )

    with _bad_value(MarginalsError, param_hint="--marginals"):
        marginals = load_marginals(marginals_file) if marginals_file else None
    with _unit_of_work() as session:
        report = generate_demo(
            session, _definition(), respondents=respondents, seed=seed, marginals=marginals
        )
        accounts = create_demo_staff(session, demo_structure(session))
    click.echo(
        f"demo: {report.people} people in '{report.structure_slug}' "
        f"({report.pre_post} before/after pairs, {report.before_only} awaiting their after, "
        f"{report.retro} retrospective; {report.paper} on paper)"
    )
    for email, password in accounts.items():
        click.echo(f"demo staff account: {email}  password: {password}")


@main.group()
def paper() -> None:
    """Paper forms."""


@paper.command("prefill")
@click.option(
    "--url",
    "base_url",
    default=None,
    help="The site's address as people reach it, e.g. https://selfcheck.example.org "
    "(default: SELFCHECK_SITE_URL, else the address the print page was last asked at).",
)
@click.option("--duplex", is_flag=True, help="Also the double-sided forms.")
@click.option(
    "--background",
    is_flag=True,
    help="As the job worker runs it: lowest priority, and stop as soon as a job is waiting "
    "or running (exit status 3).",
)
@click.option(
    "--only",
    type=click.Choice(["forms", "codebooks"]),
    default=None,
    help="Only the blank forms, or only the codebooks.",
)
def paper_prefill(base_url: str | None, duplex: bool, background: bool, only: str | None) -> None:
    """Render every blank form (each form, language, wording and print size) and every export
    codebook PDF (shape, free text, language) into the instance's cache of rendered files,
    so that neither a request nor an export job renders one. Files already there are left.
    The job worker does it by itself (selfcheck/prefill.py); run it by hand, with the
    running site's configuration (the same folder), to fill the cache at once."""
    from flask import url_for

    from selfcheck import prefill
    from selfcheck.paper import blank_cache

    site_url = None
    if base_url is not None:
        if not base_url.startswith(("http://", "https://")):
            raise click.BadParameter(
                "an address starting with https:// (or http://)", param_hint="--url"
            )
        with current_app.test_request_context(base_url=base_url):
            site_url = url_for("journey.enter_code", _external=True)
    cache = blank_cache.folder(current_app)
    if cache is None:
        raise click.ClickException(
            f"no cache of rendered files (debug mode, or {blank_cache.CONFIG_KEY} empty)"
        )
    keep_going: Callable[[], bool] = lambda: True  # noqa: E731
    if background:
        os.nice(19)
        database = _database()
        keep_going = lambda: prefill.jobs_idle(database)  # noqa: E731
    done = prefill.fill(
        current_app,
        url=site_url,
        duplex=duplex,
        keep_going=keep_going,
        forms=only != "codebooks",
        codebooks=only != "forms",
    )
    if done.busy:
        click.echo(f"{cache}: another process is filling it")
        sys.exit(prefill.BUSY)
    if only == "codebooks":
        pass
    elif done.site_url is None:
        click.echo("blank forms: no address (--url, SELFCHECK_SITE_URL, or open the print page)")
    else:
        click.echo(
            f"blank forms for {done.site_url} in {cache}: {done.blanks} rendered, "
            f"{done.blanks_present} already there"
        )
    if only != "forms":
        click.echo(f"codebooks: {done.codebooks} rendered")
    click.echo(f"{done.seconds:.1f} s in all")
    if done.stopped:
        click.echo("stopped: a job is waiting or running")
        sys.exit(prefill.YIELDED)


@main.group()
def facts() -> None:
    """The dashboard's facts, kept from the answers."""


@facts.command("rebuild")
def facts_rebuild() -> None:
    """Recompute every fact from the answers (after a change of definition or typology)."""
    from selfcheck.evaluation import facts as dashboard_facts

    with _unit_of_work() as session:
        rows = dashboard_facts.rebuild(session, _definition())
    click.echo(f"facts: {rows} submitted responses")


@facts.command("cells")
def facts_cells() -> None:
    """Recompute the cells' digests (fact_cell, and the follow-up figures' fact_followup) under
    the app's secret (after a new secret, or a migration run without the app)."""
    from flask import current_app

    from selfcheck.evaluation import facts as dashboard_facts

    with _unit_of_work() as session:
        key = dashboard_facts.cell_key(str(current_app.secret_key))
        cells = dashboard_facts.rebuild_cells(session.connection(), key)
        lasting = dashboard_facts.rebuild_followup(session.connection(), key)
    click.echo(f"facts: {cells} cells, {lasting} follow-up cells")


@main.group()
def questionnaire() -> None:
    """The questionnaire definition."""


@questionnaire.command("stats")
def questionnaire_stats() -> None:
    """Item counts and estimated answering time of each form (Markdown table)."""
    from selfcheck.questionnaire.model import FormKind
    from selfcheck.questionnaire.stats import form_stats

    definition = _definition()
    click.echo(f"definition {definition.id} {definition.version}\n")
    click.echo("| form | pages | items | of which conditional | stored answers | typical time |")
    click.echo("|---|---|---|---|---|---|")
    for form in FormKind:
        s = form_stats(definition, form)
        click.echo(
            f"| {form.value} | {s.pages} | {s.items} | {s.conditional_items} | {s.answers} "
            f"| {s.minutes} min |"
        )


@main.group()
def users() -> None:
    """Staff accounts (mediators, administrators, evaluators)."""


def _structure_id(session: Session, slug: str | None) -> int | None:
    """The id of the structure with this link name (None for none), or a usage error."""
    from selfcheck.journey import operations as journey

    if slug is None:
        return None
    structure = journey.find_structure(session, slug)
    if structure is None:
        raise click.BadParameter(f"no structure with link name {slug!r}")
    return structure.id


@users.command("add")
@click.option("--email", required=True)
@click.option(
    "--role",
    required=True,
    type=ROLE_CHOICE,
)
@click.option("--structure", "slug", default=None, help="Structure link name (mediators, admins).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_add(email: str, role: str, slug: str | None, password_stdin: bool) -> None:
    """Create a staff account (the first one: --role platform_admin)."""
    from selfcheck.accounts import auth

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _unit_of_work() as session, _refused(auth.AuthError, failure="cannot create the account"):
        structure_id = _structure_id(session, slug)
        user = auth.create_user(session, auth.NewUser(email, Role(role), structure_id), password)
    click.echo(f"created {user.role} {user.email}")


@users.command("grant")
@click.option("--email", required=True)
@click.option("--structure", "slug", default=None)
@click.option("--department", default=None)
@click.option("--region", default=None, help="INSEE region code: every department of it.")
def users_grant(email: str, slug: str | None, department: str | None, region: str | None) -> None:
    """Let an evaluator see one structure, a whole department or a whole region."""
    from selfcheck.accounts import team

    with _unit_of_work() as session, _refused(team.TeamError, failure="cannot grant"):
        user = _staff_user(session, email)
        structure_id = _structure_id(session, slug)
        team.add_scope(
            session, None, user, structure_id=structure_id, department=department, region=region
        )
    click.echo(f"granted {slug or department or region} to {user.email}")


def _staff_user(session: Session, email: str) -> StaffUser:
    from sqlalchemy import select

    from selfcheck.accounts import auth
    from selfcheck.platform.models import StaffUser as Account

    user = session.scalar(select(Account).where(Account.email == auth.normalise_email(email)))
    if user is None:
        raise click.BadParameter(f"no account {email!r}")
    return user


@users.command("reset-password")
@click.option("--email", required=True)
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
def users_reset_password(email: str, password_stdin: bool) -> None:
    """Set a new password for a staff member (there is no reset by e-mail). Also unlocks the
    account and signs it out on every device."""
    from selfcheck.accounts import auth
    from selfcheck.platform import audit

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    with _unit_of_work() as session, _refused(auth.AuthError, failure="cannot set the password"):
        user = _staff_user(session, email)
        audit.record(session, None, "reset_password", audit.Entity.USER, user.id, user.structure_id)
        auth.reset_password(session, user, password)
        auth.unlock(session, user.email, str(current_app.secret_key))
    click.echo(f"new password set for {user.email}; the account is unlocked")


@users.command("sign-out-everywhere")
@click.option("--email", required=True)
def users_sign_out_everywhere(email: str) -> None:
    """End every session of a staff member at once, on every device (a lost laptop, a
    copied cookie); audited."""
    from selfcheck.accounts.session import end_all_sessions
    from selfcheck.platform import audit

    with _unit_of_work() as session:
        user = _staff_user(session, email)
        end_all_sessions(session, user)
        audit.record(
            session, None, "sign_out_everywhere", audit.Entity.USER, user.id, user.structure_id
        )
    click.echo(f"every session of {user.email} is ended")


@users.command("unlock")
@click.option("--email", required=True)
def users_unlock(email: str) -> None:
    """Lift the account-wide slow-down after too many wrong passwords (a lockout of one
    address ends with its 15-minute window)."""
    from selfcheck.accounts import auth

    with _unit_of_work() as session:
        user = _staff_user(session, email)
        auth.unlock(session, user.email, str(current_app.secret_key))
    click.echo(f"unlocked {user.email}")


@users.command("invite")
@click.option("--email", required=True)
@click.option(
    "--role",
    required=True,
    type=ROLE_CHOICE,
)
@click.option("--structure", "slug", default=None, help="Structure link name (mediators, admins).")
@click.option("--base-url", default="", help="Site address put before the link's path.")
def users_invite(email: str, role: str, slug: str | None, base_url: str) -> None:
    """Create an account without a password and print its one-time invitation link (72 h)."""
    from selfcheck.accounts import team

    with _unit_of_work() as session, _refused(team.TeamError, failure="cannot invite"):
        structure_id = _structure_id(session, slug)
        user, token = team.invite(session, None, email, Role(role), structure_id)
    click.echo(f"invited {user.role} {user.email}; link (shown once, valid 72 h):")
    click.echo(f"{base_url.rstrip('/')}/staff/link/{token}")


@users.command("link")
@click.option("--email", required=True)
@click.option("--base-url", default="", help="Site address put before the link's path.")
def users_link(email: str, base_url: str) -> None:
    """Print a one-time link to choose a new password (a new invitation if none was chosen)."""
    from selfcheck.accounts import team

    with _unit_of_work() as session, _refused(team.TeamError, failure="cannot make a link"):
        user = _staff_user(session, email)
        purpose, token = team.new_link(session, None, user)
    click.echo(f"{purpose} link for {user.email} (shown once, valid 72 h):")
    click.echo(f"{base_url.rstrip('/')}/staff/link/{token}")


@users.command("deactivate")
@click.option("--email", required=True)
@click.option("--again", "reactivate", is_flag=True, help="Re-activate instead.")
def users_deactivate(email: str, reactivate: bool) -> None:
    """Deactivate an account (signed out at once; nothing it typed is deleted)."""
    from selfcheck.accounts import team

    with _unit_of_work() as session, _refused(team.TeamError, failure="cannot change the account"):
        user = _staff_user(session, email)
        team.set_active(session, None, user, reactivate)
    click.echo(f"{'re-activated' if reactivate else 'deactivated'} {user.email}")


@users.command("reset-2fa")
@click.option("--email", required=True)
def users_reset_two_factor(email: str) -> None:
    """Remove a staff member's second factor (lost phone): they enrol again at next sign-in."""
    from selfcheck.accounts import team, totp

    with _unit_of_work() as session, _refused(team.TeamError, failure="cannot reset"):
        user = _staff_user(session, email)
        totp.reset(session, None, user)
    click.echo(f"second factor removed for {user.email}")


@structures.command("archive")
@click.option("--structure", "slug", required=True, help="Structure link name.")
@click.option("--again", "unarchive", is_flag=True, help="Take it out of the archives.")
def structures_archive(slug: str, unarchive: bool) -> None:
    """Archive a structure: hidden from lists, no new invitations; its data stays."""
    from selfcheck.accounts import structure_admin
    from selfcheck.platform.models import Structure

    with _unit_of_work() as session:
        structure = session.get(Structure, _structure_id(session, slug))
        assert structure is not None
        structure_admin.set_archived(session, None, structure, not unarchive)
    click.echo(f"{'unarchived' if unarchive else 'archived'} {structure.name}")


@structures.command("require-2fa")
@click.option("--structure", "slug", required=True, help="Structure link name.")
@click.option("--off", is_flag=True, help="Leave the second factor to each person again.")
def structures_require_2fa(slug: str, off: bool) -> None:
    """Require a second factor of the structure's whole team (as its settings page does)."""
    from selfcheck.accounts import structure_admin
    from selfcheck.platform.models import Structure

    with _unit_of_work() as session:
        structure = session.get(Structure, _structure_id(session, slug))
        assert structure is not None
        structure_admin.set_totp_required(session, None, structure, not off)
    state = "optional" if off else "required"
    click.echo(f"second factor {state} for the team of {structure.name}")


@main.group()
def reminders() -> None:
    """The consented follow-up reminders by e-mail (issue 15)."""


@reminders.command("send")
def reminders_send() -> None:
    """Queue the sending of every reminder whose follow-up is open (the worker sends them;
    it also does so every hour on its own)."""
    from selfcheck.journey import reminders as reminder_job
    from selfcheck.platform import jobs

    reminder_job.queue_sending(current_app)
    if jobs.queue().huey.immediate:
        click.echo("reminders sent")
    else:
        click.echo("reminders queued for the worker")


@main.command()
@click.option(
    "--dry-run/--yes",
    "dry_run",
    default=True,
    help="--dry-run (the default) only counts; --yes deletes.",
)
def purge(dry_run: bool) -> None:
    """Delete the answers older than SELFCHECK_RETENTION_MONTHS (counts only, unless --yes)."""
    from selfcheck.privacy import operations as privacy

    months = int(current_app.config["SELFCHECK_RETENTION_MONTHS"])
    with _unit_of_work() as session:
        report = privacy.purge(session, months, dry_run=dry_run)
    verb = "deleted" if report.done else "would delete (dry run)"
    click.echo(
        f"retention {months} months: nothing of a person changed since before "
        f"{report.cutoff:%Y-%m-%d %H:%M} UTC"
    )
    click.echo(
        f"{verb}: {report.people} people, {report.responses} responses, "
        f"{report.answers} answers, {report.second_entries} second entries, "
        f"{report.audit_events} audit events, {report.rate_limit_rows} rate-limit counters"
    )
    if not report.done:
        click.echo("run `selfcheck purge --yes` to delete them")


@main.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup_command(file: Path) -> None:
    """Write every table to FILE (gzipped JSON lines, any database), from one snapshot."""
    from selfcheck.platform import backup

    with _refused(backup.BackupError):
        report = backup.backup(_database().engine, file)
    click.echo(f"backup of {report.total} rows (schema {report.revision}) written to {file}")


@main.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace the rows of a database that is not empty.")
def restore_command(file: Path, force: bool) -> None:
    """Load a backup FILE into the database, in one transaction (all or nothing)."""
    from selfcheck.platform import backup

    with _refused(backup.BackupError):
        report = backup.restore(_database().engine, file, force=force)
    click.echo(f"restored {report.total} rows (schema {report.revision}) from {file}")


if __name__ == "__main__":  # `python -m selfcheck.cli ...`, as well as the `selfcheck` script
    main()
