"""GigaSpeech: long recordings (``audio/<source>/<P####>/<aid>.opus``) + ``GigaSpeech.json``
whose ``audios[].segments[]`` cut them into utterances. Each segment is a *span* record
(``span_offset``/``span_duration``, see :mod:`voxbox.media`): nothing is cut on disk.

Layout facts, from the corpus's own repository (github.com/SpeechColab/GigaSpeech):
``toolkits/kaldi/extract_meta.py`` reads ``GigaSpeech.json`` as ``audios[]`` with
``aid``, ``path`` (relative to the JSON file's folder), ``duration``, ``source``,
``format`` ("opus"), ``sample_rate`` (16000) and ``segments[]`` with ``sid``,
``begin_time``, ``end_time``, ``text_tn`` and ``subsets`` (e.g. ``"{XL}"``). The README
names the four punctuation tags that may appear in ``text_tn`` (``<COMMA> <PERIOD>
<QUESTIONMARK> <EXCLAMATIONPOINT>``, turned into ``, . ? !`` here) and the complete
table of garbage utterance tags (``<SIL> <MUSIC> <NOISE> <OTHER>``) that label
non-speech segments of DEV/TEST, which it recommends discarding: such a segment is a
counted skip ``non_speech_segment``.

Text stays in the corpus's upper case (GigaSpeech's ``text_tn`` is upper case; no
truecasing is guessed); ``extra["text_tn"]`` keeps the tagged original. GigaSpeech has
no speaker, gender, age or emotion labels (a segment's ``speaker`` is kept when the
JSON has one other than ``N/A``).
"""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path
from typing import Iterator, List, Optional

from voxbox.errors import VoxboxError
from voxbox.sources.corpora.base import (InputError, Item, Recipe, Skip, item_header, read_table_lines, reject)
from voxbox.sources.corpora.common import table_error

SUBSETS = ("XS", "S", "M", "L", "XL", "DEV", "TEST")
PUNCTUATION = {"<COMMA>": ",", "<PERIOD>": ".", "<QUESTIONMARK>": "?", "<EXCLAMATIONPOINT>": "!"}
GARBAGE = ("<SIL>", "<MUSIC>", "<NOISE>", "<OTHER>")
_TAG = re.compile(r"\s*(<[A-Z]+>)")
SPLITS = {"DEV": "dev", "TEST": "test"}


def clean_text(text_tn: str) -> Optional[str]:
    """``text_tn`` with punctuation tags as punctuation and garbage tags removed; None
    when nothing but garbage tags is left (a non-speech segment)."""
    def sub(m: re.Match) -> str:
        tag = m.group(1)
        if tag in PUNCTUATION:
            return PUNCTUATION[tag]
        return " " if tag in GARBAGE else m.group(0)

    text = " ".join(_TAG.sub(sub, text_tn).split())
    return text or None


class GigaSpeech(Recipe):
    name = "gigaspeech"
    subset_help = "XS, S, M, L, XL (nested training sets), DEV, TEST; default: every segment once"
    top_dirs = ("GigaSpeech",)

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        meta = base / "GigaSpeech.json"
        if not meta.is_file():
            raise VoxboxError(f"gigaspeech: no GigaSpeech.json under {base} (the corpus's metadata file)")
        audios = self._audios(meta)
        if isinstance(audios, str):
            yield table_error("GigaSpeech.json", audios, self.name)
            return
        wanted = set(self.check_subsets(subsets, list(SUBSETS))) if subsets else None
        for n, audio in enumerate(audios):
            if not isinstance(audio, dict) or not audio.get("path") or not isinstance(audio.get("segments"), list):
                yield table_error(f"GigaSpeech.json:audios[{n}]", "no path or segments", self.name)
                continue
            yield from self._recording(base, audio, wanted)

    @staticmethod
    def _audios(meta: Path):
        lines, err = read_table_lines(meta)
        if err:
            return err
        try:
            data = json.loads("\n".join(lines))
        except ValueError as e:
            return f"not JSON ({e})"
        audios = data.get("audios") if isinstance(data, dict) else None
        return audios if isinstance(audios, list) else "no audios[] list"

    def _recording(self, base: Path, audio: dict, wanted: Optional[set]) -> Iterator:
        rel = posixpath.normpath(str(audio["path"]))
        if rel.startswith("../") or posixpath.isabs(rel):
            yield table_error(f"GigaSpeech.json:{audio.get('aid')}", f"path {rel!r} leaves the corpus folder", self.name)
            return
        header = None  # read once per recording, shared by its segments
        for seg in audio["segments"]:
            if not isinstance(seg, dict) or not seg.get("sid"):
                yield table_error(f"GigaSpeech.json:{audio.get('aid')}", "a segment without sid", self.name)
                continue
            tags = [str(s).strip("{}") for s in seg.get("subsets") or []]
            if wanted is not None and not wanted.intersection(tags):
                continue
            if header is None:
                try:
                    header = item_header(base, rel, self.check_tail)
                except InputError as e:
                    header = e
            yield self._segment(rel, audio, seg, tags, header)

    def _segment(self, rel: str, audio: dict, seg: dict, tags: List[str], header):
        sid = str(seg["sid"])
        key = f"{rel}#{sid}"  # the segment's index and rejection path: the recording is shared
        try:
            begin, end = float(seg["begin_time"]), float(seg["end_time"])
        except (KeyError, TypeError, ValueError):
            return reject(key, "bad_metadata", f"segment {sid}: no numeric begin_time/end_time", self.name)
        text_tn = str(seg.get("text_tn") or "")
        text = clean_text(text_tn)
        if text is None:
            if any(t in text_tn for t in GARBAGE):
                return Skip(key, "non_speech_segment")
            return reject(key, "missing_transcript", f"segment {sid}: empty text_tn", self.name)
        speaker = seg.get("speaker")
        split = next((SPLITS[t] for t in tags if t in SPLITS), "train")
        fields = {"text": text, "utt_id": sid, "span_offset": begin, "span_duration": round(end - begin, 6), "split": split,
                  "speaker": speaker if speaker not in (None, "", "N/A") else None}
        extra = {"gigaspeech_sid": sid, "gigaspeech_aid": audio.get("aid"), "gigaspeech_subsets": tags,
                 "gigaspeech_source": audio.get("source"), "text_tn": text_tn}
        return Item(rel, fields, extra, header=header, key=key)
