"""EMNS (openslr 136): ``raw_webm/<clip>.webm`` + ``metadata.csv`` (``|``-separated).

Layout facts: spec/voxbox-sources.md, EMNS section [S11] (webm audio, pipe-separated
metadata with file, gender, emotion and more). Column names are read from the header;
the spellings accepted (``audio_recording``/``file``, ``utterance``/``text``, ``emotion``,
``gender``, ``age``, ``level``/``intensity``) are NOT CHECKED against the release.
libsndfile cannot decode webm: convert each clip to ``<clip>.wav`` beside it (the
rejection of an unconverted clip names the ffmpeg command).
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Iterator, List, Optional

from voxbox.errors import VoxboxError
from voxbox.record import Rejection
from voxbox.sources.corpora.base import Item, Recipe, map_age_years, map_gender, reject, unexplained, walk
from voxbox.sources.corpora.common import (audio_for, csv_rows, emotion_label, is_converted_copy, pick,
                                           table_error)

EMOTIONS = {"excited": "EXCITED", "sarcastic": "SARCASTIC", "disgust": "DISGUSTED", "surprised": "SURPRISED"}


class EMNS(Recipe, name="emns", emotional=True, top_dirs=("EMNS", "emns")):

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        if subsets:
            self.check_subsets(subsets, ["all"])
        if not (base / "metadata.csv").is_file():
            raise VoxboxError(f"emns: no metadata.csv under {base}")
        rows, err = csv_rows(base / "metadata.csv", delimiter="|")
        if err:
            yield table_error("metadata.csv", err, self.name)
        meta = {}
        for row in rows:
            f = pick(row, "audio_recording", "file", "filename", "path")
            if f:
                meta[posixpath.splitext(posixpath.basename(f))[0]] = row
        for p in walk(base, "raw_webm") if (base / "raw_webm").is_dir() else ():
            stem = posixpath.splitext(posixpath.basename(p))[0]
            if is_converted_copy(base, p):
                continue
            row = meta.get(stem)
            if row is None:
                yield unexplained(p, "not listed in metadata.csv")
                continue
            audio = audio_for(base, p, self.name)
            if isinstance(audio, Rejection):
                yield audio
                continue
            text = " ".join((pick(row, "utterance", "text", "transcript") or "").split())
            if not text:
                yield reject(audio, "missing_transcript", f"metadata.csv has no text for {stem}", self.name)
                continue
            native = pick(row, "emotion")
            yield Item(audio, {"speaker": "emns", "text": text, "emotion": emotion_label(native, EMOTIONS),
                               "gender": map_gender(pick(row, "gender")), "age": map_age_years(pick(row, "age"))},
                       {"native_emotion": native, "emotion_level": pick(row, "level", "intensity")})
