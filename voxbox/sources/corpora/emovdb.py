"""EmoV-DB: <speaker>[_<Emotion>]/<emotion>_<from>-<to>_<NNNN>.wav + cmuarctic.data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from voxbox.sources.corpora.base import DOWNLOAD_DIRS, Item, Recipe, map_emotion, read_table_lines, reject, unexplained, walk

SPEAKERS = {"bea": "female", "jenie": "female", "josh": "male", "sam": "male"}
_NAME = re.compile(r"^(?P<emo>[a-z]+)_(?P<a>\d+)-(?P<b>\d+)_(?P<num>\d{4})\.wav$")
_PROMPT = re.compile(r'^\(\s*(?P<id>\S+)\s+"(?P<text>.*)"\s*\)\s*$')
ROOT_FILES = ("cmuarctic.data", "README.md", "README.txt", "LICENSE", "LICENSE.md")


def read_prompts(path: Path) -> Dict[str, str]:
    lines, _ = read_table_lines(path)
    out = {}
    for line in lines:
        m = _PROMPT.match(line.strip())
        if m:
            out[m.group("id")] = m.group("text")
    return out


class EmoVDB(Recipe, name="emovdb", subsets="bea, jenie, josh, sam (speakers)", emotional=True):

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        dirs = sorted(p.name for p in base.iterdir() if p.is_dir() and p.name.split("_")[0].lower() in SPEAKERS)
        chosen = self.check_subsets(subsets, sorted({d.split("_")[0].lower() for d in dirs}))
        prompts = read_prompts(base / "cmuarctic.data") if (base / "cmuarctic.data").is_file() else {}
        for top in sorted(p.name for p in base.iterdir()):
            if (base / top).is_file():
                if top not in ROOT_FILES:
                    yield unexplained(top)
                continue
            spk = top.split("_")[0].lower()
            if top in DOWNLOAD_DIRS:
                continue
            if spk not in SPEAKERS:
                for p in walk(base, top):
                    yield unexplained(p, "not in a speaker folder (bea, jenie, josh, sam)")
                continue
            if spk not in chosen:
                continue
            for p in walk(base, top):
                m = _NAME.match(p.split("/")[-1])
                emotion = map_emotion(m.group("emo")) if m else None
                if not m or emotion is None:
                    yield unexplained(p)
                    continue
                key = f"arctic_a{m.group('num')}"
                if key not in prompts:
                    detail = f"{key} not in cmuarctic.data" if prompts else "cmuarctic.data not found in the root"
                    yield reject(p, "missing_transcript", detail, self.name)
                    continue
                # File names repeat in every speaker's folder: the speaker makes the id unique.
                stem = p.split("/")[-1][:-4]
                yield Item(p, {"speaker": spk, "utt_id": f"{spk}_{stem}", "text": prompts[key], "emotion": emotion,
                               "gender": SPEAKERS[spk]},
                           {"native_emotion": m.group("emo"), "arctic_id": key})
