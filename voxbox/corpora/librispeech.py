"""LibriSpeech (openslr 12): LibriSpeech/<subset>/<spk>/<chapter>/<spk>-<chapter>-<NNNN>.flac."""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from .base import Item, Recipe, read_table_lines, reject, unexplained, walk
from .libritts import SUBSETS, read_libri_speakers, split_of


class LibriSpeech(Recipe):
    name = "librispeech"
    top_dir = "LibriSpeech"
    subset_help = ", ".join(SUBSETS)

    def find_root(self, root: Path) -> Path:
        return root / self.top_dir if (root / self.top_dir).is_dir() else root

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        available = [s for s in SUBSETS if (base / s).is_dir()]
        chosen = self.check_subsets(subsets, available)
        genders = read_libri_speakers(base)
        for subset in chosen:
            group: List[str] = []
            parent = None
            for rel in walk(base, subset):
                d = posixpath.dirname(rel)
                if d != parent and group:
                    yield from self._chapter(base, subset, parent, group, genders)
                    group = []
                parent = d
                group.append(rel)
            if group:
                yield from self._chapter(base, subset, parent, group, genders)

    def _chapter(self, base: Path, subset: str, folder: str, paths: List[str],
                 genders: Dict[str, str]) -> Iterator:
        parts = folder.split("/")
        if len(parts) != 3:
            for p in paths:
                yield unexplained(p, "expected <subset>/<speaker>/<chapter>/<file>")
            return
        _, spk, chapter = parts
        trans_name = f"{spk}-{chapter}.trans.txt"
        texts: Dict[str, str] = {}
        trans_err = None
        names = {posixpath.basename(p) for p in paths}
        if trans_name in names:
            lines, trans_err = read_table_lines(base / folder / trans_name)
            for line in lines:
                utt, _, text = line.strip().partition(" ")
                if utt:
                    texts[utt] = " ".join(text.split())
        else:
            trans_err = f"{trans_name} not found"
        for p in paths:
            name = posixpath.basename(p)
            if name == trans_name:
                continue
            if not name.endswith(".flac") or name.startswith("._"):
                yield unexplained(p)
                continue
            utt = name[:-5]
            if not utt.startswith(f"{spk}-{chapter}-"):
                yield unexplained(p, f"audio name does not start with {spk}-{chapter}-")
            elif trans_err and "UTF-8" in trans_err:
                yield reject(p, "text_not_utf8", f"{trans_name}: {trans_err}", self.name)
            elif not texts.get(utt):
                yield reject(p, "missing_transcript", trans_err or f"{utt} not in {trans_name}", self.name)
            else:
                yield Item(p, {"speaker": spk, "text": texts[utt], "split": split_of(subset),
                               "gender": genders.get(spk)},
                           {"subset": subset, "chapter": chapter})
