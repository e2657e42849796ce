"""Test helpers: answer sets, a journey driver for the Flask test client, database probes."""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from flask.testing import FlaskClient
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from selfcheck.journey import operations as journey
from selfcheck.platform.db import Database
from selfcheck.platform.models import Answer, Beneficiary, Response, Structure
from selfcheck.questionnaire.loader import DEFAULT_DEFINITION, load_definition
from selfcheck.questionnaire.model import Definition, FormKind, Page
from selfcheck.questionnaire.model import Role as ItemRole

Values = Mapping[str, Sequence[str]]

# Parsing and validating the YAML costs ~0.3 s of CPU: the suite's apps, fixtures and helpers
# reuse one parse per file and test process. tests/test_app.py checks create_app with the real,
# uncached loader.
cached_load_definition = functools.lru_cache(maxsize=8)(load_definition)

# --- answer sets -------------------------------------------------------------------------

TASKS = [f"T{n:02d}" for n in range(1, 16)]

# Task answers at the first visit and at the end. T12 "does not concern me" both times.
TASKS_BEFORE = dict(
    zip(
        TASKS,
        ["2", "1", "1", "2", "1", "1", "2", "1", "1", "2", "1", "9", "1", "1", "2"],
        strict=True,
    )
)
TASKS_AFTER = dict(
    zip(
        TASKS,
        ["4", "3", "2", "3", "2", "3", "3", "2", "2", "3", "3", "9", "2", "2", "3"],
        strict=True,
    )
)
# before -> after: rank below 3 (with help) then 3 or more (on my own)
NEWLY_ALONE = ["T01", "T02", "T04", "T06", "T07", "T10", "T11", "T15"]
# rank 1 or 2 after
NEEDS_HELP_AFTER = ["T03", "T05", "T08", "T09", "T13", "T14"]

PROFILE: dict[str, tuple[str, ...]] = {
    "AGE": ("soixante_dix_plus",),
    "GENDER": ("feminin",),
    "STATUS": ("retraite",),
    "DIPLOMA": ("brevet",),
    "AREA": ("rural",),
    "INTERNET_HOME": ("oui",),
    "DEVICES": ("smartphone", "tablette"),
    "USE_SMARTPHONE": ("4",),
    "USE_TABLET": ("2",),
    "REASONS": ("utiliser_appareil", "rassurer"),
    "PRESCRIBED": ("personne",),
}
PATH: dict[str, tuple[str, ...]] = {
    "MODALITY": ("individuel",),
    "SESSIONS": ("6",),
    "SESSION_LENGTH": ("de_30_a_60",),
    "TOPICS": ("prendre_en_main_du_materiel", "email"),
}
CHANGE: dict[str, tuple[str, ...]] = {
    "NEW_THINGS": ("oui",),
    "NEW_THINGS_WHICH": ("appareil", "proches"),
    "PROGRESS": ("4",),
    "PROGRESS_DOMAINS": ("operational", "communication"),
    "CHANGES": ("confiance", "autonomie"),
    "COMMENT": ("Merci à Nadia, j'ai appris plein de choses",),
}

BEFORE: dict[str, tuple[str, ...]] = {
    "ASSIST": ("seul",),
    **PROFILE,
    "COMFORT": ("1",),
    **{code: (value,) for code, value in TASKS_BEFORE.items()},
}
AFTER: dict[str, tuple[str, ...]] = {
    "ASSIST": ("mediateur",),
    **PATH,
    "COMFORT": ("3",),
    **{code: (value,) for code, value in TASKS_AFTER.items()},
    **CHANGE,
}
# The light retrospective form asks only some of these (definition.yaml: the items whose
# `forms:` list `retro`); RETRO keeps what it asks.
_RETRO_ALL: dict[str, tuple[str, ...]] = {
    "ASSIST": ("proche",),
    **PROFILE,
    **PATH,
    "COMFORT_PRE": ("1",),
    "COMFORT": ("3",),
    **{code + "_PRE": (value,) for code, value in TASKS_BEFORE.items()},
    **{code: (value,) for code, value in TASKS_AFTER.items()},
    **CHANGE,
}
_RETRO_ASKED = {
    v.code for v in cached_load_definition(DEFAULT_DEFINITION).variables(FormKind.RETRO)
}
RETRO: dict[str, tuple[str, ...]] = {
    code: value for code, value in _RETRO_ALL.items() if code in _RETRO_ASKED
}
ANSWERS = {FormKind.BEFORE: BEFORE, FormKind.AFTER: AFTER, FormKind.RETRO: RETRO}

# --- HTML --------------------------------------------------------------------------------

CSRF_FIELD = "csrf_token"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_HTML_LANG = re.compile(r"<html lang=\"([^\"]*)\" dir=\"([^\"]*)\"[^>]*>")


