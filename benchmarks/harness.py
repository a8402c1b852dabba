"""A small common harness for side-by-side benchmarks.

Every benchmark measures its candidate and its baseline in the same process (or the
same invocation), so ratios compare like with like on the same machine state:

    h = Harness("annotate")
    base = h.measure("bare kernels", fn_a, audio_seconds=secs, items=n)
    cand = h.measure("voxbox annotate", fn_b, audio_seconds=secs, items=n)
    h.ratio("overhead", cand, base)
    h.report()        # prints a table and writes benchmarks/results/<name>.json

Figures: wall seconds, audio-hours per wall-second (and per core-hour when the
caller says how many cores it used), items/s, and peak RSS of this process and its
children (resource.getrusage: a high-water mark, so measure the larger run last or
in a fresh process).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List

RESULTS = Path(__file__).resolve().parent / "results"


def peak_rss_mb(children: bool = True) -> float:
    """Peak resident set size in MiB (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if children else 0
    return max(own, kids) / 1024.0


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children."""
    return sum(resource.getrusage(w).ru_utime + resource.getrusage(w).ru_stime
               for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


def cpu_timed(into: Dict[str, float], label: str, fn: Callable[[], Any]) -> Callable[[], None]:
    """Wrap fn so that its CPU seconds land in into[label]. Wall time on a shared machine
    depends on the neighbours; CPU seconds (this process + finished workers) show the work."""
    def run() -> None:
        t0 = cpu_seconds()
        fn()
        into[label] = cpu_seconds() - t0
    return run


def m3ed_arguments(doc: str):
    """The options of the benchmarks that run on the shared M3ED sample (annotate, embeddings)."""
    import argparse

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300, help="clips to use (default 300)")
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "voxbox-m3ed",
                    help="a folder with m3ed.jsonl and audios/ (default: the shared M3ED sample)")
    ap.add_argument("--repeat", type=int, default=2, help="runs per measurement; the fastest counts (default 2)")
    return ap


def m3ed_rows(data: Path, n: int):
    """(rows, audio paths, total audio seconds) of the first n clips of an M3ED-layout folder."""
    import soundfile as sf

    rows = [json.loads(line) for line in (data / "m3ed.jsonl").read_text(encoding="utf-8").splitlines() if line][:n]
    paths = [data / "audios" / r["wav_path"] for r in rows]
    return rows, paths, sum(sf.info(str(p)).duration for p in paths)


def parse_one_thread(ap):
    """Add ``--repeat`` (best of N runs), parse, and keep OpenMP/BLAS to one thread (the
    per-core figures of the single-thread benchmarks)."""
    ap.add_argument("--repeat", type=int, default=1, help="best of this many runs")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return args


@dataclass
class Measurement:
    label: str
    seconds: float
    audio_seconds: float = 0.0
    items: int = 0
    cores: int = 1
    peak_rss_mb: float = 0.0
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def audio_hours_per_s(self) -> float:
        return self.audio_seconds / 3600.0 / self.seconds if self.seconds else 0.0

    @property
    def audio_hours_per_core_hour(self) -> float:
        return self.audio_seconds / (self.seconds * self.cores) if self.seconds else 0.0

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0

    def row(self) -> dict:
        d = asdict(self)
        d.update(audio_hours_per_s=self.audio_hours_per_s,
                 audio_hours_per_core_hour=self.audio_hours_per_core_hour,
                 items_per_s=self.items_per_s)
        return d


class Harness:
    def __init__(self, name: str):
        self.name = name
        self.measurements: List[Measurement] = []
        self.ratios: Dict[str, float] = {}
        self.notes: List[str] = []

    def measure(self, label: str, fn: Callable[[], Any], *, audio_seconds: float = 0.0,
                items: int = 0, cores: int = 1, repeat: int = 1, **extra: Any) -> Measurement:
        """Run fn `repeat` times and keep the fastest run (least disturbed by noise)."""
        best = None
        for _ in range(max(1, repeat)):
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
        m = Measurement(label, best, audio_seconds, items, cores, peak_rss_mb(), dict(extra))
        self.measurements.append(m)
        print(f"  {label}: {best:.2f} s", file=sys.stderr)
        return m

    def add(self, m: Measurement) -> Measurement:
        self.measurements.append(m)
        return m

    def ratio(self, label: str, a: Measurement, b: Measurement, by: str = "seconds") -> float:
        """a/b of wall time (default) or of a throughput attribute."""
        va, vb = getattr(a, by), getattr(b, by)
        r = va / vb if vb else float("inf")
        self.ratios[label] = r
        return r

    def note(self, text: str) -> None:
        self.notes.append(text)

    def report(self) -> dict:
        out = {
            "benchmark": self.name,
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                         "platform": platform.platform()},
            "measurements": [m.row() for m in self.measurements],
            "ratios": self.ratios,
            "notes": self.notes,
        }
        print(f"\n== {self.name} ==")
        print(f"{'label':40s} {'seconds':>9s} {'audio h/s':>10s} {'items/s':>9s} {'peak MiB':>9s}")
        for m in self.measurements:
            print(f"{m.label:40s} {m.seconds:9.2f} {m.audio_hours_per_s:10.4f} {m.items_per_s:9.1f} {m.peak_rss_mb:9.0f}")
        for k, v in self.ratios.items():
            print(f"ratio {k}: {v:.3f}")
        for n in self.notes:
            print(f"note: {n}")
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{self.name}.json").write_text(json.dumps(out, indent=2))
        return out
