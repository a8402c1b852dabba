"""Does a build keep its tokenizer busy? Annotation on CPU workers against BiCodec on a device.

Issue 18 asks that a build tokenizing on a GPU keeps the GPU busy: the CPU annotation workers
and the tokenizer must overlap instead of taking turns. Side by side in one run, on one
LibriTTS-shaped tree (``bench_prepare.build_tree``), the same shard settings:

1. **tokenize alone**: ``build`` with only the tokenize stage, one process (what
   ``voxbox tokenize`` costs the device);
2. **annotate alone**: ``build`` with only the annotate stage on ``-j W`` CPU workers;
3. **the whole build** (annotate then tokenize) on ``-j W`` with each engine asked for
   (``local``: the tokenizer runs once in the build's process, fed by W annotating workers; ``ray``: annotate tasks on
   CPUs, tokenizer actors sized by the stage's ``num_gpus``).

Each run reports audio-hours per hour and, on CUDA, the GPU's utilisation sampled by
``nvidia-smi`` every 200 ms while it runs (mean and share of samples above 50%). The
figures of merit:

- ``overlap = whole build throughput / slower of (1) and (2)``: 1.0 when the build runs at the
  pace of its bottleneck (perfect overlap); ``1 / (1 + slower / faster)`` of it when the two
  take turns (printed as ``serial``).
- GPU utilisation of the whole build against tokenize alone.

Whole builds of the two engines must be byte-identical (checked). On a CPU-only machine the
same script runs with ``--device cpu`` (no utilisation figures): the overlap of two CPU
stages on shared cores, which shows the engine's pipelining, not a GPU's.

    python benchmarks/bench_overlap.py --device cuda --hours 2 --workers 8
    python benchmarks/bench_overlap.py --device cpu --model-dir ../shared/fixtures/bicodec-tiny \\
        --hours 0.05 --workers 2 --engines local          # a smoke run on a laptop
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # this checkout's voxbox, not an installed one
os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")])

from bench_build import AVG_CLIP_S, compare  # noqa: E402
from bench_prepare import build_tree  # noqa: E402
from harness import Harness, Measurement, peak_rss_mb  # noqa: E402


class GpuSampler:
    """``nvidia-smi`` utilisation samples (percent) of one GPU while a block runs.
    Sampling is a separate process, so it costs the build nothing."""

    def __init__(self, device: str):
        self.index = device.split(":", 1)[1] if ":" in device else "0"
        self.enabled = device.startswith("cuda") and shutil.which("nvidia-smi") is not None
        self.samples: List[float] = []

    @contextmanager
    def sampling(self) -> Iterator["GpuSampler"]:
        self.samples = []
        if not self.enabled:
            yield self
            return
        proc = subprocess.Popen(["nvidia-smi", "-i", self.index, "--query-gpu=utilization.gpu",
                                 "--format=csv,noheader,nounits", "-lms", "200"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        reader = threading.Thread(target=self._read, args=(proc,), daemon=True)
        reader.start()
        try:
            yield self
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            reader.join(timeout=10)

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            try:
                self.samples.append(float(line.strip()))
            except ValueError:
                pass  # a header or a "[N/A]"

    def summary(self) -> dict:
        if not self.samples:
            return {"gpu_util_mean": None, "gpu_busy_share": None}
        return {"gpu_util_mean": round(statistics.fmean(self.samples), 1),
                "gpu_busy_share": round(sum(s > 50 for s in self.samples) / len(self.samples), 3)}


def run_build(root: Path, out: Path, stages: List[str], args, workers: int, engine: str = "local") -> None:
    from voxbox.build.pipeline import load_pipeline
    from voxbox.build.run import build
    from voxbox.build.sources import corpus_source

    pipe = load_pipeline(stages=stages, shard_mb=args.shard_mb, model_dir=args.model_dir, device=args.device,
                         stage_params={"tokenize": {"batch_size": args.batch_size}} if "tokenize" in stages else None)
    build(corpus_source("libritts", root=root), out, pipe, engine=engine, workers=workers)


def measure(h: Harness, gpu: GpuSampler, label: str, fn, secs: float, n: int, workers: int) -> Measurement:
    with gpu.sampling():
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
    m = h.add(Measurement(label, dt, secs, n, workers, peak_rss_mb(), gpu.summary()))
    print(f"  {label}: {dt:.2f} s {m.extra}", file=sys.stderr)
    return m


def overlap_figures(h: Harness, tok: Measurement, ann: Measurement, whole: List[Measurement]) -> None:
    """How close each whole build comes to its bottleneck's pace, and what taking turns gives."""
    slow, fast = sorted((tok, ann), key=lambda m: m.seconds, reverse=True)
    serial = slow.seconds + fast.seconds  # the two stages one after the other
    h.note(f"bottleneck: {slow.label} ({slow.seconds:.1f} s); taking turns would need {serial:.1f} s, "
           f"overlap {slow.seconds / serial:.2f}")
    for m in whole:
        h.ratios[f"overlap of '{m.label}' (1.0 = at the bottleneck's pace)"] = slow.seconds / m.seconds
        if m.extra.get("gpu_util_mean") is not None and tok.extra.get("gpu_util_mean"):
            h.ratios[f"GPU utilisation of '{m.label}' / tokenize alone"] = (
                m.extra["gpu_util_mean"] / tok.extra["gpu_util_mean"])


