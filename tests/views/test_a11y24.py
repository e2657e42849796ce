"""Round 24's accessibility leftovers, read in the HTML (the browser tests, in
tests/browser/test_browser_a11y24.py, look at the same pages drawn):

- the job page's download button: the file's name isolated, left to right, on its own line;
- the dashboard's charts: every shape carries the class the forced-colours styles reach;
- the audit trail's filters: the back office's `input` style, their error state marked;
- the follow-up summary's table reflows on a phone (a label before each answer);
- the check page: typed words take their own direction;
- the templates compare an answer's moment with `Moment.PRE`, never with "pre".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask, render_template
from sqlalchemy.orm import Session

import selfcheck
from selfcheck.journey.lasting import Lasting, TaskPoints
from selfcheck.platform.db import Database
from selfcheck.platform.models import Role, Structure
from selfcheck.questionnaire.model import Definition, FormKind, Moment, Wording
from tests.services.evaluation.support import populate
from tests.staff import add_staff, signed_in
from tests.support import AFTER, LONG_FILE_NAME, RETRO, Visitor, add_finished_job, text_of

PACKAGE = Path(selfcheck.__file__).parent
TEMPLATES = (PACKAGE / "templates", PACKAGE / "paper" / "templates")
LONG_NAME = LONG_FILE_NAME


class _Elements(HTMLParser):
    """Every start tag of a page with its attributes, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {name: value or "" for name, value in attrs}))


