"""Emilia-layout tar members read in place vs the same files extracted.

Builds an Emilia WebDataset tar (``EN/EN-B000000.tar``: ``<id>.mp3`` + ``<id>.json``
pairs; a few distinct synthetic mp3 clips repeated under new ids) and prepares it twice
with the emilia recipe, side by side in one process: members read in place (the
default: tar index + byte ranges) and ``-o extract=true`` (extracted once, before
timing, then read as files). The prepared records are identical, so the only
difference is where the bytes come from. Measured, best of ``--repeat``, warm page
cache for both:

- prepare: list the archive (or the folder) and check every audio header;
- read: every record's audio decoded (``voxbox.media.read_frames``), as annotate and
  the shard writer read it;
- raw: every record's bytes (``voxbox.media.record_bytes``), as an ``original`` shard
  stores them.

    python benchmarks/bench_archives.py --members 2000 --distinct 40
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Harness  # noqa: E402


def make_tar(root: Path, members: int, distinct: int, seed: int = 7) -> float:
    """The Emilia tar under ``root``; returns its audio seconds."""
    rng = np.random.default_rng(seed)
    clips, lengths = [], []
    for i in range(distinct):
        n = int(24000 * rng.uniform(2.0, 6.0))
        t = np.arange(n) / 24000
        x = 0.2 * np.sin(2 * np.pi * rng.uniform(90, 300) * t) + 0.01 * rng.standard_normal(n)
        buf = root / f"_clip{i}.mp3"
        sf.write(str(buf), x.astype("float32"), 24000, format="MP3")
        clips.append(buf.read_bytes())
        lengths.append(n / 24000)
    tar = root / "EN" / "EN-B000000.tar"
    tar.parent.mkdir(parents=True)
    total = 0.0
    with tarfile.open(tar, "w", format=tarfile.USTAR_FORMAT) as tf:
        for k in range(members):
            uid = f"EN_B00000_S{k // 100:05d}_W{k % 100:06d}"
            meta = json.dumps({"id": uid, "wav": f"{uid}.mp3", "text": "the quick brown fox", "duration":
                               lengths[k % distinct], "speaker": uid[:16], "language": "en", "dnsmos": 3.3}).encode()
            for name, data in ((f"{uid}.json", meta), (f"{uid}.mp3", clips[k % distinct])):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, __import__("io").BytesIO(data))
            total += lengths[k % distinct]
    for p in root.glob("_clip*.mp3"):
        p.unlink()
    return total


def prepare(root: Path, extract: bool):
    from voxbox.record import Utterance
    from voxbox.sources.corpora import get_recipe

    return [r for r in get_recipe("emilia", extract=extract).prepare(root, workers=2) if isinstance(r, Utterance)]


def read_all(recs) -> int:
    from voxbox import media

    return sum(media.read_frames(r, dtype="float32")[0].shape[0] for r in recs)


def raw_all(recs) -> int:
    from voxbox import media

    return sum(len(media.record_bytes(r)) for r in recs)


class Mode:
    """Read members in place, or the extracted copies (hiding the extraction's marker
    switches between the two without touching the records)."""

    def __init__(self, root: Path):
        self.marker = root / ".voxbox" / "extracted" / "EN" / "EN-B000000.tar" / ".voxbox-complete"
        self.hidden = self.marker.with_name("hidden-marker")

    def set(self, extracted: bool) -> None:
        from voxbox import media

        src, dst = (self.hidden, self.marker) if extracted else (self.marker, self.hidden)
        if src.exists():
            src.rename(dst)
        media.forget_archives()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=2000, help="mp3 members in the tar")
    ap.add_argument("--distinct", type=int, default=40, help="distinct synthetic clips (repeated under new ids)")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs per measurement")
    args = ap.parse_args()
    h = Harness("archives")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        secs = make_tar(root, args.members, args.distinct)
        recs = prepare(root, True)  # extracts once, outside the timing
        mode = Mode(root)
        mode.set(False)
        assert recs == prepare(root, False), "in place and extracted must give the same records"
        h.note(f"{len(recs)} mp3 members, {secs / 3600:.3f} h of audio; warm page cache for both")
        got = {}
        for phase, fn in (("prepare", lambda e: prepare(root, e)), ("read+decode", lambda e: read_all(recs)),
                          ("raw bytes", lambda e: raw_all(recs))):
            for label, extracted in (("extracted files", True), ("tar members in place", False)):
                mode.set(extracted)
                got[phase, extracted] = h.measure(f"{phase}: {label}", lambda: fn(extracted), audio_seconds=secs,
                                                  items=len(recs), repeat=args.repeat)
            h.ratio(f"{phase}: in place / extracted", got[phase, False], got[phase, True])
        mode.set(True)
    h.report()


if __name__ == "__main__":
    main()
