"""The templates' `_` and `gettext` in one call (`i18n.Translations.install`, issue 18, req21):
the same text as Jinja's own new-style gettext over the same translator, in every case."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from jinja2 import Environment

from selfcheck.platform import i18n

TEMPLATES = [
    '{{ _("Continuer") }}',
    '{{ gettext("Continuer") }}|{{ _("Continuer") }}',
    '{{ _("Étape %(step)s sur %(total)s", step=2, total="<b>9</b>") }}',
    '{{ _("100 %% : « fait » ?") }}',
    "{{ _(\"Vous avez coché « %(option)s » avec d'autres réponses : gardez l'un ou l'autre.\","
    ' option="<em>x</em>") }}',
    "{% trans %}Continuer mon questionnaire{% endtrans %}",
    '{% trans name="<i>Léa</i>" %}Bonjour {{ name }} !{% endtrans %}',
    '{% autoescape false %}{{ _("a < b : c") }}|{{ _("%(x)s", x="<y>") }}{% endautoescape %}',
    '{{ ngettext("%(num)s jour", "%(num)s jours", 3) }}',
    '{% set gettext = shout %}{{ _("Continuer") }}',
]


def _jinja_own(app: Flask, autoescape: bool) -> Environment:
    """An environment with Jinja's own new-style callables over the app's translator."""
    env = Environment(extensions=["jinja2.ext.i18n"], autoescape=autoescape)
    translator = i18n.Translations()
    env.install_gettext_callables(  # type: ignore[attr-defined]
        translator.gettext, translator.ngettext, newstyle=True
    )
    env.finalize = i18n.plain_lazy_strings
    return env


def _fast(app: Flask, autoescape: bool) -> Environment:
    env = Environment(extensions=["jinja2.ext.i18n"], autoescape=autoescape)
    i18n.Translations().install(env)
    return env


def _shout(text: str, **variables: Any) -> str:
    return text.upper() % variables


@pytest.mark.parametrize("lang", ["fr", "en", "ar"])
@pytest.mark.parametrize("autoescape", [True, False])
def test_the_same_text_as_jinjas_own_gettext(app: Flask, lang: str, autoescape: bool) -> None:
    own, fast = _jinja_own(app, autoescape), _fast(app, autoescape)
    assert fast.globals["_"] is not own.globals["_"]
    with app.test_request_context(f"/?lang={lang}"):
        for source in TEMPLATES:
            expected = own.from_string(source).render(shout=_shout)
            for _twice in range(2):  # the second time from the kept texts
                assert fast.from_string(source).render(shout=_shout) == expected, source


def test_the_kept_texts_follow_the_request_language(app: Flask) -> None:
    env = _fast(app, True)
    template = env.from_string('{{ _("Continuer") }}')
    seen = {}
    for lang in ("fr", "en", "fr", "en"):
        with app.test_request_context(f"/?lang={lang}"):
            own = _jinja_own(app, True).from_string('{{ _("Continuer") }}').render()
            seen[lang] = template.render()
            assert seen[lang] == own
    assert seen["fr"] == "Continuer" and seen["en"] != seen["fr"]


def test_a_bad_format_fails_as_it_does_in_jinja(app: Flask) -> None:
    with app.test_request_context("/"):
        for env in (_jinja_own(app, True), _fast(app, True)):
            with pytest.raises((ValueError, TypeError)):
                env.from_string('{{ _("50 % fait") }}').render()


def test_the_app_environment_has_them(app: Flask) -> None:
    with app.test_request_context("/?lang=en"):
        expected = _jinja_own(app, True).from_string('{{ _("Continuer") }}').render()
        assert app.jinja_env.from_string('{{ _("Continuer") }}').render() == expected
