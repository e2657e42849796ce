"""Issue 19 end to end, with the keyboard only: a new place of mediation from nothing to a
signed-in mediator, nobody opening a terminal.

A platform administrator signs in (and enrols a second factor: required for them), creates
a structure, requires a second factor of its whole team, and invites its administrator. That
person accepts through the one-time link, chooses a password, enrols a second factor
(required by the structure), invites a mediator and downloads the poster. The mediator
accepts, enrols, and sees that structure only.

Every key is Tab, Shift+Tab, Enter, Space, an arrow, or typing into the focused field: no
click, no fill. Opening a one-time link is typing it into the address bar (page.goto), as a
person does with a link received by message. Every element Tab reaches must show its focus
(Keyboard.press). axe runs on each page of the flow; the route suite plays the same pages in
every language (tests/browser/routes.py, "administration").

Screenshots of the structure page, the team page, the enrolment page and the poster go to
SELFCHECK_SCREENSHOTS when set (the README's pictures, docs/screenshots/).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from playwright.sync_api import Page
from sqlalchemy import select

from selfcheck.accounts import auth
from selfcheck.platform.models import Beneficiary, Role, StaffUser, Structure
from tests.browser.support import (
    SCREENSHOTS_DIR,
    SLUG,
    AxeAudit,
    ContextFactory,
    Keyboard,
    LiveServer,
)

pytestmark = pytest.mark.browser

PASSWORD = "une phrase assez longue pour les tests"
REQUIRED = "SELFCHECK_TOTP_REQUIRED"


@pytest.fixture
def second_factor_required(live_server: LiveServer) -> Iterator[None]:
    """The live server plays most scenes without the second factor (a code serves once per
    30 s); this flow is the real thing."""
    before = live_server.app.config.get(REQUIRED)
    live_server.app.config[REQUIRED] = True
    try:
        yield
    finally:
        live_server.app.config[REQUIRED] = before


def platform_admin(server: LiveServer) -> str:
    email = "plateforme@bourg.invalid"
    database = server.app.extensions["selfcheck.platform.db"]
    with database.session() as session:
        auth.create_user(session, auth.NewUser(email, Role.PLATFORM_ADMIN), PASSWORD)
        session.commit()
    return email


def type_into(keys: Keyboard, field_id: str, text: str) -> None:
    keys.tab_until(lambda e: e["id"] == field_id, f"the field #{field_id}")
    keys.page.keyboard.type(text)


def press_button(keys: Keyboard, label: str) -> None:
    keys.tab_until(lambda e: e["tag"] == "button" and label in e["text"], f"the button {label}")
    keys.activate()


def follow_link(keys: Keyboard, href: re.Pattern[str], what: str) -> None:
    keys.tab_until(lambda e: e["tag"] == "a" and bool(href.search(e["href"])), what)
    keys.activate()


def choose_radio(keys: Keyboard, name: str, wanted_id: str) -> None:
    """Tab into a radio group, then arrows until `wanted_id` is chosen."""
    info = keys.tab_until(lambda e: e["type"] == "radio" and e["name"] == name, f"{name} radios")
    for _ in range(10):
        if info["id"] == wanted_id:
            if not info["checked"]:
                info = keys.press("Space")
            assert info["checked"], info
            return
        info = keys.press("ArrowDown")
    raise AssertionError(f"the arrows never reached #{wanted_id}")


def path(page: Page) -> str:
    return re.sub(r"^https?://[^/]+", "", page.url).split("?")[0]


def sign_in(keys: Keyboard, email: str) -> None:
    keys.page.goto("/staff/login")
    type_into(keys, "email", email)
    type_into(keys, "password", PASSWORD)
    press_button(keys, "Se connecter")


def enrol(keys: Keyboard, audit: AxeAudit, why: str, shoot: Any = None) -> None:
    """On the enrolment page, where a required second factor sends everyone: read the text
    key (as the person types it into their app), type the app's code, confirm."""
    assert path(keys.page) == "/staff/account/two-factor", keys.page.url
    assert why in keys.page.inner_text("main .notice")
    audit.check(keys.page, "two-factor enrolment")
    if shoot is not None:
        shoot(keys.page, "fr-11-two-factor-enrolment")
    secret = keys.page.locator("code.secret-text").inner_text().replace(" ", "")
    type_into(keys, "code", pyotp.TOTP(secret).now())
    press_button(keys, "Activer")
    assert keys.page.locator(".recovery-codes li").count() == 10
    audit.check(keys.page, "recovery codes")
    follow_link(keys, re.compile(r"^/staff/$"), "the link after the recovery codes")


