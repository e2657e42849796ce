"""Paper questionnaires and progress summaries as tagged PDF (WeasyPrint), from the definition.

Nothing here keeps a list of items: the paper form walks `definition.pages(form)` exactly as
the web form does, with the same question numbers (`page_view.question_numbers`), so a paper
form, its web twin and the data-entry screen always agree.

Templates and the print stylesheet live in `selfcheck/paper/templates/` (see its
README.md). They render through the one print environment of `platform.printing` (shared with
the codebook), whose gettext follows `flask_babel.force_locale`, so one batch can hold forms
in several languages and rendering needs an app context but no request.

Speed: a batch is one WeasyPrint call. Each (form, language) body is rendered by Jinja once
per batch with placeholders for the code, its QR code and the page-group name, then copied.
Footers say "page 2 of 4" per form: in a batch, the page count of one copy is measured once
per process and shape (a copy's layout does not depend on its code) and kept; a document of
one copy says `counter(pages)` instead, so a single form costs one WeasyPrint render, even
the first one of a process.
"""

from __future__ import annotations

import enum
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

import segno
from flask import Flask, current_app
from flask_babel import force_locale, format_date
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from selfcheck.journey import operations as journey
from selfcheck.journey.lasting import Lasting
from selfcheck.journey.page_view import question_numbers
from selfcheck.journey.summary import Summary, printed_bars
from selfcheck.platform import audit, codes, pictograms, printing
from selfcheck.platform.i18n import text_direction
from selfcheck.platform.models import Beneficiary, StaffUser, Structure
from selfcheck.platform.printing import PDF_VARIANT as PDF_VARIANT
from selfcheck.platform.printing import css_string as css_string
from selfcheck.platform.printing import memoise_page_references as memoise_page_references
from selfcheck.policy import can_access_structure
from selfcheck.questionnaire.answer_types import PaperLayout
from selfcheck.questionnaire.model import (
    Definition,
    FormKind,
    Item,
    Moment,
    Option,
    Page,
    Wording,
)

# printable/ beside the package, as i18n.TRANSLATIONS_DIR finds translations/.
PRINTABLE_DIR = Path(__file__).resolve().parent / "templates"
# The easy-read form shows each page's pictogram as on screen (journey/question.html).
PICTOGRAMS_DIR = pictograms.PICTOGRAMS_DIR
CONFIG_KEY = "SELFCHECK_PRINTABLE_DIR"  # app.config override (another folder of templates)
EXTENSION_KEY = "selfcheck.paper"
STYLESHEET = "print.css"
MAX_COPIES = 200
# Pages rendered by one request (the bound that matters for time: a large-print copy has
# several times the pages of a standard one). Until print batches become background jobs.
MAX_PAGES = 300

# Placeholders of a form body rendered once and copied per code (see `_fill`): control
# characters never appear in rendered HTML otherwise (as in journey/page_cache.py).
_CODE = "\x00code\x00"
_QR = "\x00qr\x00"
_PAGE_NAME = "\x00page\x00"
_PLACEHOLDERS = re.compile("\x00(code|qr|page)\x00")


# How options are laid out: each answer type chooses (AnswerType.paper_layout).
Layout = PaperLayout


class PaperError(ValueError):
    """A print request we refuse (no copies, or more than MAX_COPIES)."""


class TooManyPages(PaperError):
    """More than MAX_PAGES pages in one request: a worker would be held for minutes."""

    def __init__(self, pages: int) -> None:
        super().__init__(f"{pages} pages: at most {MAX_PAGES} at once")
        self.pages = pages


# --- what a paper form shows --------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """'If you answered « Yes » to question 20': the web form's show_if, in words."""

    number: int
    labels: tuple[str, ...]


@dataclass(frozen=True)
class PaperQuestion:
    item: Item
    number: int
    widget: str
    moments: tuple[Moment, ...]
    layout: Layout
    condition: Condition | None
    digits: int = 0

    @property
    def paired(self) -> bool:
        return len(self.moments) > 1

    @property
    def multiple(self) -> bool:
        return self.item.type.several

    @property
    def choices(self) -> bool:
        return bool(self.item.options)


