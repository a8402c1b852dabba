"""CREMA-D: AudioWAV/<ActorID>_<Sentence>_<EMO>_<LEVEL>.wav + VideoDemographics.csv."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, List, Optional

from voxbox.sources.corpora.base import (Item, Recipe, csv_table, map_age_years, map_gender, read_table_lines,
                                         unexplained, walk)

# The twelve sentences, by code (CREMA-D README).
SENTENCES = {
    "IEO": "It's eleven o'clock.", "TIE": "That is exactly what happened.",
    "IOM": "I'm on my way to the meeting.", "IWW": "I wonder what this is about.",
    "TAI": "The airplane is almost full.", "MTI": "Maybe tomorrow it will be cold.",
    "IWL": "I would like a new alarm clock.", "ITH": "I think I have a doctor's appointment.",
    "DFA": "Don't forget a jacket.", "ITS": "I think I've seen this before.",
    "TSI": "The surface is slick.", "WSI": "We'll stop in a couple of minutes.",
}
EMOTIONS = {"ANG": "ANGRY", "DIS": "DISGUSTED", "FEA": "FEARFUL", "HAP": "HAPPY",
            "NEU": "NEUTRAL", "SAD": "SAD"}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
_NAME = re.compile(r"^(?P<actor>1\d{3})_(?P<sent>[A-Z]{3})_(?P<emo>[A-Z]{3})_(?P<lvl>[A-Z]{2})\.wav$")


class CremaD(Recipe, name="cremad", emotional=True):

    def find_root(self, root: Path) -> Path:
        return root / "CREMA-D" if (root / "CREMA-D").is_dir() and not (root / "AudioWAV").is_dir() else root

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        if subsets:
            self.check_subsets(subsets, ["all"])
        if not (base / "AudioWAV").is_dir():
            from voxbox.errors import VoxboxError

            raise VoxboxError(f"cremad: no AudioWAV/ folder under {base}")
        demo = {}
        lines, _ = read_table_lines(base / "VideoDemographics.csv")
        for _, row, _ in csv_table("\n".join(lines))[1]:
            if row is None:
                continue
            actor = (row.get("ActorID") or "").strip()
            if actor:
                demo[actor] = (map_gender(row.get("Sex")), map_age_years(row.get("Age")),
                               {"native_age": (row.get("Age") or "").strip()})
        for p in walk(base, "AudioWAV"):
            m = _NAME.match(p.split("/")[-1])
            if p.count("/") != 1 or not m or m.group("sent") not in SENTENCES \
                    or m.group("emo") not in EMOTIONS or m.group("lvl") not in LEVELS:
                yield unexplained(p)
                continue
            gender, age, extra = demo.get(m.group("actor"), (None, None, {}))
            yield Item(p, {"speaker": m.group("actor"), "text": SENTENCES[m.group("sent")],
                           "emotion": EMOTIONS[m.group("emo")], "gender": gender, "age": age},
                       {**extra, "native_emotion": m.group("emo"), "emotion_level": LEVELS[m.group("lvl")]})
