"""The accessibility statement (déclaration d'accessibilité, RGAA 4.1 model), open to anyone."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, render_template

from selfcheck.accounts.permissions import public

blueprint = Blueprint("accessibility", __name__)


@dataclass(frozen=True)
class TestEnvironment:
    """What the automated and manual checks ran with (update when the audit is redone)."""

    audited_on: str = "2026-11-23"
    browser: str = "Chromium 156 (Debian 12)"
    axe_core: str = "axe-core 4.12"
    rules: str = "WCAG 2.0, 2.1, 2.2 — A, AA"


ENVIRONMENT = TestEnvironment()


@blueprint.get("/accessibilite")
@public
def statement() -> str:
    return render_template("accessibility/statement.html", environment=ENVIRONMENT)
