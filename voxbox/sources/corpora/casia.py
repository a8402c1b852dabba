"""CASIA Chinese emotional speech: ``<speaker>/<emotion>/<NNN>.wav``.

Layout facts: NOT CHECKED against the corpus documentation (the spec has none; VoxBox's
README links gitcode.com/open-source-toolkit/bc5e6). The layout, the four speakers and
their genders are those of the copies commonly redistributed (4 speakers: liuchanhg and
zhaoquanyin female, wangzhe and ZhaoZuoxiang male; six emotions angry, fear, happy,
neutral, sad, surprise). The distribution carries no transcripts, so ``text`` stays
empty unless a ``<NNN>.txt`` sidecar sits beside the clip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List, Optional

from voxbox.errors import VoxboxError
from voxbox.record import Rejection
from voxbox.sources.corpora.base import Item, Recipe, unexplained, walk
from voxbox.sources.corpora.common import emotion_label, is_sidecar, sidecar_text, sorted_dirs

GENDERS = {"liuchanhg": "female", "zhaoquanyin": "female", "wangzhe": "male", "zhaozuoxiang": "male"}
EMOTIONS = {"angry": "ANGRY", "fear": "FEARFUL", "happy": "HAPPY", "neutral": "NEUTRAL",
            "sad": "SAD", "surprise": "SURPRISED"}


class CASIA(Recipe, name="casia", subsets="speaker folder names (liuchanhg, wangzhe, zhaoquanyin, ZhaoZuoxiang)",
                    emotional=True):

    def find_root(self, root: Path) -> Path:
        for p in [root, *sorted_dirs(root)]:
            if any(d.name.lower() in GENDERS for d in sorted_dirs(p)):
                return p
        raise VoxboxError(f"casia: no speaker folder ({', '.join(sorted(GENDERS))}) under {root}")

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        speakers = [d.name for d in sorted_dirs(base) if d.name.lower() in GENDERS]
        chosen = self.check_subsets(subsets, speakers)
        for spk in chosen:
            for p in walk(base, spk):
                parts = p.split("/")
                if is_sidecar(base, p):
                    continue
                if len(parts) != 3 or parts[1].lower() not in EMOTIONS or not p.lower().endswith(".wav"):
                    yield unexplained(p)
                    continue
                text = sidecar_text(base, p, self.name, required=False)
                if isinstance(text, Rejection):
                    yield text
                    continue
                yield Item(p, {"speaker": spk, "gender": GENDERS[spk.lower()], "text": text,
                               "emotion": emotion_label(parts[1], EMOTIONS)}, {"native_emotion": parts[1]})