@dataclass(frozen=True)
class PaperGrid:
    """Scale questions with the same answers in one table: a row of boxes per question (two,
    before and today, in the retrospective form), the answers as column headings."""

    questions: tuple[PaperQuestion, ...]
    widget: str = "grid"

    @property
    def options(self) -> tuple[Option, ...]:
        return self.questions[0].item.options

    @property
    def moments(self) -> tuple[Moment, ...]:
        return self.questions[0].moments

    @property
    def paired(self) -> bool:
        return len(self.moments) > 1


Block = PaperQuestion | PaperGrid


@dataclass(frozen=True)
class PaperPage:
    page: Page
    blocks: tuple[Block, ...]

    @property
    def questions(self) -> tuple[PaperQuestion, ...]:
        return tuple(
            q
            for block in self.blocks
            for q in (block.questions if isinstance(block, PaperGrid) else (block,))
        )

    @property
    def has_grid(self) -> bool:
        return any(isinstance(block, PaperGrid) for block in self.blocks)

    @property
    def show_title(self) -> bool:
        """A page title says something the question does not: a group, or an introduction."""
        return len(self.questions) > 1 or self.page.intro is not None


@dataclass(frozen=True)
class PaperSection:
    title: str
    pages: tuple[PaperPage, ...]


def paper_sections(
    definition: Definition, form: FormKind, large: bool, easy: bool = False
) -> tuple[PaperSection, ...]:
    """The form's sections, pages and questions in web order, every conditional one included.

    Easy-read print is laid out as large print (one question, one list) and asks conditional
    questions unconditionally: no "if you ticked ... at question 8" (FALC advises against
    such instructions). The entry screen still applies the condition to what is typed.
    """
    numbers = question_numbers(definition, form)
    titles = {section.code: section.title for section in definition.sections}
    sections: list[PaperSection] = []
    roomy = large or easy
    for page in definition.pages(form):
        questions = [
            _question(definition, item, numbers, form, roomy, conditions=not easy)
            for item in page.items_for(form)
        ]
        paper_page = PaperPage(page, _blocks(questions, roomy))
        if sections and sections[-1].title == titles[page.section]:
            last = sections[-1]
            sections[-1] = PaperSection(last.title, (*last.pages, paper_page))
        else:
            sections.append(PaperSection(titles[page.section], (paper_page,)))
    return tuple(sections)


def _blocks(questions: Sequence[PaperQuestion], large: bool) -> tuple[Block, ...]:
    """In normal print, a run of unconditional scale questions sharing their answers becomes
    a grid; large print keeps one question, one list."""
    blocks: list[Block] = []
    run: list[PaperQuestion] = []

    def flush() -> None:
        if len(run) > 1:
            blocks.append(PaperGrid(tuple(run)))
        else:
            blocks.extend(run)
        run.clear()

    for question in questions:
        if large or not question.item.type.paper_grid or question.condition is not None:
            flush()
            blocks.append(question)
        elif run and run[0].item.options != question.item.options:
            flush()
            run.append(question)
        else:
            run.append(question)
    flush()
    return tuple(blocks)


def _question(
    definition: Definition,
    item: Item,
    numbers: Mapping[str, int],
    form: FormKind,
    large: bool,
    conditions: bool = True,
) -> PaperQuestion:
    condition = None
    if item.show_if is not None and conditions:
        source = definition.item(item.show_if.item)
        accepted = item.show_if.accepted()
        labels = tuple(o.label for o in source.options if o.code in accepted)
        condition = Condition(numbers[source.code], labels)
    return PaperQuestion(
        item=item,
        number=numbers[item.code],
        widget=item.type.paper_widget,
        moments=item.moments(form),
        layout=item.type.paper_layout(item, large),
        condition=condition,
        digits=len(str(item.maximum)) if item.maximum is not None else 3,
    )


# --- the renderer -------------------------------------------------------------------------


