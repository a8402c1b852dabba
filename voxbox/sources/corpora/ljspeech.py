"""LJ Speech 1.1: LJSpeech-1.1/wavs/LJ###-####.wav + metadata.csv (id|text|normalized)."""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Iterator, List, Optional

from voxbox.errors import VoxboxError
from voxbox.record import Rejection
from voxbox.sources.corpora.base import Item, Recipe, read_table_lines, table_text, unexplained, walk


class LJSpeech(Recipe):
    name = "ljspeech"
    top_dirs = ("LJSpeech-1.1",)

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        if subsets:
            self.check_subsets(subsets, ["all"])
        if not (base / "wavs").is_dir():
            raise VoxboxError(f"ljspeech: no wavs/ folder under {base}")
        lines, err = read_table_lines(base / "metadata.csv")
        texts = {}
        for line in lines:
            cols = line.split("|")
            if len(cols) >= 2:
                texts[cols[0]] = " ".join((cols[2] if len(cols) > 2 and cols[2].strip() else cols[1]).split())
        for p in walk(base, "wavs"):
            name = posixpath.basename(p)
            if p.count("/") != 1 or not name.endswith(".wav") or not name.startswith("LJ"):
                yield unexplained(p)
                continue
            text = table_text(p, name[:-4], texts, err, "metadata.csv", self.name)
            yield text if isinstance(text, Rejection) else Item(p, {"speaker": "LJ", "text": text, "gender": "female"})
