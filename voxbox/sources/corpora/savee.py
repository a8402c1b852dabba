"""SAVEE: ``AudioData/<DC|JE|JK|KL>/<code><NN>.wav`` (or the flat ``<spk>_<code><NN>.wav`` copy).

Layout facts: spec/voxbox-sources.md (4 male speakers DC, JE, JK, KL; the emotion letter
prefix in the file name [S11]). The codes a, d, f, h, n, sa, su (anger, disgust, fear,
happiness, neutral, sadness, surprise) are SAVEE's documented ones as nkululeko reads
them; the flat Kaggle naming is NOT CHECKED. No per-clip transcripts ship with the
audio, so ``text`` stays empty.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, List, Optional

from voxbox.sources.corpora.base import Item, Recipe, unexplained, walk

EMOTIONS = {"a": "ANGRY", "d": "DISGUSTED", "f": "FEARFUL", "h": "HAPPY", "n": "NEUTRAL",
            "sa": "SAD", "su": "SURPRISED"}
SPEAKERS = ("DC", "JE", "JK", "KL")
_NESTED = re.compile(r"^(?P<code>sa|su|[adfhn])(?P<n>\d{2})\.wav$")
_FLAT = re.compile(r"^(?P<spk>DC|JE|JK|KL)_(?P<code>sa|su|[adfhn])(?P<n>\d{2})\.wav$")


class SAVEE(Recipe, name="savee", subsets="speakers DC, JE, JK, KL", emotional=True):

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        chosen = self.check_subsets(subsets, list(SPEAKERS))
        for p in walk(base):
            parts = p.split("/")
            flat = _FLAT.match(parts[-1])
            nested = _NESTED.match(parts[-1]) if len(parts) >= 2 and parts[-2] in SPEAKERS else None
            m = flat or nested
            if not m:
                yield unexplained(p)
                continue
            spk = flat.group("spk") if flat else parts[-2]
            if spk not in chosen:
                continue
            yield Item(p, {"speaker": spk, "gender": "male", "emotion": EMOTIONS[m.group("code")]},
                       {"native_emotion": m.group("code")})
