"""French reading ease (Flesch, adapted to French by Kandel & Moles, 1958).

    score = 207 - 1.015 x words/sentences - 73.6 x syllables/words

Higher is easier (about 60-70 is plain French, 80+ is easy). Syllables are counted as groups
of vowels, without the silent final « e »: rough, but the same for both wordings, which is all
the comparison of the standard and easy-read wordings needs (tests/questionnaire/
test_readability.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_VOWEL_GROUP = re.compile(r"[aeiouyàâäéèêëîïôöùûüÿœæ]+")
# Letters only: "l'aise" is two tokens, "l" (no vowel, not a word) and "aise"; digits and
# punctuation are not words.
_WORD = re.compile(r"[^\W\d_]+")
# A sentence ends at . ! ? … : or ; — a text without any of them (a label) is one sentence.
_SENTENCE_END = re.compile(r"[.!?…:;]+")


def syllables(word: str) -> int:
    """Vowel groups, minus a silent final e/es (« appareil » 3, « photos » 2, « aide » 1)."""
    # "qu" and "gu" before e/i are one consonant: « numérique » 3, « guide » 1.
    word = re.sub(r"qu", "q", word.lower())
    word = re.sub(r"gu(?=[eéèêiî])", "g", word)
    count = len(_VOWEL_GROUP.findall(word))
    if count > 1 and re.search(r"[^aeiouyàâäéèêëîïôöùûüÿœæ](e|es)$", word):
        count -= 1
    return max(count, 1)


def words(text: str) -> list[str]:
    return [word for word in _WORD.findall(text) if _VOWEL_GROUP.search(word.lower())]


def sentences(text: str) -> int:
    parts = [part for part in _SENTENCE_END.split(text) if words(part)]
    return max(len(parts), 1)


@dataclass(frozen=True)
class Readability:
    words: int
    sentences: int
    syllables: int

    @property
    def score(self) -> float:
        if not self.words:
            return 0.0
        return 207 - 1.015 * self.words / self.sentences - 73.6 * self.syllables / self.words


def measure(texts: Iterable[str]) -> Readability:
    """The reading ease of texts taken together (each text is at least one sentence)."""
    total_words = total_sentences = total_syllables = 0
    for text in texts:
        found = words(text)
        if not found:
            continue
        total_words += len(found)
        total_sentences += sentences(text)
        total_syllables += sum(syllables(word) for word in found)
    return Readability(total_words, total_sentences, total_syllables)


def reading_ease(texts: Iterable[str]) -> float:
    return measure(texts).score
