"""Paper forms and summary PDFs: built from the definition, readable, tagged, scannable."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import re
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pydyf
import pytest
from flask import Flask
from flask_babel import force_locale, gettext
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck.accounts.structures import create_structure
from selfcheck.journey import operations as journey
from selfcheck.journey import summary
from selfcheck.journey.page_view import question_numbers
from selfcheck.paper import operations as paper
from selfcheck.platform import codes, weasy
from selfcheck.platform.db import Database
from selfcheck.platform.models import AuditEvent, Beneficiary, Role, StaffUser, Structure
from selfcheck.questionnaire.model import Definition, FormKind
from tests.pdf_support import (
    flat,
    fonts,
    page_count,
    page_image,
    page_texts,
    qr_codes,
    text,
    text_runs,
)
from tests.pdf_support import (
    structure as pdf_structure,
)
from tests.staff import add_staff
from tests.support import AFTER, BEFORE, count, fill_and_submit, fill_response, new_token, submitted

ROOT = Path(__file__).resolve().parents[2]

# Set to a folder (docs/screenshots) to refresh the README's pictures of the PDFs; read at
# import time, like tests/browser/support.SCREENSHOTS_DIR.
SCREENSHOTS_DIR = os.environ.get("SELFCHECK_SCREENSHOTS", "")

CODE = "K7M2QX9RV"
assert codes.normalise(CODE) == CODE

Render = Callable[..., bytes]

# Rendering takes a fraction of a second per page: each PDF is made once for the module.
_PDFS: dict[tuple[object, ...], bytes] = {}


@pytest.fixture
def render(app: Flask) -> Iterator[Render]:
    """render(form, lang, code=None, large=False, copies=1) -> PDF bytes (cached)."""

    def make(
        form: FormKind,
        lang: str = "fr",
        code: str | None = None,
        large: bool = False,
        copies: int = 1,
    ) -> bytes:
        key = (form, lang, code, large, copies)
        if key not in _PDFS:
            copy = paper.Copy(form, lang, code)
            _PDFS[key] = paper.renderer(app).questionnaires(
                [copy] * copies, large=large, site_url="https://selfcheck.example/code"
            )
        return _PDFS[key]

    with app.app_context():
        yield make


@pytest.fixture
def no_weasyprint_warnings(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """WeasyPrint logs (not raises) missing alt texts, failed fetches and CSS it ignores."""
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        yield
    problems = [r.getMessage() for r in caplog.records if r.name.startswith("weasyprint")]
    assert problems == []


def labels(definition: Definition, form: FormKind) -> list[str]:
    return [item.label for item in definition.items(form)]


def translated(app: Flask, lang: str, message: str, **variables: object) -> str:
    with app.app_context(), force_locale(lang):
        return flat(gettext(message, **variables))


# The tests down to the summary PDF render blank or coded forms from the item bank: their app's
# database is incidental (they send it no query), so they run on the SQLite pass only
# (tests/database_use.py checks the claim).
BLANK_FORMS_ONLY = pytest.mark.one_database(
    reason="forms rendered from the item bank and read back: no query"
)


# --- the form's content comes from the definition -----------------------------------------


@BLANK_FORMS_ONLY
@pytest.mark.parametrize("form", list(FormKind))
def test_paper_sections_follow_the_web_form(definition: Definition, form: FormKind) -> None:
    sections = paper.paper_sections(definition, form, large=False)
    questions = [q for s in sections for p in s.pages for q in p.questions]
    web_items = [item for page in definition.pages(form) for item in page.items_for(form)]
    assert [q.item for q in questions] == web_items
    numbers = question_numbers(definition, form)
    assert [q.number for q in questions] == [numbers[item.code] for item in web_items]
    assert [p.page for s in sections for p in s.pages] == list(definition.pages(form))
    titles = {section.code: section.title for section in definition.sections}
    assert [s.title for s in sections] == list(
        dict.fromkeys(titles[page.section] for page in definition.pages(form))
    )
    for q in questions:
        assert q.moments == q.item.moments(form)
        assert (q.condition is None) == (q.item.show_if is None)


@BLANK_FORMS_ONLY
def test_conditions_name_the_question_and_the_answers(definition: Definition) -> None:
    sections = paper.paper_sections(definition, FormKind.AFTER, large=False)
    by_code = {q.item.code: q for s in sections for p in s.pages for q in p.questions}
    numbers = question_numbers(definition, FormKind.AFTER)
    which = by_code["NEW_THINGS_WHICH"].condition
    assert which == paper.Condition(numbers["NEW_THINGS"], ("Oui",))
    domains = by_code["PROGRESS_DOMAINS"].condition
    assert domains == paper.Condition(numbers["PROGRESS"], ("Oui, un peu", "Oui, tout à fait"))


@BLANK_FORMS_ONLY
def test_normal_print_groups_tasks_in_grids_and_large_print_does_not(
    definition: Definition,
) -> None:
    def blocks(form: FormKind, large: bool) -> list[paper.Block]:
        sections = paper.paper_sections(definition, form, large)
        return [b for s in sections for p in s.pages for b in p.blocks]

    grids = [b for b in blocks(FormKind.RETRO, False) if isinstance(b, paper.PaperGrid)]
    assert grids and all(g.paired for g in grids)
    in_grids = {q.item.code for g in grids for q in g.questions}
    assert {item.code for item in definition.task_items()} <= in_grids
    assert not any(isinstance(b, paper.PaperGrid) for b in blocks(FormKind.RETRO, True))
    large = [b for b in blocks(FormKind.BEFORE, True) if isinstance(b, paper.PaperQuestion)]
    assert {q.layout for q in large} == {paper.Layout.LIST}


# --- the PDF: text, pages, numbers, codes -----------------------------------------------


@BLANK_FORMS_ONLY
@pytest.mark.parametrize("form", list(FormKind))
def test_a_blank_form_has_every_question_numbered_as_on_the_entry_screen(
    render: Render, definition: Definition, form: FormKind, no_weasyprint_warnings: None
) -> None:
    pdf = render(form)
    content = text(pdf)
    pages = page_texts(pdf)
    for item in definition.items(form):
        # on one page: a question is never cut by a page break
        assert any(flat(item.label) in page for page in pages), item.code
        # the number is the typist's reference: no item code in the respondent's way
        assert not re.search(rf"\b{item.code}\b", content), item.code
    for code, number in question_numbers(definition, form).items():
        label = flat(definition.item(code).label)
        assert f"{number}. {label}" in content, code
    assert flat(definition.titles[form]) in content
    assert qr_codes(pdf) == []  # no code: nothing to scan
    assert "___-___-___" in content  # the header leaves room to write a code by hand


@BLANK_FORMS_ONLY
def test_pages_are_numbered_per_copy_and_the_last_one_says_so(render: Render) -> None:
    single = render(FormKind.BEFORE)
    pages = page_count(single)
    assert 3 <= pages <= 8
    batch = render(FormKind.BEFORE, copies=3)
    texts = page_texts(batch)
    assert len(texts) == 3 * pages
    for copy in range(3):
        for index in range(pages):
            page = texts[copy * pages + index]
            assert f"Page {index + 1} sur {pages}" in page
            last = index == pages - 1
            assert ("Fin du questionnaire" in page) is last
            assert ("Suite page suivante" in page) is not last


@BLANK_FORMS_ONLY
def test_a_coded_form_shows_the_code_on_every_page_and_its_qr_decodes_to_it(
    render: Render, no_weasyprint_warnings: None
) -> None:
    pdf = render(FormKind.BEFORE, code=CODE)
    texts = page_texts(pdf)
    assert all("Code : K7M-2QX-9RV" in page for page in texts)
    assert qr_codes(pdf, 0) == [CODE]
    assert qr_codes(pdf, 1) == []  # one QR code per form, on its first page
    assert "https://selfcheck.example/code" in texts[0]


@BLANK_FORMS_ONLY
def test_the_retrospective_form_asks_before_and_today_for_each_task(
    render: Render, definition: Definition
) -> None:
    content = text(render(FormKind.RETRO))
    paired = [i for i in definition.items(FormKind.RETRO) if len(i.moments(FormKind.RETRO)) > 1]
    assert len(paired) == 16  # comfort and the 15 tasks
    assert content.count("Aujourd'hui") >= len(paired)
    assert content.count("Avant") >= len(paired)
    large = text(render(FormKind.RETRO, large=True))
    assert large.count("Aujourd'hui") >= len(paired)
    assert "cochez une case pour « Avant » (avant votre accompagnement)" in large


@BLANK_FORMS_ONLY
def test_conditional_questions_carry_their_instruction(
    render: Render, definition: Definition
) -> None:
    content = text(render(FormKind.AFTER))
    numbers = question_numbers(definition, FormKind.AFTER)
    assert f"Si vous avez coché « Oui » à la question {numbers['NEW_THINGS']} :" in content
    assert (
        f"Si vous avez coché « Oui, un peu » ou « Oui, tout à fait » à la question "
        f"{numbers['PROGRESS']} :" in content
    )


@BLANK_FORMS_ONLY
def test_a_form_in_english_is_english(app: Flask, render: Render, definition: Definition) -> None:
    content = text(render(FormKind.AFTER, lang="en"))
    checked = 0
    for label in labels(definition, FormKind.AFTER):
        english = translated(app, "en", label)
        assert english in content, label
        checked += english != flat(label)
    assert checked >= len(labels(definition, FormKind.AFTER)) - 2  # nearly all differ
    assert flat(translated(app, "en", definition.titles[FormKind.AFTER])) in content
    assert pdf_structure(render(FormKind.AFTER, lang="en"))["lang"] == "en"


# --- accessibility and print quality -------------------------------------------------------


@BLANK_FORMS_ONLY
@pytest.mark.parametrize(("form", "lang"), [(FormKind.BEFORE, "fr"), (FormKind.RETRO, "en")])
def test_forms_are_tagged_pdf_with_language_and_title(
    render: Render, definition: Definition, app: Flask, form: FormKind, lang: str
) -> None:
    info = pdf_structure(render(form, lang=lang, code=CODE))
    assert info["struct_tree"] and info["marked"] and info["display_title"]
    assert info["lang"] == lang
    assert translated(app, lang, definition.titles[form]) in flat(info["title"])
    assert "K7M-2QX-9RV" in info["title"]
    assert {"H1", "H2", "Table", "TH", "L", "LI", "Figure"} <= set(info["tags"])
    spoken = codes.spoken(CODE)
    expected = translated(app, lang, "Code personnel : %(code)s", code=spoken)
    assert [flat(alt) for alt in info["figures"]] == [expected]


@BLANK_FORMS_ONLY
@pytest.mark.parametrize("large", [False, True])
def test_every_font_is_embedded_dejavu(render: Render, large: bool) -> None:
    used = list(fonts(render(FormKind.RETRO, code=CODE, large=large)))
    assert used
    assert [name for name, embedded in used if not embedded] == []
    assert all("DejaVu" in name for name, _ in used)


def _reading_sizes(pdf: bytes, definition: Definition) -> list[float]:
    """Sizes of what the person reads: everything but the item codes for the typist."""
    item_codes = {item.code for item in definition.items()}
    return [run.size for run in text_runs(pdf) if run.text not in item_codes]


@BLANK_FORMS_ONLY
@pytest.mark.slow  # > 8 s on 2 shared cores: CI runs it, the fast tier does not
def test_large_print_is_at_least_16_points(render: Render, definition: Definition) -> None:
    for form in FormKind:
        sizes = _reading_sizes(render(form, code=CODE, large=True), definition)
        assert sizes and min(sizes) >= 16, form


@BLANK_FORMS_ONLY
def test_normal_print_is_11_to_12_points(render: Render, definition: Definition) -> None:
    runs = [r for r in text_runs(render(FormKind.BEFORE)) if r.text.startswith("Je réponds")]
    assert runs and all(11 <= r.size <= 12 for r in runs)


@BLANK_FORMS_ONLY
def test_tick_boxes_are_at_least_7_mm() -> None:
    css = (paper.PRINTABLE_DIR / paper.STYLESHEET).read_text(encoding="utf-8")
    normal = re.search(r"\.box \{[^}]*width: ([\d.]+)mm; height: ([\d.]+)mm", css)
    large = re.search(r"\.large \.box, [^{]*\{ width: ([\d.]+)mm; height: ([\d.]+)mm", css)
    assert normal and large
    assert min(map(float, normal.groups())) >= 7
    assert min(map(float, large.groups())) >= 10


# --- a batch in one call, nothing from the network ------------------------------------------


@BLANK_FORMS_ONLY
@pytest.mark.slow  # > 8 s on 2 shared cores: CI runs it, the fast tier does not
def test_a_batch_holds_every_code_once(render: Render) -> None:
    batch_codes = [codes.generate_code() for _ in range(3)]
    pdf = paper.renderer().questionnaires(
        [paper.Copy(FormKind.AFTER, "fr", code) for code in batch_codes]
    )
    pages = page_count(pdf) // 3
    for index, code in enumerate(batch_codes):
        assert qr_codes(pdf, index * pages) == [code]
        assert codes.display(code) in page_texts(pdf)[index * pages]


@BLANK_FORMS_ONLY
@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
def test_mixed_languages_in_one_batch(app: Flask, render: Render, definition: Definition) -> None:
    pdf = paper.renderer().questionnaires(
        [paper.Copy(FormKind.AFTER, "en", CODE), paper.Copy(FormKind.AFTER, "fr", CODE)]
    )
    texts = page_texts(pdf)
    half = len(texts) // 2
    english = translated(app, "en", "Fin du questionnaire")
    label = definition.item("PROGRESS").label
    assert translated(app, "en", label) in " ".join(texts[:half])
    assert flat(label) in " ".join(texts[half:])
    assert pdf_structure(pdf)["lang"] == "en"
    assert english in texts[half - 1] and "Fin du questionnaire" in texts[-1]


@BLANK_FORMS_ONLY
def test_duplex_starts_each_copy_on_a_new_sheet(render: Render) -> None:
    pages = page_count(render(FormKind.BEFORE))
    pdf = paper.renderer().questionnaires([paper.Copy(FormKind.BEFORE, "fr")] * 2, duplex=True)
    texts = page_texts(pdf)
    padding = pages % 2
    assert len(texts) == 2 * pages + padding
    if padding:
        assert texts[pages] == ""  # a blank back: no header, no page number
    second = pages + padding
    assert second % 2 == 0  # a right-hand page: the front of a new sheet
    assert f"Page 1 sur {pages}" in texts[second]


@BLANK_FORMS_ONLY
def test_too_many_copies_or_none_are_refused(render: Render) -> None:
    with pytest.raises(paper.PaperError):
        paper.renderer().questionnaires([])
    with pytest.raises(paper.PaperError):
        paper.renderer().questionnaires([paper.Copy(FormKind.BEFORE, "fr")] * 201)


@BLANK_FORMS_ONLY
def test_the_fetcher_never_leaves_the_templates_folder(tmp_path: Path) -> None:
    fetcher = weasy.LocalFetcher(paper.PRINTABLE_DIR)
    found = fetcher.fetch((paper.PRINTABLE_DIR / paper.STYLESHEET).as_uri())
    assert b"@page" in found.read()
    outside = tmp_path / "secret.css"
    outside.write_text("body { color: red }")
    for url in (
        "https://example.org/style.css",
        "http://127.0.0.1/x.png",
        "ftp://example.org/x",
        "data:text/css,body{}",
        outside.as_uri(),
        (paper.PRINTABLE_DIR / ".." / "README.md").as_uri(),
    ):
        with pytest.raises(weasy.NetworkRefused):
            fetcher.fetch(url)


@BLANK_FORMS_ONLY
def test_rendering_stops_on_a_remote_resource(render: Render) -> None:
    html = (
        '<!doctype html><html lang="fr"><head><title>t</title></head>'
        '<body><img src="https://example.org/tracker.png" alt="x"></body></html>'
    )
    with pytest.raises(weasy.NetworkRefused):
        paper.renderer()._pdf(html)


@BLANK_FORMS_ONLY
def test_css_strings_are_escaped() -> None:
    assert paper.css_string("Page 2 sur 4") == '"Page 2 sur 4"'
    escaped = str(paper.css_string('a"b\\c\n</style>'))
    assert '"' not in escaped[1:-1] and "\\\\" not in escaped and "<" not in escaped
    assert "\n" not in escaped


@BLANK_FORMS_ONLY
def test_page_references_are_memoised_with_the_same_values() -> None:
    paper.memoise_page_references()  # as making the first printer does
    pdf = pydyf.PDF()
    seen = []
    for _ in range(3):
        page = pydyf.Dictionary({"Type": "/Page"})
        pdf.add_page(page)
        seen.append(pdf.page_references)
        assert pdf.page_references is seen[-1]  # kept while no page is added
    assert [len(refs) for refs in seen] == [1, 2, 3]
    kids = pdf.pages["Kids"]
    assert seen[-1] == tuple(f"{n} 0 R".encode("ascii") for n in kids[::3])
    paper.memoise_page_references()  # idempotent
    assert getattr(type(pdf).page_references.fget, "selfcheck_memoised", False)
    original = type(pdf).page_references.fget.selfcheck_original
    assert original(pdf) == seen[-1]


@BLANK_FORMS_ONLY
def test_the_patched_pydyf_is_the_pinned_version() -> None:
    """The memo patches one pydyf release: a new one must be re-checked (is the quadratic
    `page_references` still there? same attributes?) before the pin in pyproject.toml moves."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = [spec for spec in pyproject["project"]["dependencies"] if spec.startswith("pydyf")]
    assert pins == [f"pydyf=={importlib.metadata.version('pydyf')}"]


