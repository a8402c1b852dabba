"""Hi-Fi TTS (openslr 109): <spk>_manifest_<clean|other>_<split>.json + audio/... .flac."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator, List, Optional

from voxbox.errors import VoxboxError
from voxbox.sources.corpora.base import Item, Recipe, is_audio, read_table_lines, reject, unexplained, walk

# Speaker genders from the Hi-Fi TTS paper (the release has no speaker file).
GENDERS = {**{s: "female" for s in ("92", "8051", "9136", "11614", "11697", "12787")},
           **{s: "male" for s in ("6097", "6670", "6671", "9017")}}
_MANIFEST = re.compile(r"^(?P<spk>\d+)_manifest_(?P<q>clean|other)_(?P<split>train|dev|test)\.json$")


class HiFiTTS(Recipe):
    name = "hifitts"
    subset_help = "clean, other (audio quality class)"
    top_dirs = ("hi_fi_tts_v0",)

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        manifests = sorted(p.name for p in base.iterdir() if _MANIFEST.match(p.name))
        if not manifests:
            raise VoxboxError(f"hifitts: no <spk>_manifest_<clean|other>_<split>.json under {base}")
        chosen = self.check_subsets(subsets, sorted({_MANIFEST.match(m).group("q") for m in manifests}))
        listed = set()
        for m in manifests:
            g = _MANIFEST.match(m)
            if g.group("q") not in chosen:
                continue
            lines, err = read_table_lines(base / m)
            if err:
                yield reject(m, "bad_metadata", err)
            for n, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    path = str(row["audio_filepath"])
                    while path.startswith("./"):
                        path = path[2:]
                except (ValueError, KeyError, TypeError) as e:
                    yield reject(f"{m}:{n}", "bad_metadata", f"line {n}: {e}")
                    continue
                if path.startswith("/") or ".." in path.split("/"):
                    yield reject(f"{m}:{n}", "bad_metadata", f"audio path {path!r} leaves the corpus folder")
                    continue
                listed.add(path)
                text = " ".join(str(row.get("text_normalized") or row.get("text") or "").split())
                if not text:
                    yield reject(path, "missing_transcript", f"{m}:{n} has no text", self.name)
                    continue
                spk = g.group("spk")
                yield Item(path, {"speaker": spk, "text": text, "split": g.group("split"),
                                  "gender": GENDERS.get(spk)},
                           {"quality": g.group("q"), "manifest": m})
        for p in walk(base, "audio") if (base / "audio").is_dir() else ():
            if p in listed:
                continue
            q = p.split("/")[1].rsplit("_", 1)[-1] if p.count("/") >= 2 else None
            if not is_audio(p) or q in chosen or q not in ("clean", "other"):
                yield unexplained(p, "not listed in any manifest" if is_audio(p) else "")
