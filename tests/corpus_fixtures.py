"""A generic builder of corpus fixtures from the shared real clips.

``Clips(shared)`` hands out real 16 kHz speech clips (with their transcripts) from
``../shared/data/real-speech``; ``put(dest, i)`` writes clip ``i`` at ``dest`` in the
format its extension names (wav copied byte for byte, flac/mp3 re-encoded), so every
recipe's test builds its corpus in the exact layout at test time and nothing is copied
into the repository.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path
from typing import List, Tuple

import soundfile as sf


class Clips:
    def __init__(self, shared: Path):
        root = shared / "data" / "real-speech"
        rows = [json.loads(line) for line in (root / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
        # 16 kHz mono clips, shortest first: fast to read and encode.
        rows = [r for r in rows if r["sample_rate"] == 16000]
        rows.sort(key=lambda r: (r["duration"], r["path"]))
        self.rows = rows
        self.root = root

    def path(self, i: int) -> Path:
        return self.root / self.rows[i % len(self.rows)]["path"]

    def text(self, i: int) -> str:
        return self.rows[i % len(self.rows)]["text"]

    def put(self, dest: Path, i: int = 0) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        src = self.path(i)
        if dest.suffix.lower() == src.suffix.lower():
            shutil.copyfile(src, dest)
        else:
            data, sr = sf.read(str(src), dtype="float32")
            fmt = {".mp3": "MP3", ".flac": "FLAC", ".wav": "WAV"}[dest.suffix.lower()]
            sf.write(str(dest), data, sr, format=fmt)
        return dest


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


def tar_folder(tar_path: Path, members: List[Tuple[str, Path]], gz: bool) -> Path:
    """A tar (gz or not) holding ``(arcname, file)`` pairs in the given order."""
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tar_path, "w:gz" if gz else "w", format=tarfile.USTAR_FORMAT) as tf:
        for arcname, src in members:
            tf.add(str(src), arcname=arcname)
    return tar_path


def tar_bytes(tar_path: Path, members: List[Tuple[str, bytes]]) -> Path:
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tar_path, "w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return tar_path
