"""Print batches as background jobs (platform/jobs.py): coded forms rendered once, stamped.

A coded batch renders the blank form once per (form, language, wording, print size) and
stamps each copy's code and QR code on it (paper/stamping.py). The codes are drawn first
but only *created* (with their audit event) in the transaction that marks the job done,
after the PDF is whole on disk: codes exist only once their PDF exists (issue 13, item 10).
If the job fails, nothing of it is left: no code, no file.

A batch of blank forms (more than one copy) also runs here, through the renderer; a single
blank form stays a plain download (paper/views.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flask import current_app
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from selfcheck.accounts.permissions import Permission, can_access_structure, has_permission
from selfcheck.paper import operations as paper
from selfcheck.platform import audit, codes, jobs
from selfcheck.platform.models import Beneficiary, Job, StaffUser, Structure
from selfcheck.questionnaire.model import FormKind, Wording

ATTEMPTS = 3  # draws of fresh codes; a 40-bit collision twice in a row is not expected
NO_ACCESS = _l("Vous ne pouvez pas créer de codes pour cette structure.")


def params(
    *,
    coded: bool,
    structure_id: int | None,
    form: FormKind,
    locale: str,
    count: int,
    large: bool,
    easy: bool,
    duplex: bool,
    site_url: str,
    filename: str,
) -> dict[str, Any]:
    return {
        "coded": coded,
        "structure_id": structure_id,
        "form": form.value,
        "locale": locale,
        "count": count,
        "large": large,
        "easy": easy,
        "duplex": duplex,
        "site_url": site_url,
        "filename": filename,
    }


def existing_params(
    copies: Sequence[paper.Copy],
    *,
    large: bool,
    duplex: bool,
    site_url: str,
    filename: str,
) -> dict[str, Any]:
    """A batch of forms for people who already have a code (the follow-up forms of those
    due): each copy's code, form and language; no code is created."""
    return {
        "coded": False,
        "existing": [[c.code, c.form.value, c.locale] for c in copies],
        "structure_id": None,
        "form": copies[0].form.value if copies else FormKind.FOLLOWUP.value,
        "locale": copies[0].locale if copies else "fr",
        "count": len(copies),
        "large": large,
        "easy": False,
        "duplex": duplex,
        "site_url": site_url,
        "filename": filename,
    }


def _existing(chosen: Mapping[str, Any]) -> list[paper.Copy]:
    return [
        paper.Copy(FormKind(form), str(locale), str(code))
        for code, form, locale in chosen.get("existing") or ()
    ]


def check(session: Session, user: StaffUser, chosen: Mapping[str, Any]) -> None:
    """May `user` print this batch (and create codes for its structure)? Else JobRefused."""
    if not has_permission(user, Permission.ENTER):
        raise jobs.JobRefused(NO_ACCESS, 403)
    count = chosen.get("count")
    if not isinstance(count, int) or not 1 <= count <= paper.MAX_COPIES:
        raise jobs.JobRefused(NO_ACCESS, 400)
    if chosen.get("existing"):
        # Only people of structures the user may see (their codes are printed).
        wanted = {copy.code for copy in _existing(chosen)}
        people = session.scalars(select(Beneficiary).where(Beneficiary.code.in_(wanted)))
        found = list(people)
        if len(found) != len(wanted) or not all(
            can_access_structure(user, person.structure) for person in found
        ):
            raise jobs.JobRefused(NO_ACCESS, 403)
        return
    if not chosen.get("coded"):
        return
    structure_id = chosen.get("structure_id")
    structure = session.get(Structure, structure_id) if isinstance(structure_id, int) else None
    if structure is None or not can_access_structure(user, structure):
        raise jobs.JobRefused(NO_ACCESS, 403)


def allowed(session: Session, user: StaffUser, chosen: Mapping[str, Any]) -> None:
    """At download: codes of a structure only while one may still create codes there (blank
    forms hold nothing of anyone)."""
    if not chosen.get("coded"):
        return
    structure_id = chosen.get("structure_id")
    structure = session.get(Structure, structure_id) if isinstance(structure_id, int) else None
    if (
        not has_permission(user, Permission.ENTER)
        or structure is None
        or not can_access_structure(user, structure)
    ):
        raise jobs.JobRefused(NO_ACCESS, 403)


