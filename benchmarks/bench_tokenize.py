"""Benchmark: voxbox's BiCodec tokenize/detokenize against the official implementation.

Side by side in one invocation, on the same full-size model folder with random weights
(official BiCodec architecture, wav2vec2-large-xlsr-53 architecture; written once to
--model-dir, nothing downloaded), the same real clips (../shared/data/real-speech),
the same thread count. Every measurement runs in a fresh process (model load excluded
from the timing, one warm-up clip first); rounds alternate which implementation goes
first, and the ratio is taken within each round, so load from other users of the
machine hits both sides alike. Reported:

- tokenize and detokenize, one clip at a time, reference vs voxbox (audio-s per s),
  voxbox batched as well; peak RSS of each process;
- tokens: voxbox vs the reference on the full-size model (must be identical), and
  voxbox vs the stored reference outputs of the shared fixture (fixtures/bicodec-tiny).

The reference is the official Spark-TTS code as packaged on PyPI (``spark-tts-lib``),
installed outside the repository by ``benchmarks/reference_env.sh``; without it the
script measures voxbox alone. On a GPU (``--device cuda``) the reference is skipped by
default and the script measures batched against one at a time, float32 and, with
``--dtype bfloat16``, the agreement of its tokens with float32.

    bash benchmarks/reference_env.sh                  # once: the reference, into /tmp/sparktts-ref
    python benchmarks/bench_tokenize.py --threads 1 --rounds 3
    python benchmarks/bench_tokenize.py --device cuda --clips 64 --batch-size 16 --dtype bfloat16
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness import Harness, Measurement  # noqa: E402

SHARED = Path(os.environ.get("VOXBOX_SHARED", ROOT.parent / "shared"))
DEFAULT_MODEL_DIR = Path(os.environ.get("VOXBOX_BENCH_CACHE", Path.home() / ".cache" / "voxbox-bench")) \
    / "bicodec-full-random"
DEFAULT_REFERENCE = Path(os.environ.get("SPARKTTS_REFERENCE", "/tmp/sparktts-ref/site"))


# -- inputs -----------------------------------------------------------------------------
def clip_files(n: int) -> list[Path]:
    """n real-speech files spread over the corpora (every 7th file, wrapping)."""
    files = sorted((SHARED / "data" / "real-speech" / "audio").rglob("*.wav"))
    if not files:
        raise SystemExit(f"no clips under {SHARED}/data/real-speech/audio (set VOXBOX_SHARED)")
    return [files[(i * 7) % len(files)] for i in range(n)]


def make_model_folder(root: Path, seed: int = 0) -> Path:
    """A Spark-TTS model folder (official layout, full size, random weights), written once."""
    if (root / "DONE").is_file():
        return root
    import torch
    import yaml
    from safetensors.torch import save_file

    from spark_tokenize.bicodec import BiCodec, BiCodecConfig, TokenizerConfig
    from spark_tokenize.bicodec.config import to_dict
    from spark_tokenize.features import xlsr53_config

    torch.manual_seed(seed)
    (root / "BiCodec").mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(yaml.safe_dump(to_dict(TokenizerConfig()), sort_keys=False))
    (root / "BiCodec" / "config.yaml").write_text(
        yaml.safe_dump({"audio_tokenizer": to_dict(BiCodecConfig())}, sort_keys=False))
    state = {k: v.contiguous() for k, v in BiCodec(BiCodecConfig()).state_dict().items()}
    save_file(state, str(root / "BiCodec" / "model.safetensors"))
    from transformers import Wav2Vec2Model

    w2v = Wav2Vec2Model(xlsr53_config())  # all 24 layers: the reference loads them all
    w2v.save_pretrained(str(root / "wav2vec2-large-xlsr-53"))
    (root / "wav2vec2-large-xlsr-53" / "preprocessor_config.json").write_text(json.dumps({
        "do_normalize": True, "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
        "padding_side": "right", "padding_value": 0.0, "return_attention_mask": True,
        "sampling_rate": 16000}))
    (root / "DONE").write_text("ok\n")
    return root


# -- one measurement, in a fresh process ------------------------------------------------------
def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_s() -> float:
    """CPU seconds of this process (user + system, all threads): wall time on a machine
    shared with others counts their load too; this counts only ours."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class _Reference:
    """The official BiCodecTokenizer, called the way cli/SparkTTS.py calls it."""

    def __init__(self, model_dir: Path, device: str):
        import torch
        from spark_tts_lib.models.audio_tokenizer import BiCodecTokenizer

        self.tok = BiCodecTokenizer(model_dir, device=torch.device(device))

    def tokenize(self, path):
        g, s = self.tok.tokenize(str(path))
        return g.reshape(-1).long().cpu().numpy(), s.reshape(-1).cpu().numpy()

    def detokenize(self, g, s):
        import torch

        return self.tok.detokenize(torch.from_numpy(g).reshape(1, 1, -1).squeeze(0),
                                   torch.from_numpy(s).reshape(1, -1))


