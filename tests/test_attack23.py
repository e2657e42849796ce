"""attack23: round 23's changes attacked from outside (docs/security.md, "Attack review from
outside (branch attack23, round 23)"): the staff addresses by id (people23), the export
page's bound (PREVIEW_MAX_PEOPLE), the note of failed codebook renders (jobs23)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from selfcheck import prefill
from selfcheck.accounts import audit_trail
from selfcheck.accounts.permissions import reads_as_a_code
from selfcheck.platform import codes
from selfcheck.platform.db import Database
from selfcheck.platform.models import Role, Structure
from selfcheck.questionnaire.model import Definition
from tests.services.test_followup import make_people
from tests.staff import add_staff, signed_in
from tests.support import csrf_token, text_of
from tests.views.test_people23 import codes_in, urls_of

# A code whose nine characters are all digits (about 1 code in 35,000: (10/32)^9): its old
# address `/staff/people/<code>` matches the id route `/staff/people/<int:person_id>`.
ALL_DIGITS = "23456792" + codes.check_character("23456792")


def test_the_all_digit_code_is_a_code() -> None:
    assert ALL_DIGITS.isdigit() and codes.normalise(ALL_DIGITS) == ALL_DIGITS


# --- people23: the sign-in page's `next=` -----------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        f"/staff/people/{ALL_DIGITS}",
        f"/staff/people/{ALL_DIGITS}/erase",
        f"/staff/people/{ALL_DIGITS}/summary.pdf",
        f"/staff/people/{codes.display(ALL_DIGITS)}",  # 404 already: no int
    ],
)
def test_an_old_address_with_an_all_digit_code_gives_no_code_to_the_sign_in(
    app: Flask, path: str
) -> None:
    """Signed out (or the session expired), an old address whose code is all digits went to
    the sign-in page with the code in its `next=` (a new history entry holding it)."""
    response = app.test_client().get(path)
    assert response.status_code in (302, 404), response.status_code
    assert not codes_in(response.headers.get("Location", ""), [ALL_DIGITS])
    assert not codes_in(text_of(response), [ALL_DIGITS])


@pytest.mark.parametrize(
    "path",
    ["/staff/people/?q={code}", "/staff/entry/?code={code}", "/staff/audit?person={code}"],
)
def test_a_head_of_an_old_search_address_gives_no_code_to_the_sign_in(
    app: Flask, path: str
) -> None:
    """`without_code_argument` redirected GETs only: a HEAD (a link checker, a prefetch) went
    on to the sign-in check, whose `next=` copied `?q=<code>`."""
    code = codes.generate_code()
    for written in (code, codes.display(code)):
        response = app.test_client().head(path.format(code=written))
        assert response.status_code == 302
        assert not codes_in(response.headers["Location"], [code]), response.headers["Location"]


def test_reads_as_a_code_spares_the_addresses_the_app_writes() -> None:
    code = codes.generate_code()
    for address in (
        f"/staff/people/{code}",
        f"/staff/people/{codes.display(code).lower()}/summary.pdf",
        f"/staff/people/?q={codes.display(code).replace('-', '+')}&show=due",
        f"/staff/entry/?code={codes.display(code).replace('-', '%20')}",
        f"/staff/audit?person={codes.display(code).replace('-', '%252D')}",
    ):
        assert reads_as_a_code(address), address
    for address in (
        "/staff/people/12",
        "/staff/people/12/responses/40/delete",
        "/staff/people/?structure=mairie-de-lille&search=1&show=after_due&sort=oldest",
        "/staff/audit?person_id=3&action=edit&from=2026-01-01&page=2",
        "/evaluate/exports/?from=2025-01&to=2026-02&department=44",
        "/staff/entry/?person=7",
    ):
        assert not reads_as_a_code(address), address


def test_a_person_page_by_id_still_comes_back_after_sign_in(app: Flask) -> None:
    """The id addresses keep their `next=` (the guard drops only what reads as a code)."""
    response = app.test_client().get("/staff/people/12")
    assert response.headers["Location"] == "/staff/login?next=/staff/people/12"


# --- people23: the audit trail's address after a bad filter ------------------------------------


def test_a_code_typed_in_the_wrong_filter_stays_out_of_the_trails_addresses(
    app: Flask,
    database: Database,
    db_session: Session,
    definition: Definition,
    structure: Structure,
) -> None:
    """The trail's filters kept every typed value in the pages' links (`Filters.address`),
    valid or not: a code typed into a date box (a browser without a date picker) went into
    the pagination's addresses of the 400 page."""
    people = make_people(db_session, definition, structure)
    code = people.due
    with app.test_request_context():
        filters = audit_trail.read_filters(
            db_session, MultiDict({"from": code, "to": code}), None, []
        )
        assert set(filters.errors) == {"from", "to"}
        assert filters.address == {}
    visitor = signed_in(app, add_staff(database, Role.STRUCTURE_ADMIN, structure))
    visitor.get("/staff/audit")
    posted = visitor.post(
        "/staff/audit", {"person": code, "from": code, "csrf_token": csrf_token(visitor.html)}
    )
    assert posted.status_code == 400
    assert not [url for url in urls_of(text_of(posted)) if codes_in(url, [code])]


