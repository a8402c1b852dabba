"""`voxbox dedup` memory and speed: the on-disk implementation against the in-memory
one it replaced (datasketch MinHashLSH, every entry in memory), side by side.

For each size a synthetic corpus (tests/dedup_corpus.py: span records over small WAVs,
stored embeddings, 2% exact copies, 2% resampled copies with re-typed text, impostors,
length mismatches) is written, then each implementation runs in a fresh process that
reports its own peak RSS (VmHWM: Linux keeps ru_maxrss across exec, so a forked child
would inherit this process's size), CPU seconds and wall time. The two reports must be
equal (less the keys the on-disk version adds), or the script stops.

    python benchmarks/bench_dedup.py --records 10000 100000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests"))  # the synthetic corpus and the in-memory implementation
from harness import Harness, Measurement  # noqa: E402

IMPLS = ("in-memory (datasketch LSH)", "on-disk (ExternalSort)")


def child(impl: str, run_items: int, out: Path, paths: list) -> None:
    """Run one implementation here and print its figures (the fresh process)."""
    from dedup_inmemory import find_duplicates_in_memory

    from voxbox.labels.dedup import DedupConfig, find_duplicates

    t0, c0 = time.perf_counter(), time.process_time()
    if impl == "old":
        report = find_duplicates_in_memory(paths)
    else:
        report = find_duplicates(paths, DedupConfig(**({"run_items": run_items} if run_items else {})))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    out.write_text(json.dumps(report))
    hwm = re.search(r"VmHWM:\s*(\d+)", Path("/proc/self/status").read_text())
    print(json.dumps({"wall": wall, "cpu": cpu, "rss_mib": int(hwm.group(1)) / 1024.0, "records": report["records"]}))


def run_child(impl: str, run_items: int, out: Path, paths: list) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, __file__, "--child", impl, str(run_items), str(out), *map(str, paths)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{impl} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def same_answers(old: dict, new: dict) -> bool:
    new = {k: v for k, v in new.items() if k != "capped_buckets"}
    new["settings"] = {k: v for k, v in new["settings"].items() if k not in ("lsh_bands", "lsh_rows", "max_bucket")}
    return new == old


def measure_size(h: Harness, n: int, tmp: Path, run_items: int) -> dict:
    from dedup_corpus import write_corpus

    folder = tmp / str(n)
    folder.mkdir()
    paths = write_corpus(folder, n, seed=11)
    got, reports = {}, {}
    for key, label in zip(("old", "new"), IMPLS):
        out = folder / f"report-{key}.json"
        r = run_child(key, run_items, out, paths)
        reports[key] = json.loads(out.read_text())
        got[key] = h.add(Measurement(f"{label}, {r['records']:,} records", r["wall"], 0.0, r["records"], 1,
                                     r["rss_mib"], {"cpu_seconds": r["cpu"]}))
        print(f"{label}: {r['records']:,} records, {r['wall']:.1f} s, {r['records'] / r['wall']:.0f} rec/s, "
              f"peak RSS {r['rss_mib']:.0f} MiB", flush=True)
    if not same_answers(reports["old"], reports["new"]):
        raise SystemExit(f"the two implementations disagree on {n} records")
    h.note(f"{n:,} base records: reports identical ({reports['new']['duplicates']} duplicates, "
           f"{reports['new']['text_candidates']} text candidates)")
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, nargs=2, default=[10_000, 100_000],
                    help="Base records of the small and the large corpus (default 10,000 and 100,000).")
    ap.add_argument("--run-items", type=int, default=0,
                    help="Items per sorted run of the on-disk version (default: the library's 250,000). A small "
                         "value puts both sizes at the sorts' memory ceiling, so their peak RSS compare like "
                         "with like; with the default the small corpus does not fill the runs.")
    ap.add_argument("--work", default=None, help="Scratch folder (default: a temporary one).")
    args = ap.parse_args()
    h = Harness("dedup")
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        small, big = (measure_size(h, n, Path(tmp), args.run_items) for n in sorted(args.records))
    h.note(f"on-disk run_items: {args.run_items or 'default (250,000)'}")
    x = f"x{big['new'].items / small['new'].items:.1f} records"
    for key in ("old", "new"):
        h.ratios[f"{key}: peak RSS {x}"] = big[key].peak_rss_mb / small[key].peak_rss_mb
        h.ratios[f"{key}: CPU time {x}"] = big[key].extra["cpu_seconds"] / small[key].extra["cpu_seconds"]
    for size, got in (("small", small), ("large", big)):
        h.ratios[f"new/old peak RSS, {size}"] = got["new"].peak_rss_mb / got["old"].peak_rss_mb
        h.ratios[f"new/old records/s, {size}"] = got["new"].items_per_s / got["old"].items_per_s
    h.report()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), sys.argv[5:])
    else:
        main()
