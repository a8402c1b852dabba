"""HQ-Conversations (MagicData, ISCSLP 2024 challenge): long two-party conversations cut
into utterances by per-conversation transcripts with times. Each utterance is a *span*
record of its conversation (see :mod:`voxbox.media`); nothing is cut on disk.

BEST EFFORT, layout NOT CHECKED: no description of this corpus's files could be read
(spec/voxbox-sources.md lists it with "?"). The recipe reads the layout that MagicData
documents for its other conversational corpus, MagicData-RAMC (README of
github.com/HaoranMiao/MagicData-RAMC): ``WAV/<conversation>.wav`` and
``TXT/<conversation>.txt`` with one line per utterance
``[<start>,<end>]<TAB><speaker id><TAB><gender>,<dialect><TAB><text>`` (times in
seconds, gender 男/女), and an optional ``SPKINFO.txt`` (``CHANNEL SPEAKER_ID GENDER AGE
...``, tab-separated). Audio may also sit beside its transcript, as wav or flac.
Bracketed tags in the text (``[+]``, ``[*]``, ``[LAUGHTER]``, ...) are removed; a line
with nothing but tags is a counted skip ``non_speech_segment``. If the real corpus
differs, `voxbox prepare folder` or a manifest is the way in.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from voxbox.errors import VoxboxError
from voxbox.sources.corpora.base import (InputError, Item, Recipe, Skip, item_header, map_gender,
                                         read_table_lines, reject, walk)

_LINE = re.compile(r"^\[\s*(?P<start>[0-9.]+)\s*,\s*(?P<end>[0-9.]+)\s*\]\s*(?P<rest>.*)$")
_TAG = re.compile(r"\[[^\]]*\]")
_GENDER_ZH = {"男": "male", "女": "female"}
AUDIO = (".wav", ".flac")


def gender_of(value: str) -> Optional[str]:
    word = value.split(",")[0].strip()
    return _GENDER_ZH.get(word) or map_gender(word)


class HQConversations(Recipe):
    name = "hq_conversations"
    subset_help = "none (the whole corpus)"
    top_dirs = ("HQ-Conversations", "hq-conversations", "HQ_Conversations")

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        if subsets:
            self.check_subsets(subsets, [])
        files = list(walk(base))
        audio = {posixpath.splitext(posixpath.basename(p))[0]: p for p in files if p.lower().endswith(AUDIO)}
        transcripts = [p for p in files if p.endswith(".txt") and posixpath.basename(p) != "SPKINFO.txt"]
        if not transcripts:
            raise VoxboxError(f"hq_conversations: no TXT/<conversation>.txt transcripts under {base} "
                              f"(layout NOT CHECKED; see `voxbox corpora hq_conversations`)")
        genders = self._speaker_genders(base)
        used = set()
        for table in transcripts:
            stem = posixpath.splitext(posixpath.basename(table))[0]
            wav = audio.get(stem)
            if wav is None:
                yield reject(table, "missing_audio", f"no WAV/{stem}.wav for this transcript", self.name)
                continue
            used.add(wav)
            yield from self._conversation(base, table, wav, genders)
        for p in files:
            if p.lower().endswith(AUDIO) and p not in used:
                yield reject(p, "missing_transcript", "no TXT/<name>.txt for this conversation", self.name)

    @staticmethod
    def _speaker_genders(base: Path) -> Dict[str, str]:
        out: Dict[str, str] = {}
        for line in read_table_lines(base / "SPKINFO.txt")[0]:
            cols = [c.strip() for c in line.split("\t")]
            if len(cols) >= 3 and gender_of(cols[2]):
                out[cols[1]] = gender_of(cols[2])
        return out

    def _conversation(self, base: Path, table: str, wav: str, genders: Dict[str, str]) -> Iterator:
        lines, err = read_table_lines(base / table)
        if err:
            yield reject(table, "text_not_utf8" if "UTF-8" in err else "bad_metadata", err, self.name)
            return
        try:
            header = item_header(base, wav, self.check_tail)  # once per conversation
        except InputError as e:
            header = e
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            key = f"{wav}#{n}"
            m = _LINE.match(line.strip())
            cols = m["rest"].split("\t") if m else []
            if m is None or len(cols) < 2:
                yield reject(key, "bad_metadata", f"{table}:{n}: not '[start,end]<TAB>speaker<TAB>...<TAB>text'",
                             self.name)
                continue
            start, end = float(m["start"]), float(m["end"])
            text = " ".join(_TAG.sub(" ", cols[-1]).split())
            if not text:
                yield Skip(key, "non_speech_segment")
                continue
            speaker = cols[0].strip() or None
            gender = (gender_of(cols[1]) if len(cols) >= 3 else None) or genders.get(speaker or "")
            utt_id = f"{posixpath.splitext(posixpath.basename(wav))[0]}_{n:05d}"  # conversation + line
            yield Item(wav, {"text": text, "utt_id": utt_id, "speaker": speaker, "gender": gender, "span_offset": start,
                             "span_duration": round(end - start, 6)},
                       {"transcript": f"{table}:{n}", "native_text": cols[-1]}, header=header, key=key)