@dataclass
class Input:
    tag: str
    type: str
    name: str
    value: str
    checked: bool


@dataclass
class HtmlForm:
    action: str | None
    method: str
    inputs: list[Input] = field(default_factory=list)

    def hidden(self) -> dict[str, str]:
        return {i.name: i.value for i in self.inputs if i.type == "hidden"}

    def question_names(self) -> list[str]:
        """Names of the answer inputs, in page order, once each."""
        names: list[str] = []
        for i in self.inputs:
            if i.type in {"radio", "checkbox", "text", "textarea"} and i.name not in names:
                names.append(i.name)
        return names

    def options(self, name: str) -> list[str]:
        return [i.value for i in self.inputs if i.name == name and i.type in {"radio", "checkbox"}]

    def checked(self, name: str) -> list[str]:
        return [i.value for i in self.inputs if i.name == name and i.checked]

    def buttons(self) -> list[tuple[str, str]]:
        return [(i.name, i.value) for i in self.inputs if i.tag == "button"]


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[HtmlForm] = []
        self._textarea: Input | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(
                HtmlForm(attributes.get("action"), attributes.get("method", "get").lower())
            )
            return
        if not self.forms or tag not in {"input", "button", "textarea"}:
            return
        kind = "textarea" if tag == "textarea" else attributes.get("type", "text")
        element = Input(
            tag,
            kind,
            attributes.get("name", ""),
            attributes.get("value", ""),
            "checked" in attributes,
        )
        self.forms[-1].inputs.append(element)
        if tag == "textarea":
            self._textarea = element

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea.value += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None


def parse_forms(html: str) -> list[HtmlForm]:
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms


