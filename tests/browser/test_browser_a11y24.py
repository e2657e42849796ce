"""Round 24's accessibility leftovers, drawn and measured in Chromium (the HTML side:
tests/views/test_a11y24.py). axe-core on every page looked at, besides:

- the job page's download button at 320 px, French and Arabic: the file's name on its own
  line, left to right, inside the button, and whole in the link's accessible name;
- the dashboard's charts in forced colours (Windows high contrast): every text, track and
  pattern in a system colour (they kept their author colours: dark grey text on black);
- the audit trail's filters: drawn as the back office's other fields, and at fault in red;
- the follow-up summary at 320 px, French and Arabic: its table reflows, no column cut off;
- the Arabic check page: a French answer typed by the person reads left to right.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from selfcheck.platform.models import Role, StaffUser
from tests.browser import checks
from tests.browser.support import AxeAudit, ContextFactory, Journey, LiveServer
from tests.browser.test_browser_backoffice import ACCOUNTS, ensure_accounts, sign_in
from tests.browser.test_browser_dashboard import ensure_world, signed_in
from tests.support import LONG_FILE_NAME, add_finished_job

pytestmark = pytest.mark.browser

PHONE = {"width": checks.REFLOW_WIDTH, "height": 640}
LONG_NAME = LONG_FILE_NAME
SIDEWAYS_JS = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


def _done_job(server: LiveServer, email: str) -> str:
    """A finished export of `email` with a long file name (the page only shows it)."""
    database = server.app.extensions["selfcheck.platform.db"]
    with database.session() as session:
        user = session.scalars(select(StaffUser).where(StaffUser.email == email)).one()
    return add_finished_job(database, user.id, LONG_NAME)


BUTTON_JS = """() => {
  const link = document.querySelector("main a.button--file");
  const name = link.querySelector(".file-name");
  const box = link.getBoundingClientRect(), own = name.getBoundingClientRect();
  const style = getComputedStyle(name);
  return {direction: style.direction, display: style.display,
          inside: own.left >= box.left - 0.5 && own.right <= box.right + 0.5,
          below: own.top - box.top, lines: Math.round(own.height / parseFloat(style.lineHeight))};
}"""


@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_the_download_button_keeps_its_file_name_whole_and_left_to_right(
    lang: str, live_server: LiveServer, new_context: ContextFactory, audit: AxeAudit
) -> None:
    """Round 23 at 320 px in Arabic: the name broke at its dashes, its parts set around the
    Arabic verb. Now on its own line(s) under the verb, left to right, inside the button."""
    ensure_accounts(live_server)
    job_id = _done_job(live_server, ACCOUNTS[Role.MEDIATOR])
    page = new_context(viewport=PHONE).new_page()
    sign_in(page, Role.MEDIATOR)
    page.goto(f"/staff/jobs/{job_id}?lang={lang}")
    link = page.get_by_role("link", name=re.compile(re.escape(LONG_NAME) + "$"))
    expect(link).to_have_count(1)
    drawn: dict[str, Any] = page.evaluate(BUTTON_JS)
    assert drawn["direction"] == "ltr" and drawn["display"] == "block", drawn
    assert drawn["inside"] and drawn["below"] > 30, drawn  # under the verb's line
    assert 1 < drawn["lines"] <= 3, drawn  # wraps at 320 px, in a few lines
    assert page.evaluate(SIDEWAYS_JS) <= 0
    audit.check(page, f"job page at 320 px ({lang})")
    page.set_viewport_size({"width": 1280, "height": 800})
    audit.check(page, f"job page at 1280 px ({lang})")
    audit.assert_clean()


# Each chart part's colour against the system colours, read from probes (the page's
# Content-Security-Policy refuses inline styles in the HTML, not through the CSSOM).
FORCED_JS = """() => {
  const svg = document.querySelector("svg.chart__svg, svg.rungs__bar");
  const probe = (colour) => {
    const r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    r.style.fill = colour; svg.appendChild(r);
    const value = getComputedStyle(r).fill; r.remove(); return value;
  };
  const text = probe("CanvasText"), canvas = probe("Canvas");
  const wrong = [];
  const want = (selector, property, colour) => document.querySelectorAll(selector).forEach(e => {
    const value = getComputedStyle(e)[property];
    if (value !== colour) wrong.push(`${selector} ${property} ${value}`);
  });
  want("svg.chart__svg text", "fill", text);
  want(".chart__track", "fill", canvas);
  want(".chart__track, .chart__bar", "stroke", text);
  want(".chart-pattern__ground", "fill", canvas);
  want("rect.chart-pattern__ink, circle.chart-pattern__ink", "fill", text);
  want("line.chart-pattern__ink, path.chart-pattern__ink", "stroke", text);
  want(".forest__zero, .forest__interval", "stroke", text);
  want(".forest__estimate", "fill", text);
  want(".chart__now", "fill", text);
  return {text, canvas, wrong: wrong.slice(0, 8),
          texts: document.querySelectorAll("svg.chart__svg text").length,
          tracks: document.querySelectorAll(".chart__track").length};
}"""


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_the_charts_are_drawn_in_system_colours_when_colours_are_forced(
    scheme: str, live_server: LiveServer, new_context: ContextFactory, audit: AxeAudit
) -> None:
    """Chromium does not force an SVG's fill and stroke: in Windows' high contrast (black)
    the charts' labels and values stayed dark grey on black, the tracks light grey. Every
    text and outline is CanvasText now, every ground Canvas: the patterns tell the series."""
    ensure_world(live_server)
    page = signed_in(new_context, "fr")
    for path in ("/evaluate/quality", "/evaluate/change", "/evaluate/quality?lang=ar"):
        page.goto(path)
        # axe-core's contrast rule reads the author's colours against the forced background
        # (#161616 on black for every text of the page, charts or not): it runs with the
        # page's own colours, the system colours are checked by the probes.
        page.emulate_media(forced_colors="none", color_scheme="light")
        audit.check(page, f"{path} (for forced colours, {scheme})")
        page.emulate_media(forced_colors="active", color_scheme=scheme)
        found: dict[str, Any] = page.evaluate(FORCED_JS)
        assert found["texts"] > 10 and found["text"] != found["canvas"], (path, found)
        assert found["wrong"] == [], (path, found)
    page.goto("/evaluate/quality?lang=fr")
    audit.assert_clean()


FIELDS_JS = """() => [...document.querySelectorAll(".eval-filters .field :is(input, select)")]
  .map(e => { const s = getComputedStyle(e);
    return {id: e.id, border: `${s.borderTopWidth} ${s.borderTopStyle} ${s.borderTopColor}`,
            height: e.getBoundingClientRect().height, font: s.fontSize}; })"""


def test_the_audit_filters_are_drawn_as_the_other_fields(
    live_server: LiveServer, new_context: ContextFactory, audit: AxeAudit
) -> None:
    """The selects and dates were the browser's (1 px grey, rounded) beside the styled code
    box: every field now has its 2 px border, the page's text size and a 44 px height; a
    date at fault has the error colour."""
    ensure_accounts(live_server)
    page = new_context().new_page()
    sign_in(page, Role.STRUCTURE_ADMIN)
    page.goto("/staff/audit")
    fields: list[dict[str, Any]] = page.evaluate(FIELDS_JS)
    assert [f["id"] for f in fields] == ["person", "staff", "action", "from", "to"]
    assert {f["border"] for f in fields} == {"2px solid rgb(22, 22, 22)"}, fields
    assert {f["font"] for f in fields} == {"18px"} and min(f["height"] for f in fields) >= 44
    audit.check(page, "audit trail")
    response = page.goto("/staff/audit?from=2024-02-30")
    assert response is not None and response.status == 400
    wrong = {f["id"]: f["border"] for f in page.evaluate(FIELDS_JS)}
    assert wrong["from"] == "2px solid rgb(206, 5, 0)" and wrong["to"] == wrong["person"]
    expect(page.locator("#from")).to_have_attribute("aria-invalid", "true")
    audit.check(page, "audit trail, a date at fault")
    page.set_viewport_size(PHONE)
    assert page.evaluate(SIDEWAYS_JS) <= 0
    audit.assert_clean()


LASTING_JS = """() => {
  const wrap = document.querySelector(".lasting .table-wrap");
  const cells = [...wrap.querySelectorAll("td")];
  return {
    sideways: wrap.scrollWidth - wrap.clientWidth,
    cells: cells.length,
    unnamed: cells.filter(td =>
      getComputedStyle(td, "::before").content !== JSON.stringify(td.dataset.label)).length,
    outside: cells.filter(td => {
      const r = td.getBoundingClientRect(), w = wrap.getBoundingClientRect();
      return r.left < w.left - 0.5 || r.right > w.right + 0.5; }).length,
  };
}"""


@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_the_followup_summary_fits_a_phone(
    lang: str,
    live_server: LiveServer,
    new_context: ContextFactory,
    walk: Journey,
    audit: AxeAudit,
) -> None:
    """At 320 px the follow-up summary's table showed two of its four columns, the
    months-later one cut at the screen's edge (in Arabic, its words cut mid-letter): each
    row is a block now, each answer under its column's name, nothing wider than the screen."""
    code = live_server.seed_followup_open()
    page = new_context(viewport=PHONE).new_page()
    page.goto(f"/?lang={lang}")
    walk.enter_code(page, code)
    assert walk.path(page) == "/q/p_help", page.url
    walk.walk(page)  # the first answers: lower than at the end, so some tasks were "lost"
    walk.submit(page)
    page.goto("/summary")
    expect(page.locator(".lasting table")).to_be_visible()
    drawn: dict[str, Any] = page.evaluate(LASTING_JS)
    assert drawn["cells"] >= 3 and drawn["sideways"] <= 0, drawn
    assert drawn["unnamed"] == 0 and drawn["outside"] == 0, drawn
    assert page.evaluate(SIDEWAYS_JS) <= 0
    audit.check(page, f"follow-up summary at 320 px ({lang})")
    audit.assert_clean()
    # The rungs chart in forced colours: its light grey track hid the CanvasText bar.
    page.emulate_media(forced_colors="active", color_scheme="dark")
    forced: dict[str, Any] = page.evaluate(FORCED_JS)
    assert forced["tracks"] >= 5 and forced["wrong"] == [], forced


