"""Helpers of the browser tests: the live server handle, axe-core audit, journey drivers."""

from __future__ import annotations

import json
import os
import random
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

import pytest
from axe_playwright_python.sync_playwright import Axe
from flask import Flask
from playwright.sync_api import BrowserContext, Page

from selfcheck import demo
from selfcheck.journey import operations as journey
from selfcheck.questionnaire.model import Definition, FormKind

CHROMIUM = os.environ.get("SELFCHECK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SLUG = demo.DEMO_SLUG
# WCAG 2.0, 2.1 and 2.2, levels A and AA: what RGAA 4 and the European standard ask for.
AXE_OPTIONS: dict[str, Any] = {
    "runOnly": {
        "type": "tag",
        "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"],
    },
    "resultTypes": ["violations"],
}
# Set to a folder (docs/screenshots) to refresh the README's screenshots; read at import time.
SCREENSHOTS_DIR = os.environ.get("SELFCHECK_SCREENSHOTS", "")
CODE_PATTERN = re.compile(r"^[0-9A-Z]{3}-[0-9A-Z]{3}-[0-9A-Z]{3}$")
STAFF_PASSWORD = "une phrase de passe pour le navigateur"

ContextFactory = Callable[..., BrowserContext]
Chooser = Callable[[str, int], int]  # (input name, number of options) -> option index


# --- the live server ---------------------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    app: Flask

    @property
    def definition(self) -> Definition:
        definition: Definition = self.app.extensions["selfcheck.definition"]
        return definition

    def seed(self, kind: str, seed: int | None = None) -> str:
        """A person who already answered, entered through the services; returns their code.

        kind: "before_only" (a submitted 'before'), "pre_post" (before and after submitted)
        or "retro" (a submitted retrospective form).
        """
        rng = random.Random(seed if seed is not None else secrets.randbits(32))
        database = self.app.extensions["selfcheck.platform.db"]
        with database.session() as session:
            structure = journey.find_structure(session, SLUG)
            assert structure is not None
            # An "initiated senior" (the largest group of the reference survey).
            person = demo.Person(profile=demo.PROFILES[1], level=0.4, gain=0.9, rng=rng)
            first_form = FormKind.RETRO if kind == "retro" else FormKind.BEFORE
            first = journey.start_response(
                session, self.definition, structure, first_form, "fr", secrets.token_urlsafe(16)
            )
            demo.fill_response(session, self.definition, first, person)
            if kind == "pre_post":
                after = journey.start_after(session, self.definition, first.beneficiary, "fr")
                demo.fill_response(session, self.definition, after, person)
            code: str = first.beneficiary.code
            session.commit()  # the operations never commit (the views and tests do)
        return code

    def seed_followup_open(self) -> str:
        """A person whose before and after forms were sent four months ago (the demo
        structure's follow-up opens after 3): their code leads straight to the follow-up."""
        from selfcheck.platform.models import utcnow

        code = self.seed("pre_post")
        database = self.app.extensions["selfcheck.platform.db"]
        with database.session() as session:
            person = journey.find_beneficiary(session, code)
            for response in person.responses:
                ago = timedelta(days=130 if response.form == FormKind.BEFORE.value else 120)
                response.created_at = response.updated_at = utcnow() - ago
                response.submitted_at = utcnow() - ago
            session.commit()
        return code

    def forms_of(self, code: str) -> dict[str, str]:
        """{form: status} of the person with this code (to check what the browser did)."""
        database = self.app.extensions["selfcheck.platform.db"]
        with database.session() as session:
            person = journey.find_beneficiary(session, code)
            return {response.form: response.status for response in person.responses}

    def staff(self, role: str, email: str | None = None) -> tuple[str, str]:
        """A staff account of `role` in the demo structure (created once): (email, password)."""
        from sqlalchemy import select

        from selfcheck.accounts import auth
        from selfcheck.platform.models import Role, StaffUser

        email = email or f"{role}@browser-staff.invalid"
        database = self.app.extensions["selfcheck.platform.db"]
        with database.session() as session:
            if session.scalar(select(StaffUser).where(StaffUser.email == email)) is None:
                structure = journey.find_structure(session, SLUG)
                assert structure is not None
                in_structure = Role(role) in (Role.MEDIATOR, Role.STRUCTURE_ADMIN)
                auth.create_user(
                    session,
                    auth.NewUser(email, Role(role), structure.id if in_structure else None),
                    STAFF_PASSWORD,
                )
                session.commit()  # operations never commit
        return email, STAFF_PASSWORD

    def answers_of(self, code: str, form: str) -> dict[str, tuple[str, ...]]:
        """What the person with this code answered in one form, by variable."""
        database = self.app.extensions["selfcheck.platform.db"]
        with database.session() as session:
            person = journey.find_beneficiary(session, code)
            (response,) = [r for r in person.responses if r.form == form]
            return dict(journey.answers_of(response))