# --- the progress summary -----------------------------------------------------------------


@pytest.fixture
def followed(db_session: Session, definition: Definition, structure: Structure) -> Beneficiary:
    """A person with a submitted before and after form."""
    before = submitted(db_session, definition, structure, FormKind.BEFORE, BEFORE)
    person = before.beneficiary
    after = journey.start_after(db_session, definition, person, "fr")
    db_session.commit()
    fill_and_submit(db_session, definition, after, AFTER)
    db_session.refresh(person)
    return person


@pytest.mark.parametrize("large", [False, True])
def test_the_summary_pdf_shows_the_web_summary(
    app: Flask,
    definition: Definition,
    followed: Beneficiary,
    large: bool,
    no_weasyprint_warnings: None,
) -> None:
    result = summary.build_summary(definition, followed)
    assert result is not None
    with app.app_context():
        pdf = paper.renderer(app).summary(result, followed.code, "fr", large=large)
    content = text(pdf)
    assert "Vos progrès" in content
    assert result.praise and "Bravo ! Vous faites mieux qu'avant" in content
    for task in result.tasks:
        assert content.count(flat(task.item.label)) == 1  # each task once
    for bar in result.bars:
        assert flat(bar.competence.label) in content
        before, now = bar.points_before, bar.points_now
        assert (f"Avant : {before} marche" if before else "Avant : pas encore") in content
        assert (f"Aujourd'hui : {now} marche" if now else "Aujourd'hui : pas encore") in content
    assert codes.display(followed.code) in content
    last = page_count(pdf) - 1
    assert qr_codes(pdf, last) == [followed.code]
    info = pdf_structure(pdf)
    assert info["struct_tree"] and info["lang"] == "fr" and "Vos progrès" in info["title"]
    assert {"Figure", "L", "LI"} <= set(info["tags"])
    # The chart and the pictograms are text, boxes and backgrounds (no image to describe):
    # the one figure is the QR code.
    (qr,) = map(flat, info["figures"])
    assert qr.startswith("Code personnel : ")
    assert all(embedded for _, embedded in fonts(pdf))
    if large:
        sizes = [r.size for r in text_runs(pdf)]
        assert min(sizes) >= 16