def default_model_dir() -> Path:
    """The full-size random-weight model folder ``bench_tokenize`` writes (made once)."""
    from bench_tokenize import DEFAULT_MODEL_DIR, make_model_folder

    return make_model_folder(DEFAULT_MODEL_DIR)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="the tokenizer's device: cuda, cuda:N or cpu (default cuda)")
    ap.add_argument("--model-dir", type=Path, default=None,
                    help="Spark-TTS model folder (default: bench_tokenize's full-size random one, written once)")
    ap.add_argument("--hours", type=float, default=1.0, help="audio in the tree (default 1.0)")
    ap.add_argument("--distinct", type=int, default=120, help="distinct clips hard-linked into the tree")
    ap.add_argument("--workers", type=int, default=max(2, (os.cpu_count() or 2) // 2),
                    help="-j of the annotate-alone and whole builds (default: half the cores, at least 2)")
    ap.add_argument("--batch-size", type=int, default=None,
                    help="tokenize batch size (default: the stage's, 16 on CUDA and 1 on CPU)")
    ap.add_argument("--shard-mb", type=float, default=50.0, help="shard size (default 50)")
    ap.add_argument("--engines", default="local,ray", help="engines of the whole build (default local,ray)")
    args = ap.parse_args(argv)
    if args.batch_size is None:
        args.batch_size = 16 if args.device.startswith("cuda") else 1
    return args


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    args.model_dir = args.model_dir or default_model_dir()
    h = Harness("overlap")
    gpu = GpuSampler(args.device)
    tmp = Path(tempfile.mkdtemp(prefix="vbx-overlap-"))
    try:
        n = max(8, int(args.hours * 3600 / AVG_CLIP_S))
        secs = build_tree(tmp / "tree", n, args.distinct)
        build_tree(tmp / "warm", 8, 4)
        run_build(tmp / "warm", tmp / "warm-out", ["annotate", "tokenize"], args, 1)  # imports, caches
        w = args.workers
        tok = measure(h, gpu, f"tokenize alone (1 process, {args.device})",
                      lambda: run_build(tmp / "tree", tmp / "tok", ["tokenize"], args, 1), secs, n, 1)
        ann = measure(h, gpu, f"annotate alone (-j {w})",
                      lambda: run_build(tmp / "tree", tmp / "ann", ["annotate"], args, w), secs, n, w)
        whole = []
        for eng in [e for e in args.engines.split(",") if e]:
            whole.append(measure(h, gpu, f"annotate + tokenize, --engine {eng} -j {w}",
                                 lambda: run_build(tmp / "tree", tmp / f"whole-{eng}", ["annotate", "tokenize"],
                                                   args, w, eng), secs, n, w))
        overlap_figures(h, tok, ann, whole)
        engines = [e for e in args.engines.split(",") if e]
        if len(engines) > 1:
            h.note(f"whole builds byte-identical across engines: "
                   f"{compare(tmp / f'whole-{engines[0]}', tmp / f'whole-{engines[1]}')}")
        h.note(f"{n} utts, {secs / 3600:.3f} h, device {args.device}, tokenize batch {args.batch_size}, "
               f"{os.cpu_count()} cores, model {args.model_dir}, load average {os.getloadavg()[0]:.1f} at the end")
        return h.report()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
