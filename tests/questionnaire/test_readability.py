"""The easy-read (FALC) wording exists for every text and reads measurably easier.

The measure is described in docs/languages.md ("Easy-read (FALC)"); today's scores (French
Flesch, Kandel & Moles) are in BENCHMARKS.md, "Other measured figures".
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from selfcheck.questionnaire import Definition, FormKind
from selfcheck.questionnaire.readability import measure, reading_ease, sentences, syllables

MIN_GAIN = 10.0  # points of reading ease the easy wording must gain over the standard one


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("aide", 1),
        ("photos", 2),
        ("appareil", 3),
        ("numérique", 3),
        ("téléphone", 3),
        ("accompagnement", 5),
        ("oui", 1),
    ],
)
def test_syllables_are_vowel_groups_without_the_silent_e(word: str, expected: int) -> None:
    assert syllables(word) == expected


def test_sentences_end_at_punctuation_and_a_label_is_one() -> None:
    assert sentences("Ce n'est pas un test. Dites ce que vous sentez.") == 2
    assert sentences("Mon appareil") == 1


def test_the_score_follows_kandel_and_moles() -> None:
    result = measure(["Le chat dort. Il a faim."])  # 6 words, 2 sentences, 6 syllables
    assert (result.words, result.sentences, result.syllables) == (6, 2, 6)
    assert result.score == pytest.approx(207 - 1.015 * 3 - 73.6 * 1)
    assert reading_ease([]) == 0.0


def test_every_beneficiary_facing_text_has_an_easy_wording(definition: Definition) -> None:
    assert definition.texts, "the definition lists its texts"
    assert definition.missing_easy() == ()


def test_the_easy_wording_reads_clearly_easier(definition: Definition) -> None:
    standard = reading_ease(text.standard for text in definition.texts)
    easy = reading_ease(text.easy or text.standard for text in definition.texts)
    print(f"French reading ease: standard {standard:.1f}, easy-read {easy:.1f}")
    assert easy >= standard + MIN_GAIN, (standard, easy)


def test_the_easy_wording_avoids_inclusive_dots_and_long_sentences(
    definition: Definition,
) -> None:
    for text in definition.texts:
        assert text.easy is not None
        assert "·" not in text.easy, text.where  # FALC: no point médian
        for sentence in re.split(r"[.!?:]", text.easy):
            assert len(sentence.split()) <= 15, text.where


# FALC (« L'information pour tous »): no abbreviation a reader must already know. Clipped words
# are forbidden outright; an acronym is allowed only beside the words that explain it.
FORBIDDEN_WORDS = ("appli", "applis", "info", "infos", "pub", "ordi", "texto", "etc", "ex")
EXPLAINED_ACRONYMS = {
    "CAP": "diplôme",
    "BEP": "diplôme",
    "IA": "intelligence artificielle",
}


def falc_problems(where: str, text: str) -> list[str]:
    problems = []
    if "·" in text:
        problems.append(f"{where}: inclusive dot in {text!r}")
    for sentence in re.split(r"[.!?:]", text):
        if len(sentence.split()) > 15:
            problems.append(f"{where}: sentence over 15 words: {sentence.strip()!r}")
    tokens = re.findall(r"[^\W\d_]+", text)
    for token in tokens:
        if token.lower() in FORBIDDEN_WORDS:
            problems.append(f"{where}: abbreviation {token!r} in {text!r}")
        if len(token) >= 2 and token.isupper():
            explanation = EXPLAINED_ACRONYMS.get(token)
            if explanation is None or explanation not in text.lower():
                problems.append(f"{where}: unexplained abbreviation {token!r} in {text!r}")
    return problems


def test_every_easy_text_follows_the_falc_rules(definition: Definition) -> None:
    problems = [
        problem
        for text in definition.texts
        for problem in falc_problems(text.where, text.easy or "")
    ]
    assert problems == []


def test_the_falc_check_catches_what_the_issue_found() -> None:
    assert falc_problems("t", "Mettre une appli")
    assert falc_problems("t", "Trouver des infos")
    assert falc_problems("t", "Un service. Par exemple, la CAF.")
    assert falc_problems("t", "Un CAP ou un BEP")
    assert falc_problems("t", "Être accompagné·e")
    assert not falc_problems("t", "Un diplôme de métier (CAP ou BEP)")


def test_one_word_for_one_thing_in_the_easy_wording(definition: Definition) -> None:
    """« papiers » means administrative procedures only; files and photos are « documents »."""
    easy = definition.in_wording("easy")
    creative = [item for item in easy.task_items() if item.competence == "creative"]
    assert creative
    for item in creative:
        assert "papier" not in item.label.lower(), item.label
    assert "papier" not in easy.competences["creative"].label.lower()


def test_both_wordings_have_the_same_items_codes_and_options(definition: Definition) -> None:
    easy = definition.in_wording("easy")
    assert easy is not definition and easy.wording == "easy"
    assert easy.in_wording("standard") is definition
    for form in FormKind:
        assert [v.code for v in easy.variables(form)] == [
            v.code for v in definition.variables(form)
        ]
        assert [p.code for p in easy.pages(form)] == [p.code for p in definition.pages(form)]
    for item in definition.items():
        assert easy.item(item.code).option_codes == item.option_codes
    changed = [i.code for i in definition.items() if easy.item(i.code).label != i.label]
    assert len(changed) >= 20, "the easy wording rewrites most questions"


def test_an_unknown_wording_is_the_standard_one(definition: Definition) -> None:
    assert definition.in_wording("bogus") is definition


def test_every_pictogram_is_a_local_svg_with_no_text_to_translate(
    definition: Definition,
) -> None:
    folder = Path(__file__).resolve().parents[2] / "selfcheck" / "static" / "img" / "pictograms"
    named = {page.pictogram for s in definition.sections for page in s.pages if page.pictogram}
    assert named, "the main pages have pictograms"
    for name in named:
        svg = (folder / f"{name}.svg").read_text(encoding="utf-8")
        assert svg.startswith("<svg") and 'aria-hidden="true"' in svg
        assert "<text" not in svg and "href" not in svg.replace('xmlns="http', "")
