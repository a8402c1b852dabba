"""RAVDESS: Actor_NN/MM-VV-EE-II-SS-RR-AA.wav (the audio-only zips from Zenodo)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, List, Optional

from voxbox.sources.corpora.base import Item, Recipe, unexplained, walk

EMOTIONS = {"01": ("neutral", "NEUTRAL"), "02": ("calm", "NEUTRAL"), "03": ("happy", "HAPPY"),
            "04": ("sad", "SAD"), "05": ("angry", "ANGRY"), "06": ("fearful", "FEARFUL"),
            "07": ("disgust", "DISGUSTED"), "08": ("surprised", "SURPRISED")}
STATEMENTS = {"01": "Kids are talking by the door.", "02": "Dogs are sitting by the door."}
CHANNELS = {"01": "speech", "02": "song"}
_NAME = re.compile(r"^03-(?P<vc>0[12])-(?P<emo>0[1-8])-(?P<int>0[12])-(?P<st>0[12])-(?P<rep>0[12])-(?P<actor>\d{2})\.wav$")
_ACTOR = re.compile(r"^Actor_(\d{2})$")


class RAVDESS(Recipe, name="ravdess", subsets="speech, song (vocal channel)", emotional=True):

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        chosen = self.check_subsets(subsets, ["speech", "song"]) if subsets else ["speech", "song"]
        actors = sorted(p.name for p in base.iterdir() if p.is_dir() and _ACTOR.match(p.name))
        if not actors:
            from voxbox.errors import VoxboxError

            raise VoxboxError(f"ravdess: no Actor_NN folders under {base}")
        for actor_dir in actors:
            for p in walk(base, actor_dir):
                m = _NAME.match(p.split("/")[-1])
                if p.count("/") != 1 or not m or m.group("actor") != actor_dir[-2:]:
                    yield unexplained(p)
                    continue
                if CHANNELS[m.group("vc")] not in chosen:
                    continue
                actor = int(m.group("actor"))
                raw, emotion = EMOTIONS[m.group("emo")]
                yield Item(p, {"speaker": f"Actor_{m.group('actor')}", "text": STATEMENTS[m.group("st")],
                               "emotion": emotion, "gender": "male" if actor % 2 else "female"},
                           {"native_emotion": raw, "emotion_intensity": "strong" if m.group("int") == "02" else "normal",
                            "vocal_channel": CHANNELS[m.group("vc")], "repetition": int(m.group("rep"))})
