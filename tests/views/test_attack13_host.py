"""attack13: a forged `Host` header (or `X-Forwarded-Host` through a trusted proxy) does not
choose the site that e-mailed links point to.

Finding A13-1 (password-reset poisoning): the reset and invitation links were built with
`url_for(..., _external=True)`, from the request's host. The shipped nginx configuration
(deploy/nginx-selfcheck.conf) has one `server` on 443 and so serves any `Host`, passing it on
(`Host $host`, `X-Forwarded-Host $host`). A bot posting the victim's e-mail address to
"mot de passe oublié" with `Host: attacker.example` had the victim sent a genuine message
whose link, `https://attacker.example/staff/link/<token>`, gives the token (a new password:
the account) to the attacker as soon as it is clicked. With `SELFCHECK_SITE_URL` set (as the
deployment's example environment does), the links now use that address.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask

from selfcheck.platform.db import Database
from selfcheck.platform.models import Role, Structure
from tests.staff import add_staff, sign_in
from tests.support import Visitor
from tests.views.test_admin_mail import Inbox, inbox  # noqa: F401 (a fixture)

SITE = "https://selfcheck.example.org"
EVIL = "attacker.example"


def _app(make_app: Any, port: int) -> Flask:
    smtp = {
        "host": "127.0.0.1",
        "port": port,
        "from": "selfcheck@example.org",
        "user": "",
        "password": "",
        "starttls": False,
    }
    app: Flask = make_app(SELFCHECK_SMTP=smtp, SELFCHECK_SITE_URL=SITE)
    return app


def _links(handler: Inbox) -> list[str]:
    found = []
    for message in handler.messages:
        payload = message.get_payload(decode=True)
        assert isinstance(payload, bytes)
        found += re.findall(r"https?://\S+", payload.decode())
    return found


def test_a13_1_a_forged_host_does_not_choose_the_reset_links_site(
    make_app: Any,
    database: Database,
    structure: Structure,
    inbox: tuple[Inbox, int],  # noqa: F811
) -> None:
    handler, port = inbox
    app = _app(make_app, port)
    account = add_staff(database, Role.MEDIATOR, structure)
    bot = Visitor(app.test_client())
    bot.get("/staff/password/forgotten", base_url=f"http://{EVIL}")
    response = bot.post(
        "/staff/password/forgotten", {"email": account.email}, base_url=f"http://{EVIL}"
    )
    assert response.status_code == 200
    (link,) = _links(handler)
    assert link.startswith(f"{SITE}/staff/link/"), link


def test_a13_1_an_invitation_link_uses_the_sites_address(
    make_app: Any,
    database: Database,
    structure: Structure,
    inbox: tuple[Inbox, int],  # noqa: F811
) -> None:
    handler, port = inbox
    app = _app(make_app, port)
    client = app.test_client()
    client.environ_base["HTTP_HOST"] = EVIL  # every request of this browser
    admin = Visitor(client)
    account = add_staff(database, Role.STRUCTURE_ADMIN, structure)
    assert sign_in(admin, account.email, account.password).status_code == 302
    admin.get("/staff/team/invite")
    response = admin.post(
        "/staff/team/invite",
        {"email": "invite@example.org", "role": "mediator", "send": "1"},
    )
    assert response.status_code == 200
    (link,) = _links(handler)
    assert link.startswith(f"{SITE}/staff/link/"), link
    assert EVIL not in response.get_data(as_text=True)
