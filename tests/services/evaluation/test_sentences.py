"""Plain-words sentences (evaluation/sentences.py), the one builder for the retention lines and
the paired changes: French reference texts, rounding, signs, plurals, and no count under k.

A bare Flask app with Flask-Babel in French is enough: the sentences need a locale, no database.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask_babel import Babel

from selfcheck.evaluation.sentences import (
    chance,
    ladder_sentence,
    points,
    share_change_sentence,
    share_sentence,
)
from selfcheck.evaluation.statistics import (
    TooFew,
    ladder_change,
    paired_share_change,
    share,
)

NBSP = "\u00a0"
MINUS = "\u2212"


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
    assert share_sentence(result, k=5, what="ont Internet à domicile") == (
        f"Parmi 120 personnes, 32{NBSP}% ont Internet à domicile "
        f"(entre 24 et 40{NBSP}% compte tenu de la taille du groupe)."
    )


def test_numbers_follow_the_locale() -> None:
    sentence = share_sentence(share(1000, 1327, k=5), k=5, what="ont répondu")
    assert sentence.startswith("Parmi 1\u202f327 personnes, 75")


def test_one_person_is_singular() -> None:
    sentence = share_sentence(share(1, 1, k=1), k=1, what="ont répondu")
    assert sentence.startswith(f"Parmi 1 personne, 100{NBSP}% ont répondu")


REFUSAL = (
    "Trop peu de personnes (moins de 5) pour donner ce résultat sans risquer de les reconnaître."
)


def test_a_share_under_k_is_refused() -> None:
    # Computed under k: nothing to say but the refusal, and no count in it.
    assert share_sentence(share(3, 4, k=5), k=5, what="ont répondu") == REFUSAL
    # Computed with a smaller k, then shown where k = 5 applies: still refused.
    assert share_sentence(share(0, 0, k=1), k=5, what="ont répondu") == REFUSAL
    assert share_sentence(share(2, 3, k=1), k=5, what="ont répondu") == REFUSAL


def test_points_carry_a_true_sign() -> None:
    assert (points(0.304), points(-0.15), points(0.004), points(-0.004)) == (
        "+30",
        f"{MINUS}15",
        "0",
        "0",
    )


def test_chance_in_words() -> None:
    assert chance(None) == "Personne n'a changé : il n'y a pas d'écart à tester."
    assert chance(0.01) == "Un tel écart a peu de chances d'être dû au hasard."
    assert chance(0.05) == "Cet écart peut être dû au hasard."


def test_paired_sentence() -> None:
    # before 4/10, after 7/10, +30 points; Tango -0.15 to +0.64; exact McNemar p = 0.375.
    result = paired_share_change(both_yes=3, yes_to_no=1, no_to_yes=4, both_no=2, k=1)
    assert share_change_sentence(result, k=1, what="savent allumer un appareil") == (
        "Parmi 10 personnes, la part de celles qui savent allumer un appareil passe de "
        f"40{NBSP}% à 70{NBSP}%, soit +30 points (entre {MINUS}15 et +64 compte tenu de la "
        "taille du groupe). 4 de non à oui, 1 de oui à non. Cet écart peut être dû au hasard."
    )


def test_paired_sentence_leaves_out_moves_under_k() -> None:
    result = paired_share_change(both_yes=3, yes_to_no=1, no_to_yes=4, both_no=2, k=5)
    sentence = share_change_sentence(result, k=5, what="savent allumer un appareil")
    assert "soit +30 points" in sentence
    assert "Le détail des changements n'est pas donné : un des groupes compte moins de 5 " in (
        sentence
    )
    assert "de non à oui" not in sentence and " 1 " not in sentence


def test_paired_sentence_when_the_change_is_clear_or_absent() -> None:
    clear = paired_share_change(both_yes=0, yes_to_no=0, no_to_yes=10, both_no=0, k=5)
    assert share_change_sentence(clear, k=5, what="savent allumer un appareil").endswith(
        "10 de non à oui, 0 de oui à non. Un tel écart a peu de chances d'être dû au hasard."
    )
    none = paired_share_change(both_yes=6, yes_to_no=0, no_to_yes=0, both_no=4, k=1)
    sentence = share_change_sentence(none, k=1, what="savent allumer un appareil")
    assert f"passe de 60{NBSP}% à 60{NBSP}%, soit 0 points" in sentence
    assert sentence.endswith("Personne n'a changé : il n'y a pas d'écart à tester.")


LADDER = {(1, 2): 3, (2, 3): 1, (1, 3): 1, (3, 2): 1, (2, 2): 2}  # 5 up, 2 same, 1 down


def test_ladder_sentence() -> None:
    assert ladder_sentence(ladder_change(LADDER, k=1), k=1) == (
        "Parmi 8 personnes : 5 en progrès, 2 au même niveau, 1 en recul. Écart entre progrès "
        f"et reculs : +50 points sur 100 personnes (entre {MINUS}10 et +82 compte tenu de la "
        "taille du groupe). Cet écart peut être dû au hasard."
    )


def test_ladder_sentence_leaves_out_moves_under_k() -> None:
    assert ladder_sentence(ladder_change(LADDER, k=5), k=5) == (
        "Parmi 8 personnes. Le détail des changements n'est pas donné : un des groupes compte "
        "moins de 5 personnes. Écart entre progrès et reculs : +50 points sur 100 personnes "
        f"(entre {MINUS}10 et +82 compte tenu de la taille du groupe). Cet écart peut être dû "
        "au hasard."
    )


WITHHELD = (
    "Résultat masqué : il porte sur un groupe de moins de 5 personnes, ou en laisserait deviner un."
)


def test_a_withheld_change_is_refused_without_a_count() -> None:
    assert ladder_sentence(TooFew(5), k=5) == WITHHELD
    assert share_change_sentence(TooFew(5), k=5, what="savent allumer") == WITHHELD
    # Computed with a smaller k, then shown where k = 5 applies: still refused.
    assert ladder_sentence(ladder_change({(1, 2): 4}, k=1), k=5) == WITHHELD
    small = paired_share_change(both_yes=1, yes_to_no=1, no_to_yes=1, both_no=1, k=1)
    assert share_change_sentence(small, k=5, what="savent allumer") == WITHHELD
    # A result of the other kind is not described either.
    assert ladder_sentence(small, k=1) == share_change_sentence(
        ladder_change(LADDER, k=1), k=1, what="savent allumer"
    )


def test_k_must_be_positive() -> None:
    with pytest.raises(ValueError, match="k must be at least 1"):
        share_sentence(share(1, 1, k=1), k=0, what="ont répondu")
    with pytest.raises(ValueError, match="k must be at least 1"):
        ladder_sentence(ladder_change(LADDER, k=1), k=0)
