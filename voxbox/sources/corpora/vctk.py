"""VCTK 0.92: wav48_silence_trimmed/<spk>/<spk>_<NNN>_mic{1,2}.flac + txt/<spk>/<spk>_<NNN>.txt."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from voxbox.errors import VoxboxError
from voxbox.sources.corpora.base import (InputError, Item, Recipe, RecipeOption, Skip, map_age_years, map_gender,
                   read_table_lines, read_text_file, reject, unexplained, walk)

AUDIO_DIRS = ("wav48_silence_trimmed", "wav48")
_NEW = re.compile(r"^(?P<spk>[ps]\d+)_(?P<num>\d{3})_(?P<mic>mic[12])\.flac$")
_OLD = re.compile(r"^(?P<spk>[ps]\d+)_(?P<num>\d{3})\.wav$")


def read_speaker_info(path: Path) -> Dict[str, Tuple[Optional[str], Optional[str], Dict[str, str]]]:
    """speaker ('p225') -> (gender, age group, {age, accent, region})."""
    out = {}
    lines, _ = read_table_lines(path)
    for line in lines:
        cols = line.split()
        if len(cols) < 3 or cols[0].upper() == "ID":
            continue
        spk = cols[0] if cols[0][0] in "ps" else f"p{cols[0]}"
        out[spk] = (map_gender(cols[2]), map_age_years(cols[1]),
                    {"native_age": cols[1], "accent": cols[3] if len(cols) > 3 else "",
                     "region": " ".join(cols[4:])})
    return out


class VCTK(Recipe):
    name = "vctk"
    options = {"mic": RecipeOption("mic1", "microphone to use: mic1, mic2 or both (0.92 layout)")}

    def find_root(self, root: Path) -> Path:
        for name in ("VCTK-Corpus-0.92", "VCTK-Corpus"):
            if (root / name).is_dir() and not (root / "txt").is_dir():
                return root / name
        return root

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        mic = self.opts["mic"]
        if mic not in ("mic1", "mic2", "both"):
            raise VoxboxError("vctk: option mic must be mic1, mic2 or both")
        audio_dir = next((d for d in AUDIO_DIRS if (base / d).is_dir()), None)
        if audio_dir is None:
            raise VoxboxError(f"vctk: no {' or '.join(AUDIO_DIRS)} folder under {base}")
        self.check_subsets(subsets, ["all"]) if subsets else None
        info = read_speaker_info(base / "speaker-info.txt") if (base / "speaker-info.txt").is_file() else {}
        for p in walk(base, audio_dir):
            name = posixpath.basename(p)
            spk_dir = p.split("/")[1] if p.count("/") == 2 else None
            m = _NEW.match(name) or _OLD.match(name)
            if not m or spk_dir != m.group("spk"):
                yield unexplained(p)
                continue
            if "mic" in m.groupdict() and mic != "both" and m.group("mic") != mic:
                yield Skip(p, "other_microphone")
                continue
            spk, num = m.group("spk"), m.group("num")
            try:
                text = read_text_file(base / "txt" / spk / f"{spk}_{num}.txt")
            except InputError as e:
                yield reject(p, e.reason, e.detail, self.name)
                continue
            gender, age, extra = info.get(spk, (None, None, {}))
            extra = dict(extra)
            if "mic" in m.groupdict():
                extra["mic"] = m.group("mic")
            # VCTK's own id names the sentence, both microphones share it (extra["mic"] tells them apart).
            yield Item(p, {"speaker": spk, "utt_id": f"{spk}_{num}", "text": text, "gender": gender, "age": age},
                       extra)
