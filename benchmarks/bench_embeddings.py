"""What speaker embeddings cost in annotate: with vs without, per audio-hour, side by side.

    python benchmarks/bench_embeddings.py [--n 300] [--repeat 2] [--data ../shared/data/voxbox-m3ed]

Four runs of `annotate_manifest` (1 worker) on the same clips, records without a gender:

- "no embedding": the earlier F0 gender model (``--gender-model voxbox-gender-f0-v1``),
  so no embedding is computed at all: the cost of annotate before embeddings;
- "default": the shipped gender model, which needs the GE2E embedding of every clip it
  labels (computed in batches, not stored);
- "--embeddings": the default plus the embedding stored in every record (float16);
- "GE2E alone": the encoder on the front end's speech, nothing else (the kernel).

Ratios: default / no embedding and --embeddings / no embedding (the price of the new
gender model and of stored embeddings), plus CPU-seconds per audio-hour of each.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import Harness, cpu_timed, m3ed_arguments, m3ed_rows  # noqa: E402



def main() -> None:
    args = m3ed_arguments(__doc__).parse_args()

    import torch

    from voxbox.annotate.embeddings import GE2EEncoder
    from voxbox.annotate.frontend import front_end
    from voxbox.annotate.runner import annotate_manifest
    from voxbox.manifest import write_manifest
    from voxbox.record import Utterance

    torch.set_num_threads(1)  # one core, as each annotate worker runs
    rows, paths, seconds = m3ed_rows(args.data, args.n)
    audio_root = args.data / "audios"
    h = Harness("embeddings")
    h.note(f"{len(rows)} clips, {seconds / 3600:.3f} h of audio from {args.data.name}, 1 worker, 1 torch thread")
    cpu: dict = {}

    encoder = GE2EEncoder()
    speeches = [front_end(p).speech for p in paths]

    def ge2e_alone():
        for k in range(0, len(speeches), 8):
            encoder.embed_batch(speeches[k:k + 8])

    with tempfile.TemporaryDirectory() as tmp:
        man = Path(tmp) / "in.jsonl"
        write_manifest(man, [Utterance(index=r["index"], text=r["text"], source_path=r["wav_path"],
                                       corpus_root=str(audio_root)) for r in rows])
        runs = {
            "no embedding (F0 gender model)": dict(gender_model="voxbox-gender-f0-v1"),
            "default (GE2E gender model)": {},
            "--embeddings (stored)": dict(embeddings=True),
        }
        annotate_manifest(man, Path(tmp) / "warm.jsonl", workers=1)  # page cache, imports, weights
        got = {}
        for label, opts in runs.items():
            out = Path(tmp) / f"{len(got)}.jsonl"
            run = cpu_timed(cpu, label, lambda o=opts, out=out: annotate_manifest(man, out, **o))
            got[label] = h.measure(label, run, audio_seconds=seconds, items=len(rows), repeat=args.repeat)
            h.note(f"{label}: output manifest {out.stat().st_size / 1e6:.2f} MB")
        alone = h.measure("GE2E alone (batches of 8)", cpu_timed(cpu, "GE2E alone (batches of 8)", ge2e_alone),
                          audio_seconds=seconds, items=len(rows), repeat=args.repeat)
    base = got["no embedding (F0 gender model)"]
    h.ratio("default / no embedding", got["default (GE2E gender model)"], base)
    h.ratio("--embeddings / no embedding", got["--embeddings (stored)"], base)
    h.ratio("GE2E alone / no embedding", alone, base)
    for label, m in list(got.items()) + [("GE2E alone (batches of 8)", alone)]:
        h.note(f"{label}: {m.seconds / (seconds / 3600):.0f} wall-s and {cpu[label] / (seconds / 3600):.0f} "
               f"CPU-s per audio-hour ({m.audio_hours_per_core_hour:.0f} audio-hours per core-hour)")
    h.note(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    h.report()


if __name__ == "__main__":
    main()
