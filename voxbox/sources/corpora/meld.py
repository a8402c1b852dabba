"""MELD (MELD.Raw): ``<split>_sent_emo.csv`` + ``<split video folder>/dia<D>_utt<U>.mp4``.

Layout facts: spec/voxbox-sources.md names only "emotion" and affective-meld.github.io;
the CSV columns (``Utterance, Speaker, Emotion, Sentiment, Dialogue_ID, Utterance_ID``)
and the video folders (``train_splits``, ``dev_splits_complete``,
``output_repeated_splits_test``) are those of the MELD.Raw release as nkululeko [S11]
and the MELD README describe it, NOT CHECKED here. The clips are mp4 video: extract each
clip's audio to ``dia<D>_utt<U>.wav`` beside it (the rejection names the command).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List, Optional

from voxbox.errors import VoxboxError
from voxbox.record import Rejection
from voxbox.sources.corpora.base import Item, Recipe, reject, unexplained, walk
from voxbox.sources.corpora.common import (audio_for, csv_rows, emotion_label, is_converted_copy, pick,
                                           table_error)

SPLITS = {"train": ("train_sent_emo.csv", "train_splits"),
          "dev": ("dev_sent_emo.csv", "dev_splits_complete"),
          "test": ("test_sent_emo.csv", "output_repeated_splits_test")}
EMOTIONS = {"joy": "HAPPY", "sadness": "SAD", "anger": "ANGRY"}


class MELD(Recipe, name="meld", subsets="train, dev, test", emotional=True, top_dirs=("MELD.Raw",)):

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        available = [s for s, (csv_name, _) in SPLITS.items() if (base / csv_name).is_file()]
        if not available:
            raise VoxboxError(f"meld: no train/dev/test_sent_emo.csv under {base}")
        for split in self.check_subsets(subsets, available):
            yield from self._split(base, split)

    def _split(self, base: Path, split: str) -> Iterator:
        csv_name, folder = SPLITS[split]
        rows, err = csv_rows(base / csv_name)
        if err:
            yield table_error(csv_name, err, self.name)
        listed = set()
        for row in rows:
            d, u = pick(row, "Dialogue_ID"), pick(row, "Utterance_ID")
            if d is None or u is None:
                continue
            rel = f"{folder}/dia{d}_utt{u}.mp4"
            listed.update({rel, rel[:-4] + ".wav", rel[:-4] + ".flac"})
            if not any((base / (rel[:-4] + e)).is_file() for e in (".mp4", ".wav", ".flac")):
                yield reject(rel, "missing_audio", f"{csv_name} lists it; no mp4/wav/flac found", self.name)
                continue
            audio = audio_for(base, rel, self.name) if (base / rel).is_file() else next(
                rel[:-4] + e for e in (".wav", ".flac") if (base / (rel[:-4] + e)).is_file())
            if isinstance(audio, Rejection):
                yield audio
                continue
            native = pick(row, "Emotion")
            yield Item(audio, {"speaker": pick(row, "Speaker"), "text": " ".join((pick(row, "Utterance") or "").split())
                               or None, "emotion": emotion_label(native, EMOTIONS), "split": split},
                       {"native_emotion": native, "sentiment": pick(row, "Sentiment"),
                        "dialogue": d, "utterance": u})
        for p in walk(base, folder) if (base / folder).is_dir() else ():
            if p not in listed and not is_converted_copy(base, p):
                yield unexplained(p, f"not listed in {csv_name}")
