"""IEMOCAP: ``Session<N>/sentences/wav/<dialog>/<utt>.wav`` + ``dialog/EmoEvaluation`` and
``dialog/transcriptions`` per dialogue.

Layout facts: spec/voxbox-sources.md gives 10 speakers, emotion and VAD, restricted
licence [S11]. The folder names, the EmoEvaluation summary lines
(``[start - end]<TAB><utt><TAB><emo><TAB>[V, A, D]``), the transcription lines
(``<utt> [start-end]: text``), the speaker's sex as the letter before the turn number
(``Ses01F_impro01_F000``) and the codes neu, hap, exc, sad, ang, fru, fea, sur, dis, oth,
xxx are IEMOCAP's release format as nkululeko [S11] reads it, NOT CHECKED against the
release's own README. ``xxx`` (no majority) maps to NO-AGREEMENT; ``fru`` and ``oth`` have
no VoxBox class and map to UNKNOWN (the code stays in ``native_emotion``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from voxbox.errors import VoxboxError
from voxbox.sources.corpora.base import Item, Recipe, read_table_lines, reject, unexplained, walk

EMOTIONS = {"neu": "NEUTRAL", "hap": "HAPPY", "exc": "EXCITED", "sad": "SAD", "ang": "ANGRY",
            "fea": "FEARFUL", "sur": "SURPRISED", "dis": "DISGUSTED", "xxx": "NO-AGREEMENT",
            "fru": "UNKNOWN", "oth": "UNKNOWN"}
_EVAL = re.compile(r"^\[[\d.]+ - [\d.]+\]\t(?P<utt>\S+)\t(?P<emo>\w+)\t\[(?P<vad>[^\]]*)\]")
_TRANS = re.compile(r"^(?P<utt>Ses\S+) \[[\d.]+-[\d.]+\]: ?(?P<text>.*)$")
_UTT = re.compile(r"^Ses\d{2}[FM]_\w+_(?P<g>[FM])\d{3}$")


class IEMOCAP(Recipe, name="iemocap", subsets="Session1 ... Session5", emotional=True,
                      top_dirs=("IEMOCAP_full_release",)):

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        sessions = sorted(p.name for p in base.glob("Session[1-5]") if p.is_dir())
        if not sessions:
            raise VoxboxError(f"iemocap: no Session1..Session5 folder under {base}")
        for s in self.check_subsets(subsets, sessions):
            labels, texts = self._tables(base / s / "dialog")
            for p in walk(base, f"{s}/sentences/wav"):
                utt = p.rsplit("/", 1)[-1][:-4]
                m = _UTT.match(utt)
                if not p.endswith(".wav") or not m or p.count("/") != 4:
                    yield unexplained(p)
                    continue
                if not texts.get(utt):
                    yield reject(p, "missing_transcript", f"{utt} not in {s}/dialog/transcriptions", self.name)
                    continue
                emo, vad = labels.get(utt, (None, None))
                yield Item(p, {"speaker": utt[:5] + m.group("g"), "gender": "female" if m.group("g") == "F" else "male",
                               "text": texts[utt], "emotion": EMOTIONS.get(emo or "", "UNKNOWN")},
                           {"native_emotion": emo, "vad": vad, "session": s})

    @staticmethod
    def _tables(dialog: Path) -> Tuple[Dict[str, tuple], Dict[str, str]]:
        labels: Dict[str, tuple] = {}
        texts: Dict[str, str] = {}
        for f in sorted((dialog / "EmoEvaluation").glob("*.txt")):
            for line in read_table_lines(f)[0]:
                m = _EVAL.match(line)
                if m:
                    vad = [float(v) for v in m.group("vad").split(",") if v.strip()]
                    labels[m.group("utt")] = (m.group("emo"), vad)
        for f in sorted((dialog / "transcriptions").glob("*.txt")):
            for line in read_table_lines(f)[0]:
                m = _TRANS.match(line.strip())
                if m and m.group("text").strip():
                    texts[m.group("utt")] = " ".join(m.group("text").split())
        return labels, texts
