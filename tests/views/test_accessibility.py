"""The accessibility statement, the display preference, and what the stylesheet promises."""

from __future__ import annotations

import html
import re
from pathlib import Path

from flask.testing import FlaskClient

from selfcheck.platform import display
from selfcheck.platform.models import Structure
from selfcheck.site.accessibility import ENVIRONMENT
from tests.support import Visitor

STYLESHEET = Path(__file__).resolve().parents[2] / "selfcheck" / "static" / "css" / "selfcheck.css"
HTML_CLASS = re.compile(r'<html [^>]*class="display-(\w+)"')


def test_the_statement_follows_the_rgaa_model(client: FlaskClient) -> None:
    page = client.get("/accessibilite")
    assert page.status_code == 200
    text = html.unescape(page.get_data(as_text=True)).replace("\u00a0", " ")
    for section in (
        "État de conformité",
        "partiellement conforme",
        "Résultats des tests",
        "Contenus non accessibles",
        "Dérogations pour charge disproportionnée",
        "Environnement de test",
        "Lecteur d'écran : non testé",
        "Retour d'information et contact",
        "Voies de recours",
        "Défenseur des droits",
    ):
        assert section in text, section
    assert ENVIRONMENT.axe_core in text and ENVIRONMENT.browser in text


def test_the_statement_is_in_the_footer_of_every_kind_of_page(client: FlaskClient) -> None:
    for url, status in [("/", 200), ("/code", 200), ("/staff/login", 200), ("/nowhere", 404)]:
        page = client.get(url)
        assert page.status_code == status, url
        footer = page.get_data(as_text=True).split("<footer", 1)[1]
        assert 'href="/accessibilite"' in footer, url


def test_the_display_choice_is_a_link_that_sets_a_cookie(client: FlaskClient) -> None:
    assert HTML_CLASS.search(client.get("/").get_data(as_text=True)).group(1) == "standard"  # type: ignore[union-attr]
    chosen = client.get("/?display=large")
    assert HTML_CLASS.search(chosen.get_data(as_text=True)).group(1) == "large"  # type: ignore[union-attr]
    cookie = chosen.headers["Set-Cookie"]
    assert cookie.startswith(f"{display.COOKIE}=large") and "HttpOnly" in cookie
    later = client.get("/code")
    assert HTML_CLASS.search(later.get_data(as_text=True)).group(1) == "large"  # type: ignore[union-attr]
    for mode in display.MODES:
        assert f'href="?display={mode.code}"' in later.get_data(as_text=True)


def test_an_unknown_display_value_is_ignored(client: FlaskClient) -> None:
    page = client.get("/?display=<script>")
    assert page.status_code == 200
    assert HTML_CLASS.search(page.get_data(as_text=True)).group(1) == "standard"  # type: ignore[union-attr]
    assert "Set-Cookie" not in page.headers or "display=" not in page.headers["Set-Cookie"]


def test_cached_question_pages_follow_each_persons_display(
    visitor: Visitor, structure: Structure
) -> None:
    started = visitor.follow(visitor.start(structure.slug))
    url = visitor.url
    assert started.status_code == 200 and url is not None
    assert HTML_CLASS.search(visitor.html).group(1) == "standard"  # type: ignore[union-attr]
    visitor.get(f"{url}?display=contrast")
    assert HTML_CLASS.search(visitor.html).group(1) == "contrast"  # type: ignore[union-attr]
    visitor.get(f"{url}?display=standard")
    assert HTML_CLASS.search(visitor.html).group(1) == "standard"  # type: ignore[union-attr]


def test_the_stylesheet_has_no_fixed_font_size_and_no_physical_margins() -> None:
    css = STYLESHEET.read_text(encoding="utf-8")
    screen = re.sub(r"@media print \{.*?\n\}", "", css, flags=re.DOTALL)  # points on paper
    sizes = re.findall(r"font-size:\s*([^;}]+)", screen)
    # A size relative to the text, or a clamp between two such sizes (its middle term may
    # follow the viewport: the bounds still grow with the text).
    relative = r"[\d.]+(rem|em|%)"
    clamped = rf"clamp\({relative}, [\d.]+(rem|em|%|vw), {relative}\)"
    assert sizes and all(re.fullmatch(f"{relative}|{clamped}", s.strip()) for s in sizes), sizes
    assert not re.search(r"(margin|padding)-(left|right)\b|\b(left|right):", css)