@dataclass(frozen=True)
class Copy:
    """One printed questionnaire: which form, in which language, for which code (or blank)."""

    form: FormKind
    locale: str
    code: str | None = None


@dataclass
class _Shape:
    """Copies that look the same but for their code: one Jinja render, one page count."""

    form: FormKind
    locale: str
    coded: bool
    body: str = ""
    pages: int = 0
    names: tuple[str, str] = ("", "")
    footer: Mapping[str, str] = field(default_factory=dict)
    qr_title: str = "%(code)s"  # the QR code's alternative text, in the copy's language
    # pages: 0 in a document of this one copy (the footer counts the document's pages)


_PageCountKey = tuple[Definition, Path, FormKind, str, bool, bool, str | None]


class PaperRenderer:
    """Renders paper forms and summaries; one per app (see `renderer`), safe across threads."""

    # Pages of one copy per shape, shared by every renderer of the process (same definition
    # object and templates folder: same layout). Bounded: forms x languages x 2 x 2 x sites.
    _page_counts: ClassVar[dict[_PageCountKey, int]] = {}
    _lock = threading.Lock()

    def __init__(self, definition: Definition, directory: Path = PRINTABLE_DIR) -> None:
        self.definition = definition
        self.directory = directory.resolve()
        self.printer = printing.printer(self.directory, PICTOGRAMS_DIR)
        self.env = self.printer.env
        self.translator = self.printer.translator
        self.env.filters["heading"] = self.heading
        self.env.globals.update(
            Moment=Moment,
            Layout=Layout,
            pictogram_url=pictogram_url,
            pictogram=pictograms.printed,
            rung_bars=printed_bars,
        )
        self.easy = definition.wording is Wording.EASY
        self.fetcher = self.printer.fetcher
        self.stylesheet = self.printer.stylesheet(STYLESHEET)
        self._sections: dict[tuple[FormKind, bool], tuple[PaperSection, ...]] = {}

    def heading(self, option: Option) -> str:
        """An answer as a column heading: its short wording (Option.label_short) in the copy's
        language, or the full one where that language has no translation of it yet."""
        short = option.label_short
        if short is not None:
            translated = self.translator.gettext(short)
            if translated != short or printing.forced_locale().startswith("fr"):
                return translated
        return self.translator.gettext(option.label)

    def _(self, text: str, **variables: object) -> str:
        translated = self.translator.gettext(text)
        return translated % variables if variables else translated

    # questionnaires

    def questionnaires(
        self,
        copies: Sequence[Copy],
        *,
        large: bool = False,
        site_url: str | None = None,
        duplex: bool = False,
    ) -> bytes:
        """One PDF with every copy, each starting on a new page (on a new sheet if duplex).

        The document's language is the first copy's; each copy carries its own.
        """
        if not copies:
            raise PaperError("nothing to print")
        if len(copies) > MAX_COPIES:
            raise PaperError(f"at most {MAX_COPIES} copies at once")
        single = len(copies) == 1
        shapes: dict[tuple[FormKind, str, bool], _Shape] = {}
        for copy in copies:
            key = (copy.form, copy.locale, copy.code is not None)
            if key not in shapes:
                shape = shapes[key] = _Shape(*key, names=(f"s{len(shapes)}a", f"s{len(shapes)}b"))
                with force_locale(shape.locale):  # the QR code's alternative text
                    shape.qr_title = self._("Code personnel : %(code)s")
                shape.body = self._form_body(shape, large, site_url)
                if not single:  # one copy: its pages are the document's (counter(pages))
                    shape.pages = self._page_count(shape, large, site_url)
                shape.footer = self._footer(shape)
        if not single:
            pages = sum(shapes[(c.form, c.locale, c.code is not None)].pages for c in copies)
            if pages > MAX_PAGES:
                raise TooManyPages(pages)
        parts = [
            _fill(shapes[(c.form, c.locale, c.code is not None)], c.code, position)
            for position, c in enumerate(copies)
        ]
        with printing.deferred_full_collections():
            document = self._document(
                self._document_html(
                    copies[0].locale, copies, parts, list(shapes.values()), large, duplex
                )
            )
            if len(document.pages) > MAX_PAGES:  # a single copy, counted once laid out
                raise TooManyPages(len(document.pages))
            return self.printer.write(document)

    def _document_html(
        self,
        lang: str,
        copies: Sequence[Copy],
        parts: Sequence[str],
        shapes: Sequence[_Shape],
        large: bool,
        duplex: bool,
    ) -> str:
        with force_locale(lang):
            return self.env.get_template("questionnaires.html").render(
                lang=lang,
                title=self._document_title(copies),
                bodies=Markup("".join(parts)),
                shapes=shapes,
                large=large,
                easy=self.easy,
                duplex=duplex,
            )

    def _document_title(self, copies: Sequence[Copy]) -> str:
        kinds = {copy.form for copy in copies}
        if len(kinds) == 1:
            title = self._(self.definition.titles[copies[0].form])
        else:
            title = self._("Questionnaires")
        if len(copies) == 1:
            code = copies[0].code
            return (
                self._("%(title)s, code %(code)s", title=title, code=codes.display(code))
                if code
                else title
            )
        return self._("%(title)s, %(count)s exemplaires", title=title, count=len(copies))

    def _sections_for(self, form: FormKind, large: bool) -> tuple[PaperSection, ...]:
        key = (form, large)
        if key not in self._sections:
            self._sections[key] = paper_sections(self.definition, form, large, self.easy)
        return self._sections[key]

    def _form_body(self, shape: _Shape, large: bool, site_url: str | None) -> str:
        with force_locale(shape.locale):
            return self.env.get_template("form.html").render(
                form=shape.form,
                lang=shape.locale,
                title=self.definition.titles[shape.form],
                sections=self._sections_for(shape.form, large),
                coded=shape.coded,
                code=Markup(_CODE),
                qr=Markup(_QR),
                page_name=Markup(_PAGE_NAME),
                site_url=site_url,
                large=large,
                easy=self.easy,
            )

    def _footer(self, shape: _Shape) -> dict[str, str]:
        """Texts of the page margins, in the copy's language (CSS strings, not markup): the
        title, and "Page n of N" around its two numbers. "Continued overleaf" and "End of the
        questionnaire" are in the copy's body (form.html: named string `pagefoot`)."""
        mark = "\x00"  # as the summary's footer (`summary`): page, then total
        with force_locale(shape.locale):
            before, middle, after = self._(
                "Page %(page)s sur %(total)s", page=mark, total=mark
            ).split(mark)
            title = self._(self.definition.titles[shape.form])
        return {"title": title, "page_before": before, "page_middle": middle, "page_after": after}

    def _page_count(self, shape: _Shape, large: bool, site_url: str | None) -> int:
        """Pages of one copy of this shape: measured once per process, with a sample code."""
        key = (
            self.definition,
            self.directory,
            shape.form,
            shape.locale,
            shape.coded,
            large,
            site_url,
        )
        with self._lock:
            known = self._page_counts.get(key)
        if known is not None:
            return known
        sample = Copy(shape.form, shape.locale, codes.generate_code() if shape.coded else None)
        html = self._document_html(
            shape.locale, [sample], [_fill(shape, sample.code, 0)], [], large, duplex=False
        )
        count = len(self._document(html).pages)
        with self._lock:
            self._page_counts[key] = count
        return count

    # summary

    def summary(
        self,
        result: Summary,
        code: str,
        locale: str,
        *,
        large: bool = False,
        site_url: str | None = None,
        today: date | None = None,
        come_back_on: date | None = None,
        lasting: Lasting | None = None,
    ) -> bytes:
        """The progress summary of the person with `code`, in `locale` (with `come_back_on`,
        the day the follow-up opens, when one awaits them)."""
        mark = "\x00"
        with force_locale(locale):
            numbering = self._("Page %(page)s sur %(total)s", page=mark, total=mark).split(mark)
            html = self.env.get_template("summary.html").render(
                summary=result,
                code=code,
                qr=Markup(
                    qr_svg(code, self._("Code personnel : %(code)s", code=codes.spoken(code)))
                ),
                lang=locale,
                dir=text_direction(locale),
                large=large,
                site_url=site_url,
                today=format_date(today or date.today(), format="long"),
                come_back=format_date(come_back_on, format="long") if come_back_on else None,
                lasting=lasting,
                page_before=numbering[0],
                page_middle=numbering[1],
                page_after=numbering[2],
            )
        return self._pdf(html)

    def come_back_card(
        self,
        code: str,
        come_back_on: date,
        link: str,
        locale: str,
        *,
        structure_name: str | None = None,
        large: bool = False,
    ) -> bytes:
        """The A6 "come back" card: the code and its QR code, the day the follow-up opens
        and the structure's link, for the mediator to hand over (issue 15)."""
        with force_locale(locale):
            html = self.env.get_template("come_back_card.html").render(
                code=code,
                qr=Markup(
                    qr_svg(code, self._("Code personnel : %(code)s", code=codes.spoken(code)))
                ),
                come_back=format_date(come_back_on, format="long"),
                link=link,
                structure_name=structure_name,
                lang=locale,
                dir=text_direction(locale),
                large=large,
            )
        return self._pdf(html)

    # WeasyPrint

    def _document(self, html: str) -> Any:
        return self.printer.document(html, [self.stylesheet])

    def _pdf(self, html: str) -> bytes:
        return self.printer.pdf(html, [self.stylesheet])


