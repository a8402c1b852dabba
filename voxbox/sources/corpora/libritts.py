"""LibriTTS (openslr 60): LibriTTS/<subset>/<spk>/<chapter>/<spk>_<chapter>_<p>_<s>.wav."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from voxbox.sources.corpora.base import (InputError, Item, Recipe, RecipeOption, by_folder, read_table_lines, read_text_file,
                   reject, speaker_genders, unexplained, walk)

SUBSETS = ("dev-clean", "dev-other", "test-clean", "test-other",
           "train-clean-100", "train-clean-360", "train-other-500")


def split_of(subset: str) -> str:
    return subset.split("-")[0] if subset.split("-")[0] in ("train", "dev", "test") else "train"


def read_libri_speakers(base: Path) -> Dict[str, str]:
    """speaker id -> 'female'/'male' from speakers.tsv, else SPEAKERS.txt / SPEAKERS.TXT."""
    genders: Dict[str, str] = {}
    tsv = base / "speakers.tsv"
    if tsv.is_file():
        lines, _ = read_table_lines(tsv)
        for spk, gender in speaker_genders(
                lines[1:] if lines and lines[0].upper().startswith("READER") else lines, "\t"):
            genders[spk] = gender
    for name in ("SPEAKERS.txt", "SPEAKERS.TXT"):
        txt = base / name
        if txt.is_file():
            lines, _ = read_table_lines(txt)
            for spk, gender in speaker_genders((x for x in lines if not x.startswith(";")), "|"):
                genders.setdefault(spk, gender)
    return genders


class LibriChapters(Recipe):
    """The layout LibriTTS, LibriTTS-R and LibriSpeech share: <subset>/<speaker>/<chapter>/
    folders, scanned one chapter at a time; subclasses read a chapter with ``chapter()``."""

    subsets: Tuple[str, ...] = SUBSETS
    subset_help = ", ".join(SUBSETS)

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        chosen = self.check_subsets(subsets, [s for s in self.subsets if (base / s).is_dir()])
        genders = read_libri_speakers(base)
        for subset in chosen:
            for folder, paths in by_folder(walk(base, subset)):
                parts = folder.split("/")
                if len(parts) != 3:
                    for p in paths:
                        yield unexplained(p, "expected <subset>/<speaker>/<chapter>/<file>")
                    continue
                yield from self.chapter(base, folder, paths, genders)

    def chapter(self, base: Path, folder: str, paths: List[str], genders: Dict[str, str]) -> Iterator:
        raise NotImplementedError

    def item(self, path: str, folder: str, text: str, genders: Dict[str, str]) -> Item:
        subset, spk, chapter = folder.split("/")
        return Item(path, {"speaker": spk, "text": text, "split": split_of(subset), "gender": genders.get(spk)},
                    {"subset": subset, "chapter": chapter})


class LibriTTS(LibriChapters):
    name = "libritts"
    top_dirs = ("LibriTTS",)
    known_bad: Tuple[str, ...] = ()
    audio_ext = ".wav"
    options = {
        "text": RecipeOption("normalized", "which transcript to use: normalized or original"),
    }

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        if self.opts["text"] not in ("normalized", "original"):
            from voxbox.errors import VoxboxError

            raise VoxboxError(f"{self.name}: option text must be 'normalized' or 'original'")
        yield from super().scan(base, subsets)

    def chapter(self, base: Path, folder: str, paths: List[str], genders: Dict[str, str]) -> Iterator:
        _, spk, chapter = folder.split("/")
        stem = f"{spk}_{chapter}"
        names = {posixpath.basename(p) for p in paths}
        folder_abs = os.path.join(str(base), folder)
        trans: Dict[str, Tuple[str, str]] = {}
        trans_name = f"{stem}.trans.tsv"
        if trans_name in names:
            lines, err = read_table_lines(os.path.join(folder_abs, trans_name))
            if err:
                yield reject(f"{folder}/{trans_name}", "bad_metadata", err)
            for line in lines:
                cols = line.split("\t")
                if len(cols) >= 3:
                    trans[cols[0]] = (cols[1], cols[2])
        ext = ".normalized.txt" if self.opts["text"] == "normalized" else ".original.txt"
        audio_ext = self.audio_ext
        for p in paths:
            name = posixpath.basename(p)
            if name.startswith("._"):
                yield unexplained(p, "macOS resource-fork file")
            elif name.endswith(audio_ext):
                utt = name[:-len(audio_ext)]
                if not utt.startswith(stem + "_"):
                    yield unexplained(p, f"audio name does not start with {stem}_")
                    continue
                if name in self.known_bad:
                    yield reject(p, "known_bad_file", "listed as corrupt by the corpus maintainers", self.name)
                    continue
                try:
                    if utt + ext in names:
                        text = read_text_file(os.path.join(folder_abs, utt + ext))
                    elif utt in trans:
                        text = " ".join(trans[utt][1 if ext == ".normalized.txt" else 0].split())
                        if not text:
                            raise InputError("empty_transcript", f"{trans_name} has an empty text")
                    else:
                        raise InputError("missing_transcript", f"no {utt + ext} and no row in {trans_name}")
                except InputError as e:
                    yield reject(p, e.reason, e.detail, self.name)
                    continue
                yield self.item(p, folder, text, genders)
            elif name.endswith((".normalized.txt", ".original.txt")):
                utt = name.rsplit(".", 2)[0]
                if utt + audio_ext not in names:
                    yield unexplained(p, "transcript without its audio file")
            elif name in (trans_name, f"{stem}.book.tsv"):
                continue
            else:
                yield unexplained(p)
