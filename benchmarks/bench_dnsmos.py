"""DNSMOS cost per audio-hour: voxbox's dnsmos scoring vs the speechmos reference, side
by side in one process on the same clips (the shared real 16 kHz clips, each read once
before timing), one onnxruntime thread each.

    python benchmarks/bench_dnsmos.py --clips 12
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Harness, parse_one_thread  # noqa: E402

SHARED = Path(os.environ.get("VOXBOX_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=12, help="shared 16 kHz clips to score")
    args = parse_one_thread(ap)
    from speechmos import dnsmos as ref

    from voxbox.annotate.dnsmos import DNSMOS

    root = SHARED / "data" / "real-speech"
    rows = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["sample_rate"] == 16000][:args.clips]
    audio = [sf.read(str(root / r["path"]), dtype="float32")[0] for r in rows]
    secs = sum(a.shape[0] for a in audio) / 16000
    model = DNSMOS(threads=1)
    model.score(audio[0].astype(np.float64))  # warm both libraries up outside the timing
    ref.run(audio[0], 16000)
    h = Harness("dnsmos")
    h.note(f"{len(audio)} clips, {secs:.1f} s of audio; clips under 9.01 s are repeated to 9.01 s by both")
    base = h.measure("speechmos reference (a call per window)", lambda: [ref.run(a, 16000) for a in audio],
                     audio_seconds=secs, items=len(audio), repeat=args.repeat)
    cand = h.measure("voxbox dnsmos (windows batched)", lambda: [model.score(a.astype(np.float64)) for a in audio],
                     audio_seconds=secs, items=len(audio), repeat=args.repeat)
    h.ratio("voxbox / reference (time)", cand, base)
    h.note(f"voxbox: {cand.audio_hours_per_core_hour:.1f} audio-hours per core-hour, i.e. "
           f"{1 / max(cand.audio_hours_per_core_hour, 1e-9):.3f} core-hours per audio-hour")
    h.report()


if __name__ == "__main__":
    main()
