"""NCSSD (naturalistic conversational speech): ``<subset>/**/<utt>.wav`` + ``<utt>.txt``.

Layout facts: spec/voxbox-sources.md lists four VoxBox rows (NCSSD-CL-CN, NCSSD-RC-CN,
NCSSD-CL-EN, NCSSD-RL-EN; subsets ``ncssd_c_zh``, ``ncssd_r_zh``, ``ncssd_c_en``,
``ncssd_r_en``) but no layout, sample rate or licence, and VoxBox's download link is
suspect (it points at MEAD). The release layout is NOT CHECKED: this recipe reads one
folder per subset (``CL-CN``, ``RC-CN``, ``CL-EN``, ``RC-EN``; ``RL-EN`` accepted) with
each wav's transcript in a ``.txt`` of the same name, the speaker being the wav's
parent folder. Point --root at the folder holding those subset folders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List, Optional

from voxbox.errors import VoxboxError
from voxbox.record import Rejection
from voxbox.sources.corpora.base import Item, Recipe, is_audio, unexplained, walk
from voxbox.sources.corpora.common import is_sidecar, sidecar_text

SUBSETS = {"CL-CN": "zh", "RC-CN": "zh", "CL-EN": "en", "RC-EN": "en", "RL-EN": "en"}


class NCSSD(Recipe):
    name = "ncssd"
    subset_help = "CL-CN, RC-CN, CL-EN, RC-EN (folder names under the root)"

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        found = [s for s in SUBSETS if (base / s).is_dir()]
        if not found:
            raise VoxboxError(f"ncssd: none of the subset folders {', '.join(SUBSETS)} under {base}")
        for sub in self.check_subsets(subsets, found):
            for p in walk(base, sub):
                if is_sidecar(base, p, (".wav", ".flac")):
                    continue
                known = is_audio(p) and p.count("/") >= 2
                text = sidecar_text(base, p, self.name) if known else unexplained(p)
                if isinstance(text, Rejection):
                    yield text
                    continue
                yield Item(p, {"speaker": p.split("/")[-2], "text": text, "language": SUBSETS[sub]},
                           {"ncssd_subset": sub})