def test_the_summary_pdf_in_english(
    app: Flask, definition: Definition, followed: Beneficiary
) -> None:
    result = summary.build_summary(definition, followed)
    assert result is not None
    with app.app_context():
        pdf = paper.renderer(app).summary(result, followed.code, "en")
    content = text(pdf)
    assert translated(app, "en", "Vos progrès") in content
    assert translated(app, "en", definition.item("T01").label) in content
    assert pdf_structure(pdf)["lang"] == "en"


# --- print jobs ---------------------------------------------------------------------------


def test_a_coded_batch_creates_fresh_codes_and_one_audit_event(
    database: Database, db_session: Session, structure: Structure
) -> None:
    account = add_staff(database, Role.MEDIATOR, structure)
    user = db_session.get(StaffUser, account.id)
    copies = paper.coded_batch(db_session, structure, user, FormKind.BEFORE, "en", 20)
    db_session.commit()
    assert len(copies) == 20 and len({c.code for c in copies}) == 20
    assert all(c.form is FormKind.BEFORE and c.locale == "en" for c in copies)
    assert all(c.code is not None and codes.normalise(c.code) == c.code for c in copies)
    assert count(database, Beneficiary, Beneficiary.structure_id == structure.id) == 20
    with database.session() as fresh:
        events = list(fresh.scalars(select(AuditEvent)))
    assert len(events) == 1
    event = events[0]
    assert (event.action, event.entity, event.user_id) == ("create", "beneficiary", account.id)
    assert event.structure_id == structure.id
    assert json.loads(event.changes)["count"] == 20
    with pytest.raises(paper.PaperError):
        paper.coded_batch(db_session, structure, user, FormKind.BEFORE, "fr", 201)


