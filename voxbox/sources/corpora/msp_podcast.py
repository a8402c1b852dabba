"""MSP-Podcast: ``Audios/<file>.wav`` + ``Labels/labels_consensus.csv`` + ``Transcripts/<stem>.txt``.

Layout facts: spec/voxbox-sources.md gives emotion and VAD (incl. "No agreement") and a
restricted academic licence. The folders, the consensus CSV columns (``FileName,
EmoClass, EmoAct, EmoVal, EmoDom, SpkrID, Gender, Split_Set``) and the class letters
(A S H U F D C N O X) are the MSP-Podcast release format as nkululeko [S11] reads it,
NOT CHECKED against the release's documentation. ``X`` (no agreement) maps to
NO-AGREEMENT, ``O`` (other) to UNKNOWN.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List, Optional

from voxbox.errors import VoxboxError
from voxbox.sources.corpora.base import (InputError, Item, Recipe, map_gender, read_text_file, reject,
                                         unexplained, walk)
from voxbox.sources.corpora.common import csv_rows, pick, rows_by, table_error

EMOTIONS = {"A": "ANGRY", "S": "SAD", "H": "HAPPY", "U": "SURPRISED", "F": "FEARFUL", "D": "DISGUSTED",
            "C": "CONTEMPT", "N": "NEUTRAL", "O": "UNKNOWN", "X": "NO-AGREEMENT"}
SPLITS = {"train": "train", "development": "dev", "test1": "test", "test2": "test", "test3": "test"}
LABELS = "Labels/labels_consensus.csv"


class MSPPodcast(Recipe, name="msp_podcast", subsets="train, dev, test (Split_Set in labels_consensus.csv)",
                         emotional=True, top_dirs=("MSP-PODCAST", "MSP-Podcast")):

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        if not (base / "Audios").is_dir() or not (base / LABELS).is_file():
            raise VoxboxError(f"msp_podcast: need Audios/ and {LABELS} under {base}")
        rows, err = csv_rows(base / LABELS)
        if err:
            yield table_error(LABELS, err, self.name)
        meta = rows_by(rows, "FileName")
        splits = sorted({SPLITS.get((r.get("Split_Set") or "").lower(), "train") for r in rows})
        chosen = self.check_subsets(subsets, splits)
        for p in walk(base, "Audios"):
            row = meta.get(p.rsplit("/", 1)[-1])
            if row is None:
                yield unexplained(p, f"not listed in {LABELS}")
                continue
            split = SPLITS.get((row.get("Split_Set") or "").lower(), "train")
            if split not in chosen:
                continue
            stem = p.rsplit("/", 1)[-1].rsplit(".", 1)[0]
            try:
                text = read_text_file(base / "Transcripts" / f"{stem}.txt")
            except InputError as e:
                yield reject(p, e.reason, e.detail, self.name)
                continue
            code = (row.get("EmoClass") or "").upper()
            vad = {k: float(row[c]) for k, c in (("arousal", "EmoAct"), ("valence", "EmoVal"), ("dominance", "EmoDom"))
                   if _num(row.get(c))}
            yield Item(p, {"speaker": pick(row, "SpkrID"), "gender": map_gender(row.get("Gender")), "text": text,
                           "emotion": EMOTIONS.get(code, "UNKNOWN"), "split": split},
                       {"native_emotion": code or None, **vad})


def _num(v: Optional[str]) -> bool:
    try:
        float(v or "")
        return True
    except ValueError:
        return False