# --- jobs23: the note of failed codebook renders ---------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"\x00" * 64 + b"\n",  # a tail zero-filled by a power loss (appended, not renamed)
        b"codebook-a.pdf 1700000000\n\x00\x00\x00\x00\n",
        b"code\x00book.pdf 1700000000\n",
    ],
)
def test_a_nul_in_the_note_does_not_stop_the_worker(tmp_path: Path, content: bytes) -> None:
    """`_crashed` (the worker's start, `codebooks_first`) asks whether each noted codebook
    was rendered since: `open` of a name with a NUL raises ValueError (not OSError), out of
    the worker's command at every start: the service restarting it in a loop, no job run."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / prefill.CRASHED_FILE).write_bytes(content)
    assert prefill._crashed(cache) <= {"codebook-a.pdf"}
    assert all("\x00" not in name for name in prefill._notes(cache))


@pytest.mark.parametrize(
    "ahead", [math.inf, 1e999, 10.0**20, 365 * 86400.0, 3600.0, prefill.CLOCK_SKEW + 1]
)
def test_a_time_in_the_future_does_not_hold_a_codebook_until_then(
    tmp_path: Path, ahead: float
) -> None:
    """A time in the future counted as now at every reading: the codebook was held until the
    clock reached it (a clock set back by a year: every export of that codebook failed at
    once for a year, the chain never trying it). Now no back-off outlasts RETRY_MAX plus
    CLOCK_SKEW from the first reading, whatever the note says."""
    cache = tmp_path / "cache"
    cache.mkdir()
    now = 2_000_000_000.0
    (cache / prefill.CRASHED_FILE).write_text(f"a.pdf {now + ahead}\n")
    bound = prefill.RETRY_MAX + prefill.CLOCK_SKEW
    for later in (0.0, bound + 1, 2 * bound):
        assert prefill.held(cache, now + later) == set(), later
        assert prefill._notes(cache, now + later)["a.pdf"].failures == 1


@pytest.mark.parametrize("when", ["nan", "-inf", "-1e999", "0", "-5", "x", "1e-320"])
def test_a_time_long_past_or_garbage_holds_nothing(tmp_path: Path, when: str) -> None:
    """Held: NaN and words are skipped, a time long past is over (the chain tries again)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / prefill.CRASHED_FILE).write_text(f"a.pdf {when}\n")
    assert prefill.held(cache, 2_000_000_000.0) == set()
    assert isinstance(prefill._crashed(cache), set)


def test_a_small_skew_still_counts_as_now(tmp_path: Path) -> None:
    """A failure noted a few seconds ahead (two hosts' clocks) is still a failure: held."""
    cache = tmp_path / "cache"
    cache.mkdir()
    now = 2_000_000_000.0
    (cache / prefill.CRASHED_FILE).write_text(f"a.pdf {now + 5}\n")
    assert prefill.held(cache, now) == {"a.pdf"}
    assert prefill.held(cache, now + 5 + prefill.RETRY_FIRST + 1) == set()
