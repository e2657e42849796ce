"""Plain-words sentences: the French reference texts, rounding, plurals and the refusal under k.

A bare Flask app with Flask-Babel in French is enough: the sentences need a locale, no database.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask_babel import Babel

from selfcheck.evaluation.statistics import (
    ladder_change,
    paired_share_change,
    plain_sentence,
    share,
)

NBSP = "\u00a0"


@pytest.fixture(autouse=True)
def french() -> Iterator[None]:
    app = Flask(__name__)
    app.config["BABEL_DEFAULT_LOCALE"] = "fr"
    Babel(app)
    with app.test_request_context("/"):
        yield


def test_share_sentence() -> None:
    # 38 / 120 = 31.7 % -> 32; Wilson 24.0 % to 40.4 % -> 24 and 40.
    result = share(38, 120, k=5)
    assert plain_sentence(result, k=5, what="ont Internet à domicile") == (
        f"Parmi 120 personnes, 32{NBSP}% ont Internet à domicile "
        f"(entre 24 et 40{NBSP}% compte tenu de la taille du groupe)."
    )


def test_numbers_follow_the_locale() -> None:
    sentence = plain_sentence(share(1000, 1327, k=5), k=5, what="ont répondu")
    assert sentence.startswith("Parmi 1\u202f327 personnes, 75")


def test_one_person_is_singular() -> None:
    sentence = plain_sentence(share(1, 1, k=1), k=1, what="ont répondu")
    assert sentence.startswith(f"Parmi 1 personne, 100{NBSP}% ont répondu")


def test_paired_sentence() -> None:
    # before 4/10, after 7/10, +30 points; Tango -0.15 to +0.64; exact McNemar p = 0.375.
    result = paired_share_change(both_yes=3, yes_to_no=1, no_to_yes=4, both_no=2, k=5)
    assert plain_sentence(result, k=5, what="savent allumer un appareil") == (
        "Parmi 10 personnes venues avant et après, la part des personnes qui savent allumer "
        f"un appareil passe de 40{NBSP}% à 70{NBSP}% : +30 points (entre \u221215 et +64 "
        "points compte tenu de la taille du groupe). 4 personnes sont passées de non à oui, "
        "1 de oui à non. Cet écart peut être dû au hasard."
    )


def test_paired_sentence_when_the_change_is_clear_or_absent() -> None:
    clear = paired_share_change(both_yes=0, yes_to_no=0, no_to_yes=10, both_no=0, k=5)
    assert plain_sentence(clear, k=5, what="savent allumer un appareil").endswith(
        "Un tel écart a peu de chances d'être dû au hasard."
    )
    none = paired_share_change(both_yes=6, yes_to_no=0, no_to_yes=0, both_no=4, k=5)
    sentence = plain_sentence(none, k=5, what="savent allumer un appareil")
    assert "passe de 60\u00a0% à 60\u00a0% : 0 points" in sentence
    assert sentence.endswith("Personne n'a changé : il n'y a pas d'écart à tester.")


def test_ladder_sentence() -> None:
    result = ladder_change({(1, 2): 3, (2, 3): 1, (1, 3): 1, (3, 2): 1, (2, 2): 2}, k=5)
    assert plain_sentence(result, k=5, what="Allumer et éteindre un appareil") == (
        "Allumer et éteindre un appareil : parmi 8 personnes venues avant et après, "
        "5 sont montées d'au moins un échelon, 2 sont restées au même échelon et "
        "1 est descendue. Écart entre montées et descentes : +50 points (entre \u221210 et "
        "+82 points compte tenu de la taille du groupe). Cet écart peut être dû au hasard."
    )


REFUSAL = (
    "Trop peu de personnes (moins de 5) pour donner ce résultat sans risquer de les reconnaître."
)


def test_refusal_under_k() -> None:
    # Computed under k: nothing to say but the refusal, and no count in it.
    assert plain_sentence(share(3, 4, k=5), k=5, what="ont répondu") == REFUSAL
    # Computed with a smaller k, then shown where k = 5 applies: still refused.
    computed = ladder_change({(1, 2): 4}, k=1)
    assert plain_sentence(computed, k=5, what="Allumer un appareil") == REFUSAL
    assert plain_sentence(share(0, 0, k=1), k=5, what="ont répondu") == REFUSAL