def test_people_for_codes_checks_each_code_and_scope(
    database: Database, db_session: Session, definition: Definition, structure: Structure
) -> None:
    other = create_structure(db_session, "Centre social Malakoff", "urbain", "44")
    db_session.commit()
    mine = submitted(db_session, definition, structure, FormKind.BEFORE).beneficiary
    theirs = submitted(db_session, definition, other, FormKind.BEFORE).beneficiary
    user = db_session.get(StaffUser, add_staff(database, Role.MEDIATOR, structure).id)
    assert user is not None
    unknown = codes.generate_code()
    typo = mine.code[:-1] + ("0" if mine.code[-1] != "0" else "1")
    found = paper.people_for_codes(
        db_session,
        [codes.display(mine.code), mine.code.lower(), theirs.code, unknown, typo],
        user,
    )
    assert [p.code for p in found.found] == [mine.code]  # once, however written
    assert dict(found.refused) == {
        codes.display(theirs.code): paper.Refusal.OTHER_STRUCTURE,
        codes.display(unknown): paper.Refusal.UNKNOWN,
        typo: paper.Refusal.INVALID,
    }
    admin = db_session.get(StaffUser, add_staff(database, Role.PLATFORM_ADMIN).id)
    assert admin is not None
    both = paper.people_for_codes(db_session, [mine.code, theirs.code], admin)
    assert len(both.found) == 2 and both.refused == ()


