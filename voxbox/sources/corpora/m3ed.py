"""M3ED as VoxBox ships it: ``audios/m3ed/m3ed_<Emotion>_<NNNNNNNNNN>.wav`` (+ ``m3ed.jsonl``).

Layout facts: the VoxBox example (spec/voxbox-sources.md [S3]: 653 clips, 16 kHz mono
16-bit, the emotion in the file name equals the release's ``emotion`` on 653/653 rows).
The original RUC M3ED release (TV-drama video plus dialogue annotation JSON,
github.com/aim3-ruc/rucm3ed) is NOT CHECKED here and not read by this recipe.

Native labels: emotion from the file name (M3ED's 7 classes). Text from ``m3ed.jsonl``
(the release's text; the clips carry none) when it sits in the root; gender and age in
that file are VoxBox's predictions, not M3ED's, so they are left to annotate.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from voxbox.errors import VoxboxError
from voxbox.sources.corpora.base import Item, Recipe, unexplained, walk
from voxbox.sources.corpora.common import emotion_label, json_lines, table_error

# M3ED's seven classes as the file names spell them [S3].
EMOTIONS = {"neutral": "NEUTRAL", "happy": "HAPPY", "surprise": "SURPRISED", "sad": "SAD",
            "disgust": "DISGUSTED", "anger": "ANGRY", "angry": "ANGRY", "fear": "FEARFUL"}
_NAME = re.compile(r"^m3ed_(?P<emo>[A-Za-z]+)_(?P<n>\d+)\.wav$")


class M3ED(Recipe, name="m3ed", emotional=True):

    def find_root(self, root: Path) -> Path:
        return root / "audios" if (root / "audios").is_dir() else root

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        if subsets:
            self.check_subsets(subsets, ["all"])
        texts: Dict[str, str] = {}
        meta = base.parent / "m3ed.jsonl" if base.name == "audios" else base / "m3ed.jsonl"
        if meta.is_file():
            rows, err = json_lines(meta)
            if err:
                yield table_error("m3ed.jsonl", err, self.name)
            for n, row in rows:
                if isinstance(row, dict) and row.get("wav_path") and row.get("text"):
                    texts[str(row["wav_path"]).rsplit("/", 1)[-1]] = " ".join(str(row["text"]).split())
        found = False
        for p in walk(base):
            name = p.rsplit("/", 1)[-1]
            m = _NAME.match(name)
            if p.startswith(".voxbox/") or p == "m3ed.jsonl":
                continue
            if not m or m.group("emo").lower() not in EMOTIONS:
                yield unexplained(p)
                continue
            found = True
            yield Item(p, {"text": texts.get(name), "emotion": emotion_label(m.group("emo"), EMOTIONS)},
                       {"native_emotion": m.group("emo")})
        if not found:
            raise VoxboxError(f"m3ed: no m3ed_<Emotion>_<N>.wav clip under {base}")
