"""LibriSpeech (openslr 12): LibriSpeech/<subset>/<spk>/<chapter>/<spk>-<chapter>-<NNNN>.flac."""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Dict, Iterator, List

from voxbox.record import Rejection
from voxbox.sources.corpora.base import read_table_lines, table_text, unexplained
from voxbox.sources.corpora.libritts import LibriChapters


class LibriSpeech(LibriChapters):
    name = "librispeech"
    top_dirs = ("LibriSpeech",)

    def chapter(self, base: Path, folder: str, paths: List[str], genders: Dict[str, str]) -> Iterator:
        _, spk, chapter = folder.split("/")
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
                continue
            text = table_text(p, utt, texts, trans_err, trans_name, self.name)
            yield text if isinstance(text, Rejection) else self.item(p, folder, text, genders)
