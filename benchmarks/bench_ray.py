"""The Ray engine against the local engine, and shard dispatch with one slow shard.

Two measurements, each side by side in one run (issue 15):

1. **Overhead.** The same build (a LibriTTS-shaped tree of ``--hours`` from
   ``bench_prepare.build_tree``, the annotate stage, no tokenizer, shards of
   ``--shard-mb``) with ``--engine local -j W`` and ``--engine ray -j W`` on this
   machine. Ray is timed *cold* once (the build starts and stops its private Ray
   instance, what a one-off ``voxbox build --engine ray`` costs) and *warm* (a Ray
   instance already up, as on a cluster); the three alternate and each
   candidate keeps its fastest. Shards must be byte-identical. Cold runs include Ray's
   start-up (about 15 s on the 2-core box) and each worker's first stage set-up.
2. **Dispatch.** ``--shards`` shards of ``--records`` records whose stage sleeps
   ``--work`` seconds per shard, except one shard in the middle that sleeps
   ``--slow`` seconds. The streaming engine (a task per shard, the next one submitted
   as soon as a slot frees) is compared with the target the issue sets, ``total work /
   workers + slow shard`` (within 10%), and with a windowed dispatcher on the same
   tasks (windows of ``2 x workers`` shards, each waiting for its slowest shard, what
   the earlier window + groupby engine did). Sleeping work measures dispatch, not the
   machine's load.

    python benchmarks/bench_ray.py --hours 1.0 --workers 2
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # this checkout's voxbox, not an installed one
# Ray workers import this module (the SleepStage) and voxbox from the same places.
os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")])

from bench_build import AVG_CLIP_S, compare  # noqa: E402
from bench_prepare import build_tree  # noqa: E402
from harness import Harness, Measurement  # noqa: E402

from voxbox.stages import Stage, StageOption  # noqa: E402


class SleepStage(Stage):
    """Benchmark-only: sleeps per record, longer for one record (the slow shard's)."""

    name = "sleep"
    options = (StageOption("seconds", float, 0.0, "sleep per record", minimum=0),
               StageOption("slow_index", str, "", "the record that sleeps slow_seconds instead"),
               StageOption("slow_seconds", float, 0.0, "its sleep", minimum=0))

    def process(self, rec):
        slow = rec.index == self.params["slow_index"]
        time.sleep(self.params["slow_seconds"] if slow else self.params["seconds"])
        return rec


def run_build(root: Path, out: Path, engine: str, workers: int, shard_mb: float, stages=None,
              shard_records: int = 100_000) -> dict:
    from voxbox.build.pipeline import Pipeline, load_pipeline
    from voxbox.build.run import build
    from voxbox.build.sources import corpus_source

    if stages is None:
        pipe = load_pipeline(stages=["annotate"], shard_mb=shard_mb, shard_records=shard_records)
    else:
        pipe = Pipeline(name="bench", stages=stages, shard_mb=shard_mb, shard_records=shard_records)
    return build(corpus_source("libritts", root=root), out, pipe, engine=engine, workers=workers)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def ray_up(workers: int) -> None:
    import ray

    ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False,
             configure_logging=False)