class _Voxbox:
    def __init__(self, model_dir: Path, device: str, dtype: str):
        from spark_tokenize import BiCodecTokenizer

        self.tok = BiCodecTokenizer(model_dir, device=device, dtype=dtype)

    def tokenize(self, path):
        g, s = self.tok.tokenize(path)
        return g.reshape(-1).numpy(), s.reshape(-1).numpy()

    def detokenize(self, g, s):
        return self.tok.detokenize(g, s)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def worker(job: dict) -> dict:
    """Load one implementation, warm up, time one operation over all clips."""
    import torch

    torch.set_num_threads(job["threads"])
    t0 = time.perf_counter()
    impl = (_Reference(job["model_dir"], job["device"]) if job["impl"] == "reference"
            else _Voxbox(job["model_dir"], job["device"], job["dtype"]))
    load_s, rss_load = time.perf_counter() - t0, _rss_mb()
    files = [Path(p) for p in job["files"]]
    tokens = np.load(job["tokens"], allow_pickle=True) if job["op"] == "detokenize" else None
    out: dict = {"load_s": load_s}
    if job["op"] == "tokenize":
        impl.tokenize(files[-1])  # warm-up
        t0, c0 = time.perf_counter(), _cpu_s()
        pairs = [impl.tokenize(f) for f in files]
        _sync(job["device"])
        out["seconds"], out["cpu_s"] = time.perf_counter() - t0, _cpu_s() - c0
        out["rss_peak_mb"] = _rss_mb()  # before the batched run, whose padded batches need more
        np.savez(job["out_tokens"], **{f"g{i}": g for i, (g, _) in enumerate(pairs)},
                 **{f"s{i}": s for i, (_, s) in enumerate(pairs)})
        if job.get("batch_size", 1) > 1 and job["impl"] == "voxbox":
            out.update(_voxbox_batched_tokenize(impl.tok, files, job, pairs))
    else:
        pairs = [(tokens[f"g{i}"], tokens[f"s{i}"]) for i in range(len(files))]
        impl.detokenize(*pairs[-1])  # warm-up
        t0, c0 = time.perf_counter(), _cpu_s()
        wavs = [impl.detokenize(g, s) for g, s in pairs]
        _sync(job["device"])
        out["seconds"], out["cpu_s"] = time.perf_counter() - t0, _cpu_s() - c0
        out["rss_peak_mb"] = _rss_mb()  # before the batched run, whose padded batches need more
        np.savez(job["out_wavs"], **{f"w{i}": np.asarray(w, dtype=np.float32) for i, w in enumerate(wavs)})
        if job.get("batch_size", 1) > 1 and job["impl"] == "voxbox":
            out.update(_voxbox_batched_detokenize(impl.tok, pairs, job, wavs))
    out.update(rss_load_mb=rss_load, batched_rss_peak_mb=_rss_mb())
    return out


def _voxbox_batched_tokenize(tok, files, job, single) -> dict:
    t0 = time.perf_counter()
    got = tok.tokenize_batch(files, batch_size=job["batch_size"])
    _sync(job["device"])
    dt = time.perf_counter() - t0
    same = sum(np.array_equal(g.reshape(-1).numpy(), a) and np.array_equal(s.reshape(-1).numpy(), b)
               for (g, s), (a, b) in zip(got, single))
    return {"batched_seconds": dt, "batched_identical": int(same)}


def _voxbox_batched_detokenize(tok, pairs, job, single) -> dict:
    t0 = time.perf_counter()
    got = tok.detokenize_batch([g for g, _ in pairs], [s for _, s in pairs], batch_size=job["batch_size"])
    _sync(job["device"])
    dt = time.perf_counter() - t0
    diff = max(float(np.abs(a - b).max()) for a, b in zip(got, single))
    return {"batched_seconds": dt, "batched_max_abs_diff": diff}


