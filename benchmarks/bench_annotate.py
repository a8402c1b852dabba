"""Annotate throughput: `voxbox annotate` against the bare kernels, and 1 vs 2 workers.

    python benchmarks/bench_annotate.py [--n 300] [--repeat 2] [--data ../shared/data/voxbox-m3ed]

- "bare kernels": the same set-up (CMU dictionary, gender model, GE2E encoder) and
  computations (front end, WORLD pitch, syllables, loudness, GE2E embeddings in batches
  of 8 as the runner's chunks, robust F0, gender model) in a plain Python loop over the
  files: no records, no manifest, no stage;
- "annotate, 1 worker" / "annotate, 2 workers": annotate_manifest on a manifest of the
  same clips (reading, stage, writing the output manifest and rejects included).

Ratios: overhead = annotate(1 worker) / bare time (goal <= 1.15); scaling =
time(1 worker) / time(2 workers) (2.0 is linear; the workers' start-up, about a
second each for imports and the CMU dictionary, is included).
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


    import numpy as np

    from voxbox.annotate.embeddings import GE2EEncoder
    from voxbox.annotate.features import robust_f0
    from voxbox.annotate.gender import builtin_model_path
    from voxbox.labels.classifier import LabelModel
    from voxbox.annotate.loudness import integrated_lufs
    from voxbox.annotate.pitch import f0_world, import_pyworld, pitch_stats
    from voxbox.annotate.runner import annotate_manifest
    from voxbox.annotate.syllables import Syllabifier
    from voxbox.annotate.frontend import front_end
    from voxbox.record import Utterance
    from voxbox.manifest import write_manifest

    rows, paths, seconds = m3ed_rows(args.data, args.n)
    audio_root = args.data / "audios"

    def bare() -> None:
        # The same one-off set-up annotate pays (per worker), then the kernels.
        pw = import_pyworld()
        syl = Syllabifier()
        model = LabelModel.load(builtin_model_path())
        encoder = GE2EEncoder()
        for k in range(0, len(paths), 8):
            speeches, f0s = [], []
            for p, r in zip(paths[k:k + 8], rows[k:k + 8]):
                fe = front_end(p)
                sp = fe.speech
                f0 = f0_world(sp, fe.sr, pw)
                pitch_stats(f0)
                syl(r["text"])
                integrated_lufs(sp, fe.sr)
                speeches.append(sp)
                f0s.append(f0)
            for emb, f0 in zip(encoder.embed_batch(speeches), f0s):
                model.predict(emb.astype(np.float16), [robust_f0(f0)])

    cpu: dict = {}
    h = Harness("annotate")
    h.note(f"{len(rows)} clips, {seconds / 3600:.3f} h of audio from {args.data.name}; "
           "records carry no gender, so the built-in classifier runs on every clip")
    with tempfile.TemporaryDirectory() as tmp:
        man = Path(tmp) / "in.jsonl"
        write_manifest(man, [Utterance(index=r["index"], text=r["text"], source_path=r["wav_path"],
                                       corpus_root=str(audio_root)) for r in rows])
        bare()  # warm the page cache so neither side pays for the first read
        base = h.measure("bare kernels (plain loop)", cpu_timed(cpu, "bare", bare), audio_seconds=seconds,
                         items=len(rows), repeat=args.repeat)
        one = h.measure("annotate, 1 worker",
                        cpu_timed(cpu, "one", lambda: annotate_manifest(man, Path(tmp) / "o1.jsonl", workers=1)),
                        audio_seconds=seconds, items=len(rows), repeat=args.repeat)
        two = h.measure("annotate, 2 workers",
                        cpu_timed(cpu, "two", lambda: annotate_manifest(man, Path(tmp) / "o2.jsonl", workers=2)),
                        audio_seconds=seconds, items=len(rows), cores=2, repeat=args.repeat)
    h.ratio("overhead (annotate 1 worker / bare)", one, base)
    h.ratio("scaling (1 worker time / 2 workers time)", one, two)
    h.ratios["cpu overhead (annotate 1 worker / bare, CPU seconds of the last run)"] = cpu["one"] / cpu["bare"]
    h.ratios["cpu overhead (annotate 2 workers / bare, CPU seconds of the last run)"] = cpu["two"] / cpu["bare"]
    for m, key in ((base, "bare"), (one, "one"), (two, "two")):
        h.note(f"{m.label}: {m.audio_hours_per_core_hour:.0f} audio-hours per core-hour (wall), "
               f"{seconds / cpu[key]:.0f} audio-hours per CPU-hour")
    h.note(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    h.report()


if __name__ == "__main__":
    main()
