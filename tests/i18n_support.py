"""Tiny compiled catalogs for tests, so a language can be checked before its real catalog
arrives (translations/README.md: adding a language)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo

# A few French msgids in Arabic: enough to see shaping, direction and fonts in pages and PDFs.
ARABIC = {
    "Mon parcours numérique": "مساري الرقمي",
    "Bienvenue": "مرحبا",
    "Questionnaire de départ": "استبيان البداية",
    "Vos progrès": "تقدمك",
    "Allumer et éteindre mon appareil": "تشغيل جهازي وإطفاؤه",
    "Utiliser mon appareil et me connecter": "استخدام جهازي والاتصال",
}


def write_catalog(root: Path, locale: str, messages: Mapping[str, str]) -> Path:
    """translations/<locale>/LC_MESSAGES/messages.mo under `root`; returns `root`."""
    catalog = Catalog(locale=locale)
    for msgid, msgstr in messages.items():
        catalog.add(msgid, msgstr)
    folder = root / locale / "LC_MESSAGES"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "messages.mo").open("wb") as fileobj:
        write_mo(fileobj, catalog)
    return root
