"""MER2023 (MER challenge 2023, Chinese): ``label-6way.csv`` + ``transcription.csv`` + clips.

Layout facts: spec/voxbox-sources.md gives only "emotion" and the challenge EULA
(merchallenge.cn/datasets). The table names, the columns (``name, discrete`` and
``name, chinese``/``sentence``) and the six classes (neutral, angry, happy, sad,
worried, surprise) are from the challenge baseline's README as commonly quoted: NOT
CHECKED. The clips are video; extract each clip's audio to ``<name>.wav`` (at any depth
under the root) and the recipe takes it; an unconverted video is rejected with the
ffmpeg command. VoxBox's issue #1 notes MER2023 lacks speaker ids: ``speaker`` stays empty.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from voxbox.errors import VoxboxError
from voxbox.record import Rejection
from voxbox.sources.corpora.base import Item, Recipe, is_audio, reject, unexplained, walk
from voxbox.sources.corpora.common import (UNDECODABLE, audio_for, csv_rows, emotion_label, pick, rows_by,
                                           table_error)

EMOTIONS = {"worried": "WORRIED", "surprise": "SURPRISED"}
LABELS = ("label-6way.csv", "train-label.csv")
TEXTS = ("transcription.csv",)


class MER2023(Recipe, name="mer2023", emotional=True):

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        if subsets:
            self.check_subsets(subsets, ["all"])
        table = next((t for t in LABELS if (base / t).is_file()), None)
        if table is None:
            raise VoxboxError(f"mer2023: no {' or '.join(LABELS)} under {base}")
        rows, err = csv_rows(base / table)
        if err:
            yield table_error(table, err, self.name)
        labels = rows_by(rows, "name")
        texts: Dict[str, dict] = {}
        for t in TEXTS:
            if (base / t).is_file():
                trows, terr = csv_rows(base / t)
                if terr:
                    yield table_error(t, terr, self.name)
                texts = rows_by(trows, "name")
        clips: Dict[str, str] = {}
        for p in walk(base):
            stem, ext = posixpath.splitext(p.rsplit("/", 1)[-1])
            if p in LABELS or p in TEXTS:
                continue
            if stem not in labels or not (is_audio(p) or ext.lower() in UNDECODABLE):
                yield unexplained(p, "not listed in " + table if is_audio(p) else "")
                continue
            # A converted wav/flac wins over the video of the same name.
            if stem not in clips or not is_audio(clips[stem]):
                clips[stem] = p
        for name in sorted(labels):
            if name not in clips:
                yield reject(f"{name}.wav", "missing_audio", f"{table} lists {name}; no clip found", self.name)
                continue
            audio = audio_for(base, clips[name], self.name)
            if isinstance(audio, Rejection):
                yield audio
                continue
            native = pick(labels[name], "discrete", "emotion")
            text = pick(texts.get(name, {}), "chinese", "sentence", "text")
            yield Item(audio, {"text": " ".join(text.split()) if text else None,
                               "emotion": emotion_label(native, EMOTIONS)},
                       {"native_emotion": native, "valence": pick(labels[name], "valence")})
