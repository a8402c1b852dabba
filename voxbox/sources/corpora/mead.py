"""MEAD: ``<speaker>/audio/<emotion>/level_<n>/<NNN>.m4a`` (per-speaker ``audio.tar``).

Layout facts: spec/voxbox-sources.md gives only "emotion (incl. contempt), intensity"
and github.com/uniBruce/Mead; the folder layout, the speaker ids (``M###`` male,
``W###`` female) and the eight emotion folder names are from the MEAD README as
commonly quoted, NOT CHECKED here. The audio is AAC in m4a, which libsndfile cannot
decode: convert each clip to ``<NNN>.wav`` beside it. MEAD ships no per-clip transcript,
so ``text`` stays empty (annotate nulls syllables and speed with a reason).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, List, Optional

from voxbox.errors import VoxboxError
from voxbox.record import Rejection
from voxbox.sources.corpora.base import Item, Recipe, unexplained, walk
from voxbox.sources.corpora.common import audio_for, emotion_label, is_converted_copy, sorted_dirs

EMOTIONS = {"angry": "ANGRY", "contempt": "CONTEMPT", "disgusted": "DISGUSTED", "fear": "FEARFUL",
            "happy": "HAPPY", "neutral": "NEUTRAL", "sad": "SAD", "surprised": "SURPRISED"}
_SPK = re.compile(r"^[MW]\d{3}$")
_CLIP = re.compile(r"^\d{3}\.(m4a|wav|flac)$")


class MEAD(Recipe, name="mead", subsets="speaker ids (M003, W009, ...)", emotional=True):

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        speakers = [d.name for d in sorted_dirs(base) if _SPK.match(d.name) and (d / "audio").is_dir()]
        if not speakers:
            raise VoxboxError(f"mead: no <M|W>###/audio/ folder under {base} (extract each speaker's audio.tar)")
        for spk in self.check_subsets(subsets, speakers):
            for p in walk(base, f"{spk}/audio"):
                parts = p.split("/")
                if is_converted_copy(base, p):
                    continue
                if (len(parts) != 5 or parts[2] not in EMOTIONS or not re.match(r"^level_\d$", parts[3])
                        or not _CLIP.match(parts[4])):
                    yield unexplained(p)
                    continue
                audio = audio_for(base, p, self.name)
                if isinstance(audio, Rejection):
                    yield audio
                    continue
                yield Item(audio, {"speaker": spk, "gender": "male" if spk[0] == "M" else "female",
                                   "emotion": emotion_label(parts[2], EMOTIONS)},
                           {"native_emotion": parts[2], "emotion_level": int(parts[3][-1])})