def test_the_large_and_contrast_modes_exist_in_the_stylesheet() -> None:
    css = STYLESHEET.read_text(encoding="utf-8")
    for mode in display.MODES:
        if mode.code != display.STANDARD:
            for name in mode.classes or (mode.code,):
                assert f"html.display-{name}" in css, mode.code


def test_the_chart_says_in_a_sentence_what_its_bars_say(
    visitor: Visitor, structure: Structure
) -> None:
    visitor.complete(structure.slug, "before")
    page = visitor.get("/summary")
    assert page.status_code == 200
    text = html.unescape(visitor.html).replace("\u00a0", " ")
    sentence = re.search(r"En tout : (\d+) marches? sur (\d+) aujourd'hui\.", text)
    assert sentence, "no text equivalent of the chart"
    bars = [
        (int(a), int(b)) for a, b in re.findall(r"Aujourd'hui : (\d+) marches? sur (\d+)\.<", text)
    ]
    bars += [
        (0, int(b)) for b in re.findall(r"Aujourd'hui : pas encore de marche sur (\d+)\.<", text)
    ]
    assert bars
    assert (int(sentence.group(1)), int(sentence.group(2))) == (
        sum(done for done, _ in bars),
        sum(total for _, total in bars),
    )
    svgs = re.findall(r"<svg[^>]*>", text.split('class="rungs"')[1])
    assert svgs and all('aria-hidden="true"' in svg for svg in svgs)


def test_large_text_and_high_contrast_combine(client: FlaskClient) -> None:
    page = client.get("/?display=large_contrast").get_data(as_text=True)
    assert 'class="display-large display-contrast"' in page
    assert "display=large_contrast" in client.get("/code").headers.get("Set-Cookie", "") or (
        'class="display-large display-contrast"' in client.get("/code").get_data(as_text=True)
    )


def test_the_compact_choice_link_leads_back_to_the_page(client: FlaskClient) -> None:
    page = client.get("/code").get_data(as_text=True)
    assert 'href="/reglages?next=/code"' in page
    choice = client.get("/reglages?next=/code")
    assert choice.status_code == 200
    html = choice.get_data(as_text=True)
    assert 'href="/code?lang=ar"' in html and 'href="/code?display=large_contrast"' in html
    for hostile in ("//evil.example/x", "https://evil.example", "/\\evil"):
        html = client.get("/reglages", query_string={"next": hostile}).get_data(as_text=True)
        assert "evil" not in html


def test_the_choice_page_says_the_current_choice_in_words(client: FlaskClient) -> None:
    """The current language and display were marked in bold only: a beginner may miss it, and
    weight alone is not enough (WCAG 1.3.1, 1.4.1). Each now has the words "(choix actuel)"
    beside its link, and `aria-current` on the link; the other choices have neither."""
    page = client.get("/reglages?next=/code&display=large").get_data(as_text=True)
    choices = page.split('<div class="settings-page">', 1)[1]  # not the header's links
    items = re.findall(r"<li>(.*?)</li>", choices, re.S)
    marked = [item for item in items if "(choix actuel)" in item]
    assert len(marked) == 2, marked
    language, shown = marked
    assert 'href="/code?lang=fr"' in language and 'aria-current="true"' in language
    assert 'href="/code?display=large"' in shown and 'aria-current="true"' in shown
    # The words are beside the link, not in it: the link's name stays the language's name.
    assert re.search(r'aria-current="true">[^<]+</a> <span class="choice-list__current">', shown)
    others = [item for item in items if "?lang=" in item or "?display=" in item]
    assert len(others) > 2
    for item in others:
        if item not in marked:
            assert "aria-current" not in item and "choix actuel" not in item