def _fill(shape: _Shape, code: str | None, position: int) -> str:
    """One copy of a shape's body: its code, QR code and page-group name."""
    page_name = shape.names[position % 2]
    rtl = text_direction(shape.locale) == "rtl"
    isolated = f"\u2066{codes.display(code)}\u2069" if code is not None else ""

    def replace(match: re.Match[str]) -> str:
        what = match.group(1)
        if what == "page":
            return page_name
        if code is None:
            return ""
        if what == "code":
            # Isolated left to right in a right-to-left form: the page header's "Code : …"
            # (a margin box) drew a code whose first group is digits reversed in Arabic
            # ("056-KMV-SKY" as "KMV-SKY-056"). Coded batches stamp theirs (stamping.py).
            return isolated if rtl else codes.display(code)
        return qr_svg(code, shape.qr_title % {"code": codes.spoken(code)})

    return _PLACEHOLDERS.sub(replace, shape.body)


def pictogram_url(name: str) -> str:
    """The file URL of a page's pictogram (static/img/pictograms/<name>.svg), or "" if none."""
    path = (PICTOGRAMS_DIR / f"{name}.svg").resolve()
    if not path.is_relative_to(PICTOGRAMS_DIR.resolve()) or not path.is_file():
        return ""
    return path.as_uri()


