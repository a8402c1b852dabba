"""Fine-tuning throughput of ``voxbox train sparktts``: tokens/s, full vs LoRA, side by side.

Builds a randomly initialised LLM in the released layout next to the tiny BiCodec
fixture (``--size tiny``: the test model; ``--size full``: the released 0.5B Qwen2
shape, random weights) and a built dataset of random BiCodec tokens (``--sem-len``
semantic tokens per record, 50 = 1 s of audio), then runs the real command path
(examples, packing, transformers' Trainer) for ``--steps`` optimizer steps in each mode.

    python benchmarks/bench_train.py --device cpu --size tiny --steps 12
    python benchmarks/bench_train.py --device cuda --size full --dtype bfloat16 --batch-tokens 8192 --steps 30

Figures: tokens/s (every id of the packed batches; ``target`` = ids the loss counts)
as the median of the per-step logs after the first (start-up) step, and peak memory (GPU: torch's allocator high-water mark; CPU:
the process's peak RSS, a high-water mark over both modes, so LoRA runs first).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from benchmarks.harness import Harness, Measurement, peak_rss_mb  # noqa: E402
from benchmarks.bench_tts import SIZES, llm_arguments  # noqa: E402


def run_mode(mode: str, args, model_dir: Path, data: Path, out: Path) -> Measurement:
    import torch

    from voxbox.sparktts.train import TrainConfig, train_sparktts

    cfg = TrainConfig(model_dir=str(model_dir), out=str(out), lora=mode == "lora", max_steps=args.steps,
                      batch_tokens=args.batch_tokens, max_tokens=args.batch_tokens, grad_accum=1,
                      device=args.device, dtype=args.dtype, logging_steps=1, save_steps=10 ** 9,
                      eval_control=False, val_splits=(), codec_files="symlink",
                      gradient_checkpointing=args.gradient_checkpointing)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    summary = train_sparktts([data], cfg, echo=lambda m: print(f"  {m}", file=sys.stderr))
    steps = [h for h in summary["history"] if "tokens_per_s" in h]
    steady = steps[1:] or steps
    tokens = statistics.median(h["tokens_per_s"] for h in steady)
    targets = statistics.median(h["target_tokens_per_s"] for h in steady)
    runtime = summary["train_runtime_s"]
    gpu_mb = torch.cuda.max_memory_allocated() / 2 ** 20 if args.device.startswith("cuda") else None
    return Measurement(f"{mode} fine-tuning", runtime, items=int(round(tokens * runtime)), peak_rss_mb=peak_rss_mb(),
                       extra={"tokens_per_s": tokens, "target_tokens_per_s": targets, "steps": args.steps,
                              "batch_tokens": args.batch_tokens, "trainable": summary["parameters"]["trainable"],
                              "total_parameters": summary["parameters"]["total"], "peak_gpu_mb": gpu_mb,
                              "device": args.device, "dtype": args.dtype, "size": args.size})


def main() -> None:
    ap = llm_arguments(__doc__, "float32, or bfloat16 autocast (CUDA) [float32]")
    ap.add_argument("--steps", type=int, default=12, help="optimizer steps per mode [12]")
    ap.add_argument("--batch-tokens", type=int, default=1024, help="token budget per packed batch [1024]")
    ap.add_argument("--records", type=int, default=24, help="records (2 examples each) [24]")
    ap.add_argument("--sem-len", type=int, default=100, help="semantic tokens per record, 50 = 1 s [100]")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads [2]")
    ap.add_argument("--gradient-checkpointing", action="store_true", help="recompute activations (less memory)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from tiny_sparktts import build_tiny_sparktts, tiny_training_dataset

    h = Harness(f"train_{args.size}_{args.device.replace(':', '')}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir = build_tiny_sparktts(tmp / "model", Path(args.shared) / "fixtures" / "bicodec-tiny",
                                        **SIZES[args.size])
        data = tiny_training_dataset(tmp / "audio", tmp / "data", n_train=args.records, n_val=0,
                                     sem_len=args.sem_len)
        runs = {mode: h.add(run_mode(mode, args, model_dir, data, tmp / mode)) for mode in ("lora", "full")}
        for mode, m in runs.items():
            gpu = f", peak GPU {m.extra['peak_gpu_mb']:.0f} MiB" if m.extra["peak_gpu_mb"] else ""
            h.note(f"{mode}: {m.extra['tokens_per_s']:.0f} tokens/s ({m.extra['target_tokens_per_s']:.0f} target "
                   f"tokens/s), {m.extra['trainable']:,} of {m.extra['total_parameters']:,} parameters trained{gpu}")
        h.ratio("LoRA / full tokens/s", runs["lora"], runs["full"], by="items_per_s")
        h.note(f"load average over the run: {os.getloadavg()[1]:.1f} (1 = one busy core; this machine has "
               f"{os.cpu_count()} cores)")
        h.note(f"{args.records} records x 2 examples, {args.sem_len} semantic tokens each, batches of "
               f"<= {args.batch_tokens} tokens, {args.steps} steps per mode, {args.threads} CPU threads")
    h.report()


if __name__ == "__main__":
    main()
