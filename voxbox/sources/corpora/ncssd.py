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
from voxbox.sources.corpora.base import InputError, Item, Recipe, is_audio, read_text_file, reject, unexplained, walk

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
                if p.endswith(".txt") and any((base / (p[:-4] + e)).is_file() for e in (".wav", ".flac")):
                    continue
                if not is_audio(p) or p.count("/") < 2:
                    yield unexplained(p)
                    continue
                try:
                    text = read_text_file(base / (p.rsplit(".", 1)[0] + ".txt"))
                except InputError as e:
                    yield reject(p, e.reason, e.detail, self.name)
                    continue
                yield Item(p, {"speaker": p.split("/")[-2], "text": text, "language": SUBSETS[sub]},
                           {"ncssd_subset": sub})
