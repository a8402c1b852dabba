"""Benchmark: batched BiCodec tokenization vs a one-clip-at-a-time loop of the same code.

Full-size architecture (BiCodec from the official config, wav2vec2-large-xlsr-53's
architecture) with random weights, so nothing is downloaded: the arithmetic and the
shapes are those of the real model, only the token values are meaningless. Both runs
tokenize the same clips (real speech from ../shared/data/real-speech when present,
else synthetic) through the public API, and the script checks that they give the same
tokens. Reports audio-seconds per second of each and the speed-up.

    python benchmarks/bench_tokenize.py --clips 8 --batch-size 8
    python benchmarks/bench_tokenize.py --device cuda --clips 64 --batch-size 32 [--dtype bfloat16]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import Harness  # noqa: E402

SHARED = Path(os.environ.get("VOXBOX_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def load_clips(n: int, max_seconds: float, seed: int = 0):
    """Up to n real-speech clips (16 kHz float64), cut to at most max_seconds; synthetic if none."""
    from spark_tokenize.audio import load_audio

    root = SHARED / "data" / "real-speech" / "audio"
    files = sorted(root.rglob("*.wav")) if root.is_dir() else []
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(n):
        if files:
            wav = load_audio(files[(i * 7) % len(files)], volume_normalize=False)
        else:
            t = np.arange(int(16000 * rng.uniform(1, max_seconds))) / 16000
            wav = 0.3 * np.sin(2 * np.pi * 150 * t) * (1 + np.sin(2 * np.pi * 3 * t)) \
                + 0.01 * rng.standard_normal(len(t))
        clips.append(wav[: int(max_seconds * 16000)])
    return clips


def build_tokenizer(device: str, dtype: str):
    import torch

    from spark_tokenize.bicodec import BiCodec, BiCodecConfig
    from spark_tokenize.features import Wav2Vec2Features, xlsr53_config
    from spark_tokenize.tokenizer import BiCodecTokenizer

    torch.manual_seed(0)
    model = BiCodec(BiCodecConfig())
    features = Wav2Vec2Features.from_config(xlsr53_config())
    return BiCodecTokenizer.from_parts(model, features, device=device, dtype=dtype)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=8, help="number of clips (default 8)")
    ap.add_argument("--max-seconds", type=float, default=8.0, help="cut clips to this length (default 8)")
    ap.add_argument("--batch-size", type=int, default=8, help="clips per padded batch (default 8)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ap.add_argument("--dtype", default="float32", help="float32 or bfloat16 (CUDA) (default float32)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement; the fastest is kept")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    clips = load_clips(args.clips, args.max_seconds)
    audio_s = sum(len(c) for c in clips) / 16000
    t0 = time.perf_counter()
    tok = build_tokenizer(args.device, args.dtype)
    print(f"built full-size BiCodec + 16-layer xlsr-53 ({args.device}, {args.dtype}) in "
          f"{time.perf_counter() - t0:.1f} s; {len(clips)} clips, {audio_s:.1f} s of audio", file=sys.stderr)

    def sync():
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    tok.tokenize(clips[0], sample_rate=16000)  # warm-up (allocator, kernels)
    results = {}

    def one_at_a_time():
        results["single"] = [tok.tokenize(c, sample_rate=16000) for c in clips]
        sync()

    def batched():
        results["batch"] = tok.tokenize_batch(clips, [16000] * len(clips), batch_size=args.batch_size)
        sync()

    h = Harness("tokenize")
    kw = dict(audio_seconds=audio_s, items=len(clips), cores=args.threads, repeat=args.repeat,
              device=args.device, dtype=args.dtype)
    base = h.measure("one clip at a time", one_at_a_time, **kw)
    cand = h.measure(f"batched (batch size {args.batch_size})", batched, batch_size=args.batch_size, **kw)
    speedup = h.ratio("batched speed-up (x)", base, cand)
    # The model alone (clips already loaded and normalised), to separate batching's effect on
    # the network from the CPU front end (decode, resample, volume normalisation).
    wavs = [tok.load(c, 16000) for c in clips]
    order = sorted(range(len(wavs)), key=lambda i: len(wavs[i]))

    def model_single():
        for w in wavs:
            tok.tokenize_wavs([w])
        sync()

    def model_batched():
        for s in range(0, len(order), args.batch_size):
            tok.tokenize_wavs([wavs[i] for i in order[s:s + args.batch_size]])
        sync()

    mbase = h.measure("model only, one clip at a time", model_single, **kw)
    mcand = h.measure(f"model only, batched ({args.batch_size})", model_batched, **kw)
    mspeed = h.ratio("model-only batched speed-up (x)", mbase, mcand)
    t0 = time.perf_counter()
    for c in clips:
        tok.load(c, 16000)
    h.note(f"front end alone (load + normalise, one thread): {audio_s / (time.perf_counter() - t0):.1f} audio-s/s")
    same = sum(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
               for a, b in zip(results["single"], results["batch"]))
    for m in (base, cand, mbase, mcand):
        h.note(f"{m.label}: {m.audio_seconds / m.seconds:.2f} audio-s/s")
    h.note(f"speed-up {speedup:.2f}x end to end, {mspeed:.2f}x model only; "
           f"identical tokens for {same}/{len(clips)} clips")
    h.note(f"device {args.device}, dtype {args.dtype}, {args.threads} CPU threads, random full-size weights")
    h.report()


if __name__ == "__main__":
    main()
