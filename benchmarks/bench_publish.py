"""`voxbox publish` and `voxbox report` on a synthetic built folder, with baselines.

Publish runs against the test suite's local Hub-compatible server (tests/hub_server.py,
127.0.0.1, nothing leaves the machine), so the figures are client-side cost plus a
local HTTP hop, not network speed:

- first publish (everything uploaded) vs huggingface_hub's own ``upload_folder`` of
  the same files to another repo (the baseline a user would otherwise run);
- republish of the unchanged folder (the resume check: list remote, compare hashes)
  vs the first publish;
- the statistics pass the card and report share (``collect_stats``) vs a bare pyarrow
  read of the same Parquet columns;
- ``write_report`` end to end (statistics + 7 plots + HTML).

    python benchmarks/bench_publish.py --records 2000 --shard-records 200
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("VOXBOX_PROGRESS", "0")

from harness import Harness  # noqa: E402


def build(root: Path, n: int, shard_records: int) -> float:
    from voxbox.record import Utterance, make_index
    from voxbox.shards import write_dataset

    rng = np.random.default_rng(0)
    src = root / "src"
    src.mkdir(parents=True)
    levels = ("very_low", "low", "moderate", "high", "very_high")
    distinct = []
    for k in range(20):  # 20 distinct clips, hard-linked: encoding cost stays small
        p = src / f"_d{k}.wav"
        sf.write(p, (0.2 * rng.standard_normal(8000 + 400 * k)).astype(np.float32), 16000, subtype="PCM_16")
        distinct.append(p)
    recs, total = [], 0.0
    for i in range(n):
        name = f"u{i:06d}.wav"
        os.link(distinct[i % 20], src / name)
        dur = (8000 + 400 * (i % 20)) / 16000
        total += dur
        recs.append(Utterance(
            index=make_index("bench", name), corpus="bench", source_path=name, corpus_root=str(src),
            duration=dur, language="en" if i % 3 else "zh", gender="female" if i % 2 else "male",
            pitch=float(100 + i % 150), speed=float(2 + (i % 40) / 10), license="CC BY 4.0",
            pitch_level=levels[i % 5], speed_level=levels[(i // 5) % 5], text=f"utterance {i}",
            global_tokens=[int(x) for x in rng.integers(0, 4096, 32)],
            semantic_tokens=[int(x) for x in rng.integers(0, 8192, int(dur * 50))]))
    write_dataset(recs, root / "built", name="bench", shard_records=shard_records)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--shard-records", type=int, default=200)
    args = ap.parse_args()

    from huggingface_hub import HfApi
    from huggingface_hub.utils import disable_progress_bars

    from hub_server import DEFAULT_TOKEN, HubServer
    from voxbox.dataset.reader import open_dataset
    from voxbox.release.publish import publish
    from voxbox.dataset.stats import collect_stats
    from voxbox.release.report import write_report

    disable_progress_bars()
    tmp = Path(tempfile.mkdtemp(prefix="bench-publish-"))
    try:
        secs = build(tmp, args.records, args.shard_records)
        built = tmp / "built"
        ds = open_dataset(built)
        files = len(ds.shards) * len(ds.formats) + 3
        mb = sum(p.stat().st_size for p in built.rglob("*") if p.is_file()) / 1e6
        h = Harness("publish")
        h.note(f"{args.records} records, {secs / 3600:.3f} h audio, {len(ds.shards)} shards x "
               f"{len(ds.formats)} formats, {mb:.1f} MB; local test hub on 127.0.0.1")
        with HubServer() as hub:
            api = HfApi(endpoint=hub.url, token=DEFAULT_TOKEN)
            api.create_repo("alice/baseline", repo_type="dataset")
            base = h.measure("huggingface_hub upload_folder (baseline)", lambda: api.upload_folder(
                folder_path=str(built), repo_id="alice/baseline", repo_type="dataset",
                ignore_patterns=["journal.jsonl"]), audio_seconds=secs, items=files)
            first = h.measure("voxbox publish, first", lambda: publish(
                built, "alice/bench", token=DEFAULT_TOKEN, endpoint=hub.url, progress=False),
                audio_seconds=secs, items=files + 1)
            again = h.measure("voxbox publish, unchanged (resume check)", lambda: publish(
                built, "alice/bench", token=DEFAULT_TOKEN, endpoint=hub.url, progress=False),
                audio_seconds=secs, items=files + 1)
        h.ratio("first publish / upload_folder", first, base)
        h.ratio("unchanged republish / first publish", again, first)

        import pyarrow.parquet as pq

        cols = [c for c in pq.read_schema(ds.shard_files("parquet")[0]).names if c != "audio"]
        bare = h.measure("pyarrow read of the record columns (baseline)", lambda: [
            pq.read_table(str(p), columns=cols).to_pylist() for p in ds.shard_files("parquet")],
            audio_seconds=secs, items=args.records)
        stats = h.measure("collect_stats (card + report statistics)", lambda: collect_stats(ds, progress=False),
                          audio_seconds=secs, items=args.records)
        h.ratio("collect_stats / pyarrow read", stats, bare)
        h.measure("write_report (stats + plots + HTML)", lambda: write_report(built, tmp / "r.html", progress=False),
                  audio_seconds=secs, items=args.records)
        h.report()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
