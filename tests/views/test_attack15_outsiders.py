"""attack15: outsiders (a bot, someone holding the database file, a shared computer).

- The language page's "back" link followed `?next=` with a tab in it: `/<tab>/evil.example`
  passed the check (it does not start with `//`), and browsers drop a tab anywhere in a
  link, so every link of the page led to `//evil.example`.
- Every form of every page posted back malformed (test_attack15_fuzz.py) found: 5,000
  digits in the print page's number of copies (int() refuses more than 4,300 digits: a 500
  for any mediator, both databases); a NUL in a structure's name (a 500 on PostgreSQL); and,
  by reading, a name of spaces only (it passed the form and failed in the service: a 500).
- The follow-up reminder's e-mail address was kept in clear beside the person's id: the
  database file alone linked an address to a code and every answer. Now sealed under the
  app's secret key; addresses kept before are sealed by the next sending run.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from selfcheck.journey import reminders
from selfcheck.platform import clock, sealing
from selfcheck.platform.db import Database
from selfcheck.platform.models import Beneficiary, FollowupReminder, Role, Structure
from selfcheck.questionnaire.model import Definition
from tests.services.evaluation.support import populate
from tests.staff import add_staff, signed_in
from tests.views.test_admin_mail import Inbox, inbox  # noqa: F401 (a fixture)
from tests.views.test_followup_reminder import (
    ADDRESS,
    OPENS,
    _ended,
    _send,
    _stored,
    fixed,  # noqa: F401 (a fixture)
    mailing_app,  # noqa: F401 (a fixture)
    offering,  # noqa: F401 (a fixture)
)


def test_attack15_the_language_page_never_links_to_another_site(app: Flask) -> None:
    client = app.test_client()
    for target in ("/%09/evil.example", "/%0a/evil.example", "/%0d%0a/evil.example", "/%7f/x"):
        page = client.get(f"/reglages?next={target}")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert "evil.example" not in html and "\x7f" not in html, target
        assert 'href="/?lang=' in html  # back to the home page
    kept = client.get("/reglages?next=/s/demo").get_data(as_text=True)
    assert 'href="/s/demo?lang=' in kept


def _people(db_session: Session, definition: Definition, count: int) -> list[int]:
    populate(db_session, definition, people=count, moved=1)
    return list(db_session.scalars(select(Beneficiary.id).order_by(Beneficiary.id)))[:count]


def test_attack15_a_reminder_address_is_never_in_the_database_in_clear(
    app: Flask, db_session: Session, definition: Definition, database: Database
) -> None:
    first, second = _people(db_session, definition, 2)
    longest = "a" * 64 + "@" + ("b" * 60 + ".") * 1 + "c" * 48 + ".example.org"
    longest = longest[: reminders.MAX_LENGTH - len(".org")] + ".org"
    assert len(longest.encode()) == reminders.MAX_LENGTH
    assert reminders.clean_address(longest) == longest
    assert reminders.clean_address("d" + longest) is None  # one byte over: refused
    assert sealing.sealed_length(reminders.MAX_LENGTH) <= reminders.COLUMN_LENGTH
    with app.app_context():
        db_session.add(
            FollowupReminder(
                beneficiary_id=first,
                email=reminders.seal_address(longest),
                locale="fr",
                link="http://localhost/code",
            )
        )
        # One kept before sealing (an instance upgraded with reminders waiting).
        db_session.add(
            FollowupReminder(
                beneficiary_id=second,
                email="camille.avant@exemple.org",
                locale="fr",
                link="http://localhost/code",
            )
        )
        db_session.commit()  # PostgreSQL: the longest sealed address fits VARCHAR(254)
        assert reminders.seal_older(db_session) == 1
        db_session.commit()
        stored = {
            row[0]: str(row[1])
            for row in db_session.execute(
                text("SELECT beneficiary_id, email FROM followup_reminder")
            )
        }
        assert all(value.startswith(sealing.SEALED) for value in stored.values())
        assert "exemple.org" not in stored[second] and "example.org" not in stored[first]
        kept = {
            r.beneficiary_id: reminders.address_of(r)
            for r in db_session.scalars(select(FollowupReminder))
        }
        assert kept == {first: longest, second: "camille.avant@exemple.org"}
        assert reminders.seal_older(db_session) == 0  # sealed once
    # Another secret key (the database alone): nothing readable.
    purpose = b"selfcheck: follow-up reminder address"
    assert sealing.unseal(stored[second], "another key", purpose) != "camille.avant@exemple.org"


def test_attack15_thousands_of_digits_of_copies_are_refused_not_a_500(
    app: Flask, database: Database, structure: Structure
) -> None:
    mediator = signed_in(app, add_staff(database, Role.MEDIATOR, structure))
    mediator.get("/staff/print")
    for copies in ("9" * 5000, "1" + "0" * 4400, "0" * 5000 + "3", "9" * 10):
        answer = mediator.post(
            "/staff/print",
            {"kind": "coded", "form": "before", "language": "fr", "copies": copies},
        )
        assert answer.status_code == 422, copies[:12]
    with database.session() as session:
        assert session.scalar(select(Beneficiary.id)) is None  # no code made


def test_attack15_a_structure_name_with_a_nul_or_of_spaces_is_never_a_500(
    app: Flask, database: Database, structure: Structure
) -> None:
    admin = signed_in(app, add_staff(database, Role.PLATFORM_ADMIN))
    where = f"/staff/admin/structures/{structure.id}"
    for url in ("/staff/admin/structures/new", where):
        admin.get(url)
        for name in ("   ", "\x00", " \x00\t\x7f "):
            typed = {"name": name, "territory_type": "urbain", "department": "44"}
            assert admin.post(url, typed).status_code == 422, (url, name)
            admin.get(url)
    admin.get(where)
    saved = admin.post(
        where, {"name": "Espace\x00 numérique\t", "territory_type": "urbain", "department": "44"}
    )
    assert saved.status_code == 302
    admin.get("/staff/admin/structures/new")
    made = admin.post(
        "/staff/admin/structures/new",
        {"name": "Centre\x00 social", "territory_type": "rural", "department": "2a"},
    )
    assert made.status_code == 302
    with database.session() as session:
        names = set(session.scalars(select(Structure.name)))
    assert names == {"Espace numérique", "Centre social"}


def test_attack15_an_address_sealed_under_another_secret_key_is_dropped_unsent(
    mailing_app: Flask,  # noqa: F811
    database: Database,
    offering: Structure,  # noqa: F811
    inbox: tuple[Inbox, int],  # noqa: F811
    fixed: clock.FixedClock,  # noqa: F811
) -> None:
    handler, _port = inbox
    end, _code = _ended(mailing_app, offering, fixed)
    end.post("/reminder", {"email": ADDRESS, "consent": "y"})
    (kept,) = _stored(database)
    assert ADDRESS not in kept.email
    mailing_app.secret_key = mailing_app.config["SECRET_KEY"] = "a-new-secret-key"
    fixed.set(OPENS + timedelta(hours=9))
    _send(mailing_app)
    assert handler.messages == []  # no message to an unreadable address
    assert _stored(database) == []  # nor a row retried every hour for ever