def run_worker(job: dict, reference_path: Path) -> dict:
    """Run ``worker(job)`` in a fresh interpreter; the reference's packages only on its path."""
    env = dict(os.environ, OMP_NUM_THREADS=str(job["threads"]), MKL_NUM_THREADS=str(job["threads"]))
    path = [str(ROOT)] + ([str(reference_path)] if job["impl"] == "reference" else [])
    env["PYTHONPATH"] = os.pathsep.join(path + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    cmd = [sys.executable, __file__, "--worker", json.dumps(job, default=str)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{job['impl']} {job['op']} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# -- checks -----------------------------------------------------------------------------------
def fixture_conformance() -> str:
    """voxbox on the shared fixture's five real clips against the reference outputs stored there."""
    from spark_tokenize import BiCodecTokenizer

    fx = SHARED / "fixtures" / "bicodec-tiny"
    cases = json.loads((fx / "cases.json").read_text())["cases"]
    tok = BiCodecTokenizer(fx)
    same, worst = 0, 0.0
    for c in cases:
        d = fx / "cases" / c["name"]
        g, s = tok.tokenize(d / c["input"])
        eg = np.array(json.loads((d / "global_tokens.json").read_text())["tokens"]).reshape(-1)
        es = np.array(json.loads((d / "semantic_tokens.json").read_text())["tokens"]).reshape(-1)
        same += np.array_equal(g.numpy().reshape(-1), eg) and np.array_equal(s.numpy().reshape(-1), es)
        worst = max(worst, float(np.abs(tok.detokenize(eg, es) - np.load(d / "wav_rec.npy")).max()))
    return f"fixture (stored reference outputs): tokens identical for {same}/{len(cases)} cases, " \
           f"waveform max |diff| {worst:.2g} (tolerance 1e-4)"


def compare_tokens(a: Path, b: Path, n: int) -> tuple[int, int]:
    x, y = np.load(a), np.load(b)
    same = sum(np.array_equal(x[f"g{i}"], y[f"g{i}"]) and np.array_equal(x[f"s{i}"], y[f"s{i}"])
               for i in range(n))
    distinct = len(set(np.concatenate([x[f"s{i}"] for i in range(n)]).tolist()))
    return int(same), distinct


def compare_wavs(a: Path, b: Path, n: int) -> float:
    x, y = np.load(a), np.load(b)
    return max(float(np.abs(x[f"w{i}"] - y[f"w{i}"]).max()) for i in range(n))


# -- driver ------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=16, help="real-speech clips (default 16, 107 s of audio)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads, both sides (default 1)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    ap.add_argument("--ops", default="tokenize,detokenize", help="tokenize, detokenize or both")
    ap.add_argument("--batch-size", type=int, default=8, help="voxbox's batched runs (default 8; 1 = none)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ap.add_argument("--dtype", default="float32", help="voxbox dtype: float32 or bfloat16 (CUDA)")
    ap.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR,
                    help=f"random full-size model folder, written if missing (default {DEFAULT_MODEL_DIR})")
    ap.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE,
                    help="site folder holding spark_tts_lib (benchmarks/reference_env.sh); 'none' to skip")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    drive(args)


def _reference_available(args) -> bool:
    if str(args.reference) == "none" or args.device != "cpu":
        return False
    return (args.reference / "spark_tts_lib").is_dir()


def drive(args) -> None:
    files = clip_files(args.clips)
    import soundfile as sf

    audio_s = sum(sf.info(str(f)).duration for f in files)
    t0 = time.perf_counter()
    make_model_folder(args.model_dir)
    print(f"model folder {args.model_dir} ready ({time.perf_counter() - t0:.0f} s); "
          f"{len(files)} clips, {audio_s:.1f} s of audio", file=sys.stderr)
    impls = (["reference"] if _reference_available(args) else []) + ["voxbox"]
    ops = [o for o in ("tokenize", "detokenize") if o in args.ops.split(",")]
    h = Harness("tokenize")
    tmp = Path(tempfile.mkdtemp(prefix="bench_tokenize_"))
    results: dict = {(i, o): [] for i in impls for o in ops}
    if ops == ["detokenize"]:  # the tokens to decode: made once, untimed
        src = "reference" if "reference" in impls else "voxbox"
        run_worker(dict(_job(args, src, "tokenize", files, tmp, 0), batch_size=1), args.reference)
    for r in range(args.rounds):
        order = impls if r % 2 == 0 else impls[::-1]
        for op in ops:
            for impl in order:
                res = run_worker(_job(args, impl, op, files, tmp, r), args.reference)
                results[(impl, op)].append(res)
                print(f"  round {r + 1} {op:10s} {impl:9s} {audio_s / res['seconds']:.2f} audio-s/s "
                      f"({res['cpu_s']:.1f} CPU-s), peak {res['rss_peak_mb']:.0f} MiB", file=sys.stderr)
    if args.dtype != "float32" and "tokenize" in ops:
        _mixed_precision_agreement(h, args, files, tmp)
    _report(h, args, impls, ops, results, files, audio_s, tmp)


def _mixed_precision_agreement(h: Harness, args, files, tmp: Path) -> None:
    """Tokens of the --dtype run against float32 on the same device: the share of semantic
    frames that agree and the clips whose 32 global tokens are all identical."""
    job = dict(_job(args, "voxbox", "tokenize", files, tmp, 1), dtype="float32",
               out_tokens=str(tmp / "tokens_float32.npz"))
    run_worker(job, args.reference)
    a, b = np.load(tmp / "tokens_float32.npz"), np.load(tmp / "tokens_voxbox_0.npz")
    n = len(files)
    frames = sum(len(a[f"s{i}"]) for i in range(n))
    agree = sum(int((a[f"s{i}"] == b[f"s{i}"]).sum()) for i in range(n))
    glob = sum(np.array_equal(a[f"g{i}"], b[f"g{i}"]) for i in range(n))
    h.ratios[f"{args.dtype} semantic frames agreeing with float32 (%)"] = 100.0 * agree / frames
    h.note(f"{args.dtype} vs float32 on {args.device}: {agree}/{frames} semantic frames agree "
           f"({100.0 * agree / frames:.2f}%), global tokens identical for {glob}/{n} clips")


def _job(args, impl, op, files, tmp: Path, r: int) -> dict:
    # Detokenize decodes the tokens the reference made (voxbox's when there is no reference).
    src = "reference" if _reference_available(args) else "voxbox"
    return {"impl": impl, "op": op, "threads": args.threads, "device": args.device, "dtype": args.dtype,
            "model_dir": str(args.model_dir), "files": [str(f) for f in files],
            "batch_size": args.batch_size if r == 0 else 1,
            "tokens": str(tmp / f"tokens_{src}_0.npz"), "out_tokens": str(tmp / f"tokens_{impl}_{r}.npz"),
            "out_wavs": str(tmp / f"wavs_{impl}_{r}.npz")}


def _report(h: Harness, args, impls, ops, results, files, audio_s, tmp: Path) -> None:
    kw = dict(audio_seconds=audio_s, items=len(files), cores=args.threads, device=args.device)
    for op in ops:
        for impl in impls:
            runs = results[(impl, op)]
            best = min(runs, key=lambda x: x["seconds"])
            h.add(Measurement(f"{op} one at a time: {impl}", best["seconds"], audio_s, len(files), args.threads,
                              max(x["rss_peak_mb"] for x in runs),
                              dict(kw, rounds=[x["seconds"] for x in runs], cpu_s=[x["cpu_s"] for x in runs],
                                   load_s=best["load_s"],
                                   rss_after_load_mb=best["rss_load_mb"])))
        vb = results[("voxbox", op)][0]
        if "batched_seconds" in vb:
            h.add(Measurement(f"{op} batched ({args.batch_size}): voxbox", vb["batched_seconds"], audio_s,
                              len(files), args.threads, vb["batched_rss_peak_mb"], dict(kw)))
        if "reference" in impls:
            per_round = [ref["seconds"] / ours["seconds"]
                         for ref, ours in zip(results[("reference", op)], results[("voxbox", op)])]
            per_cpu = [ref["cpu_s"] / ours["cpu_s"]
                       for ref, ours in zip(results[("reference", op)], results[("voxbox", op)])]
            h.ratios[f"{op}: voxbox speed / reference speed, median of rounds"] = statistics.median(per_round)
            h.ratios[f"{op}: same, by CPU time"] = statistics.median(per_cpu)
            h.note(f"{op}: per-round ratios {', '.join(f'{x:.2f}' for x in per_round)} (wall), "
                   f"{', '.join(f'{x:.2f}' for x in per_cpu)} (CPU time)")
    _report_checks(h, args, impls, ops, results, files, tmp)
    h.note(f"{args.device}, {args.threads} thread(s), voxbox dtype {args.dtype}, random full-size weights, "
           f"{len(files)} real clips ({audio_s:.1f} s), fresh process per measurement, load excluded")
    h.report()


def _report_checks(h: Harness, args, impls, ops, results, files, tmp: Path) -> None:
    n = len(files)
    if "tokenize" in ops and "reference" in impls:
        same, distinct = compare_tokens(tmp / "tokens_reference_0.npz", tmp / "tokens_voxbox_0.npz", n)
        h.note(f"full-size model: voxbox tokens identical to the reference for {same}/{n} clips "
               f"({distinct} distinct semantic codes used)")
    if "detokenize" in ops and "reference" in impls:
        diff = compare_wavs(tmp / "wavs_reference_0.npz", tmp / "wavs_voxbox_0.npz", n)
        h.note(f"full-size model: detokenized waveforms max |voxbox - reference| {diff:.2g}")
    vb = results.get(("voxbox", "tokenize"), [{}])[0]
    if "batched_identical" in vb:
        h.note(f"voxbox batched tokens identical to one at a time for {vb['batched_identical']}/{n} clips")
    vd = results.get(("voxbox", "detokenize"), [{}])[0]
    if "batched_max_abs_diff" in vd:
        h.note(f"voxbox batched waveforms max |diff| to one at a time {vd['batched_max_abs_diff']:.2g}")
    h.note(fixture_conformance())


if __name__ == "__main__":
    main()
