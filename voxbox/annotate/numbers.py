"""Digits to words, before syllables are counted (spec section 3.5, step 1).

The release ran WeTextProcessing (Chinese grammar when the text has a CJK
character, English otherwise) and only when the text had a digit. We do not depend
on it (it needs pynini and compiles grammars at first use); these readers reproduce
what the release produced on its own sample and read everything else the usual way.

Chinese, ``style="voxbox"`` (default): integers of three or more digits are read
digit by digit with 1 as 幺 ("100" -> 幺零零, "200" -> 二零零), as the release did;
shorter integers as cardinals ("95后" -> 九十五后, "2万" -> 两万). ``style="cardinal"``
reads every integer as a cardinal (一百). Decimals: 三点五; percent: 百分之五十.

English: cardinals ("21" -> twenty one), decimals ("3.5" -> three point five),
ordinals ("2nd" -> second), four-digit years 1100-1999 and 2010-2099 in pairs
("1999" -> nineteen ninety nine), "%" -> percent, "$5" -> five dollars.
"""

from __future__ import annotations

import re

ZH_DIGITS = "零一二三四五六七八九"
ZH_STYLES = ("voxbox", "cardinal")
# Measure words before which 2 is read 两 (only the character changes, not the count).
_ZH_LIANG_BEFORE = set("万千亿个位只次种件条本天倍岁块张人回遍句家辆")

_NUM = re.compile(r"(\d[\d,]*\d|\d)(\.\d+)?")


def has_digit(text: str) -> bool:
    return bool(re.search(r"\d", text))


# ----------------------------------------------------------------------------- Chinese
def _zh_under_10000(n: int, leading: bool) -> str:
    units = ("", "十", "百", "千")
    digits = [int(c) for c in f"{n:04d}"]
    out, zero = [], False
    started = False
    for i, d in enumerate(digits):
        unit = units[3 - i]
        if d == 0:
            if started:
                zero = True
            continue
        if zero or (not started and not leading and i > 0):
            out.append("零")
        zero = False
        started = True
        if d == 1 and unit == "十" and leading and len(out) == 0:
            out.append("十")  # 10-19 at the start: 十三, not 一十三
        else:
            out.append(ZH_DIGITS[d] + unit)
    return "".join(out)


def zh_cardinal(n: int) -> str:
    """Chinese reading of a non-negative integer; beyond 10^16 digit by digit."""
    if n == 0:
        return "零"
    if n >= 10 ** 16:
        return "".join(ZH_DIGITS[int(c)] for c in str(n))
    groups = []
    while n > 0:
        groups.append(n % 10000)
        n //= 10000
    big = ("", "万", "亿", "万亿")
    out = []
    leading = True
    for i in range(len(groups) - 1, -1, -1):
        g = groups[i]
        if g == 0:
            continue
        part = _zh_under_10000(g, leading)
        if not leading and g < 1000 and not part.startswith("零"):
            part = "零" + part
        out.append(part + big[i])
        leading = False
    return "".join(out)


def zh_digit_string(digits: str) -> str:
    return "".join("幺" if c == "1" else ZH_DIGITS[int(c)] for c in digits)


def _zh_number(m: re.Match, text: str, style: str) -> str:
    int_part, frac = m.group(1), m.group(2)
    plain = int_part.replace(",", "")
    after = text[m.end(): m.end() + 1]
    if frac:
        return zh_cardinal(int(plain)) + "点" + "".join(ZH_DIGITS[int(c)] for c in frac[1:])
    if style == "voxbox" and "," not in int_part and len(plain) >= 3:
        return zh_digit_string(plain)
    if plain.startswith("0") and len(plain) > 1:
        return "".join(ZH_DIGITS[int(c)] for c in plain)
    n = int(plain)
    if n == 2 and after in _ZH_LIANG_BEFORE:
        return "两"
    return zh_cardinal(n)


def normalize_zh(text: str, style: str = "voxbox") -> str:
    if style not in ZH_STYLES:
        raise ValueError(f"unknown Chinese number style '{style}' (choose from {', '.join(ZH_STYLES)})")
    text = re.sub(r"(\d+(?:\.\d+)?)\s*%", lambda m: "百分之" + m.group(1), text)
    return _NUM.sub(lambda m: _zh_number(m, m.string, style), text)


# ----------------------------------------------------------------------------- English
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
         "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ("", "thousand", "million", "billion", "trillion", "quadrillion")
_ORDINAL_WORDS = {"one": "first", "two": "second", "three": "third", "five": "fifth",
                  "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}


def _en_under_1000(n: int) -> list:
    words = []
    if n >= 100:
        words += [_ONES[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        words.append(_TENS[n // 10])
        if n % 10:
            words.append(_ONES[n % 10])
    elif n or not words:
        words.append(_ONES[n])
    return words


def en_cardinal(n: int) -> str:
    if n == 0:
        return "zero"
    digits = str(n)
    groups = []
    while n > 0:
        groups.append(n % 1000)
        n //= 1000
    if len(groups) > len(_SCALES):
        # Too large for scale words: read it digit by digit.
        return " ".join(_ONES[int(c)] for c in digits)
    words = []
    for i in range(len(groups) - 1, -1, -1):
        if groups[i]:
            words += _en_under_1000(groups[i])
            if _SCALES[i]:
                words.append(_SCALES[i])
    return " ".join(words)


def en_ordinal(n: int) -> str:
    words = en_cardinal(n).split()
    last = words[-1]
    if last in _ORDINAL_WORDS:
        words[-1] = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def en_year(n: int) -> str:
    hi, lo = divmod(n, 100)
    if lo == 0:
        return f"{en_cardinal(hi)} hundred"
    tail = f"oh {_ONES[lo]}" if lo < 10 else en_cardinal(lo)
    return f"{en_cardinal(hi)} {tail}"


def _en_number(m: re.Match) -> str:
    int_part, frac = m.group(1), m.group(2)
    plain = int_part.replace(",", "")
    if frac:
        return en_cardinal(int(plain)) + " point " + " ".join(_ONES[int(c)] for c in frac[1:])
    n = int(plain)
    if "," not in int_part and len(plain) == 4 and (1100 <= n <= 1999 or 2010 <= n <= 2099):
        return en_year(n)
    return en_cardinal(n)


def normalize_en(text: str) -> str:
    text = re.sub(r"\$\s*(\d[\d,]*(?:\.\d+)?)", lambda m: m.group(1) + " dollars", text)
    text = re.sub(r"(\d+(?:\.\d+)?)\s*%", lambda m: m.group(1) + " percent", text)
    text = re.sub(r"\b(\d+)(st|nd|rd|th)\b", lambda m: en_ordinal(int(m.group(1))), text,
                  flags=re.IGNORECASE)
    text = _NUM.sub(lambda m: " " + _en_number(m) + " ", text)
    return re.sub(r"[ \t]+", " ", text).strip()