def qr_svg(code: str, title: str) -> str:
    """The plain code (no URL: it is typed or scanned into a code field) as inline SVG.

    `title` becomes the figure's alternative text in the tagged PDF.
    """
    qr = segno.make(code, error="m", micro=False)
    svg: str = qr.svg_inline(scale=1, border=4, omitsize=True, title=title, svgclass="qr")
    return svg


def renderer(app: Flask | None = None, wording: Wording = Wording.STANDARD) -> PaperRenderer:
    """The app's renderer, built on first use (templates folder: CONFIG_KEY or printable/).

    One per wording: the easy-read (FALC) forms have the same items, codes and layout, with
    the easy texts; typists enter them on the same screens.
    """
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    key = EXTENSION_KEY if wording is Wording.STANDARD else f"{EXTENSION_KEY}.{wording.value}"
    found = app.extensions.get(key)
    if found is None:
        directory = Path(app.config.get(CONFIG_KEY) or PRINTABLE_DIR)
        definition: Definition = app.extensions["selfcheck.definition"]
        found = PaperRenderer(definition.in_wording(wording), directory)
        app.extensions[key] = found
    assert isinstance(found, PaperRenderer)
    return found


# --- print jobs (services with a session) --------------------------------------------------


def coded_batch(
    session: Session,
    structure: Structure,
    user: StaffUser | None,
    form: FormKind,
    locale: str,
    count: int,
) -> list[Copy]:
    """`count` fresh codes for `structure`, audited as one event, as copies to print."""
    if not 1 <= count <= MAX_COPIES:
        raise PaperError(f"between 1 and {MAX_COPIES} copies")
    changes = {"count": count, "form": form.value, "language": locale, "channel": "paper"}
    audit.record(session, user, "create", audit.Entity.BENEFICIARY, None, structure.id, changes)
    created = journey.create_codes(session, structure, count)  # the caller commits both
    return [Copy(form, locale, person.code) for person in created]


