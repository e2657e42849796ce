"""Question pages (issue 12): a page's only question is its heading (no title repeating it),
and the ladder answers carry their pictograms from the item bank, hidden from assistive
technology, with the words always there."""

from __future__ import annotations

import re

from selfcheck.platform import pictograms
from selfcheck.platform.models import Structure
from selfcheck.questionnaire import Definition, FormKind
from selfcheck.questionnaire.model import Wording
from tests.support import Visitor


def headings(html: str) -> list[str]:
    return [
        re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<h1[^>]*>(.*?)</h1>", html, re.S)
    ]


def test_a_lone_question_is_the_heading_said_once(
    visitor: Visitor, structure: Structure, definition: Definition
) -> None:
    visitor.start(structure.slug, "before")
    checked = 0
    for page in definition.pages(FormKind.BEFORE):
        items = page.items_for(FormKind.BEFORE)
        if len(items) != 1 or page.intro or items[0].show_if is not None:
            continue
        html = visitor.get(f"/q/{page.code}").get_data(as_text=True)
        found = headings(html)
        label = items[0].label.replace("\u00a0", " ")
        assert [h.replace("\u00a0", " ") for h in found] == [label], page.code
        assert 'class="legend legend--heading"' in html
        assert f">{page.title}<" not in html  # the page title does not say it again
        assert re.search(r"<title>[^<]*" + re.escape(label.split(" ")[0]), html)
        checked += 1
    assert checked >= 2


def test_a_page_of_several_questions_keeps_its_title(
    visitor: Visitor, structure: Structure, definition: Definition
) -> None:
    visitor.start(structure.slug, "before")
    page = next(
        p for p in definition.pages(FormKind.BEFORE) if len(p.items_for(FormKind.BEFORE)) > 1
    )
    html = visitor.get(f"/q/{page.code}").get_data(as_text=True)
    assert [h.replace("\u00a0", " ") for h in headings(html)] == [page.title]
    assert "legend--heading" not in html


def test_ladder_answers_show_their_pictograms(
    visitor: Visitor, structure: Structure, definition: Definition
) -> None:
    visitor.start(structure.slug, "before")
    task = definition.task_items()[0]
    page = next(
        p for p in definition.pages(FormKind.BEFORE) if task in p.items_for(FormKind.BEFORE)
    )
    html = visitor.get(f"/q/{page.code}").get_data(as_text=True)
    for option in task.options:
        assert option.pictogram, option.code  # declared in the item bank
        label = re.search(
            r'<label class="choice__label[^"]*" for="[^"]*'
            + re.escape(f"{task.code}-{option.code}")
            + r'">(.*?)</label>',
            html,
            re.S,
        )
        assert label is not None, option.code
        inner = label.group(1)
        assert '<svg class="picto" aria-hidden="true" focusable="false"' in inner
        assert option.label.replace("\u00a0", " ") in inner.replace("&#39;", "'").replace(
            "\u00a0", " "
        )
    assert "http" not in re.sub(
        r'xmlns="[^"]+"', "", "".join(re.findall(r"<svg.*?</svg>", html, re.S))
    )


def test_every_pictogram_of_the_item_bank_is_a_shipped_local_file(definition: Definition) -> None:
    named = {page.pictogram for form in FormKind for page in definition.pages(form)}
    for wording in Wording:
        for item in definition.in_wording(wording).items():
            named |= {option.pictogram for option in item.options}
    named.discard(None)
    assert {"ladder-not-yet", "ladder-with-help", "ladder-alone"} <= named
    assert {"helper-mediator", "answer-yes", "device-tablet"} <= named  # the main choices
    for name in named:
        assert name is not None and pictograms.path(name) is not None, name
        drawn = str(pictograms.inline(name))
        assert drawn.startswith('<svg class="picto" aria-hidden="true" focusable="false"')
        assert "<!--" not in drawn and "<script" not in drawn
        printed = str(pictograms.printed(name))
        assert "background-image: url('file://" in printed
    assert pictograms.path("../secret") is None
    assert str(pictograms.inline("no-such-picture")) == ""


def pictured_labels(html: str) -> dict[str, str]:
    """Input id -> words of the choices drawn with a pictogram (hidden from AT)."""
    found = re.findall(
        r'<label class="choice__label choice__label--picto" for="([^"]+)">'
        r'<svg class="picto" aria-hidden="true" focusable="false"[^>]*>.*?</svg>(.*?)</label>',
        html,
        re.S,
    )
    return {input_id: words.strip() for input_id, words in found}


def test_the_main_choices_show_pictograms_beside_their_words(
    visitor: Visitor, structure: Structure, definition: Definition
) -> None:
    """Issue 12, part 3: pictograms on the main choices too, declared in the item bank or the
    templates, decoration beside words that say it all."""
    start = visitor.get(f"/s/{structure.slug}").get_data(as_text=True)
    titles = re.findall(r'<h3 class="start-choice__title">(.*?)</h3>', start, re.S)
    assert len(titles) == 3
    for title in titles:
        assert title.startswith('<svg class="picto" aria-hidden="true" focusable="false"')
        assert re.sub(r"<[^>]+>", "", re.sub(r"<svg.*?</svg>", "", title, flags=re.S)).strip()
    assert start.count('class="button button--secondary button--picto"') == 2
    visitor.start(structure.slug, "before")
    for page in definition.pages(FormKind.BEFORE):
        pictured = [
            option
            for item in page.items_for(FormKind.BEFORE)
            for option in item.options
            if option.pictogram and item.competence is None
        ]
        if not pictured:
            continue
        html = visitor.get(f"/q/{page.code}").get_data(as_text=True)
        labels = pictured_labels(html)
        assert len(labels) == len(pictured), page.code
        for option in pictured:
            assert any(option.label.replace("'", "&#39;") in w for w in labels.values()), option
