"""Expresso (read part): ``audio_48khz/read/<spk>/<style>/{base,longform}/<utt>.wav`` +
``read_transcriptions.txt`` + ``splits/{train,dev,test}.txt``.

Layout facts: spec/voxbox-sources.md names the styles (whisper, laughing, enunciated,
...) and the licence [S17]; the folder layout, the transcript file (``<utt><TAB><text>``)
and the split lists are from the Expresso release README (speechbot.github.io/expresso)
as commonly quoted, NOT CHECKED here. Styles map to VoxBox's emotion set (table below;
the style always stays in ``native_emotion``). The conversational part holds long
two-speaker recordings without utterance cuts: counted as skipped
(``unsegmented_recording``), not read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterator, List, Optional

from voxbox.errors import VoxboxError
from voxbox.sources.corpora.base import Item, Recipe, Skip, read_table_lines, reject, unexplained, walk
from voxbox.sources.corpora.common import table_error

# Expresso style -> VoxBox emotion. Styles without a VoxBox class map to UNKNOWN.
STYLES = {"default": "NEUTRAL", "calm": "NEUTRAL", "confused": "CONFUSED", "enunciated": "ENUNCIATED",
          "happy": "HAPPY", "laughing": "LAUGHING", "sad": "SAD", "whisper": "WHISPER", "emphasis": "EMPHASIS",
          "singing": "SINGING", "sarcastic": "SARCASTIC", "sleepy": "SLEEPY", "angry": "ANGRY",
          "disgusted": "DISGUSTED", "fearful": "FEARFUL", "awe": "SURPRISED", "narration": "NEUTRAL"}
SPLITS = ("train", "dev", "test")


class Expresso(Recipe, name="expresso", subsets="speakers ex01, ex02, ex03, ex04 (read part)", emotional=True,
                       top_dirs=("expresso",)):

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        read = base / "audio_48khz" / "read"
        if not read.is_dir():
            raise VoxboxError(f"expresso: no audio_48khz/read/ under {base}")
        texts = self._texts(base)
        if isinstance(texts, str):
            yield table_error("read_transcriptions.txt", texts, self.name)
            texts = {}
        split_of: Dict[str, str] = {}
        for s in SPLITS:
            for line in read_table_lines(base / "splits" / f"{s}.txt")[0]:
                if line.strip():
                    split_of[line.split()[0]] = s
        speakers = sorted(p.name for p in read.iterdir() if p.is_dir())
        for spk in self.check_subsets(subsets, speakers):
            for p in walk(base, f"audio_48khz/read/{spk}"):
                parts = p.split("/")
                utt = parts[-1][:-4]
                if len(parts) != 6 or parts[4] not in ("base", "longform") or not p.endswith(".wav"):
                    yield unexplained(p)
                    continue
                if not texts.get(utt):
                    yield reject(p, "missing_transcript", f"{utt} not in read_transcriptions.txt", self.name)
                    continue
                style = parts[3]
                yield Item(p, {"speaker": spk, "text": texts[utt], "emotion": STYLES.get(style, "UNKNOWN"),
                               "split": split_of.get(utt, "train")},
                           {"native_emotion": style, "read_kind": parts[4]})
        conv = base / "audio_48khz" / "conversational"
        for p in walk(base, "audio_48khz/conversational") if conv.is_dir() else ():
            yield Skip(p, "unsegmented_recording")

    @staticmethod
    def _texts(base: Path):
        lines, err = read_table_lines(base / "read_transcriptions.txt")
        if err:
            return err
        out: Dict[str, str] = {}
        for line in lines:
            utt, _, text = line.partition("\t")
            if utt.strip() and text.strip():
                out[utt.strip()] = " ".join(text.split())
        return out
