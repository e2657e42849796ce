"""Behind an HTTPS proxy, forms must still post: Flask-WTF's CSRF check requires, on HTTPS,
a Referer of the same origin, so the Referrer-Policy the app sends must let browsers send
one to the app itself (`same-origin`, `strict-origin-when-cross-origin`…, not `no-referrer`).
"""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from selfcheck.platform.models import Structure

ORIGIN = "https://selfcheck.example.org"


def _referer_a_browser_sends(policy: str, page_url: str) -> dict[str, str]:
    """The Referer of a same-origin form post under `policy` (Fetch/Referrer Policy spec)."""
    if policy == "no-referrer":
        return {}
    if policy in {"origin", "strict-origin"}:
        return {"Referer": ORIGIN + "/"}
    return {"Referer": page_url}


def test_the_start_form_posts_over_https_as_a_browser_would(
    client: FlaskClient, structure: Structure
) -> None:
    url = f"{ORIGIN}/s/{structure.slug}"
    page = client.get(f"/s/{structure.slug}", base_url=ORIGIN)
    assert page.status_code == 200
    # Browsers default to strict-origin-when-cross-origin when no policy is sent.
    policy = page.headers.get("Referrer-Policy", "strict-origin-when-cross-origin")
    form = re.search(
        rf'<form method="post" action="/s/{structure.slug}".*?</form>',
        page.get_data(as_text=True),
        re.S,
    )
    assert form is not None
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form.group(0)))
    response = client.post(
        f"/s/{structure.slug}",
        data=fields,
        base_url=ORIGIN,
        headers=_referer_a_browser_sends(policy, url),
    )
    assert response.status_code == 302, (
        f"over HTTPS with Referrer-Policy {policy!r} the start form is refused "
        f"({response.status_code}): Flask-WTF needs a same-origin Referer on HTTPS"
    )