def total(chosen: Mapping[str, Any]) -> int:
    """Steps shown: the blank, then the copies."""
    return 1 + int(chosen.get("count") or 1)


def run(session: Session, job: Job, chosen: Mapping[str, Any], progress: jobs.Progress) -> None:
    form = FormKind(chosen["form"])
    locale = str(chosen["locale"])
    count = int(chosen["count"])
    large, duplex = bool(chosen["large"]), bool(chosen["duplex"])
    site_url = str(chosen["site_url"])
    wording = Wording.EASY if chosen.get("easy") else Wording.STANDARD
    renderer = paper.renderer(current_app._get_current_object(), wording)  # type: ignore[attr-defined]
    filename = str(chosen["filename"])
    if chosen.get("existing"):  # people who have a code: their forms, nothing created
        content = renderer.questionnaires(
            _existing(chosen), large=large, site_url=site_url, duplex=duplex
        )
        with progress.write_result(filename) as path:
            path.write_bytes(content)
        return
    if not chosen["coded"]:
        copies = [paper.Copy(form, locale, None)] * count
        content = renderer.questionnaires(copies, large=large, site_url=site_url, duplex=duplex)
        with progress.write_result(filename) as path:
            path.write_bytes(content)
        return
    # pikepdf and fontTools (about 20 MB) only in a process that stamps: not in every worker.
    from selfcheck.paper import stamping

    template = stamping.render_template(renderer, form, locale, large=large, site_url=site_url)
    progress.step(1)
    structure_id = int(chosen["structure_id"])
    user = session.get(StaffUser, job.user_id)
    for _attempt in range(ATTEMPTS):
        drawn = _fresh_codes(session, count)
        copies = [paper.Copy(form, locale, code) for code in drawn]
        with force_locale(locale):
            qr_title = renderer._("Code personnel : %(code)s")
            title = renderer._document_title(copies)
        if duplex and len(template.pages) % 2:
            # A blank back page after each copy: the renderer lays that out (slower).
            content = renderer.questionnaires(copies, large=large, site_url=site_url, duplex=True)
        else:
            content = stamping.stamp(
                template, drawn, qr_title, title, copied=_reporter(progress, count)
            )
        with progress.write_result(filename) as path:
            path.write_bytes(content)
        progress.step(1 + count)
        # The codes, with their audit event, in the job's transaction (committed with "done").
        changes = {"count": count, "form": form.value, "language": locale, "channel": "paper"}
        try:
            with session.begin_nested():  # a savepoint: a collision undoes only these rows
                audit.record(
                    session, user, "create", audit.Entity.BENEFICIARY, None, structure_id, changes
                )
                session.add_all(Beneficiary(code=code, structure_id=structure_id) for code in drawn)
            return
        except IntegrityError:  # a code taken meanwhile by another batch: draw again
            progress.discard()
    raise jobs.JobFailed(jobs.JobError.FAILED)


PROGRESS_EVERY = 1.0  # seconds between two progress reports while copies are stamped


def _reporter(progress: jobs.Progress, count: int) -> Callable[[int], None]:
    """The stamping's progress on the job's page (round 21: 200 copies showed "step 1 of
    201" for the whole stamping, minutes on a loaded machine): copies done, reported at most
    every PROGRESS_EVERY seconds (each report is a short commit), the last copy excepted
    (the file is written and reported whole just after)."""
    last = time.monotonic()

    def report(done: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done < count and now - last >= PROGRESS_EVERY:
            last = now
            progress.step(1 + done)

    return report


def _fresh_codes(session: Session, count: int) -> list[str]:
    """`count` distinct codes that no one has yet (checked again by the unique index)."""
    drawn: list[str] = []
    while len(drawn) < count:
        candidates = {codes.generate_code() for _ in range(count - len(drawn))} - set(drawn)
        query = select(Beneficiary.code).where(Beneficiary.code.in_(candidates))
        taken = set(session.scalars(query))
        drawn += sorted(candidates - taken)
    return drawn


jobs.register(
    jobs.JobKind.PRINT_BATCH, jobs.Runner(check=check, run=run, total=total, allowed=allowed)
)
