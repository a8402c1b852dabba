"""MLS English (openslr 94): {train,dev,test}/transcripts.txt + audio/<spk>/<book>/<id>.flac."""

from __future__ import annotations

from array import array
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from voxbox.sources.corpora.base import Item, Recipe, is_audio, read_table_lines, reject, speaker_genders, unexplained, walk

SPLITS = ("train", "dev", "test")
SPLIT_FILES = ("transcripts.txt", "segments.txt")


def read_metainfo(path: Path) -> Dict[str, str]:
    out: Dict[str, str] = {}
    lines, _ = read_table_lines(path)
    for spk, gender in speaker_genders(lines, "|"):
        out.setdefault(spk, gender)
    return out


class MLSEnglish(Recipe):
    name = "mls_english"
    subset_help = "train, dev, test"
    top_dirs = ("mls_english", "mls_english_opus")

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        chosen = self.check_subsets(subsets, [s for s in SPLITS if (base / s / "transcripts.txt").is_file()])
        genders = read_metainfo(base / "metainfo.txt")
        for split in chosen:
            ext = self._audio_ext(base / split / "audio")
            # Train has ~10.8M lines: stream the transcripts instead of holding them in a
            # dict, and remember only 64-bit hashes of the ids for the leftover-file check.
            seen = array("q")
            with (base / split / "transcripts.txt").open("rb") as fh:  # a local or remote root
                for n, raw in enumerate(fh, 1):
                    try:
                        line = raw.decode("utf-8").rstrip("\r\n")
                    except UnicodeDecodeError:
                        utt = raw.split(b"\t", 1)[0].decode("ascii", "replace")
                        yield reject(self._path(split, utt, ext), "text_not_utf8",
                                     f"{split}/transcripts.txt line {n}", self.name)
                        continue
                    utt, _, text = line.partition("\t")
                    parts = utt.split("_")
                    if len(parts) != 3:
                        yield reject(f"{split}/transcripts.txt:{n}", "bad_metadata", f"bad id {utt!r}")
                        continue
                    seen.append(hash(utt))
                    text = " ".join(text.split())
                    path = self._path(split, utt, ext)
                    if not text:
                        yield reject(path, "missing_transcript", f"empty text in line {n}", self.name)
                        continue
                    yield Item(path, {"speaker": parts[0], "text": text, "split": split,
                                      "gender": genders.get(parts[0])}, {"book": parts[1]})
            import numpy as np

            ids = np.sort(np.frombuffer(seen, dtype=np.int64)) if len(seen) else np.zeros(0, np.int64)

            for p in walk(base, split):
                rel = p[len(split) + 1:]
                if rel in SPLIT_FILES or rel.startswith("limited_supervision/"):
                    continue
                stem = p.rsplit("/", 1)[-1].rsplit(".", 1)[0]
                h = hash(stem)
                i = int(np.searchsorted(ids, h))
                if not (is_audio(p) and i < len(ids) and ids[i] == h):
                    yield unexplained(p, "audio not listed in transcripts.txt" if is_audio(p) else "")

    @staticmethod
    def _path(split: str, utt: str, ext: str) -> str:
        spk, book, _ = (utt.split("_") + ["", "", ""])[:3]
        return f"{split}/audio/{spk}/{book}/{utt}{ext}"

    @staticmethod
    def _audio_ext(audio: Path) -> str:
        for spk in sorted(audio.iterdir()) if audio.is_dir() else ():
            for book in sorted(spk.iterdir()) if spk.is_dir() else ():
                for f in sorted(book.iterdir()) if book.is_dir() else ():
                    if f.suffix in (".flac", ".opus", ".wav"):
                        return f.suffix
        return ".flac"