def sign_in_staff(page: Page, email: str, password: str = STAFF_PASSWORD) -> None:
    """Sign in through the staff login page (filled, not typed: not part of what is measured)."""
    page.goto("/staff/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()
    assert "/staff/login" not in page.url, f"{email} could not sign in"


# --- axe-core ------------------------------------------------------------------------------


def format_violations(where: str, violations: list[dict[str, Any]]) -> str:
    lines = [f"{where}:"]
    for violation in violations:
        lines.append(
            f"  - {violation['id']} ({violation.get('impact')}): {violation['help']}"
            f" [{violation.get('helpUrl', '')}]"
        )
        for node in violation["nodes"][:8]:
            target = " ".join(str(t) for t in node.get("target", []))
            summary = " ".join((node.get("failureSummary") or "").split())
            lines.append(f"      at {target}: {summary[:300]}")
        if len(violation["nodes"]) > 8:
            lines.append(f"      … and {len(violation['nodes']) - 8} more")
    return "\n".join(lines)


@dataclass
class AxeAudit:
    """Runs axe-core on pages as a test goes, and fails once at the end with every finding."""

    axe: Axe = field(default_factory=Axe)
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def check(self, page: Page, name: str) -> None:
        """axe-core (AXE_OPTIONS) on the page as it is. One evaluation injects axe-core, runs
        it and reads the html lang: what `Axe.run` does in two, plus a third for the lang
        (axe-core's result, of which only the violations are sent back, is the same)."""
        page.wait_for_load_state("load")
        found: dict[str, Any] = page.evaluate(
            f"{self.axe.axe_script}\n;axe.run(document, {json.dumps(AXE_OPTIONS)})"
            ".then(r => ({lang: document.documentElement.getAttribute('lang'),"
            " violations: r.violations}))"
        )
        where = f"{name} ({page.url}, lang={found['lang']})"
        self.checked.append(where)
        violations = found["violations"]
        if violations:
            self.problems.append(format_violations(where, violations))

    def assert_clean(self) -> None:
        assert self.checked, "no page was checked"
        if self.problems:
            pytest.fail(
                f"axe-core found WCAG A/AA violations on {len(self.problems)} of "
                f"{len(self.checked)} pages:\n" + "\n".join(self.problems),
                pytrace=False,
            )


# --- walking the journey (with clicks; the keyboard test has its own driver) ----------------


class Journey:
    """Small drivers for the journey pages, shared by the tests through the `walk` fixture."""

    NEXT = "button[name=action][value=next]"
    SUBMIT_CHECK = "form[action$='/check'] button[type=submit]"

    def __init__(self, server: LiveServer) -> None:
        self.server = server

    @staticmethod
    def path(page: Page) -> str:
        return "/" + page.url.split("/", 3)[3].split("?")[0].split("#")[0]

    @staticmethod
    def start(page: Page, form: str = "before") -> None:
        """On the start page, choose 'before' or 'retro'."""
        page.locator(f"form:has(input[name=form][value={form}]) button[type=submit]").click()
        page.wait_for_url(re.compile(r"/q/"))

    @staticmethod
    def answer(
        page: Page,
        number: str = "3",
        text: str = "Merci pour votre aide.",
        choose: Chooser | None = None,
    ) -> None:
        """Answer every question of the current page that has no answer yet.

        `choose(name, count)` gives the index of the option to tick (the first by default).
        """
        names: list[str] = []  # no page.evaluate: this also runs with JavaScript disabled
        for choice in page.locator("input.choice__input").all():
            name = choice.get_attribute("name") or ""
            if name not in names:
                names.append(name)
        for name in names:
            group = page.locator(f"input.choice__input[name='{name}']")
            if page.locator(f"input.choice__input[name='{name}']:checked").count():
                continue
            group.nth(choose(name, group.count()) if choose else 0).check()
        for box in page.locator("input.input--number").all():
            if not box.input_value():
                box.fill(number)
        for area in page.locator("textarea").all():
            if not area.input_value():
                area.fill(text)

    def next(self, page: Page) -> None:
        with page.expect_navigation():
            page.locator(self.NEXT).click()

    def walk(
        self,
        page: Page,
        on_page: Callable[[Page], None] | None = None,
        choose: Chooser | None = None,
    ) -> list[str]:
        """Answer and continue page after page until the check page; returns the page codes."""
        seen: list[str] = []
        while self.path(page).startswith("/q/"):
            code = self.path(page).removeprefix("/q/")
            assert code not in seen, f"the journey came back to {code}: {seen}"
            seen.append(code)
            if on_page is not None:
                on_page(page)
            self.answer(page, choose=choose)
            self.next(page)
            assert len(seen) < 40, "the questionnaire never reached the check page"
        assert self.path(page) == "/check", f"expected the check page, got {page.url}"
        return seen

    def submit(self, page: Page) -> None:
        with page.expect_navigation():
            page.locator(self.SUBMIT_CHECK).click()

    @staticmethod
    def code_on_page(page: Page) -> str:
        code = page.locator(".code-box__code span").inner_text().strip()
        assert CODE_PATTERN.match(code), f"no readable code on {page.url}: {code!r}"
        return code

    @staticmethod
    def enter_code(page: Page, code: str) -> None:
        page.goto("/code")
        page.locator("#code").fill(code)
        with page.expect_navigation():
            page.locator("main form button[type=submit]").click()

    @staticmethod
    def see_progress(page: Page, code: str) -> None:
        """Enter a finished person's code and go on to their summary (the code first says
        when to come back for the follow-up, months later)."""
        Journey.enter_code(page, code)
        if urlparse(page.url).path == "/come-back":
            with page.expect_navigation():
                page.locator("main a.button[href$='/summary']").click()


# --- the keyboard only ------------------------------------------------------------------------

ACTIVE_ELEMENT_JS = """() => {
  const e = document.activeElement;
  const style = getComputedStyle(e);
  return {
    tag: e.tagName.toLowerCase(), type: e.type || "", name: e.name || "", value: e.value || "",
    id: e.id || "", checked: !!e.checked, text: (e.innerText || "").trim().slice(0, 80),
    href: e.getAttribute("href") || "", form: e.form ? e.form.getAttribute("action") || "" : "",
    formKind: e.form && e.form.elements.form ? e.form.elements.form.value : "",
    outlineStyle: style.outlineStyle, outlineWidth: style.outlineWidth,
  };
}"""


@dataclass
class Keyboard:
    """Drives the journey with Tab, Shift+Tab, Space, arrows and Enter only: no click, no fill.

    Reading the page (which element has focus, what it looks like) is observation, not input.
    """

    page: Page
    focus_checks: list[str] = field(default_factory=list)

    def active(self) -> dict[str, Any]:
        info: dict[str, Any] = self.page.evaluate(ACTIVE_ELEMENT_JS)
        return info

    def press(self, key: str) -> dict[str, Any]:
        """Press a key; every element that Tab or Shift+Tab reaches must show its focus."""
        self.page.keyboard.press(key)
        info = self.active()
        if key in ("Tab", "Shift+Tab") and info["tag"] != "body":
            self.assert_focus_visible(f"{key} to {info['tag']}#{info['id']} on {self.page.url}")
        return info

    def tab_until(
        self, wanted: Callable[[dict[str, Any]], bool], what: str, limit: int = 120
    ) -> dict[str, Any]:
        for _ in range(limit):
            info = self.press("Tab")
            if wanted(info):
                return info
        raise AssertionError(f"Tab never reached {what} on {self.page.url}")

    def assert_focus_visible(self, where: str) -> None:
        info = self.active()
        assert info["outlineStyle"] != "none" and info["outlineWidth"] not in ("0px", ""), (
            f"no visible focus on {info['tag']}#{info['id']} ({where}): "
            f"outline {info['outlineStyle']} {info['outlineWidth']}"
        )
        self.focus_checks.append(where)

    def activate(self, key: str = "Enter") -> None:
        """Press a key that submits or follows a link, and wait for the next page."""
        with self.page.expect_navigation():
            self.page.keyboard.press(key)

    def answer_page(self, number: str = "4", text: str = "Merci beaucoup.") -> None:
        """Answer each question of the page with the keyboard, then Continue with Enter."""
        answered: set[str] = set()
        arrow = False
        for _ in range(200):
            info = self.press("Tab")
            if info["type"] == "radio" and info["name"] not in answered:
                if not info["checked"]:
                    info = self.press("Space")
                    assert info["checked"], f"Space did not choose {info['id']}"
                    if arrow:  # every other group: move to the next option with an arrow
                        info = self.press("ArrowDown")
                        assert info["checked"] and info["type"] == "radio", info
                    arrow = not arrow
                answered.add(info["name"])
            elif info["type"] == "checkbox" and info["name"] not in answered:
                if not info["checked"]:
                    info = self.press("Space")
                    assert info["checked"], f"Space did not tick {info['id']}"
                answered.add(info["name"])
            elif info["tag"] == "input" and info["type"] == "text" and not info["value"]:
                self.page.keyboard.type(number)
            elif info["tag"] == "textarea" and not info["value"]:
                self.page.keyboard.type(text)
            elif info["tag"] == "button" and info["value"] == "next":
                self.assert_focus_visible(f"Continue button of {self.page.url}")
                self.activate()
                return
        raise AssertionError(f"never reached the Continue button on {self.page.url}")
