"""VAD cost per audio-hour: voxbox's segmenter (`prepare folder --segment vad`: Silero's
ONNX model driven window by window with numpy, then the segment rules) vs the silero-vad
package's own `get_speech_timestamps` on its TorchScript model, side by side in one
process on the same audio: the shared real 16 kHz clips joined with 1 s of silence,
repeated to --minutes. One thread each (onnxruntime, torch).

    python benchmarks/bench_vad.py --minutes 10
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


def _audio(minutes: float) -> np.ndarray:
    root = SHARED / "data" / "real-speech"
    rows = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    clips = [sf.read(str(root / r["path"]), dtype="float32")[0] for r in rows if r["sample_rate"] == 16000]
    gap = np.zeros(16000, np.float32)
    parts, total, i = [], 0, 0
    while total < minutes * 60 * 16000:
        c = clips[i % len(clips)]
        parts += [gap, c]
        total += len(gap) + len(c)
        i += 1
    return np.concatenate(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="minutes of audio to segment")
    args = parse_one_thread(ap)
    import torch
    from silero_vad import get_speech_timestamps, load_silero_vad

    from voxbox.sources import vad

    torch.set_num_threads(1)
    audio = _audio(args.minutes)
    secs = len(audio) / 16000
    ours, jit = vad.SileroVad(), load_silero_vad(onnx=False)
    cfg = vad.VadConfig()
    found = {}

    def voxbox_run():
        found["voxbox"] = len(vad.segments(ours.track([audio]), cfg, 16000, len(audio))[0])

    def package_run():
        found["package"] = len(get_speech_timestamps(torch.from_numpy(audio), jit, threshold=cfg.threshold,
                                                     min_speech_duration_ms=1000, max_speech_duration_s=20,
                                                     min_silence_duration_ms=300, speech_pad_ms=200))

    h = Harness("vad")
    h.note(f"{secs / 60:.1f} min of audio: shared 16 kHz clips joined with 1 s of silence")
    base = h.measure("silero-vad get_speech_timestamps (JIT)", package_run, audio_seconds=secs, repeat=args.repeat)
    cand = h.measure("voxbox vad (ONNX + segment rules)", voxbox_run, audio_seconds=secs, repeat=args.repeat)
    h.ratio("voxbox / package (time)", cand, base)
    h.note(f"segments: voxbox {found['voxbox']}, package {found['package']} (same thresholds, different "
           f"min-length and split rules)")
    h.note(f"voxbox: {3600 * cand.seconds / secs:.1f} core-seconds per audio-hour "
           f"({cand.audio_hours_per_core_hour:.0f} audio-hours per core-hour)")
    h.report()


if __name__ == "__main__":
    main()