def csrf_token(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token on this page"
    return found.group(1)


def html_lang(html: str) -> tuple[str, str]:
    """(lang, dir) of the <html> element."""
    found = _HTML_LANG.search(html)
    assert found, "no <html lang dir> element"
    return found.group(1), found.group(2)


def error_summary(html: str) -> list[str]:
    """Texts of the error summary's links (empty when the page has none)."""
    block = re.search(r'<div class="error-summary".*?</ul>', html, re.S)
    if block is None:
        return []
    links = re.findall(r"<a [^>]*>(.*?)</a>", block[0], re.S)
    return [re.sub(r"\s+", " ", words(link)).strip() for link in links]


def text_of(response: TestResponse) -> str:
    """The raw HTML of a response."""
    return response.get_data(as_text=True)


def words(page: TestResponse | str) -> str:
    """Page text for assertions on wording: entities decoded, non-breaking spaces as spaces.

    French typography puts a no-break space before « : ? ! » and inside guillemets.
    """
    html = page if isinstance(page, str) else text_of(page)
    return unescape(html).replace("\xa0", " ").replace("\u202f", " ")


def path_of(location: str) -> str:
    return urlsplit(location).path


# --- the journey driver ------------------------------------------------------------------


class Visitor:
    """One person's browser: follows the journey, reading CSRF tokens from the pages."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.last: TestResponse | None = None
        self.url: str | None = None

    # low level

    @property
    def html(self) -> str:
        assert self.last is not None
        return text_of(self.last)

    @property
    def text(self) -> str:
        """The page for assertions on wording (see `words`)."""
        return words(self.html)

    def get(self, url: str, **kwargs: Any) -> TestResponse:
        self.last = self.client.get(url, **kwargs)
        self.url = url
        return self.last

    def post(
        self,
        url: str,
        data: Mapping[str, str | Sequence[str]] | Iterable[tuple[str, str]] = (),
        *,
        csrf: bool = True,
        **kwargs: Any,
    ) -> TestResponse:
        form = _multidict(data)
        if csrf and CSRF_FIELD not in form:
            form[CSRF_FIELD] = csrf_token(self.html)
        return self.client.post(url, data=form, **kwargs)

    def follow(self, response: TestResponse) -> TestResponse:
        assert response.status_code in (302, 303), response.status_code
        return self.get(response.headers["Location"])

    def forms(self) -> list[HtmlForm]:
        return parse_forms(self.html)

    # the journey

    def start(self, slug: str, form: str = "before", lang: str | None = None) -> TestResponse:
        """Open the start page and press the button of `form` (before or retro)."""
        page = self.get(f"/s/{slug}" + (f"?lang={lang}" if lang else ""))
        assert page.status_code == 200, page.status_code
        chosen = next(f for f in self.forms() if f.hidden().get("form") == form)
        assert chosen.action is not None
        return self.post(chosen.action, chosen.hidden())

    def page_form(self) -> HtmlForm:
        """The questionnaire form of the current page."""
        return next(f for f in self.forms() if any(i.name == "action" for i in f.inputs))

    def answer(
        self, values: Values, action: str | None = "next", **extra: str | Sequence[str]
    ) -> TestResponse:
        """Post the current question page with `values` (and its hidden fields)."""
        assert self.url is not None
        data: MultiDict[str, str] = MultiDict(self.page_form().hidden())
        for name, given in {**values, **extra}.items():
            data.setlist(name, [given] if isinstance(given, str) else list(given))
        if action is not None:
            data["action"] = action
        return self.client.post(path_of(self.url), data=data)

    def fill(
        self, answers: Values, start: TestResponse | str, until: str | None = None
    ) -> list[str]:
        """From a redirect (or a URL) to a question page, answer page after page.

        Returns the codes of the pages answered; stops before page `until` if given, or at
        the first page that is not a question page (then `self.last` is that page).
        """
        visited: list[str] = []
        location = start if isinstance(start, str) else start.headers["Location"]
        while True:
            page = self.get(location)
            assert page.status_code == 200, (location, page.status_code)
            path = path_of(location)
            if not path.startswith("/q/") or path == f"/q/{until}":
                return visited
            code = path.removeprefix("/q/")
            assert code not in visited, f"page {code} shown twice"
            visited.append(code)
            names = self.page_form().question_names()
            given = {name: answers[name] for name in names if name in answers}
            posted = self.answer(given)
            if posted.status_code == 200 and 'name="confirmed_missing"' in text_of(posted):
                # Task rows left blank: warned once, the person goes on (issue 12).
                self.last = posted
                posted = self.answer(given)
            assert posted.status_code == 302, (
                code,
                posted.status_code,
                error_summary(text_of(posted)),
            )
            location = posted.headers["Location"]

    def submit(self) -> TestResponse:
        """Press "send" on the check page (the current page), with its hidden fields."""
        form = next(f for f in self.forms() if f.action and path_of(f.action) == "/check")
        return self.post("/check", form.hidden())

    def complete(self, slug: str, form: str = "before", answers: Values | None = None) -> str:
        """Start, fill and submit a questionnaire; returns the person's code from /done."""
        started = self.start(slug, form)
        self.fill(answers or ANSWERS[FormKind(form)], started)
        assert self.url == "/check", self.url
        done = self.follow(self.submit())
        assert done.status_code == 200
        return code_on_page(self.html)

    def enter_code(self, code: str) -> TestResponse:
        self.get("/code")
        return self.post("/code", {"code": code})


def code_on_page(html: str) -> str:
    """The person's code as shown in the code box (K7M-2QX-9RT), without dashes."""
    found = re.search(r'class="code-box__code"><span [^>]*>([0-9A-Z-]{11})</span>', html)
    assert found, "no code box on this page"
    return found.group(1).replace("-", "")


def _multidict(
    data: Mapping[str, str | Sequence[str]] | Iterable[tuple[str, str]],
) -> MultiDict[str, str]:
    form: MultiDict[str, str] = MultiDict()
    pairs = data.items() if isinstance(data, Mapping) else data
    for name, value in pairs:
        for one in [value] if isinstance(value, str) else value:
            form.add(name, one)
    return form


# --- services and database ---------------------------------------------------------------


def fill_response(
    session: Session, definition: Definition, response: Response, answers: Values
) -> list[str]:
    """Save every visible page of `response` in order, as the web journey does."""
    form = FormKind(response.form)
    visited = []
    page: Page | None = journey.visible_pages(definition, form, journey.answers_of(response))[0]
    while page is not None:
        current = journey.answers_of(response)
        values = {
            v.code: tuple(answers.get(v.code, ()))
            for v in journey.page_variables(page, form, current)
        }
        journey.save_page(session, definition, response, page, values)
        session.commit()
        visited.append(page.code)
        page = journey.neighbour_page(definition, form, page.code, journey.answers_of(response), 1)
    return visited


_tokens = iter(range(10**9))


def new_token() -> str:
    return f"test-start-token-{next(_tokens):08d}"


def submitted(
    session: Session,
    definition: Definition,
    structure: Structure,
    form: FormKind,
    answers: Values | None = None,
) -> Response:
    """A submitted response of a new person (before or retro)."""
    response = journey.start_response(session, definition, structure, form, "fr", new_token())
    session.commit()
    return fill_and_submit(session, definition, response, answers or ANSWERS[form])


def fill_and_submit(
    session: Session, definition: Definition, response: Response, answers: Values
) -> Response:
    """`response` filled page by page with `answers`, then submitted (the first time)."""
    fill_response(session, definition, response, answers)
    session.commit()
    assert journey.submit(session, definition, response)
    session.commit()  # the test is the caller: operations never commit
    return response


def count(database: Database, model: type[Any], *where: Any) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def person_id(database: Database, code: str) -> int:
    """A person's database id: the staff pages name people by it, never by their code (a
    credential a shared computer's history would keep: docs/security.md)."""
    with database.session() as session:
        found = session.scalar(select(Beneficiary.id).where(Beneficiary.code == code))
    assert found is not None, code
    return found


def person_url(database: Database, code: str, tail: str = "") -> str:
    """The staff page of the person with `code` (`tail`: "/delete", "/summary.pdf"...)."""
    return f"/staff/people/{person_id(database, code)}{tail}"


def search_people(
    visitor: Visitor, typed: str, list_url: str = "/staff/people/", **filters: str
) -> TestResponse:
    """Search the follow-up list for a code (or part), as its form does: a POST (the code never
    goes into an address), then the redirect it answers, followed. A refused search (400) is
    the page itself."""
    visitor.get(list_url)
    response = visitor.post(list_url, {"q": typed, **filters})
    if response.status_code in (302, 303):
        return visitor.follow(response)
    visitor.last = response
    return response


def stored(database: Database, response_id: int) -> dict[str, tuple[str, ...]]:
    """Answers stored for one response, read with a fresh session."""
    with database.session() as session:
        rows = session.execute(
            select(Answer.variable, Answer.value)
            .where(Answer.response_id == response_id)
            .order_by(Answer.id)
        )
        result: dict[str, list[str]] = {}
        for variable, value in rows:
            result.setdefault(variable, []).append(value)
    return {variable: tuple(values) for variable, values in result.items()}


def responses(database: Database) -> list[Response]:
    with database.session() as session:
        return list(session.scalars(select(Response).order_by(Response.id)))


def code_of(definition: Definition, role: ItemRole) -> str:
    """The code of the item that plays `role`: tests that need an item, not a given code."""
    item = definition.item_with_role(role)
    assert item is not None, role
    return item.code


def follow_job(visitor: Visitor, response: TestResponse) -> TestResponse:
    """A request that started a background job (303 to its page): the job's file, once ready.

    The test apps run jobs inside the request (huey immediate mode), so the job is done when
    its page is first shown; tests/platform/test_jobs.py also runs a real worker.
    """
    if response.status_code != 303 or "/staff/jobs/" not in response.headers.get("Location", ""):
        return response
    page = path_of(response.headers["Location"])
    shown = visitor.get(page)
    assert shown.status_code == 200, shown.status_code
    assert 'role="status"' in text_of(shown)
    downloaded = visitor.get(f"{page}/download")
    downloaded.get_data()  # read, then close the file send_file opened
    downloaded.close()
    return downloaded


@contextlib.contextmanager
def only_handler(logger: logging.Logger, handler: logging.Handler) -> Iterator[None]:
    """`handler` the one handler `logger`'s records reach, as in production (one JSON stream
    on stdout): pytest attaches its capture handlers to the root logger and to every
    non-propagating logger at each phase of a test; they are put back afterwards."""
    others = [h for h in logger.handlers if h is not handler]
    propagate = logger.propagate
    for other in others:
        logger.removeHandler(other)
    logger.propagate = False
    try:
        yield
    finally:
        logger.propagate = propagate
        for other in others:
            logger.addHandler(other)


@contextlib.contextmanager
def listening(database: Database, *handlers: tuple[str, Any]) -> Iterator[None]:
    """SQLAlchemy event handlers (name, function) on every engine of the app: the engine
    and, on PostgreSQL, the reader, which has a pool of its own (`Database.engines`). Pool
    events ("checkout") are accepted on an engine too."""
    engines = database.engines()
    for engine in engines:
        for name, handler in handlers:
            event.listen(engine, name, handler)
    try:
        yield
    finally:
        for engine in engines:
            for name, handler in handlers:
                event.remove(engine, name, handler)


LONG_FILE_NAME = "selfcheck-export-2026-12-07-23-10-anonymise-donnees-longues.zip"


def add_finished_job(database: Database, user_id: int, filename: str = LONG_FILE_NAME) -> str:
    """A finished export of `user_id`, its file named `filename` (only its page is shown:
    no file is written); its id."""
    from datetime import timedelta
    from secrets import token_hex

    from selfcheck.platform.models import Job, utcnow

    job_id = token_hex(16)
    with database.session() as session:
        session.add(
            Job(
                id=job_id,
                kind="export",
                user_id=user_id,
                status="done",
                total=4,
                progress=4,
                filename=filename,
                finished_at=utcnow(),
                expires_at=utcnow() + timedelta(minutes=30),
            )
        )
        session.commit()
    return job_id
