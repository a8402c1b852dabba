"""Spark-TTS inference throughput: generated tokens/s and real-time factor.

Builds a randomly initialised LLM in the released layout next to the tiny BiCodec
fixture (``--size tiny``: the test model; ``--size full``: the released 0.5B Qwen2
shape, random weights) and runs controllable TTS with constrained decoding, so every
utterance has exactly ``--tokens`` semantic tokens (random weights never stop on
their own). Same-run baseline: the same texts generated one at a time (the official
code's only mode) against one left-padded batch.

    python benchmarks/bench_tts.py --device cpu --size tiny --texts 4 --tokens 100
    python benchmarks/bench_tts.py --device cuda --size full --dtype bfloat16 --texts 16 --tokens 500

RTF = wall seconds (generation + BiCodec decode) / seconds of audio produced.
The tiny BiCodec decoder is much cheaper than the real one, so RTF here is the LLM's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from benchmarks.harness import Harness  # noqa: E402

SIZES = {
    "tiny": dict(hidden=32, layers=2, heads=4, kv_heads=2, intermediate=64),
    "full": dict(hidden=896, layers=24, heads=14, kv_heads=2, intermediate=4864),
}
TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "It was a bright cold day in April, and the clocks were striking thirteen.",
    "A short one.",
]


def llm_arguments(doc: str, dtype_help: str) -> argparse.ArgumentParser:
    """The options every random-LLM benchmark shares (this one and bench_train)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:0) [cpu]")
    ap.add_argument("--dtype", default="float32", help=dtype_help)
    ap.add_argument("--size", choices=sorted(SIZES), default="tiny", help="random LLM size [tiny]")
    ap.add_argument("--shared", default=os.environ.get("VOXBOX_SHARED", str(REPO.parent / "shared")),
                    help="shared data folder holding fixtures/bicodec-tiny")
    return ap


def main() -> None:
    ap = llm_arguments(__doc__, "LLM dtype: float32 or bfloat16 [float32]")
    ap.add_argument("--texts", type=int, default=4, help="utterances per run [4]")
    ap.add_argument("--tokens", type=int, default=100, help="semantic tokens per utterance (50 = 1 s) [100]")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads [1]")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from spark_tokenize.tts import GenerationOptions, SparkTTS
    from tiny_sparktts import build_tiny_sparktts

    fixture = Path(args.shared) / "fixtures" / "bicodec-tiny"
    texts = [TEXTS[i % len(TEXTS)] for i in range(args.texts)]
    reqs = [(t, "female" if i % 2 else "male", "moderate", "moderate") for i, t in enumerate(texts)]
    head = 39  # value chain + globals + markers before the first semantic token
    new_tokens = head + args.tokens
    opts = GenerationOptions(max_new_tokens=new_tokens, seed=0, constrain=True)

    h = Harness(f"tts_{args.size}_{args.device.replace(':', '')}")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        model_dir = build_tiny_sparktts(Path(tmp) / "model", fixture, **SIZES[args.size])
        tts = SparkTTS(model_dir, device=args.device, dtype=args.dtype)
        h.note(f"built and loaded the {args.size} random model in {time.perf_counter() - t0:.1f} s "
               f"({sum(p.numel() for p in tts.model.parameters()) / 1e6:.1f} M parameters)")
        tts.control(reqs[:1], options=GenerationOptions(max_new_tokens=head + 5, seed=0, constrain=True))  # warm-up

        runs = {}

        def one_by_one():
            runs["single"] = [tts.control([r], options=opts)[0] for r in reqs]

        def batched():
            runs["batch"] = tts.control(reqs, options=opts, batch_size=len(reqs))

        for label, fn in (("one at a time", one_by_one), (f"batch of {len(reqs)}", batched)):
            m = h.measure(label, fn, items=len(reqs))
            res = runs["single" if fn is one_by_one else "batch"]
            audio = sum(r.duration for r in res)
            gen_tokens = sum(r.generated_tokens for r in res)
            gen_s = sum(r.generate_seconds for r in res) if fn is one_by_one else res[0].generate_seconds
            m.audio_seconds = audio
            m.extra.update(generated_tokens=gen_tokens, tokens_per_s=gen_tokens / m.seconds,
                           generate_seconds=gen_s, llm_tokens_per_s=gen_tokens / gen_s,
                           rtf=m.seconds / audio if audio else None, device=args.device, dtype=args.dtype,
                           size=args.size)
            h.note(f"{label}: {gen_tokens} tokens, {gen_tokens / gen_s:.0f} LLM tokens/s, "
                   f"{audio:.1f} s audio, RTF {m.seconds / audio:.3f}")
        h.ratio("batched speed-up (one-at-a-time s / batch s)", h.measurements[0], h.measurements[1])
    h.report()


if __name__ == "__main__":
    main()