def accept_invitation(keys: Keyboard, link: str, email: str) -> None:
    keys.page.goto(link)
    type_into(keys, "new", PASSWORD)
    type_into(keys, "confirm", PASSWORD)
    press_button(keys, "Enregistrer le mot de passe")
    assert path(keys.page) == "/staff/login"
    sign_in(keys, email)


def invite(keys: Keyboard, email: str, role_id: str) -> str:
    type_into(keys, "email", email)
    choose_radio(keys, "role", role_id)
    press_button(keys, "Créer le lien d'invitation")
    link = keys.page.locator("#one-time-link").input_value()
    assert "/staff/link/" in link
    return link


def test_a_new_place_from_nothing_to_a_mediator_with_the_keyboard_only(
    new_context: ContextFactory,
    live_server: LiveServer,
    audit: AxeAudit,
    second_factor_required: None,
    tmp_path: Path,
) -> None:
    folder = Path(SCREENSHOTS_DIR) if SCREENSHOTS_DIR else tmp_path
    folder.mkdir(parents=True, exist_ok=True)

    def shoot(page: Page, name: str) -> None:
        page.wait_for_load_state("load")
        target = folder / f"{name}.png"
        page.screenshot(path=str(target), full_page=True, animations="disabled", caret="hide")
        assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    viewport = {"width": 1100, "height": 800}
    # Fixed names (the README's pictures): the test runs once per live server.
    name = "Espace numérique du Bourg"
    admin_email = "responsable@bourg.invalid"
    mediator_email = "mediateur@bourg.invalid"

    # 1. The platform administrator: signs in, must enrol first, whatever the URL asked.
    keys = Keyboard(new_context(viewport=viewport).new_page())
    sign_in(keys, platform_admin(live_server))
    keys.page.goto("/staff/admin/structures")
    enrol(keys, audit, "données sensibles")

    # Creates the structure.
    follow_link(keys, re.compile(r"/staff/admin/structures$"), "the structures tile")
    follow_link(keys, re.compile(r"/staff/admin/structures/new$"), "Créer une structure")
    audit.check(keys.page, "new structure")
    type_into(keys, "name", name)
    choose_radio(keys, "territory_type", "territory-rural")
    type_into(keys, "department", "23")
    press_button(keys, "Enregistrer")
    assert re.search(r"/staff/admin/structures/\d+$", path(keys.page)), keys.page.url
    assert keys.page.locator(".notice").count() >= 1
    audit.check(keys.page, "structure created")
    shoot(keys.page, "fr-9-admin-structure")
    database = live_server.app.extensions["selfcheck.platform.db"]
    with database.session() as session:
        structure = session.scalar(select(Structure).where(Structure.name == name))
        assert structure is not None and structure.department == "23"
        slug, structure_id = structure.slug, structure.id

    # Requires a second factor of the whole team (the structure's settings).
    follow_link(keys, re.compile(r"/staff/team/\?structure="), "the team link")
    follow_link(keys, re.compile(r"/staff/entry/settings"), "the settings link")
    audit.check(keys.page, "structure settings")
    info = keys.tab_until(lambda e: e["id"] == "totp_required", "the second factor checkbox")
    assert not info["checked"]
    assert keys.press("Space")["checked"]
    press_button(keys, "Enregistrer")
    with database.session() as session:
        found = session.get(Structure, structure_id)
        assert found is not None and found.totp_required

    # Invites its administrator (the structure is chosen by the link from its page).
    keys.page.goto(f"/staff/team/invite?structure={slug}")
    assert keys.page.locator("#structure").input_value() == slug
    admin_link = invite(keys, admin_email, "role-structure_admin")
    audit.check(keys.page, "the invitation link")

    # 2. The structure's administrator: accepts, enrols (the structure requires it).
    keys = Keyboard(new_context(viewport=viewport).new_page())
    accept_invitation(keys, admin_link, admin_email)
    enrol(keys, audit, "Votre structure demande", shoot)

    # Invites a mediator from the team page.
    follow_link(keys, re.compile(r"/staff/team/$"), "the team tile")
    audit.check(keys.page, "team page")
    assert name in keys.page.inner_text("main")
    follow_link(keys, re.compile(r"/staff/team/invite"), "Inviter une personne")
    mediator_link = invite(keys, mediator_email, "role-mediator")
    follow_link(keys, re.compile(r"^/staff/$"), "Accueil pro")
    follow_link(keys, re.compile(r"/staff/team/$"), "the team tile")
    assert mediator_email in keys.page.inner_text("main")
    shoot(keys.page, "fr-10-team")

    # Downloads the poster (a PDF: Enter on the link downloads it).
    keys.tab_until(
        lambda e: e["tag"] == "a" and "/poster" in e["href"] and "large" not in e["href"],
        "the poster link",
    )
    with keys.page.expect_download() as downloading:
        keys.page.keyboard.press("Enter")
    poster = Path(downloading.value.path())
    assert poster.read_bytes().startswith(b"%PDF")
    assert slug in downloading.value.suggested_filename
    if SCREENSHOTS_DIR:
        picture_of_the_poster(poster, folder / "fr-12-poster.png")

    # 3. The mediator: accepts, enrols, sees this structure only.
    keys = Keyboard(new_context(viewport=viewport).new_page())
    accept_invitation(keys, mediator_link, mediator_email)
    enrol(keys, audit, "Votre structure demande")
    assert path(keys.page) == "/staff/"
    follow_link(keys, re.compile(r"/staff/people/$"), "the follow-up tile")
    audit.check(keys.page, "follow-up of the new structure")
    assert keys.page.locator("a.code-link").count() == 0  # nobody there yet
    with database.session() as session:
        mediator = session.scalar(select(StaffUser).where(StaffUser.email == mediator_email))
        assert mediator is not None and mediator.structure_id == structure_id
        demo_people = list(
            session.execute(
                select(Beneficiary.id, Beneficiary.code)
                .join(Structure)
                .where(Structure.slug == SLUG, Beneficiary.responses.any())
            )
        )
    assert demo_people  # the demo structure has people: none of them is shown
    main = keys.page.inner_text("main")
    assert not any(code in main.replace("-", "") for _id, code in demo_people)
    for person_id, _code in demo_people[:3]:  # their pages, by id (the address never has codes)
        response = keys.page.request.get(f"/staff/people/{person_id}", max_redirects=0)
        assert response.status in (403, 404), (person_id, response.status)
    for forbidden in ("/staff/team/", "/staff/admin/structures", "/staff/entry/settings"):
        response = keys.page.request.get(forbidden, max_redirects=0)
        assert response.status == 403, (forbidden, response.status)
    assert len(keys.focus_checks) >= 40
    audit.assert_clean()


def picture_of_the_poster(pdf: Path, target: Path) -> None:
    """The poster's first page as a PNG, for the README."""
    import pypdfium2

    document = pypdfium2.PdfDocument(str(pdf))
    try:
        image = document[0].render(scale=1.2).to_pil()
        image.save(target)
    finally:
        document.close()
