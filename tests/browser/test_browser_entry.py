"""Typing paper forms in: the keyboard only, counted; without JavaScript; axe-core on every screen.

The keystroke test types a whole 'before' form the way a mediator would, from the code on the
paper to the finish button, and counts every key pressed (in Python, and by a keydown listener
in the page as a cross-check). The bound: one key per answered question, plus one per extra
tick of a multiple choice and one Enter to leave it, plus the finish key; the test allows
answered questions + 10 % + 3.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from selfcheck.journey import operations as journey
from selfcheck.platform import codes
from selfcheck.platform.models import Channel, Role, StaffUser, Structure
from selfcheck.questionnaire.model import NO_ANSWER, FormKind
from tests.browser.support import (
    SLUG,
    ContextFactory,
    Keyboard,
    LiveServer,
    sign_in_staff,
)
from tests.support import BEFORE

pytestmark = pytest.mark.browser

ERROR_TITLE = re.compile(r"^(Erreur|Error)\b")
# Counts keydown events in the page, across navigations of the tab (sessionStorage).
KEY_COUNTER = """document.addEventListener("keydown", function () {
  sessionStorage.setItem("keys", String(Number(sessionStorage.getItem("keys") || 0) + 1));
}, true);"""

# What the person wrote on paper: the usual 'before' answers, the diploma left blank.
ON_PAPER: dict[str, tuple[str, ...]] = {**BEFORE, "DIPLOMA": (NO_ANSWER,)}


@dataclass
class Counted:
    """Presses keys on a page and counts them."""

    page: Page
    pressed: list[str] = field(default_factory=list)

    def press(self, key: str) -> None:
        self.page.keyboard.press(key)
        self.pressed.append(key)

    def type(self, text: str) -> None:
        for char in text:
            self.press(char)

    def active_name(self) -> str:
        name: str = self.page.evaluate("() => document.activeElement.name || ''")
        return name

    def in_page(self) -> int:
        return int(self.page.evaluate("() => Number(sessionStorage.getItem('keys') || 0)"))


def printed_codes(server: LiveServer, count: int = 1) -> list[str]:
    """Codes printed on blank paper forms (journey.create_codes), nothing typed yet."""
    database = server.app.extensions["selfcheck.platform.db"]
    with database.session() as session:
        structure = journey.find_structure(session, SLUG)
        assert structure is not None
        made = [person.code for person in journey.create_codes(session, structure, count)]
        session.commit()  # the operations never commit
        return made


def keys_for(server: LiveServer, form: FormKind, answers: dict[str, tuple[str, ...]]) -> list:
    """(variable, keys) in screen order for the questions that apply: the option numbers."""
    plan = []
    for variable in server.definition.variables(form):
        item = variable.item
        if not journey.is_visible(item, answers):
            continue
        given = answers[variable.code]
        if given == (NO_ANSWER,):
            plan.append((variable.code, ["0"]))
            continue
        numbers = [str(item.option_codes.index(value) + 1) for value in given]
        plan.append(
            (variable.code, numbers + (["Enter"] if item.type.entry_kind == "checkbox" else []))
        )
    return plan


def test_a_before_form_typed_with_the_keyboard_only_and_counted(
    new_context: ContextFactory, live_server: LiveServer
) -> None:
    email, password = live_server.staff(Role.MEDIATOR.value)
    context = new_context()
    context.add_init_script(KEY_COUNTER)
    page = context.new_page()
    sign_in_staff(page, email, password)
    (code,) = printed_codes(live_server)
    keys = Counted(page)

    # Find the record: the code field has the focus; type (or scan) the code, then Enter.
    page.goto("/staff/entry/")
    page.evaluate("() => sessionStorage.setItem('keys', '0')")
    expect(page.locator("#code")).to_be_focused()
    keys.type(codes.display(code))
    with page.expect_navigation():
        keys.press("Enter")
    finding = len(keys.pressed)
    assert re.search(r"/staff/entry/\d+$", page.url), page.url

    # The whole form on one screen; focus is on question 1.
    expect(page.locator("#f-ASSIST-seul")).to_be_focused()
    checker = Keyboard(page)
    plan = keys_for(live_server, FormKind.BEFORE, ON_PAPER)
    assert keys.active_name() == plan[0][0]
    for index, (variable, presses) in enumerate(plan):
        assert keys.active_name() == variable, (variable, keys.active_name())
        for key in presses:
            keys.press(key)
        if index % 7 == 0:
            checker.assert_focus_visible(f"after typing {variable}")
    # After the last question, the finish button; Enter finishes.
    assert page.evaluate("() => document.activeElement.hasAttribute('data-entry-finish')")
    checker.assert_focus_visible("finish button")
    with page.expect_navigation():
        keys.press("Enter")
    expect(page.locator(".notice")).to_contain_text(codes.display(code))

    typing = len(keys.pressed) - finding
    answered = len(plan)
    bound = answered + math.ceil(answered * 0.10) + 3
    print(
        f"\nkeystrokes: finding the record {finding} (code {len(codes.display(code))} + Enter);"
        f" typing {typing} for {answered} answered questions"
        f" ({typing / answered:.2f} per question, bound {bound})"
    )
    assert typing <= bound, f"{typing} keys for {answered} questions (bound {bound})"
    assert keys.in_page() == len(keys.pressed)  # nothing else reached the page

    # What was stored: exactly the paper, the blank diploma as "no answer", nothing else.
    stored = live_server.answers_of(code, FormKind.BEFORE.value)
    expected = {v: ON_PAPER[v] for v, _keys in plan}
    assert stored == expected
    assert "USE_LAPTOP" not in stored and stored["DIPLOMA"] == (NO_ANSWER,)
    database = live_server.app.extensions["selfcheck.platform.db"]
    with database.session() as session:
        person = journey.find_beneficiary(session, code)
        (response,) = person.responses
        typist = session.scalar(select(StaffUser).where(StaffUser.email == email))
        assert typist is not None
        assert response.channel == Channel.PAPER.value and response.is_submitted
        assert response.entered_by_id == typist.id and response.entered_at is not None


def test_entry_works_without_javascript_and_keeps_a_partial_entry(
    new_context: ContextFactory, live_server: LiveServer
) -> None:
    """Tab, Space and arrows only, no script: type two questions, save, come back."""
    email, password = live_server.staff(Role.MEDIATOR.value)
    page = new_context(java_script_enabled=False).new_page()
    sign_in_staff(page, email, password)
    (code,) = printed_codes(live_server)
    page.goto("/staff/entry/")
    expect(page.locator("#code")).to_be_focused()
    page.keyboard.type(code)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    keys = Keyboard(page)
    expect(page.locator("#f-ASSIST-seul")).to_be_focused()
    first = keys.active()
    assert first["name"] == "ASSIST" and first["type"] == "radio"
    keys.press("Space")  # option 1
    keys.press("ArrowDown")  # option 2
    assert keys.active()["checked"]
    moved = keys.press("Tab")  # the next question (a radio group is one Tab stop)
    assert moved["name"] == "AGE", moved
    keys.press("Space")
    keys.tab_until(lambda e: e["tag"] == "button" and e["value"] == "save", "the save button")
    keys.activate()
    expect(page.locator(".notice")).to_be_visible()
    assert live_server.answers_of(code, "before") == {
        "ASSIST": ("mediateur",),
        "AGE": ("moins_de_douze",),
    }
    # Re-opening the same code shows what was typed.
    page.goto("/staff/entry/")
    page.locator("#code").fill(code)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").first.click()
    expect(page.locator("#f-ASSIST-mediateur")).to_be_checked()
    expect(page.locator("#f-AGE-moins_de_douze")).to_be_checked()


def test_two_digit_numbers_numbers_typed_in_and_wrong_keys(
    new_context: ContextFactory, live_server: LiveServer
) -> None:
    """An 'after' form: 18 topics (1 waits for a second digit), a number field, a wrong key."""
    email, password = live_server.staff(Role.MEDIATOR.value)
    code, _response_id = _finish_paper_form(live_server, email)
    page = new_context().new_page()
    sign_in_staff(page, email, password)
    page.goto("/staff/entry/")
    page.locator("#code").fill(code)
    page.locator("#code-after").check()
    with page.expect_navigation():
        page.locator("main form button[type=submit]").first.click()
    keys = Counted(page)
    expect(page.locator("#f-ASSIST-seul")).to_be_focused()
    keys.press("9")  # ASSIST has 3 options: nothing chosen, a message, focus stays
    expect(page.locator("#entry-live")).to_contain_text("9")
    assert keys.active_name() == "ASSIST"
    for key in ("2", "1"):  # ASSIST: mediateur; MODALITY: individuel
        keys.press(key)
    assert keys.active_name() == "SESSIONS"
    keys.type("12")
    keys.press("Enter")  # a number field: Enter moves on
    keys.press("0")  # SESSION_LENGTH: no answer
    assert keys.active_name() == "TOPICS"
    for key in ("1", "2", "2", "1", "Enter"):  # 12, 2, then 1 (Enter ends the wait)
        keys.press(key)
    assert keys.active_name() == "COMFORT"
    with page.expect_navigation():
        page.locator("button[value=save]").click()
    stored = live_server.answers_of(code, FormKind.AFTER.value)
    topics = live_server.definition.item("TOPICS").option_codes
    assert stored == {
        "ASSIST": ("mediateur",),
        "MODALITY": ("individuel",),
        "SESSIONS": ("12",),
        "SESSION_LENGTH": (NO_ANSWER,),
        "TOPICS": (topics[0], topics[1], topics[11]),
    }


def _finish_paper_form(server: LiveServer, email: str) -> tuple[str, int]:
    """A 'before' typed and finished on paper by `email`, drawn for a second entry."""
    database = server.app.extensions["selfcheck.platform.db"]
    (code,) = printed_codes(server)
    with database.session() as session:
        from selfcheck.entry.lookup import open_entry
        from selfcheck.entry.saving import save_entry

        typist = session.scalar(select(StaffUser).where(StaffUser.email == email))
        structure = session.scalar(select(Structure).where(Structure.slug == SLUG))
        assert typist is not None and structure is not None
        response = open_entry(session, server.definition, typist, code, FormKind.BEFORE, "fr")
        session.commit()
        answers = {v: ON_PAPER[v] for v, _k in keys_for(server, FormKind.BEFORE, ON_PAPER)}
        save_entry(
            session, server.definition, typist, response, answers, finish=True, draw=lambda: 0
        )
        session.commit()
        response.double_entry_wanted = True
        session.commit()
        return code, response.id


# Issue 16: a whole 'before' form on at most 3 screens of 1366x768 (it took 9.6 screens
# before the compact rows and the answer headings shown once per run of ladder questions).
SCREEN = {"width": 1366, "height": 768}
MAX_SCREENS = 3


def test_a_before_form_fits_in_three_screens_with_one_row_per_task(
    new_context: ContextFactory, live_server: LiveServer
) -> None:
    email, password = live_server.staff(Role.MEDIATOR.value)
    page = new_context(viewport=SCREEN).new_page()
    sign_in_staff(page, email, password)
    (code,) = printed_codes(live_server)
    page.goto("/staff/entry/")
    page.locator("#code").fill(code)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert re.search(r"/staff/entry/\d+$", page.url), page.url
    expect(page.locator("#f-ASSIST-seul")).to_be_focused()

    height = page.evaluate("() => document.documentElement.scrollHeight")
    screens = height / SCREEN["height"]
    print(f"\nentry screen, before form: {height} px = {screens:.2f} screens of 1366x768")
    assert screens <= MAX_SCREENS
    assert page.evaluate("() => document.documentElement.scrollWidth") <= SCREEN["width"]

    # One row per task, as on paper: the ladder's numbered answers (0 to 5) on one line, beside
    # the question's legend (each row keeps its own fieldset and legend); the answers' texts
    # are shown once above the run and stay in each radio button's label.
    tasks = [i.code for i in live_server.definition.task_items() if i.in_form(FormKind.BEFORE)]
    assert tasks
    for item_code in tasks:
        question = page.locator(f"#q-{item_code}")
        expect(question.locator("fieldset > legend")).to_have_count(1)
        expect(page.get_by_role("group", name=re.compile(r"^\d+\. "))).not_to_have_count(0)
        tops = question.locator("input[type=radio]").evaluate_all(
            "els => els.map(e => Math.round(e.getBoundingClientRect().top))"
        )
        assert len(tops) >= 5 and max(tops) - min(tops) <= 2, (item_code, tops)
        legend = question.locator("legend").evaluate("e => e.getBoundingClientRect().top")
        assert abs(legend - min(tops)) < 40, item_code  # beside its answers, not above
        first = question.locator("input[data-key='1']")
        expect(first).to_have_accessible_name(re.compile(r"^1 \S"))  # number and text
    expect(page.locator(".entry-grid-head")).not_to_have_count(0)
