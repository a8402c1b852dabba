"""ESD: <spk>/<Emotion>/[{train,evaluation,test}/]<spk>_<NNNNNN>.wav + <spk>/<spk>.txt."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from voxbox.record import Rejection
from voxbox.sources.corpora.base import Item, Recipe, map_emotion, read_table_lines, table_text, unexplained, walk

SPLITS = {"train": "train", "evaluation": "dev", "test": "test"}
# Speaker genders as the corpus README lists them (the files carry none).
FEMALE = {"0001", "0002", "0003", "0007", "0009", "0015", "0016", "0017", "0018", "0019"}
TRANSCRIPTS = ("{spk}.txt", "transcription.txt")
_SPK = re.compile(r"^00(0[1-9]|1\d|20)$")


def language_of(spk: str) -> str:
    return "zh" if int(spk) <= 10 else "en"


class ESD(Recipe, name="esd", subsets="zh (speakers 0001-0010), en (0011-0020)", emotional=True,
                  top_dirs=("Emotion Speech Dataset", "Emotional Speech Dataset (ESD)", "ESD")):

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        speakers = sorted(p.name for p in base.iterdir() if p.is_dir() and _SPK.match(p.name))
        chosen = self.check_subsets(subsets, sorted({language_of(s) for s in speakers}))
        for spk in speakers:
            if language_of(spk) not in chosen:
                continue
            names = [t.format(spk=spk) for t in TRANSCRIPTS]
            tfile = next((n for n in names if (base / spk / n).is_file()), names[0])
            lines, err = read_table_lines(base / spk / tfile)
            texts: Dict[str, str] = {}
            for line in lines:
                cols = line.split("\t")
                if len(cols) >= 2:
                    texts[cols[0].strip()] = " ".join(cols[1].split())
            for p in walk(base, spk):
                parts = p.split("/")
                name = parts[-1]
                if len(parts) == 2 and name == tfile:
                    continue
                split = SPLITS.get(parts[2]) if len(parts) == 4 else ("train" if len(parts) == 3 else None)
                emotion = map_emotion(parts[1]) if len(parts) >= 3 else None
                if (split is None or emotion is None or not name.endswith(".wav")
                        or not name.startswith(spk + "_")):
                    yield unexplained(p)
                    continue
                text = table_text(p, name[:-4], texts, err, f"{spk}/{tfile}", self.name)
                if isinstance(text, Rejection):
                    yield text
                    continue
                yield Item(p, {"speaker": spk, "text": text, "split": split, "emotion": emotion,
                               "language": language_of(spk), "gender": "female" if spk in FEMALE else "male"},
                           {"native_emotion": parts[1]})
