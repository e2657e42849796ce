"""The start-link poster of a structure: an A4 PDF to put on the wall.

The structure's name, its start link, a large QR code of that link and short instructions in
each language of the platform; a large-print version. Printed with the paper machinery
(WeasyPrint, tagged PDF/UA-1, files of the printable folder only, never the network).
"""

from __future__ import annotations

import segno
from flask import Flask, current_app
from flask_babel import force_locale
from markupsafe import Markup

from selfcheck.paper import operations as paper
from selfcheck.platform.i18n import text_direction
from selfcheck.platform.models import Structure

TEMPLATE = "poster.html"
INSTRUCTIONS = "poster_instructions.html"


def link_qr(link: str, title: str) -> Markup:
    qr = segno.make(link, error="m", micro=False)
    svg: str = qr.svg_inline(scale=1, border=4, omitsize=True, title=title, svgclass="qr")
    return Markup(svg)


def render(app: Flask | None, structure: Structure, link: str, *, large: bool = False) -> bytes:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    renderer = paper.renderer(app)
    languages: tuple[str, ...] = tuple(app.config["SELFCHECK_LANGUAGES"])
    first = languages[0] if languages else "fr"
    template = renderer.env.get_template(TEMPLATE)
    instructions = renderer.env.get_template(INSTRUCTIONS)
    blocks = []
    for language in languages:
        with force_locale(language):
            blocks.append(Markup(instructions.render(lang=language, dir=text_direction(language))))
    with force_locale(first):
        html = template.render(
            lang=first,
            dir=text_direction(first),
            name=structure.name,
            link=link,
            qr=link_qr(link, renderer._("QR code du lien : %(link)s", link=link)),
            blocks=blocks,
            large=large,
        )
    return renderer._pdf(html)
