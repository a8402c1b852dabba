"""`voxbox build` (CPU, no tokenizer) against the bare cost of its kernels, same run.

Builds a LibriTTS-shaped tree (``bench_prepare.build_tree``: distinct 24 kHz clips
hard-linked into the real layout) of ``--hours`` of audio, then measures in this
process:

- **bare kernels**: the libritts recipe's prepare, ``AnnotateStage.process`` per
  record, the FLAC encoding and the two shard writers, in one plain loop (no journal,
  no fsync, no engine, no progress bars);
- **voxbox build, N workers** for each N in ``--workers`` (the library call that
  ``voxbox build --corpus libritts --root TREE --stages annotate`` makes);

and reports the overhead ratio build/bare and the 1-vs-2-worker speed-up. Then, in
fresh subprocesses, the peak RSS of a shard-only build (``--stages ''``, 2 workers)
of a ``--rss-hours`` tree and of a tree 10x larger: memory should stay flat.

    python benchmarks/bench_build.py --hours 1.0 --rss-hours 0.5
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_prepare import build_tree  # noqa: E402
from harness import Harness, Measurement  # noqa: E402

AVG_CLIP_S = 2.5  # build_tree draws clip lengths uniformly in 1..4 s


def bare_kernels(root: Path, out: Path) -> int:
    from voxbox.annotate.stage import AnnotateStage
    from voxbox.sources.corpora import get_recipe
    from voxbox.record import Utterance
    from voxbox.shards.encode import EncodedSample, encode_record
    from voxbox.shards.parquet import ParquetShardWriter
    from voxbox.shards.webdataset import TarShardWriter

    recs = sorted((r for r in get_recipe("libritts").prepare(root) if isinstance(r, Utterance)),
                  key=lambda r: r.index)
    stage = AnnotateStage()
    stage.ensure_setup()
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(out / "bare.tar", "wb") as ft, open(out / "bare.parquet", "wb") as fp:
        tw, pw = TarShardWriter(ft), ParquetShardWriter(fp)
        for r in recs:
            a = stage.process(r)
            if not isinstance(a, Utterance):
                continue
            s = encode_record(a)
            if isinstance(s, EncodedSample):
                tw.write(s)
                pw.write(s)
                n += 1
        tw.close()
        pw.close()
    return n


def voxbox_build(root: Path, out: Path, workers: int, stages=("annotate",)) -> dict:
    from voxbox.build.pipeline import load_pipeline
    from voxbox.build.run import build
    from voxbox.build.sources import corpus_source

    pipe = load_pipeline(stages=list(stages), shard_mb=50)
    return build(corpus_source("libritts", root=root), out, pipe, workers=workers)


def compare(a: Path, b: Path) -> str:
    """'True', or which files and record fields differ."""
    from voxbox.dataset.reader import open_dataset

    bad = [p.relative_to(b).as_posix() for p in sorted(b.rglob("*"))
           if p.is_file() and p.suffix in (".tar", ".parquet") and (a / p.relative_to(b)).read_bytes() != p.read_bytes()]
    if not bad:
        return "True"
    fields = set()
    for x, y in zip(open_dataset(a).records(), open_dataset(b).records()):
        dx, dy = x.to_dict(), y.to_dict()
        fields |= {k for k in dx if dx[k] != dy[k]}
    return f"False: {', '.join(bad[:4])} differ; record fields that differ: {sorted(fields) or 'none'}"


def child_rss(root: str, out: str, workers: int) -> None:
    """Run in a fresh interpreter: a shard-only build; print peak RSS (MiB) as JSON."""
    t0 = time.perf_counter()
    index = voxbox_build(Path(root), Path(out), workers, stages=())
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"self_mb": own, "worker_mb": kids, "seconds": time.perf_counter() - t0,
                      "records": index["totals"]["records"], "hours": index["totals"]["hours"]}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=1.0, help="audio in the timed tree (default 1.0)")
    ap.add_argument("--distinct", type=int, default=120, help="distinct clips hard-linked into the tree")
    ap.add_argument("--workers", default="1,2", help="worker counts to time (default 1,2)")
    ap.add_argument("--rss-hours", type=float, default=0.5, help="1x size of the RSS test (10x is also run)")
    ap.add_argument("--repeat", type=int, default=2, help="alternating runs per candidate; fastest kept (default 2)")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--child-rss", nargs=3, metavar=("ROOT", "OUT", "WORKERS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_rss:
        child_rss(args.child_rss[0], args.child_rss[1], int(args.child_rss[2]))
        return
    os.environ.setdefault("VOXBOX_PROGRESS", "0")
    h = Harness("build")
    tmp = Path(tempfile.mkdtemp(prefix="bench_build_"))
    try:
        n_utts = math.ceil(args.hours * 3600 / AVG_CLIP_S)
        secs = build_tree(tmp / "tree", n_utts, args.distinct)
        h.note(f"tree: {n_utts} utterances, {secs / 3600:.2f} h, {args.distinct} distinct 24 kHz clips, "
               f"{os.cpu_count()} cores")
        # Warm-up on a tiny tree so imports and first model loads count for no one.
        build_tree(tmp / "warm", 8, 4)
        bare_kernels(tmp / "warm", tmp / "warm-bare")
        voxbox_build(tmp / "warm", tmp / "warm-out", 1)
        # Alternate candidates and keep each one's fastest run: on a shared box the load
        # changes minute to minute, and alternating spreads it over both sides.
        workers = [int(x) for x in args.workers.split(",")]
        best = {}
        for rep in range(args.repeat):
            runs = [("bare", lambda rep=rep: bare_kernels(tmp / "tree", tmp / f"bare{rep}"))]
            runs += [(w, lambda w=w, rep=rep: voxbox_build(tmp / "tree", tmp / f"out{w}-{rep}", w)) for w in workers]
            for key, fn in runs:
                t0 = time.perf_counter()
                fn()
                dt = time.perf_counter() - t0
                best[key] = min(best.get(key, dt), dt)
                print(f"  run {rep + 1}: {key}: {dt:.2f} s", file=sys.stderr)
        bare = h.add(Measurement("bare kernels (prepare+annotate+flac+write)", best["bare"], secs, n_utts, 1))
        builds = {w: h.add(Measurement(f"voxbox build --workers {w}", best[w], secs, n_utts, w)) for w in workers}
        if 1 in builds:
            h.ratio("overhead build(1 worker) / bare kernels", builds[1], bare)
        if 1 in builds and 2 in builds:
            h.ratio("speed-up 2 workers vs 1 (time 1 / time 2)", builds[1], builds[2])
            h.ratio("time 2 workers / time 1", builds[2], builds[1])
            h.note(f"1-worker and 2-worker shards byte-identical: {compare(tmp / 'out1-0', tmp / 'out2-0')}")
        if not args.skip_rss:
            for mult in (1, 10):
                n = math.ceil(args.rss_hours * mult * 3600 / AVG_CLIP_S)
                root = tmp / f"rss{mult}"
                s = build_tree(root, n, args.distinct)
                r = subprocess.run([sys.executable, __file__, "--child-rss", str(root), str(tmp / f"rss{mult}-out"), "2"],
                                   capture_output=True, text=True, check=True)
                res = json.loads(r.stdout.strip().splitlines()[-1])
                h.add(Measurement(f"shard-only build {mult}x ({s / 3600:.1f} h), 2 workers", res["seconds"], s,
                                  res["records"], 2, max(res["self_mb"], res["worker_mb"]),
                                  {"self_mb": res["self_mb"], "worker_mb": res["worker_mb"]}))
                h.note(f"{mult}x: main process peak {res['self_mb']:.0f} MiB, largest worker {res['worker_mb']:.0f} MiB")
                shutil.rmtree(root)
            m1, m10 = h.measurements[-2], h.measurements[-1]
            h.ratio("peak RSS 10x / 1x (main process)", Measurement("", 1, extra={}, peak_rss_mb=m10.extra["self_mb"]),
                    Measurement("", 1, extra={}, peak_rss_mb=m1.extra["self_mb"]), by="peak_rss_mb")
            h.ratio("peak RSS 10x / 1x (worker)", Measurement("", 1, peak_rss_mb=m10.extra["worker_mb"]),
                    Measurement("", 1, peak_rss_mb=m1.extra["worker_mb"]), by="peak_rss_mb")
        h.report()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
