"""MAGICDATA Mandarin Chinese Read Speech (openslr 68): ``<part>/TRANS.txt`` + ``<part>/<spk>/<utt>.wav``.

Layout facts: spec/voxbox-sources.md, MAGICDATA section [S10] (lhotse's magicdata
recipe: per-part ``TRANS.txt`` naming the wav, the speaker and the text). The header
line ``UtteranceID<TAB>SpeakerID<TAB>Transcription`` is skipped as lhotse does. Speaker
genders are not in TRANS.txt, so gender is left to annotate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from voxbox.errors import VoxboxError
from voxbox.sources.corpora.base import Item, Recipe, read_table_lines, reject, unexplained, walk
from voxbox.sources.corpora.common import table_error

PARTS = {"train": "train", "dev": "dev", "test": "test"}


class MagicData(Recipe):
    name = "magicdata"
    subset_help = "train, dev, test"
    top_dirs = ("magicdata", "MAGICDATA")

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        parts = [p for p in PARTS if (base / p / "TRANS.txt").is_file()]
        if not parts:
            raise VoxboxError(f"magicdata: no <train|dev|test>/TRANS.txt under {base}")
        for part in self.check_subsets(subsets, parts):
            rows: Dict[str, Tuple[str, str]] = {}
            lines, err = read_table_lines(base / part / "TRANS.txt")
            if err:
                yield table_error(f"{part}/TRANS.txt", err, self.name)
            for line in lines[1:]:
                cols = line.split("\t")
                if len(cols) >= 3 and cols[0].strip():
                    rows[cols[0].strip()] = (cols[1].strip(), " ".join(cols[2].split()))
            for p in walk(base, part):
                name = p.rsplit("/", 1)[-1]
                if p == f"{part}/TRANS.txt":
                    continue
                if not name.endswith(".wav") or p.count("/") != 2:
                    yield unexplained(p)
                    continue
                if name not in rows or not rows[name][1]:
                    yield reject(p, "missing_transcript", f"{name} not in {part}/TRANS.txt", self.name)
                    continue
                spk, text = rows[name]
                yield Item(p, {"speaker": spk, "text": text, "split": PARTS[part]})
