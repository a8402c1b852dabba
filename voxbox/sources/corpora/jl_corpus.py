"""JL-Corpus: ``<speaker>_<emotion>_<sentence><session>_<take>.wav`` with ``.txt`` sidecars.

Layout facts: spec/voxbox-sources.md (4 speakers, 2 female and 2 male; 5 primary and 5
secondary emotions [S11]). File naming (``female1_angry_1a_1.wav``, speakers female1,
female2, male1, male2) and the ``.txt`` transcript beside each wav are those of the Kaggle
copy (tli725/jl-corpus), NOT CHECKED against its documentation. Files are found at any
depth, so both the raw folder and the annotated copy work.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, List, Optional

from voxbox.record import Rejection
from voxbox.sources.corpora.base import Item, Recipe, unexplained, walk
from voxbox.sources.corpora.common import is_sidecar, sidecar_text

# Primary (angry, sad, neutral, happy, excited) and secondary emotions [S11].
EMOTIONS = {"angry": "ANGRY", "sad": "SAD", "neutral": "NEUTRAL", "happy": "HAPPY", "excited": "EXCITED",
            "anxious": "ANXIOUS", "apologetic": "APOLOGETIC", "assertive": "ASSERTIVE",
            "concerned": "CONCERNED", "encouraging": "ENCOURAGING"}
_NAME = re.compile(r"^(?P<spk>(?P<g>female|male)[12])_(?P<emo>[a-z]+)_(?P<rest>[0-9]+[a-z]?(_\d+)?)\.wav$")


class JLCorpus(Recipe, name="jl_corpus", emotional=True):

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        if subsets:
            self.check_subsets(subsets, ["all"])
        for p in walk(base):
            if is_sidecar(base, p):
                continue
            m = _NAME.match(p.rsplit("/", 1)[-1])
            known = m is not None and m.group("emo") in EMOTIONS
            text = sidecar_text(base, p, self.name) if known else unexplained(p)
            if isinstance(text, Rejection):
                yield text
                continue
            yield Item(p, {"speaker": m.group("spk"), "gender": m.group("g"), "text": text,
                           "emotion": EMOTIONS[m.group("emo")]},
                       {"native_emotion": m.group("emo"),
                        "emotion_class": "primary" if m.group("emo") in ("angry", "sad", "neutral", "happy", "excited")
                        else "secondary"})