def test_after_copies_use_each_persons_language(
    db_session: Session, definition: Definition, structure: Structure
) -> None:
    english = journey.start_response(
        db_session, definition, structure, FormKind.BEFORE, "en", new_token()
    )
    db_session.commit()
    fill_response(db_session, definition, english, BEFORE)
    db_session.commit()
    french = submitted(db_session, definition, structure, FormKind.BEFORE)
    copies = paper.after_copies(
        [english.beneficiary, french.beneficiary], ("fr", "en"), fallback="fr"
    )
    assert [(c.form, c.locale) for c in copies] == [(FormKind.AFTER, "en"), (FormKind.AFTER, "fr")]
    assert paper.person_locale(english.beneficiary, ("fr",), "fr") == "fr"  # not offered any more


def test_pages_look_like_a_form_and_pictures_for_the_readme(
    app: Flask, render: Render, definition: Definition, followed: Beneficiary, tmp_path: Path
) -> None:
    """Rendered by PDFium: an A4 page, black ink on white, nothing drawn outside the paper."""
    result = summary.build_summary(definition, followed)
    assert result is not None
    with app.app_context():
        summary_pdf = paper.renderer(app).summary(result, followed.code, "fr")
    retro = render(FormKind.RETRO, code=CODE)
    grid_page = next(i for i, t in enumerate(page_texts(retro)) if re.search(r"\d+\. Allumer", t))
    pictures = {
        "paper-1-before-form.png": (render(FormKind.BEFORE, code=CODE), 0),
        "paper-2-retro-grid.png": (retro, grid_page),
        "paper-3-summary.png": (summary_pdf, 0),
    }
    folder = Path(SCREENSHOTS_DIR) if SCREENSHOTS_DIR else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    for name, (pdf, index) in pictures.items():
        picture = page_image(pdf, index, scale=1.5)
        image = picture.convert("L")
        width, height = image.size  # A4 (595.3 x 841.9 pt) at 108 dpi
        assert abs(width - 893) <= 1 and abs(height - 1263) <= 1
        histogram = image.histogram()
        dark = sum(histogram[:128]) / (image.size[0] * image.size[1])
        assert 0.01 < dark < 0.25, name  # ink, mostly paper
        left_strip = image.crop((0, 0, 18, height)).histogram()
        assert sum(left_strip[:200]) == 0, name  # nothing bleeds off the left edge
        picture.convert("RGB").quantize(colors=64).save(folder / name, optimize=True)