def elements(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Elements()
    parser.feed(html)
    return parser.found


def squish(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


# --- 1. the job page's file name ---------------------------------------------------------------


@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_the_download_button_isolates_the_file_name_left_to_right(
    app: Flask, database: Database, structure: Structure, lang: str
) -> None:
    """At 320 px in Arabic the name broke at its dashes, its parts set around "تنزيل": now it
    is a `<bdi dir="ltr">` of its own (a block, static/css), whole in the link's text."""
    account = add_staff(database, Role.MEDIATOR, structure)
    job_id = add_finished_job(database, account.id, LONG_NAME)
    visitor = signed_in(app, account)
    visitor.get(f"/?lang={lang}")
    page = visitor.get(f"/staff/jobs/{job_id}")
    assert page.status_code == 200
    html = text_of(page)
    link = re.search(r'<a class="button button--file"[^>]*download>(.*?)</a>', html, re.S)
    assert link is not None, html
    assert f'<bdi class="file-name" dir="ltr">{LONG_NAME}</bdi>' in link.group(1)
    name = squish(link.group(1))
    assert name.endswith(LONG_NAME) and name != LONG_NAME  # the verb, then the whole name
    if lang == "fr":
        assert name == f"Télécharger {LONG_NAME}"


# --- 2. the dashboard's charts in forced colours -----------------------------------------------


@pytest.mark.slow  # 60 people answered through the services: a few seconds
def test_every_chart_shape_carries_a_class_the_forced_colours_reach(
    app: Flask, database: Database, db_session: Session, definition: Definition
) -> None:
    """Chromium does not force an SVG's fill and stroke: the forced-colours styles reach each
    shape by its class (track, bar, pattern ground and ink, the forest plot's lines)."""
    populate(db_session, definition, people=60, moved=20)
    evaluator = signed_in(app, add_staff(database, Role.EVALUATOR, departments=("44",)))
    shapes: dict[str, int] = {}
    for path in ("/evaluate/", "/evaluate/quality", "/evaluate/change"):
        page = evaluator.get(path)
        assert page.status_code == 200, path
        for svg in re.findall(r"<svg.*?</svg>", text_of(page), re.S):
            for tag, attrs in elements(svg):
                if tag not in ("rect", "line", "path", "circle"):
                    continue
                kind = attrs.get("class", "")
                assert kind in {
                    "chart__track",
                    "chart__bar",
                    "chart-pattern__ground",
                    "chart-pattern__ink",
                    "forest__tick",
                    "forest__zero",
                    "forest__interval",
                    "forest__estimate",
                }, (path, tag, attrs)
                shapes[kind] = shapes.get(kind, 0) + 1
    assert shapes.get("chart__track", 0) > 10 and shapes.get("chart__bar", 0) > 10, shapes
    assert shapes.get("chart-pattern__ink", 0) >= 5 and shapes.get("forest__zero"), shapes
    css = (PACKAGE / "static/css/selfcheck.css").read_text()
    forced = css[css.index("@media (forced-colors: active)") :]
    for kind in shapes:
        assert f".{kind}" in forced, kind


# --- 3. the audit trail's filters --------------------------------------------------------------


def test_the_audit_filters_look_like_the_other_back_office_fields(
    app: Flask, database: Database, structure: Structure
) -> None:
    """The selects and dates were browser defaults beside the styled code box: every
    field of the form is an `input` now, and one at fault says so (bar, aria-invalid)."""
    admin = signed_in(app, add_staff(database, Role.STRUCTURE_ADMIN, structure))
    page = admin.get("/staff/audit")
    assert page.status_code == 200
    html = text_of(page)
    start = html.index('class="eval-filters"')
    form = html[start : html.index("</form>", start)]
    fields = [
        (tag, attrs)
        for tag, attrs in elements(form)
        if tag in ("input", "select") and attrs.get("type") not in ("hidden",)
    ]
    assert [attrs["id"] for _tag, attrs in fields] == ["person", "staff", "action", "from", "to"]
    for tag, attrs in fields:
        assert "input" in attrs.get("class", "").split(), (tag, attrs)
        assert "aria-invalid" not in attrs

    wrong = admin.get("/staff/audit?from=2026-13-45")
    assert wrong.status_code == 400
    html = text_of(wrong)
    (date,) = [attrs for tag, attrs in elements(html) if attrs.get("id") == "from"]
    assert date["aria-invalid"] == "true" and date["aria-describedby"] == "from-error"
    assert re.search(r'<div class="field field--error">\s*<label for="from">', html)
    assert html.count("field--error") == 1


# --- 4. the follow-up summary's table ----------------------------------------------------------


def test_the_followup_table_gives_each_answer_its_column_name(
    app: Flask, definition: Definition
) -> None:
    """At 320 px only two of its four columns were seen: it reflows (`table--reflow`), each
    answer under the name of its column (`data-label`, shown before it on a phone)."""
    tasks = [item for item in definition.task_items() if len(item.options) >= 3][:3]
    points = tuple(
        TaskPoints(item, item.options[0], item.options[2], item.options[1]) for item in tasks
    )
    lasting = Lasting(points, None, None, None, FormKind.FOLLOWUP, Wording.STANDARD)
    assert len(lasting.lost) == 3
    with app.test_request_context("/summary"):
        html = render_template("journey/_lasting.html", lasting=lasting)
        words = lasting.words()
        columns = [words.point_before, words.point_end, words.point_later]
    assert '<table class="table table--reflow">' in html
    rows = re.findall(r"<tr><th scope=\"row\">.*?</tr>", html, re.S)
    assert len(rows) == 3
    for row in rows:
        labels = [attrs.get("data-label") for tag, attrs in elements(row) if tag == "td"]
        assert labels == columns


# --- 5. the check page: typed words ------------------------------------------------------------


def test_typed_words_take_their_own_direction(
    visitor: Visitor, new_visitor: Callable[[], Visitor], structure: Structure
) -> None:
    """A French sentence on the Arabic check page had its final full stop at its start: the
    person's own words are `dir="auto"` (their box too); chosen answers and numbers keep the
    page's direction (a number alone, `dir="auto"`, would go left to right)."""
    code = visitor.complete(structure.slug)
    end = new_visitor()
    end.follow(end.enter_code(code))
    end.fill(AFTER, end.post("/welcome-back"), until="p_comment")
    end.get("/q/p_comment")
    (area,) = [attrs for tag, attrs in elements(end.html) if tag == "textarea"]
    assert area["dir"] == "auto"
    end.fill(AFTER, "/q/p_comment")
    assert end.url == "/check"
    answers = re.findall(r"<dd( dir=\"auto\")?>(.*?)</dd>", end.html, re.S)
    typed = [unescape(text) for auto, text in answers if auto]
    assert typed == list(AFTER["COMMENT"])
    assert len(answers) > 20


def test_the_retrospective_pairs_are_named_for_each_before_answer(
    visitor: Visitor, structure: Structure, definition: Definition
) -> None:
    """The check page names each "before" answer of the retrospective form (Moment.PRE) and
    only those: "(avant l'accompagnement)"."""
    visitor.fill(RETRO, visitor.start(structure.slug, "retro"))
    assert visitor.url == "/check"
    pre = [v for v in definition.variables(FormKind.RETRO) if v.moment is Moment.PRE]
    assert unescape(visitor.html).count("(avant l'accompagnement)</dt>") == len(pre) > 0


# --- 6. Moment.PRE, not "pre" ------------------------------------------------------------------


def test_no_template_compares_a_moment_with_a_string() -> None:
    found = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for folder in TEMPLATES
        for path in folder.rglob("*.html")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"moment\s*[!=]=\s*['\"]", line)
    ]
    assert found == []


def test_the_entry_screens_name_each_moment(app: Flask) -> None:
    """The entry macros' moment name, imported without context: the global reaches it, and a
    stored value ("pre", a plain string) is named as the enum is."""
    with app.test_request_context("/"):
        names = app.jinja_env.get_template("staff/entry_macros.html").module.moment_name
        assert unescape(names(Moment.PRE)) == "Avant l'accompagnement"
        assert unescape(names("pre")) == "Avant l'accompagnement"
        assert str(names(Moment.PRE, short=True)) == "Avant"
        assert unescape(names(Moment.NOW)) == "Aujourd'hui"
