"""What every page is checked for, besides axe-core: structure, targets, reflow, text zoom.

Each check returns a list of problems (empty when the page is fine), so a test can collect
them over many pages and fail once with all of them.
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, ViewportSize

# WCAG 2.5.8 (AA): 24 x 24 CSS px. The beneficiary journey asks for 44 x 44 (WCAG 2.5.5, AAA,
# and the DSFR's touch targets): its users are mostly older, some with tremors or low vision.
TARGET_MIN = 24
JOURNEY_TARGET_MIN = 44
REFLOW_WIDTH = 320  # WCAG 1.4.10: a 1280 px screen zoomed to 400 %
ZOOM_VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
DEFAULT_VIEWPORT: ViewportSize = {"width": 1024, "height": 768}

# Interactive elements too small to hit. The target of a radio button or a check box is the
# box and its label together (a click on either chooses it). A link inside a sentence is
# exempt (WCAG 2.5.8 "inline"): its size is the line's.
SMALL_TARGETS_JS = """(minimum) => {
  const visible = (e) => {
    const r = e.getBoundingClientRect(), s = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none";
  };
  const inSentence = (e) => {
    const block = e.closest("p, li, td, dd, th, dt, label, legend, h1, h2, h3, figcaption");
    if (!block) return false;
    const own = (e.innerText || "").trim().length;
    return (block.innerText || "").trim().length > own + 1;
  };
  const rectOf = (e) => {
    let r = e.getBoundingClientRect();
    if (e.type === "radio" || e.type === "checkbox") {
      const around = e.closest(".choice, .check-inline, label");
      const label = e.id ? document.querySelector(`label[for="${CSS.escape(e.id)}"]`) : null;
      for (const other of [around, label]) {
        if (!other || !visible(other)) continue;
        const o = other.getBoundingClientRect();
        const left = Math.min(r.left, o.left), top = Math.min(r.top, o.top);
        r = {left, top, width: Math.max(r.right, o.right) - left,
             height: Math.max(r.bottom, o.bottom) - top, right: 0, bottom: 0};
        r.right = r.left + r.width; r.bottom = r.top + r.height;
      }
    }
    return r;
  };
  const selector = "a[href], button, input:not([type=hidden]), select, textarea, summary";
  return [...document.querySelectorAll(selector)]
    .filter(e => visible(e) && !e.closest(".skip-link") && !e.classList.contains("skip-link"))
    .filter(e => !(e.tagName === "A" && inSentence(e)))
    .map(e => ({e, r: rectOf(e)}))
    .filter(({r}) => r.width < minimum - 0.5 || r.height < minimum - 0.5)
    .slice(0, 8)
    .map(({e, r}) => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}`
      + `${e.className ? "." + String(e.className).trim().split(/\\s+/).join(".") : ""}`
      + ` "${(e.innerText || e.value || e.name || "").trim().slice(0, 30)}"`
      + ` ${Math.round(r.width)}x${Math.round(r.height)}`);
}"""

# Elements that stick out on the right (or the left, right to left), to say what to fix.
WIDEST_JS = """(limit) => [...document.querySelectorAll("body *")]
  .filter(e => {
    const r = e.getBoundingClientRect();
    return r.right > limit + 0.5 || r.left < -0.5;
  })
  .filter(e => !e.closest(".visually-hidden, .skip-link"))
  .filter(e => { // inside a box that scrolls on its own (a wide table): not the page's fault
    for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
      const own = getComputedStyle(a).overflowX;
      if (["auto", "scroll", "hidden", "clip"].includes(own)) return false;
    }
    return true;
  })
  .slice(0, 5)
  .map(e => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}.${[...e.classList].join(".")}`
            + ` (${Math.round(e.getBoundingClientRect().left)}..`
            + `${Math.round(e.getBoundingClientRect().right)} px)`)"""

# Text cut off by its box (overflow hidden or clip) once the text is twice as big.
CLIPPED_JS = """() => [...document.querySelectorAll("body *")]
  .filter(e => {
    if (e.closest(".visually-hidden") || e.classList.contains("visually-hidden")) return false;
    const s = getComputedStyle(e);
    const cut = ["hidden", "clip"];
    const clips = cut.includes(s.overflowX) || cut.includes(s.overflowY);
    return clips && (e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1);
  })
  .slice(0, 5)
  .map(e => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}.${[...e.classList].join(".")}`)"""

STRUCTURE_JS = """() => ({
  h1: document.querySelectorAll("h1").length,
  main: document.querySelectorAll("main").length,
  header: document.querySelectorAll("body > header").length,
  footer: document.querySelectorAll("body > footer").length,
  firstLink: ((e) => e ? e.getAttribute("href") : null)(
    document.querySelector("a[href], button, input, select, textarea")),
  statement: !!document.querySelector("footer a[href$='/accessibilite']"),
  title: document.title,
  summaryLinks: [...document.querySelectorAll(".error-summary a[href^='#']")]
    .map(a => [a.getAttribute("href"), !!document.getElementById(a.getAttribute("href").slice(1))]),
  fieldsetsWithoutLegend: [...document.querySelectorAll("main fieldset")]
    .filter(f => !(f.firstElementChild && f.firstElementChild.tagName === "LEGEND")).length,
  strayLiveRegions: [...document.querySelectorAll("[role=alert], [role=status]")]
    .filter(e => !e.matches(".error-summary[role=alert], .notice[role=status]"))
    .map(e => `${e.tagName.toLowerCase()}.${[...e.classList].join(".")}`),
  radiosOutsideFieldset: [...document.querySelectorAll("main input[type=radio]")]
    .filter(i => !i.closest("fieldset")).length,
})"""


def structure_problems(page: Page, error_prefix: str | None) -> list[str]:
    """Landmarks and skip link, one h1, the statement link, fieldsets with legends, live
    regions only where needed (the error summary, notices after an action), and for a
    page with form errors: the title says so, and every link of the error summary leads to a
    field of the page."""
    info: dict[str, Any] = page.evaluate(STRUCTURE_JS)
    return _structure_findings(info, error_prefix)


def _structure_findings(info: dict[str, Any], error_prefix: str | None) -> list[str]:
    problems = []
    if info["h1"] != 1:
        problems.append(f"{info['h1']} h1 elements (one expected)")
    if (info["main"], info["header"], info["footer"]) != (1, 1, 1):
        problems.append("landmarks: one main, one header and one footer expected")
    if info["firstLink"] != "#main":
        problems.append(f"the first link is {info['firstLink']!r}, not the skip link to #main")
    if not info["statement"]:
        problems.append("no link to the accessibility statement in the footer")
    if info["fieldsetsWithoutLegend"]:
        problems.append(f"{info['fieldsetsWithoutLegend']} fieldset(s) without a first legend")
    if info["strayLiveRegions"]:
        problems.append(
            "role=alert is for the error summary and role=status for notices after an action: "
            f"{info['strayLiveRegions']}"
        )
    if info["radiosOutsideFieldset"]:
        problems.append(f"{info['radiosOutsideFieldset']} radio button(s) outside a fieldset")
    if error_prefix is not None:
        if not info["title"].startswith(error_prefix):
            problems.append(f"title {info['title']!r} does not start with {error_prefix!r}")
        if not info["summaryLinks"]:
            problems.append("no error summary with links")
        broken = [href for href, found in info["summaryLinks"] if not found]
        if broken:
            problems.append(f"error summary links to nothing: {broken}")
    return problems


def target_problems(page: Page, minimum: int) -> list[str]:
    small: list[str] = page.evaluate(SMALL_TARGETS_JS, minimum)
    return [f"targets under {minimum}x{minimum} px: {', '.join(small)}"] if small else []


def reflow_problems(page: Page) -> list[str]:
    """At 320 CSS px wide, nothing scrolls sideways (the viewport is put back afterwards)."""
    page.set_viewport_size({"width": REFLOW_WIDTH, "height": 640})
    try:
        width = page.evaluate("document.documentElement.scrollWidth")
        if width <= REFLOW_WIDTH:
            return []
        culprits = page.evaluate(WIDEST_JS, REFLOW_WIDTH)
        return [f"{width} px wide at {REFLOW_WIDTH} px: {', '.join(culprits)}"]
    finally:
        page.set_viewport_size(DEFAULT_VIEWPORT)


def zoom_problems(page: Page) -> list[str]:
    """Text at 200 % (WCAG 1.4.4): nothing scrolls sideways, nothing is cut off."""
    page.set_viewport_size(ZOOM_VIEWPORT)
    page.evaluate("document.documentElement.style.fontSize = '200%'")
    try:
        problems = []
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > ZOOM_VIEWPORT["width"]:
            culprits = page.evaluate(WIDEST_JS, ZOOM_VIEWPORT["width"])
            problems.append(f"text at 200 %: {width} px wide; {', '.join(culprits)}")
        clipped: list[str] = page.evaluate(CLIPPED_JS)
        if clipped:
            problems.append(f"text at 200 %: cut off in {', '.join(clipped)}")
        return problems
    finally:
        page.evaluate("document.documentElement.style.fontSize = ''")
        page.set_viewport_size(DEFAULT_VIEWPORT)


# --- every check of a page in few round trips (the route suite: ~100 pages a language) ---------

# The html lang attribute, the structure and the small targets, read in one evaluation (the
# same scripts as structure_problems and target_problems).
PAGE_FACTS_JS = f"""(minimum) => ({{
  lang: document.documentElement.getAttribute("lang"),
  structure: ({STRUCTURE_JS})(),
  small: ({SMALL_TARGETS_JS})(minimum),
}})"""

# Reflow at the current viewport: the page's width, and what sticks out when it is too wide
# (WIDEST_JS), in one evaluation.
REFLOW_JS = f"""(limit) => {{
  const width = document.documentElement.scrollWidth;
  return {{width, culprits: width > limit ? ({WIDEST_JS})(limit) : []}};
}}"""

# Text at 200 % at the current viewport: the root font size doubled, the width and the text
# cut off read (each read lays the page out again, synchronously), the font size put back,
# in one evaluation.
ZOOM_JS = f"""(limit) => {{
  const root = document.documentElement;
  root.style.fontSize = "200%";
  try {{
    const width = root.scrollWidth;
    return {{
      width,
      culprits: width > limit ? ({WIDEST_JS})(limit) : [],
      clipped: ({CLIPPED_JS})(),
    }};
  }} finally {{
    root.style.fontSize = "";
  }}
}}"""


def page_problems(
    page: Page, lang: str, error_prefix: str | None, minimum: int, zoom: bool
) -> list[str]:
    """What structure_problems, target_problems, reflow_problems and (with `zoom`)
    zoom_problems find, and a wrong html lang attribute, in five round trips and three
    viewport changes instead of about fifteen and four: one evaluation for the lang, the
    structure and the targets at the default viewport; then the reflow at 320 px; then text at
    200 % at 1280 px; then the default viewport again. The same scripts, the same sizes, the
    same messages (tests/browser/test_browser_checks.py feeds them broken pages)."""
    facts: dict[str, Any] = page.evaluate(PAGE_FACTS_JS, minimum)
    found: list[str] = []
    if facts["lang"] != lang:
        found.append(f"html lang={facts['lang']!r}")
    found += _structure_findings(facts["structure"], error_prefix)
    if facts["small"]:
        found.append(f"targets under {minimum}x{minimum} px: {', '.join(facts['small'])}")
    page.set_viewport_size({"width": REFLOW_WIDTH, "height": 640})
    try:
        reflow: dict[str, Any] = page.evaluate(REFLOW_JS, REFLOW_WIDTH)
        if reflow["width"] > REFLOW_WIDTH:
            found.append(
                f"{reflow['width']} px wide at {REFLOW_WIDTH} px: {', '.join(reflow['culprits'])}"
            )
        if zoom:
            page.set_viewport_size(ZOOM_VIEWPORT)
            zoomed: dict[str, Any] = page.evaluate(ZOOM_JS, ZOOM_VIEWPORT["width"])
            if zoomed["width"] > ZOOM_VIEWPORT["width"]:
                found.append(
                    f"text at 200 %: {zoomed['width']} px wide; {', '.join(zoomed['culprits'])}"
                )
            if zoomed["clipped"]:
                found.append(f"text at 200 %: cut off in {', '.join(zoomed['clipped'])}")
    finally:
        page.set_viewport_size(DEFAULT_VIEWPORT)
    return found


# --- large text and text spacing on a narrow screen (WCAG 1.4.4, 1.4.10, 1.4.12) -------------

PHONE: ViewportSize = {"width": REFLOW_WIDTH, "height": 640}
# The text-spacing bookmarklet's styles (WCAG 1.4.12's four values), set as an adopted style
# sheet: the pages' Content-Security-Policy (style-src 'self') refuses a <style> element.
TEXT_SPACING_CSS = """* { line-height: 1.5 !important; letter-spacing: 0.12em !important;
  word-spacing: 0.16em !important; }
p { margin-block-end: 2em !important; }"""
ADOPT_JS = """(css) => { const sheet = new CSSStyleSheet(); sheet.replaceSync(css);
  document.adoptedStyleSheets = [sheet]; }"""

# Content cut off by a box that hides its overflow. Left out: what is hidden on purpose (the
# visually hidden pattern, a 1 px box, and what is inside one) and text fields, whose text
# scrolls under the caret by design.
CUT_OFF_JS = """() => [...document.querySelectorAll("body *")]
  .filter(e => {
    if (e.matches("input, textarea, select") || e.closest(".visually-hidden")) return false;
    // The box's own style first: the walk up its ancestors only for the few that clip.
    const s = getComputedStyle(e), cut = ["hidden", "clip"];
    if (!(cut.includes(s.overflowX) || cut.includes(s.overflowY))) return false;
    if (!(e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1)) return false;
    for (let a = e; a; a = a.parentElement) {
      const r = a.getBoundingClientRect();
      if (r.width <= 1 || r.height <= 1) return false;
    }
    return true;
  })
  .slice(0, 5)
  .map(e => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}.${[...e.classList].join(".")}`)"""


def _narrow_problems(page: Page, condition: str) -> list[str]:
    width: int = page.evaluate("document.documentElement.clientWidth")
    scrolled: int = page.evaluate("document.documentElement.scrollWidth")
    problems = []
    if scrolled > width:
        culprits = page.evaluate(WIDEST_JS, width)
        problems.append(f"{condition}: {scrolled} px wide at {width} px; {', '.join(culprits)}")
    cut: list[str] = page.evaluate(CUT_OFF_JS)
    if cut:
        problems.append(f"{condition}: cut off in {', '.join(cut)}")
    return problems


def large_text_problems(page: Page) -> list[str]:
    """At 320 CSS px wide (a phone, or a 640 px window at 200 % page zoom): the page never
    scrolls sideways and nothing is cut off with
    - text at 200 % (the root font size doubled, as a user style sheet would; every size of
      the stylesheet is in rem or em);
    - the browser's own text size doubled (Chromium's default font size set to 32 px through
      the DevTools protocol, as the "very large" font setting does: em media and container
      queries follow it too);
    - the text spacing of WCAG 1.4.12 (line height 1.5, paragraphs 2em apart, letters 0.12em,
      words 0.16em), alone and with text at 200 %.
    Data tables may scroll inside their own box (WIDEST_JS does not count what is in one).
    The page is put back as it was (viewport, font size, style sheets)."""
    problems: list[str] = []
    before = page.viewport_size or DEFAULT_VIEWPORT
    session = page.context.new_cdp_session(page)
    page.set_viewport_size(PHONE)
    try:
        page.evaluate("document.documentElement.style.fontSize = '200%'")
        problems += _narrow_problems(page, "text at 200 %")
        page.evaluate(ADOPT_JS, TEXT_SPACING_CSS)
        problems += _narrow_problems(page, "text at 200 % and WCAG 1.4.12 spacing")
        page.evaluate("document.documentElement.style.fontSize = ''")
        problems += _narrow_problems(page, "WCAG 1.4.12 spacing")
        page.evaluate("document.adoptedStyleSheets = []")
        session.send("Page.setFontSizes", {"fontSizes": {"standard": 32, "fixed": 26}})
        problems += _narrow_problems(page, "browser font size 32 px")
    finally:
        session.send("Page.setFontSizes", {"fontSizes": {"standard": 16, "fixed": 13}})
        session.detach()
        page.evaluate(
            "document.adoptedStyleSheets = []; document.documentElement.style.fontSize = ''"
        )
        page.set_viewport_size(before)
    return problems
