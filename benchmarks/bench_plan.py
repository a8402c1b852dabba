"""Planning at VoxBox size: `voxbox build --dry-run` on synthetic manifests of N records.

Writes a manifest of N records (no audio: paths point nowhere, header facts are in the
records, 1% dev split, 0.1% repeated indices, indices in hashed order so the sort has
work to do), then runs `python -m voxbox --json build --manifest M --dry-run` in a fresh
process per size and reads that process's own peak RSS (os.wait4) and wall time. The
ratio that matters: time(N_big) / time(N_small) against N_big / N_small (linear), and
peak RSS flat (goal < 2 GB at 10 M).

    python benchmarks/bench_plan.py --records 1000000 10000000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Harness, Measurement  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
_MIX = 0x9E3779B97F4A7C15  # odd: i -> i * MIX mod 2**64 is a bijection, so no accidental repeats


def write_manifest(path: Path, n: int) -> None:
    """N records, written as JSON lines directly (a Utterance per line would dominate)."""
    tpl = ('{"index":"syn_%016x","split":"%s","language":"en","text":"a synthetic utterance %d",'
           '"corpus":"syn","utt_id":"u%d","speaker":"s%d","source_path":"spk%d/%d.flac",'
           '"corpus_root":"/nonexistent/syn","sample_rate":16000,"num_samples":%d,"channels":1}\n')
    with open(path, "w", buffering=1 << 22) as fh:
        for i in range(n):
            key = (i * _MIX) & 0xFFFFFFFFFFFFFFFF
            if i % 1000 == 999:
                key = ((i - 1) * _MIX) & 0xFFFFFFFFFFFFFFFF  # a repeated index: rejected
            fh.write(tpl % (key, "dev" if i % 100 == 0 else "train", i, i, i % 5000, i % 5000, i,
                            16000 * (2 + i % 13)))


def run_dry(manifest: Path, work: Path) -> tuple:
    """(wall seconds, CPU seconds and peak RSS MiB of the dry-run process, its summary).
    CPU seconds (user + system) are the fair time on a shared machine."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(work), "OMP_NUM_THREADS": "1"}
    out_path = work / "summary.json"
    t0 = time.perf_counter()
    with open(out_path, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "voxbox", "-q", "--json", "build", "--manifest",
                                 str(manifest), "--dry-run"], stdout=out, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"dry run failed ({status}) on {manifest}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, json.loads(out_path.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, nargs="+", default=[1_000_000, 10_000_000],
                    help="Manifest sizes, smallest first (default: 1 M and 10 M).")
    ap.add_argument("--work", default=None, help="Scratch folder (default: a temporary one).")
    args = ap.parse_args()
    h = Harness("plan")
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        runs = []
        for n in sorted(args.records):
            m = Path(tmp) / f"m{n}.jsonl"
            t0 = time.perf_counter()
            write_manifest(m, n)
            print(f"wrote {n} records ({m.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - t0:.0f} s",
                  flush=True)
            wall, cpu, rss, summary = run_dry(m, Path(tmp))
            m.unlink()
            meas = Measurement(f"dry run {n:,} records", wall, summary["hours"] * 3600.0, n, 1, rss,
                               {"cpu_seconds": cpu, "shards": summary["shards"],
                                "rejected": summary["rejects"]["count"], "largest_shard": summary["largest_shard"]})
            h.add(meas)
            runs.append(meas)
            print(f"{n:,} records: {wall:.1f} s wall, {cpu:.1f} s CPU, peak RSS {rss:.0f} MiB, "
                  f"{summary['shards']} shards, {summary['hours']:.0f} h", flush=True)
        for small, big in zip(runs, runs[1:]):
            x = f"{big.items:,} / {small.items:,} (records x{big.items / small.items:g})"
            h.ratio(f"wall time {x}", big, small)
            h.ratios[f"CPU time {x}"] = big.extra["cpu_seconds"] / small.extra["cpu_seconds"]
            h.ratios[f"peak RSS {x}"] = big.peak_rss_mb / small.peak_rss_mb
    h.report()


if __name__ == "__main__":
    main()