def test_a_french_answer_reads_left_to_right_on_the_arabic_check_page(
    live_server: LiveServer, new_context: ContextFactory, walk: Journey, audit: AxeAudit
) -> None:
    """Typed on the Arabic pages, "… merci pour votre aide." was drawn ".… votre aide": the
    person's own words (the box, then the check page) take their direction."""
    code = live_server.seed("before_only")
    page = new_context(viewport=PHONE).new_page()
    page.goto("/?lang=ar")
    walk.enter_code(page, code)
    assert walk.path(page) == "/welcome-back", page.url
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    sentence = "Merci pour votre aide."

    def comment(on: Page) -> None:
        for box in on.locator("textarea").all():
            box.fill(sentence)
            assert box.evaluate("e => getComputedStyle(e).direction") == "ltr"

    walk.walk(page, on_page=comment)
    typed = page.locator("dd[dir=auto]")
    expect(typed).to_have_text(sentence)
    assert typed.evaluate("e => getComputedStyle(e).direction") == "ltr"
    assert (
        page.locator("dd:not([dir])").first.evaluate("e => getComputedStyle(e).direction") == "rtl"
    )
    assert page.evaluate(SIDEWAYS_JS) <= 0
    audit.check(page, "Arabic check page at 320 px")
    audit.assert_clean()
