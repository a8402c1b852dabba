"""DailyTalk: ``data/<dialog>/<turn>_<speaker>_d<dialog>.wav`` + ``.txt`` + ``metadata.json``.

Layout facts: spec/voxbox-sources.md, DailyTalk section ([S10] lhotse's daily_talk
recipe: per-dialogue metadata.json plus wavs). The file naming, the ``.txt`` sidecar and
the metadata shape (dialogue id -> turn -> {text, speaker, emotion, act}) are read as
lhotse reads them, NOT CHECKED against the DailyTalk README. The emotions are DailyDialog's
(``no emotion``, anger, disgust, fear, happiness, sadness, surprise); ``no emotion``
maps to NEUTRAL. Speaker genders are not in the metadata: left to annotate.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator, List, Optional

from voxbox.errors import VoxboxError
from voxbox.record import Rejection
from voxbox.sources.corpora.base import Item, Recipe, read_table_lines, unexplained, walk
from voxbox.sources.corpora.common import emotion_label, is_sidecar, sidecar_text, table_error

EMOTIONS = {"no emotion": "NEUTRAL", "none": "NEUTRAL", "happiness": "HAPPY"}
_NAME = re.compile(r"^(?P<turn>\d+)_(?P<spk>\d+)_d(?P<dia>\d+)\.wav$")


class DailyTalk(Recipe, name="dailytalk", emotional=True, top_dirs=("dailytalk", "DailyTalk")):

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        if subsets:
            self.check_subsets(subsets, ["all"])
        if not (base / "data").is_dir():
            raise VoxboxError(f"dailytalk: no data/ folder under {base}")
        meta = {}
        if (base / "metadata.json").is_file():
            lines, err = read_table_lines(base / "metadata.json")
            try:
                meta = json.loads("\n".join(lines)) if not err else {}
            except ValueError as e:
                err = f"not JSON ({e})"
            if err:
                yield table_error("metadata.json", err, self.name)
        for p in walk(base, "data"):
            if is_sidecar(base, p):
                continue
            m = _NAME.match(p.rsplit("/", 1)[-1])
            known = m is not None and p.split("/")[1] == m.group("dia")
            text = sidecar_text(base, p, self.name) if known else unexplained(p)
            if isinstance(text, Rejection):
                yield text
                continue
            turn = (meta.get(m.group("dia")) or {}).get(m.group("turn")) if isinstance(meta, dict) else None
            native = turn.get("emotion") if isinstance(turn, dict) else None
            yield Item(p, {"speaker": f"dailytalk_{m.group('spk')}", "text": text,
                           "emotion": emotion_label(native, EMOTIONS)},
                       {"native_emotion": native, "dialogue": int(m.group("dia")), "turn": int(m.group("turn")),
                        "act": turn.get("act") if isinstance(turn, dict) else None})
