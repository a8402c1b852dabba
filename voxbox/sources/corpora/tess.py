"""TESS: ``<OAF|YAF>_<emotion>/<OAF|YAF>_<word>_<emotion>.wav``.

Layout facts: spec/voxbox-sources.md (2 female speakers aged 26 and 64, emotion in the
file name [S11]). The prompt is "Say the word <word>", and the emotion codes (angry,
disgust, fear, happy, neutral, ps = pleasant surprise, sad) follow the TSpace release's
naming as nkululeko reads it; folder spellings vary between copies, so only the file
name is read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, List, Optional

from voxbox.sources.corpora.base import Item, Recipe, age_group, unexplained, walk

EMOTIONS = {"angry": "ANGRY", "disgust": "DISGUSTED", "fear": "FEARFUL", "happy": "HAPPY",
            "neutral": "NEUTRAL", "ps": "SURPRISED", "sad": "SAD"}
AGES = {"OAF": 64, "YAF": 26}  # older / younger adult female [S11]
_NAME = re.compile(r"^(?P<spk>OAF|YAF)_(?P<word>[A-Za-z]+)_(?P<emo>[A-Za-z]+)\.wav$", re.IGNORECASE)


class TESS(Recipe, name="tess", subsets="speakers OAF, YAF", emotional=True):

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        chosen = self.check_subsets(subsets, list(AGES))
        for p in walk(base):
            m = _NAME.match(p.rsplit("/", 1)[-1])
            if not m or m.group("emo").lower() not in EMOTIONS:
                yield unexplained(p)
                continue
            spk = m.group("spk").upper()
            if spk not in chosen:
                continue
            yield Item(p, {"speaker": spk, "gender": "female", "age": age_group(AGES[spk]),
                           "text": f"Say the word {m.group('word').lower()}.",
                           "emotion": EMOTIONS[m.group("emo").lower()]},
                       {"native_emotion": m.group("emo"), "native_age": AGES[spk]})