def draw_codes(session: Session, count: int) -> list[str]:
    """`count` fresh codes that nobody has yet, not saved: print first, then save them
    (`save_coded_batch`), so that a code exists only once its PDF does."""
    if not 1 <= count <= MAX_COPIES:
        raise PaperError(f"between 1 and {MAX_COPIES} copies")
    drawn: list[str] = []
    while len(drawn) < count:
        fresh = {codes.generate_code() for _ in range(count - len(drawn))} - set(drawn)
        taken = set(session.scalars(select(Beneficiary.code).where(Beneficiary.code.in_(fresh))))
        drawn += sorted(fresh - taken)
    return drawn


def save_coded_batch(
    session: Session,
    structure: Structure,
    user: StaffUser | None,
    form: FormKind,
    locale: str,
    drawn: Sequence[str],
) -> None:
    """Create the people of printed codes, audited as one event (the caller commits)."""
    changes = {"count": len(drawn), "form": form.value, "language": locale, "channel": "paper"}
    audit.record(session, user, "create", audit.Entity.BENEFICIARY, None, structure.id, changes)
    session.add_all(Beneficiary(code=code, structure_id=structure.id) for code in drawn)


class Refusal(enum.StrEnum):
    """Why a code given for printing after-forms is refused (nothing is printed then)."""

    INVALID = "invalid"  # not a well-formed code (a typo)
    UNKNOWN = "unknown"
    OTHER_STRUCTURE = "other_structure"  # a person the staff member may not see


@dataclass(frozen=True)
class People:
    found: tuple[Beneficiary, ...]
    refused: tuple[tuple[str, Refusal], ...]


def people_for_codes(session: Session, raw_codes: Sequence[str], user: StaffUser) -> People:
    """The people behind `raw_codes`, in the order given, once each, and the codes refused."""
    wanted: list[str] = []
    refused: list[tuple[str, Refusal]] = []
    for raw in raw_codes:
        try:
            code = codes.normalise(raw)
        except codes.InvalidCode:
            refused.append((raw.strip(), Refusal.INVALID))
            continue
        if code not in wanted:
            wanted.append(code)
    query = (
        select(Beneficiary)
        .where(Beneficiary.code.in_(wanted))
        .options(selectinload(Beneficiary.responses), joinedload(Beneficiary.structure))
    )
    by_code = {person.code: person for person in session.scalars(query)} if wanted else {}
    found: list[Beneficiary] = []
    for code in wanted:
        person = by_code.get(code)
        if person is None:
            refused.append((codes.display(code), Refusal.UNKNOWN))
        elif not can_access_structure(user, person.structure):
            refused.append((codes.display(code), Refusal.OTHER_STRUCTURE))
        else:
            found.append(person)
    return People(tuple(found), tuple(refused))


def after_copies(
    people: Iterable[Beneficiary], languages: Sequence[str], fallback: str
) -> list[Copy]:
    """One after-form per person, each in the language of their latest answers."""
    return [
        Copy(FormKind.AFTER, person_locale(person, languages, fallback), person.code)
        for person in people
    ]


def person_locale(beneficiary: Beneficiary, languages: Iterable[str], fallback: str) -> str:
    """The language of the person's latest response, if the app still offers it."""
    offered = set(languages)
    for response in sorted(beneficiary.responses, key=lambda r: r.id, reverse=True):
        if response.locale in offered:
            return response.locale
    return fallback