def overhead(h: Harness, tmp: Path, args) -> None:
    """Local, Ray warm and Ray cold builds of one tree, alternating; fastest of each kept."""
    w = args.workers
    n_utts = int(args.hours * 3600 / AVG_CLIP_S)
    secs = build_tree(tmp / "tree", n_utts, args.distinct)
    build_tree(tmp / "warm", 16, 4)
    run_build(tmp / "warm", tmp / "warm-local", "local", w, args.shard_mb)  # imports, models
    best = {}
    for rep in range(args.repeat):
        for key in ("local", "ray-warm", "ray-cold"):
            if key == "ray-warm":  # a Ray instance already up, its workers already started
                ray_up(w)
                run_build(tmp / "warm", tmp / f"warm-ray-{rep}", "ray", w, args.shard_mb)
            engine = "local" if key == "local" else "ray"
            dt = timed(lambda: run_build(tmp / "tree", tmp / f"{key}-{rep}", engine, w, args.shard_mb))
            if key == "ray-warm":
                import ray

                ray.shutdown()
            best[key] = min(best.get(key, dt), dt)
            print(f"  run {rep + 1}: {key}: {dt:.2f} s", file=sys.stderr)
    n_shards = len(list((tmp / "local-0" / "parquet").glob("*.parquet")))
    local = h.add(Measurement(f"build --engine local -j {w}", best["local"], secs, n_utts, w))
    warm = h.add(Measurement(f"build --engine ray -j {w} (Ray already up)", best["ray-warm"], secs, n_utts, w))
    cold = h.add(Measurement(f"build --engine ray -j {w} (starts Ray)", best["ray-cold"], secs, n_utts, w))
    h.ratio("Ray (warm) / local", warm, local)
    h.ratio("Ray (cold, Ray start-up included) / local", cold, local)
    h.note(f"Ray worker niceness {os.environ.get('RAY_worker_niceness', '15 (Ray default)')}")
    h.note(f"overhead build: {n_utts} utts, {secs / 3600:.2f} h, annotate, {n_shards} shards "
           f"(shard_mb {args.shard_mb:g}), {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
    h.note(f"ray and local shards byte-identical: warm {compare(tmp / 'local-0', tmp / 'ray-warm-0')}, "
           f"cold {compare(tmp / 'local-0', tmp / 'ray-cold-0')}")


def windowed_engine_factory():
    """``make_engine`` for the baseline: the Ray engine with windows of
    ``max_in_flight`` shard tasks, each window finished before the next is sent."""
    from voxbox.build.engine.ray import RayEngine

    class WindowedRayEngine(RayEngine):
        def _stream(self, items, submit, ordered):
            it = iter(items)
            while True:
                refs = [submit(x) for x in itertools.islice(it, self.max_in_flight)]
                if not refs:
                    return
                yield from [self._get(r) for r in refs]  # the window's slowest shard holds all

    def make(engine, stages, audio_format, workers, ray_address=None):
        return WindowedRayEngine(stages, audio_format, workers=workers, address=ray_address)
    return make


def slow_plan(root: Path, records: int):
    """The first record of the middle shard, as the build will plan it."""
    from voxbox.record import Utterance
    from voxbox.shards.writer import estimate_bytes, plan_shards
    from voxbox.sources.corpora import get_recipe

    recs = [r for r in get_recipe("libritts").prepare(root) if isinstance(r, Utterance)]
    plan = plan_shards(((r.index, estimate_bytes(r), r.split) for r in recs), 1e9, records)
    return plan, plan[len(plan) // 2][0]


def dispatch(h: Harness, tmp: Path, args) -> None:
    import ray

    import voxbox.build.run as run_mod

    w = args.workers
    build_tree(tmp / "dtree", args.shards * args.records, 8)
    plan, slow_index = slow_plan(tmp / "dtree", args.records)
    per = args.work / args.records
    stage = {"stage": "bench_ray:SleepStage", "requires": None,
             "params": {"seconds": per, "slow_index": slow_index, "slow_seconds": args.slow - (args.records - 1) * per}}
    go = lambda out, stages: run_build(tmp / "dtree", tmp / out, "ray", w, 1e9, stages, args.records)  # noqa: E731
    ray_up(w)
    go("d-warm", [])
    base = timed(lambda: go("d-none", []))  # the same build without the sleeps: fixed costs
    streaming = timed(lambda: go("d-stream", [stage]))
    plain = run_mod.make_engine
    run_mod.make_engine = windowed_engine_factory()
    try:
        windowed = timed(lambda: go("d-window", [stage]))
    finally:
        run_mod.make_engine = plain
    ray.shutdown()
    total = (len(plan) - 1) * args.work + args.slow
    target = total / w + args.slow
    s = h.add(Measurement(f"dispatch: streaming shard tasks, -j {w}", streaming, 0, len(plan), w))
    wd = h.add(Measurement(f"dispatch: windows of {2 * w} shards, -j {w}", windowed, 0, len(plan), w))
    t = h.add(Measurement("target: total work / workers + slow shard", target, 0, len(plan), w))
    h.add(Measurement("the same build without sleeps (fixed costs)", base, 0, len(plan), w))
    h.ratio("streaming / target (goal <= 1.10)", s, t)
    h.ratio("windowed / streaming", wd, s)
    h.note(f"dispatch: {len(plan)} shards x {args.records} records, {args.work:g} s of work per shard, "
           f"one slow shard (#{len(plan) // 2}) of {args.slow:g} s; total work {total:g} s on {w} slots; "
           f"ideal (list scheduling) max(total / workers, slow) = {max(total / w, args.slow):.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=1.0, help="audio in the overhead build (default 1.0)")
    ap.add_argument("--distinct", type=int, default=120, help="distinct clips hard-linked into the tree")
    ap.add_argument("--shard-mb", type=float, default=10.0, help="shard size of the overhead build (default 10)")
    ap.add_argument("--workers", type=int, default=2, help="-j for both engines (default 2)")
    ap.add_argument("--repeat", type=int, default=2, help="alternating runs per engine; fastest kept (default 2)")
    ap.add_argument("--shards", type=int, default=20, help="dispatch: shards (default 20)")
    ap.add_argument("--records", type=int, default=10, help="dispatch: records per shard (default 10)")
    ap.add_argument("--work", type=float, default=1.0, help="dispatch: seconds of work per shard (default 1)")
    ap.add_argument("--slow", type=float, default=8.0, help="dispatch: seconds of the slow shard (default 8)")
    ap.add_argument("--ray-niceness", default="0",
                    help="Ray worker niceness (RAY_worker_niceness). Default 0, the local engine's: Ray's own "
                         "default, 15, yields the CPU to every other process, so on a shared machine it would "
                         "measure the neighbours' load, not Ray; '' keeps Ray's default")
    ap.add_argument("--skip-overhead", action="store_true")
    ap.add_argument("--skip-dispatch", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("VOXBOX_PROGRESS", "0")
    os.environ.pop("RAY_ADDRESS", None)
    if args.ray_niceness != "":
        os.environ["RAY_worker_niceness"] = args.ray_niceness  # read by the raylets Ray starts
    h = Harness("ray")
    tmp = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    try:
        if not args.skip_overhead:
            overhead(h, tmp, args)
        if not args.skip_dispatch:
            dispatch(h, tmp, args)
        h.report()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
