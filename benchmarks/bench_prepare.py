"""`voxbox prepare libritts` against `lhotse prepare libritts` on the same tree.

Builds a LibriTTS-shaped tree (anchors.md 4.2): a few hundred distinct short 24 kHz
WAVs, hard-linked into the real layout (subset/speaker/chapter/<utt>.wav with
.normalized.txt/.original.txt sidecars, <spk>_<chapter>.trans.tsv/.book.tsv,
speakers.tsv and SPEAKERS.txt) until it holds --utterances files. Both tools read
audio headers only and write a manifest; each is measured in-process (library call,
fresh output folder, best of --repeat) and end to end through its CLI (interpreter
start-up and imports included).

    python benchmarks/bench_prepare.py --utterances 5736 --distinct 240
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Harness  # noqa: E402

WORDS = ("the quick brown fox jumps over a lazy dog while seven tired readers count "
         "twelve old books in the quiet library near morning").split()


def build_tree(root: Path, n_utts: int, n_distinct: int, speakers: int = 40, seed: int = 1234) -> float:
    """Returns the total audio seconds of the tree."""
    rng = np.random.default_rng(seed)
    src = root / "_distinct"
    src.mkdir(parents=True)
    lengths = []
    for i in range(n_distinct):
        n = int(24000 * rng.uniform(1.0, 4.0))
        t = np.arange(n) / 24000
        x = 0.2 * np.sin(2 * np.pi * rng.uniform(90, 300) * t) + 0.01 * rng.standard_normal(n)
        sf.write(str(src / f"{i}.wav"), x.astype("float32"), 24000, subtype="PCM_16")
        lengths.append(n / 24000)
    base = root / "LibriTTS"
    subset = base / "dev-clean"
    per_spk = -(-n_utts // speakers)
    spk_ids = [str(100 + 37 * s) for s in range(speakers)]
    base.mkdir()
    (base / "speakers.tsv").write_text("READER\tGENDER\tSUBSET\tNAME\n" + "".join(
        f"{s}\t{'F' if k % 2 else 'M'}\tdev-clean\tReader {s}\n" for k, s in enumerate(spk_ids)))
    (base / "SPEAKERS.txt").write_text(";ID  |SEX| SUBSET           |MINUTES| NAME\n" + "".join(
        f"{s:<5}| {'F' if k % 2 else 'M'} | dev-clean        | 25.00 | Reader {s}\n" for k, s in enumerate(spk_ids)))
    total, made = 0.0, 0
    for s in spk_ids:
        for c in range(4):
            chapter = str(1000 + int(s) * 3 + c)
            d = subset / s / chapter
            d.mkdir(parents=True)
            rows, book = [], []
            for u in range(-(-per_spk // 4)):
                if made >= n_utts:
                    break
                utt = f"{s}_{chapter}_{u:06d}_000000"
                k = int(rng.integers(n_distinct))
                os.link(src / f"{k}.wav", d / f"{utt}.wav")
                text = " ".join(rng.choice(WORDS, size=int(rng.integers(4, 14)))).capitalize() + "."
                (d / f"{utt}.normalized.txt").write_text(text)
                (d / f"{utt}.original.txt").write_text(text)
                rows.append(f"{utt}\t{text}\t{text}\n")
                book.append(f"{utt}\t{text}\t{text}\t1\t1\t{rng.uniform(10, 40):.3f}\n")
                total += lengths[k]
                made += 1
            (d / f"{s}_{chapter}.trans.tsv").write_text("".join(rows))
            (d / f"{s}_{chapter}.book.tsv").write_text("".join(book))
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--utterances", type=int, default=5736, help="files in the tree (default 5736, dev-clean size)")
    ap.add_argument("--distinct", type=int, default=240, help="distinct WAVs hard-linked into it (default 240)")
    ap.add_argument("--workers", type=int, default=4, help="voxbox header-reading threads (default 4)")
    ap.add_argument("--repeat", type=int, default=2, help="runs per measurement, best kept (default 2)")
    ap.add_argument("--workdir", type=Path, default=None, help="where to build the tree (default: a temp dir)")
    args = ap.parse_args()

    from lhotse.recipes.libritts import prepare_libritts

    from voxbox.sources.prepare import prepare_manifest

    work = Path(tempfile.mkdtemp(prefix="bench_prepare_", dir=args.workdir))
    try:
        t0 = time.perf_counter()
        secs = build_tree(work, args.utterances, args.distinct)
        print(f"tree: {args.utterances} utterances, {secs / 3600:.2f} h, built in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
        h = Harness("prepare")
        h.note(f"LibriTTS-shaped tree: {args.utterances} utts ({secs / 3600:.2f} h), {args.distinct} distinct "
               f"24 kHz WAVs hard-linked; warm page cache; lhotse num_jobs=1, voxbox workers={args.workers}")
        runs = {"n": 0}

        def out_dir() -> Path:
            runs["n"] += 1
            d = work / f"out{runs['n']}"
            d.mkdir()
            return d

        def lhotse_lib():
            m = prepare_libritts(work / "LibriTTS", dataset_parts=["dev-clean"], output_dir=out_dir(), num_jobs=1)
            assert len(m["dev-clean"]["recordings"]) == args.utterances

        def voxbox_lib():
            s = prepare_manifest("libritts", work, out_dir() / "m.jsonl.gz", subsets=["dev-clean"],
                                 workers=args.workers)
            assert s.records == args.utterances and s.rejected == 0, s.line()

        def voxbox_lib_1():
            s = prepare_manifest("libritts", work, out_dir() / "m.jsonl.gz", subsets=["dev-clean"], workers=1)
            assert s.records == args.utterances

        lhotse_cli = [sys.executable, "-m", "lhotse.bin.lhotse", "prepare", "libritts", "-j", "1", "-p", "dev-clean"]
        lhotse_exe = shutil.which("lhotse")
        if lhotse_exe:
            lhotse_cli = [lhotse_exe, "prepare", "libritts", "-j", "1", "-p", "dev-clean"]

        def lhotse_cmd():
            subprocess.run(lhotse_cli + [str(work / "LibriTTS"), str(out_dir())], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def voxbox_cmd():
            subprocess.run([sys.executable, "-m", "voxbox", "prepare", "libritts", "--root", str(work),
                            "-s", "dev-clean", "--out", str(out_dir() / "m.jsonl.gz"), "-j", str(args.workers)],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        n = args.utterances
        lib_l = h.measure("lhotse prepare_libritts (library, j=1)", lhotse_lib, audio_seconds=secs, items=n, repeat=args.repeat)
        lib_v = h.measure(f"voxbox prepare_manifest (library, {args.workers} threads)", voxbox_lib,
                          audio_seconds=secs, items=n, repeat=args.repeat)
        lib_v1 = h.measure("voxbox prepare_manifest (library, 1 thread)", voxbox_lib_1,
                           audio_seconds=secs, items=n, repeat=args.repeat)
        cli_l = h.measure("lhotse prepare libritts -j 1 (CLI)", lhotse_cmd, audio_seconds=secs, items=n, repeat=args.repeat)
        cli_v = h.measure("voxbox prepare libritts (CLI)", voxbox_cmd, audio_seconds=secs, items=n, repeat=args.repeat)
        h.ratio("library: voxbox/lhotse wall time", lib_v, lib_l)
        h.ratio("library: voxbox 1 thread/lhotse wall time", lib_v1, lib_l)
        h.ratio("CLI: voxbox/lhotse wall time", cli_v, cli_l)
        h.note("ratio < 1 means voxbox is faster; both read headers only (soundfile) and write a manifest")
        h.report()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
