"""Syllable counting (zh, en, digits) offline, and the syllables string format."""

from __future__ import annotations

import json
import os
import sys

import pytest

from voxbox.annotate import numbers
from voxbox.annotate.syllables import (Syllabifier, language_of, letter_to_sound,
                                       syllabify_phones)


@pytest.fixture(scope="module")
def syl():
    return Syllabifier()


def test_chinese_one_syllable_per_character(syl):
    r = syl("你好，世界！")
    assert r.syllable_num == 4 and r.syllables == "你 好 世 界"
    assert language_of("你好 world") == "zh" and language_of("hello") == "en"


def test_chinese_numbers_voxbox_and_cardinal():
    assert numbers.normalize_zh("好上100倍嘛") == "好上幺零零倍嘛"  # the release's reading
    assert numbers.normalize_zh("好上100倍嘛", "cardinal") == "好上一百倍嘛"
    assert numbers.normalize_zh("多2万") == "多两万"
    assert numbers.normalize_zh("95后") == "九十五后"
    assert numbers.normalize_zh("有10天") == "有十天"
    assert numbers.normalize_zh("3.5") == "三点五"
    assert numbers.normalize_zh("50%") == "百分之五十"
    assert numbers.zh_cardinal(10086) == "一万零八十六"
    assert numbers.zh_cardinal(1005) == "一千零五"
    assert numbers.zh_cardinal(200000000) == "二亿"


def test_english_numbers():
    assert numbers.normalize_en("I have 3 apples") == "I have three apples"
    assert numbers.normalize_en("in 1999") == "in nineteen ninety nine"
    assert numbers.normalize_en("the 2nd and 23rd") == "the second and twenty third"
    assert numbers.normalize_en("$5") == "five dollars"
    assert numbers.en_cardinal(1234567) == "one million two hundred thirty four thousand five hundred sixty seven"


def test_digits_are_read_before_counting(syl):
    assert syl("宿舍里有3个店。").syllables == "宿 舍 里 有 三 个 店"
    r = syl("I have 21 apples.")
    # I(1) have(1) twenty(2) one(1) apples(2)
    assert r.syllable_num == 7 and "twenty one" in r.normalized_text


# Hand-counted syllables of real-speech transcripts (dictionary pronunciations).
HAND_COUNTED = {
    "I almost think I can remember feeling a little different.": 17,
    "Ten sons sat at meat with him, and I was the youngest.": 13,
    "The girl entered, and gave an involuntary cry of surprise.": 16,
    "But even the unsuccessful dramatist has his moments.": 15,
    "This I read with great attention, while they sat silent.": 13,
    "HE COULD WAIT NO LONGER": 6,
    "Six spoons of fresh snow peas, five thick slabs of blue cheese, and maybe a snack for her brother Bob.": 22,
}


def test_english_counts_match_hand_counts_on_real_transcripts(syl, shared):
    texts = {json.loads(line)["text"] for line in
             (shared / "data" / "real-speech" / "manifest.jsonl").read_text().splitlines() if line}
    for text, n in HAND_COUNTED.items():
        assert text in texts, text
        r = syl(text)
        assert r.syllable_num == n, (text, r.syllables)


def test_syllables_format_and_sonority(syl):
    # Punctuation (the apostrophe too) goes before lookup, so "I'm" is read as "im":
    # exactly the release's row "I'm sorry." -> "IH1-M S-AA1 R-IY0".
    assert syl("I'm sorry.").syllables == "IH1-M S-AA1 R-IY0"
    # Syllables cross word boundaries and split at the sonority trough, one vowel each.
    assert syllabify_phones("K L IH1 R L IY0".split()) == [["K", "L", "IH1", "R"], ["L", "IY0"]]
    assert syllabify_phones("EH1 K S T R AH0".split()) == [["EH1", "K", "S"], ["T", "R", "AH0"]]
    assert syllabify_phones(["HH", "M"]) == [["HH", "M"]]


def test_unknown_words_use_the_letter_rule(syl):
    assert "xinshengwangzz" not in syl._dict
    assert sum(p[-1].isdigit() for p in letter_to_sound("Xinsheng")) == 2
    assert len(letter_to_sound("MBC")) == 6 and syl("MBC").syllable_num == 3  # spelt out
    assert syl("blorptastic").syllable_num == 3
    assert syl("cake").syllable_num == 1 and letter_to_sound("table")[-2:] == ["AH0", "L"]


def test_other_scripts_and_empty_text(syl):
    # A kana run inside Chinese counts one empty syllable, as in the release.
    r = syl("为什么じゃん？")
    assert r.syllable_num == 4 and r.syllables == "为 什 么 "
    # Nothing pronounceable at all: explicit null with a reason, never a guess.
    for text, reason in (("", "empty_text"), ("。！", "empty_text"), (None, "empty_text"),
                         ("가자.", "no_pronounceable_text"), ("А я...", "no_pronounceable_text")):
        r = syl(text)
        assert r.syllable_num is None and r.syllables is None and r.reason == reason, text
    # Accents are folded, not dropped.
    assert syl("café").syllable_num == 2


def test_no_nltk_or_g2p_needed(syl):
    assert os.environ.get("NLTK_DATA") == "/nonexistent"
    syl("Completely offline pronunciation.")
    assert "nltk" not in sys.modules and "g2p_en" not in sys.modules


def test_numbers_too_long_for_scale_words_are_read_digit_by_digit():
    from voxbox.annotate.numbers import normalize_en, normalize_zh

    assert normalize_en("id 1234567890123456789") == (
        "id one two three four five six seven eight nine zero one two three four five six seven eight nine")
    assert normalize_zh("数12345678901234567.5") == "数一二三四五六七八九零一二三四五六七点五"
