"""Synthesis checks: BiCodec round trips of a built dataset, and Spark-TTS control checks.

``codec_check`` samples records of a built folder, decodes their stored tokens with
BiCodec and compares the result with the original audio (log-mel distance, F0 error,
voicing disagreement, duration difference, speaker similarity from BiCodec's own
ECAPA speaker branch). Records whose numbers are robust outliers (median/MAD z-score)
or whose token count does not fit their duration are flagged: that is how corrupt
shards and wrong tokenizers show up.

``control_check`` synthesises gender x pitch level x speed level with the controllable
prompt, annotates every output with voxbox's own annotators and tabulates requested
against measured levels.

Both write wavs, ``report.json`` and ``report.html`` into a report folder.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import random
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

from voxbox.errors import VoxboxError, first_line

SR = 16000
LOG_FLOOR = 1e-5
# Metrics checked for outliers: (the direction that is bad, the smallest spread that
# counts). The floor keeps differences below a metric's resolution from becoming
# huge z-scores when the sample is tight.
OUTLIER_METRICS = {
    "log_mel_distance": (+1, 0.05),
    "f0_rmse_cents": (+1, 10.0),
    "vuv_error": (+1, 0.01),
    "abs_duration_diff": (+1, 0.005),
    "speaker_similarity": (-1, 0.01),
}
MIN_FOR_OUTLIERS = 5  # fewer records give no usable median/MAD


# ------------------------------------------------------------------------------------
# Metrics
# ------------------------------------------------------------------------------------

def log_mel(wav: np.ndarray) -> np.ndarray:
    """(128, frames) natural-log mel magnitude with BiCodec's mel front end."""
    import torch

    from spark_tokenize.mel import MelSpectrogram

    mel = MelSpectrogram()(torch.from_numpy(np.asarray(wav, dtype=np.float32))[None])[0]
    return np.log(np.maximum(mel.numpy(), LOG_FLOOR))


def log_mel_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute log-mel difference over the common frames (nats)."""
    ma, mb = log_mel(a), log_mel(b)
    n = min(ma.shape[1], mb.shape[1])
    if n == 0:
        return float("nan")
    return float(np.mean(np.abs(ma[:, :n] - mb[:, :n])))


def f0_errors(a: np.ndarray, b: np.ndarray, backend: str = "world") -> Dict[str, Optional[float]]:
    """F0 RMSE in cents over frames voiced in both, and the voicing disagreement rate."""
    from voxbox.annotate.pitch import f0_track

    fa, fb = f0_track(np.asarray(a, np.float64), SR, backend), f0_track(np.asarray(b, np.float64), SR, backend)
    n = min(len(fa), len(fb))
    fa, fb = fa[:n], fb[:n]
    va, vb = fa > 0, fb > 0
    both = va & vb
    out: Dict[str, Optional[float]] = {
        "f0_mean_orig": float(np.mean(fa[va])) if va.any() else None,
        "f0_mean_recon": float(np.mean(fb[vb])) if vb.any() else None,
        "vuv_error": float(np.mean(va != vb)) if n else None,
        "f0_rmse_cents": None,
    }
    if both.sum() >= 5:
        cents = 1200.0 * np.log2(fb[both] / fa[both])
        out["f0_rmse_cents"] = float(np.sqrt(np.mean(cents ** 2)))
    return out


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).reshape(-1), np.asarray(b, np.float64).reshape(-1)
    den = np.linalg.norm(a) * np.linalg.norm(b)
    return float(np.dot(a, b) / den) if den > 0 else float("nan")


def robust_z(values: Sequence[Optional[float]], floor: float = 0.0) -> List[Optional[float]]:
    """0.6745 (x - median) / MAD (Iglewicz & Hoaglin); None where x is None.

    When more than half the values are equal the MAD is 0; the mean absolute deviation
    (scaled to match a normal's sigma) stands in, and with no spread at all every z is 0.
    ``floor``: the smallest sigma estimate used.
    """
    xs = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if xs.size == 0:
        return [None for _ in values]
    med = float(np.median(xs))
    mad = float(np.median(np.abs(xs - med)))
    if mad > 0:
        scale = mad / 0.6745
    else:
        meanad = float(np.mean(np.abs(xs - med)))
        scale = meanad * 1.2533
    if scale > 0:
        scale = max(scale, floor)
    out: List[Optional[float]] = []
    for v in values:
        if v is None or not np.isfinite(v):
            out.append(None)
        else:
            out.append(0.0 if scale == 0 else (v - med) / scale)
    return out


def flag_outliers(rows: List[dict], threshold: float = 3.5, frame_tolerance: int = 2,
                  min_records: int = MIN_FOR_OUTLIERS) -> None:
    """Add ``flags`` (list of reasons) to every row, in place: errors, token counts that do
    not fit the audio, and (with at least ``min_records`` measured rows) robust outliers."""
    for row in rows:
        row.setdefault("flags", [])
        if row.get("error"):
            row["flags"].append(f"error: {row['error']}")
            continue
        fd = row.get("frame_diff")
        if fd is not None and abs(fd) > frame_tolerance:
            row["flags"].append(f"token count {row['semantic_frames']} does not fit the audio "
                                f"({row['expected_frames']} expected)")
    for metric, (direction, floor) in OUTLIER_METRICS.items():
        values = [r.get(metric) if not r.get("error") else None for r in rows]
        if sum(v is not None for v in values) < min_records:
            continue
        zs = robust_z(values, floor)
        for row, z in zip(rows, zs):
            if z is None:
                continue
            row.setdefault("z", {})[metric] = round(z, 3)
            if z * direction > threshold:
                row["flags"].append(f"{metric} {'high' if direction > 0 else 'low'} (robust z {z:+.1f})")


# ------------------------------------------------------------------------------------
# Codec round trip
# ------------------------------------------------------------------------------------

def sample_indices(records: Iterable, n: int, seed: int) -> tuple:
    """Pick n indices among records with tokens, deterministically; (chosen, eligible, without tokens)."""
    eligible, missing = [], 0
    for rec in records:
        if rec.global_tokens and rec.semantic_tokens:
            eligible.append(rec.index)
        else:
            missing += 1
    eligible.sort()
    chosen = eligible if n >= len(eligible) else sorted(random.Random(seed).sample(eligible, n))
    return chosen, len(eligible), missing


def _write_wav(path: Path, wav: np.ndarray, sr: int = SR) -> None:
    import soundfile as sf

    sf.write(str(path), np.clip(np.asarray(wav, np.float32), -1.0, 1.0), sr, subtype="PCM_16")


def _safe_name(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in s)[:80]


def _first_line(e: Exception) -> str:
    return f"{type(e).__name__}: {first_line(e, '')}"


def roundtrip_record(codec, rec, audio_bytes: bytes, pitch_backend: str = "world") -> dict:
    """Decode one record's stored tokens and compare with its audio. Returns a row dict
    with the metrics plus ``orig``/``recon`` arrays (removed before reporting); a record
    whose audio or tokens cannot be used gets ``error`` instead of metrics."""
    from voxbox.dataset.reader import decode_audio

    row: dict = {"index": rec.index, "text": rec.text, "speaker": rec.speaker, "error": None,
                 "expected_frames": None, "frame_diff": None}
    glob, sem = list(rec.global_tokens or []), list(rec.semantic_tokens or [])
    row["global_count"], row["semantic_frames"] = len(glob), len(sem)
    # A bad record is a finding for the report, not a reason to stop the check.
    try:
        samples, sr = decode_audio(audio_bytes)
        orig = codec.load(samples[:, 0].astype(np.float64), sample_rate=sr)  # what the tokenizer saw
    except Exception as e:  # noqa: BLE001
        row["error"] = f"audio unusable: {_first_line(e)}"
        return row
    row["expected_frames"] = int(codec.num_frames(len(orig)))
    row["frame_diff"] = len(sem) - row["expected_frames"]
    row["orig"] = orig.astype(np.float32)
    if len(glob) != 32:
        row["error"] = f"{len(glob)} global tokens stored, need 32"
        return row
    if not sem:
        row["error"] = "no semantic tokens stored"
        return row
    try:
        recon = codec.detokenize(np.asarray(glob, dtype=np.int64), np.asarray(sem, dtype=np.int64))
    except Exception as e:  # noqa: BLE001
        row["error"] = f"decode failed: {_first_line(e)}"
        return row
    recon = np.asarray(recon, dtype=np.float32).reshape(-1)
    row["recon"] = recon
    row["duration_orig"] = len(orig) / SR
    row["duration_recon"] = len(recon) / SR
    row["duration_diff"] = row["duration_recon"] - row["duration_orig"]
    row["abs_duration_diff"] = abs(row["duration_diff"])
    row["log_mel_distance"] = log_mel_distance(orig, recon)
    row.update(f0_errors(orig, recon, pitch_backend))
    emb_o = codec.speaker_embedding(row["orig"], sample_rate=SR)
    emb_r = codec.speaker_embedding(recon, sample_rate=SR)
    row["speaker_similarity"] = cosine(emb_o, emb_r)
    return row


def tokenizer_model_dir(ds) -> str:
    """The BiCodec model folder the dataset was tokenized with, from its pipeline.yaml."""
    for stage in (ds.pipeline or {}).get("stages") or []:
        if stage.get("stage") == "tokenize" and (stage.get("params") or {}).get("model_dir"):
            return stage["params"]["model_dir"]
    raise VoxboxError(f"{ds.path}: its pipeline names no tokenizer model folder; give --model-dir")


def _check_codec_options(n: int, threshold: float, pitch_backend: str) -> None:
    from voxbox.annotate.pitch import BACKENDS

    if n < 1:
        raise VoxboxError(f"--n must be at least 1, got {n}")
    if not threshold > 0:
        raise VoxboxError(f"--threshold must be a positive robust z-score, got {threshold}")
    if pitch_backend not in BACKENDS:
        raise VoxboxError(f"unknown pitch backend '{pitch_backend}' (choose from {', '.join(BACKENDS)})")


def _roundtrip_chosen(ds, chosen: List[str], codec, pitch_backend: str, wav_dir: Path) -> List[dict]:
    """Round-trip the chosen records in shard order; their wavs go to ``wav_dir``."""
    from voxbox.progress import Progress

    wav_dir.mkdir(parents=True, exist_ok=True)
    wanted = set(chosen)
    rows: List[dict] = []
    with Progress("codec round trip", total=len(chosen)) as bar:
        for rec, audio, _ext in ds.samples():
            if rec.index not in wanted:
                continue
            row = roundtrip_record(codec, rec, audio, pitch_backend)
            base = f"{len(rows):03d}_{_safe_name(rec.index)}"
            for kind in ("orig", "recon"):
                wav = row.pop(kind, None)
                if wav is not None:
                    _write_wav(wav_dir / f"{base}_{kind}.wav", wav)
                    row[f"wav_{kind}"] = f"wavs/{base}_{kind}.wav"
            rows.append(row)
            bar.update(1, audio_seconds=row.get("duration_orig") or 0.0)
            if len(rows) == len(chosen):
                break
    return rows


def codec_check(dataset_dir: Union[str, Path], model_dir: Optional[Union[str, Path]], out_dir: Union[str, Path], *,
                n: int = 20, seed: int = 0, device: str = "cpu", threshold: float = 3.5,
                pitch_backend: str = "world", codec=None) -> dict:
    """BiCodec round trip of ``n`` sampled records of a built dataset; writes the report
    folder (``wavs/``, ``report.json``, ``report.html``) and returns the report dict.
    ``model_dir`` None: the folder named by the dataset's pipeline (tokenize stage)."""
    from voxbox.dataset.reader import open_dataset

    _check_codec_options(n, threshold, pitch_backend)
    ds = open_dataset(dataset_dir)
    # The real cause first: without tokens no model folder helps.
    chosen, n_eligible, n_missing = sample_indices(ds.records(), n, seed)
    if not chosen:
        raise VoxboxError(f"{dataset_dir}: no record has BiCodec tokens, so there is nothing to round-trip; "
                          "build it with --model-dir (the tokenize stage adds them)")
    if model_dir is None and codec is None:
        model_dir = tokenizer_model_dir(ds)
    if codec is None:
        codec = _load_codec(model_dir, device)
    out = Path(out_dir)
    rows = _roundtrip_chosen(ds, chosen, codec, pitch_backend, out / "wavs")
    flag_outliers(rows, threshold)
    metrics = ["log_mel_distance", "f0_rmse_cents", "vuv_error", "duration_diff", "speaker_similarity"]
    report = {
        "kind": "codec_roundtrip",
        "dataset": str(dataset_dir),
        "dataset_name": ds.name,
        "model_dir": str(model_dir),
        "seed": seed,
        "requested": n,
        "checked": len(rows),
        "eligible": n_eligible,
        "without_tokens": n_missing,
        "outlier_threshold": threshold,
        "pitch_backend": pitch_backend,
        "summary": {m: _stats([r.get(m) for r in rows]) for m in metrics},
        "errors": sum(1 for r in rows if r.get("error")),
        "flagged": sum(1 for r in rows if r["flags"]),
        "records": rows,
    }
    _write_json(out / "report.json", report)
    (out / "report.html").write_text(_codec_html(report), encoding="utf-8")
    return report


def _load_codec(model_dir, device):
    import spark_tokenize
    from spark_tokenize.errors import TokenizerError

    try:
        return spark_tokenize.BiCodecTokenizer(model_dir, device=device)
    except TokenizerError as e:
        raise VoxboxError(str(e)) from None


def _stats(values) -> dict:
    xs = [float(v) for v in values if v is not None and np.isfinite(v)]
    if not xs:
        return {"n": 0}
    a = np.array(xs)
    return {"n": len(xs), "mean": float(a.mean()), "median": float(np.median(a)),
            "min": float(a.min()), "max": float(a.max())}


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(_jsonable(obj), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _fmt(v, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "-" if not math.isfinite(v) else f"{v:.{digits}f}"
    return html.escape(str(v))


_CSS = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px;vertical-align:top}"
        "tr.flag{background:#fde2e2}th{background:#f2f2f2}audio{width:220px}")


def _codec_html(r: dict) -> str:
    h = [f"<!doctype html><meta charset='utf-8'><title>codec round trip: {html.escape(r['dataset_name'])}</title>",
         f"<style>{_CSS}</style><h1>BiCodec round trip: {html.escape(r['dataset_name'])}</h1>",
         f"<p>{r['checked']} of {r['eligible']} records with tokens (seed {r['seed']}); "
         f"{r['without_tokens']} records without tokens; {r['flagged']} flagged; {r['errors']} errors. "
         f"Original = the clip as the tokenizer sees it (16 kHz, volume-normalised). "
         f"Outliers: robust z-score beyond {r['outlier_threshold']} (needs at least {MIN_FOR_OUTLIERS} "
         f"records).</p>", "<h2>Summary</h2><table>",
         "<tr><th>metric</th><th>mean</th><th>median</th><th>min</th><th>max</th></tr>"]
    for m, s in r["summary"].items():
        h.append(f"<tr><td>{m}</td><td>{_fmt(s.get('mean'))}</td><td>{_fmt(s.get('median'))}</td>"
                 f"<td>{_fmt(s.get('min'))}</td><td>{_fmt(s.get('max'))}</td></tr>")
    h.append("</table><h2>Records</h2><table><tr><th>index</th><th>original</th><th>decoded</th>"
             "<th>log-mel dist</th><th>F0 RMSE (cents)</th><th>V/UV err</th><th>dur diff (s)</th>"
             "<th>speaker sim</th><th>frames (exp.)</th><th>flags</th></tr>")
    for row in r["records"]:
        cls = " class='flag'" if row["flags"] else ""
        audio = lambda k: f"<audio controls src='{row[k]}'></audio>" if row.get(k) else "-"  # noqa: E731
        h.append(
            f"<tr{cls}><td>{html.escape(row['index'])}<br><small>{html.escape(row.get('text') or '')}</small></td>"
            f"<td>{audio('wav_orig')}</td><td>{audio('wav_recon')}</td>"
            f"<td>{_fmt(row.get('log_mel_distance'))}</td><td>{_fmt(row.get('f0_rmse_cents'), 1)}</td>"
            f"<td>{_fmt(row.get('vuv_error'))}</td><td>{_fmt(row.get('duration_diff'))}</td>"
            f"<td>{_fmt(row.get('speaker_similarity'))}</td>"
            f"<td>{row['semantic_frames']} ({_fmt(row['expected_frames'])})</td>"
            f"<td>{'<br>'.join(html.escape(f) for f in row['flags'])}</td></tr>")
    h.append("</table>")
    return "\n".join(h) + "\n"


# ------------------------------------------------------------------------------------
# Synthesis
# ------------------------------------------------------------------------------------

def load_tts(model_dir, device: str = "cpu", dtype: str = "float32"):
    from spark_tokenize.errors import TokenizerError
    from spark_tokenize.tts import SparkTTS

    try:
        return SparkTTS(model_dir, device=device, dtype=dtype)
    except TokenizerError as e:
        raise VoxboxError(str(e)) from None


def synth_tts(model_dir, texts: Sequence[str], out: Union[str, Path], *, prompt_audio=None,
              prompt_text: Optional[str] = None, gender: Optional[str] = None, pitch: Optional[str] = None,
              speed: Optional[str] = None, options=None, device: str = "cpu", dtype: str = "float32",
              batch_size: int = 8, model=None) -> list:
    """Synthesise ``texts`` (cloning when ``prompt_audio`` is given, else control) and write
    wavs: ``out`` itself for one text, ``out/000.wav``... for several. Returns the
    :class:`spark_tokenize.tts.SynthResult` list; failed ones carry ``error`` and no file."""
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts or any(not t.strip() for t in texts):
        raise VoxboxError("every --text must be non-empty")
    if prompt_audio is not None and not Path(prompt_audio).is_file():
        what = "is a folder, not an audio file" if Path(prompt_audio).is_dir() else "prompt audio not found"
        raise VoxboxError(f"{prompt_audio}: {what}")
    # Check where the wavs go before generating: a bad --out must not cost a whole generation.
    out = Path(out)
    if len(texts) == 1:
        if out.is_dir():
            raise VoxboxError(f"{out}: is a folder; one --text writes one file, e.g. --out {out / 'out.wav'}")
        if out.suffix.lower() not in (".wav", ".flac"):
            raise VoxboxError(f"{out}: write .wav or .flac (16-bit PCM)")
        paths = [out]
        folder = out.parent
    else:
        if out.suffix.lower() in (".wav", ".flac") or out.is_file():
            raise VoxboxError(f"{out}: {len(texts)} texts write one wav each (000.wav, ...): give a folder as --out")
        paths = [out / f"{i:03d}.wav" for i in range(len(texts))]
        folder = out
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        from voxbox.errors import os_error_reason

        raise VoxboxError(f"{out}: cannot create the output folder ({os_error_reason(e)})") from None
    model = model or load_tts(model_dir, device, dtype)
    if prompt_audio is not None:
        results = model.clone(texts, str(prompt_audio), prompt_text, options=options, batch_size=batch_size)
    else:
        results = model.control([(t, gender, pitch, speed) for t in texts], options=options, batch_size=batch_size)
    for res, path in zip(results, paths):
        if res.ok:
            _write_wav(path, res.wav, res.sample_rate)
            res.extra["path"] = str(path)
    return results


# ------------------------------------------------------------------------------------
# Control check
# ------------------------------------------------------------------------------------

def make_annotator(pitch_backend: str = "world", gender_model: Optional[str] = "builtin"):
    """voxbox's annotate stage as the control check uses it: gender predicted by the
    built-in classifier (so requested and measured gender can be compared)."""
    from voxbox.annotate.stage import AnnotateStage

    stage = AnnotateStage(pitch_backend=pitch_backend, gender_model=gender_model)
    stage.ensure_setup()
    return stage


def annotate_wav(path: Union[str, Path], text: str, requested_gender: str, annotator=None,
                 pitch_backend: str = "world") -> dict:
    """Annotate a synthesised clip with voxbox's annotate stage.

    Returns the measured fields; ``pitch_level`` is the level under the *requested*
    gender's boundaries (the model was asked for a level relative to that gender),
    ``pitch_level_own`` the stage's level under the predicted gender.
    """
    from voxbox.annotate import levels
    from voxbox.record import Rejection, Utterance

    annotator = annotator or make_annotator(pitch_backend)
    path = Path(path)
    rec = Utterance(index="synth_" + _safe_name(path.stem), corpus="synth", source_path=path.name,
                    corpus_root=str(path.parent), text=text)
    res = annotator.process(rec)
    row: dict = {k: None for k in ("pitch", "pitch_std", "speech_duration", "syllable_num", "speed", "pitch_level",
                                   "pitch_level_own", "speed_level", "pitch_value", "speed_value", "gender",
                                   "gender_confidence")}
    row["null_reason"] = None
    if isinstance(res, Rejection):
        row["null_reason"] = res.reason
        return row
    row.update(pitch=res.pitch, pitch_std=res.pitch_std, speech_duration=res.speech_duration,
               syllable_num=res.syllable_num, speed=res.speed, speed_level=res.speed_level,
               pitch_value=res.pitch_value, speed_value=res.speed_value, gender=res.gender,
               gender_confidence=res.gender_confidence, pitch_level_own=res.pitch_level)
    if res.pitch_value is not None:  # voiced
        bounds = annotator.boundaries.bounds("pitch", requested_gender)
        if bounds is not None:
            row["pitch_level"] = levels.level(levels.pitch_mel(res.pitch), bounds)
    reasons = res.null_reasons or {}
    row["null_reason"] = reasons.get("pitch_value") or reasons.get("speed_level")
    return row


def confusion(pairs: Sequence[tuple], labels: Sequence[str]) -> dict:
    """Requested x measured counts; None measured goes to the ``unmeasured`` column."""
    cols = list(labels) + ["unmeasured"]
    matrix = {r: {c: 0 for c in cols} for r in labels}
    for req, meas in pairs:
        if req in matrix:
            matrix[req][meas if meas in labels else "unmeasured"] += 1
    measured = [(r, m) for r, m in pairs if m in labels]
    exact = sum(1 for r, m in measured if r == m)
    near = sum(1 for r, m in measured if abs(labels.index(r) - labels.index(m)) <= 1)
    return {"rows": list(labels), "cols": cols, "matrix": matrix, "measured": len(measured),
            "accuracy": exact / len(measured) if measured else None,
            "within_one": near / len(measured) if measured else None}


def _control_grid(text: str, repeats: int, genders, pitch_levels, speed_levels):
    """The grid's axes in canonical names; one-line errors for a bad grid."""
    from spark_tokenize import prompts as P
    from spark_tokenize.errors import TokenizerError

    if not text or not text.strip():
        raise VoxboxError("--text must be non-empty")
    if repeats < 1:
        raise VoxboxError(f"--repeats must be at least 1, got {repeats}")
    try:
        genders = [P.GENDERS[P.gender_index(g)] for g in genders]
        pitch_levels = [P.LEVELS[P.level_index(x)] for x in (pitch_levels or P.LEVELS)]
        speed_levels = [P.LEVELS[P.level_index(x)] for x in (speed_levels or P.LEVELS)]
    except TokenizerError as e:
        raise VoxboxError(str(e)) from None
    if not genders or not pitch_levels or not speed_levels:
        raise VoxboxError("the grid is empty: give at least one gender, pitch level and speed level")
    return genders, pitch_levels, speed_levels


def _synthesise_grid(model, text: str, grid: list, options, batch_size: int, annotator, out: Path) -> List[dict]:
    """One row per grid cell: the model's output, its wav under ``out/wavs`` and what the
    annotators measure in it."""
    from voxbox.progress import Progress

    (out / "wavs").mkdir(parents=True, exist_ok=True)
    rows: List[dict] = []
    with Progress("control grid", total=len(grid)) as bar:
        step = max(1, batch_size)
        for b, start in enumerate(range(0, len(grid), step)):
            cells = grid[start:start + step]
            # One seed per batch, as SparkTTS.control does for its own batches.
            opts = None if options is None else dataclasses.replace(
                options, seed=None if options.seed is None else options.seed + b)
            results = model.control([(text, g, p, s) for g, p, s, _ in cells], options=opts, batch_size=step)
            for (g, p, s, k), res in zip(cells, results):
                row = {"gender": g, "pitch": p, "speed": s, "repeat": k, "error": res.error,
                       "generated_tokens": res.generated_tokens, "finished": res.finished,
                       "model_pitch_value": res.pitch_value, "model_speed_value": res.speed_value}
                if res.ok:
                    name = f"wavs/{g}_{p}_{s}_{k}.wav"
                    _write_wav(out / name, res.wav)
                    row.update(wav=name, duration=res.duration)
                    row["measured"] = annotate_wav(out / name, text, g, annotator)
                rows.append(row)
                bar.update(1, audio_seconds=res.duration)
    return rows


def control_check(model_dir, text: str, out_dir: Union[str, Path], *, genders: Sequence[str] = ("female", "male"),
                  pitch_levels: Optional[Sequence[str]] = None, speed_levels: Optional[Sequence[str]] = None,
                  repeats: int = 1, options=None, device: str = "cpu", dtype: str = "float32", batch_size: int = 8,
                  pitch_backend: str = "world", model=None) -> dict:
    """Synthesise every gender x pitch level x speed level, annotate the outputs with
    voxbox's annotators and tabulate requested vs measured levels. Writes ``wavs/``,
    ``report.json`` and ``report.html`` to ``out_dir``; returns the report dict."""
    from spark_tokenize import prompts as P

    genders, pitch_levels, speed_levels = _control_grid(text, repeats, genders, pitch_levels, speed_levels)
    grid = [(g, p, s, k) for g in genders for p in pitch_levels for s in speed_levels for k in range(repeats)]
    annotator = make_annotator(pitch_backend)  # a bad --pitch-backend fails before the model loads
    model = model or load_tts(model_dir, device, dtype)
    out = Path(out_dir)
    rows = _synthesise_grid(model, text, grid, options, batch_size, annotator, out)
    ok = [r for r in rows if not r["error"]]
    levels = list(P.LEVELS)
    tables = {
        "pitch": confusion([(r["pitch"], r["measured"]["pitch_level"]) for r in ok], levels),
        "speed": confusion([(r["speed"], r["measured"]["speed_level"]) for r in ok], levels),
    }
    tables["gender"] = confusion([(r["gender"], r["measured"]["gender"]) for r in ok], list(genders))
    tables["pitch_by_gender"] = {
        g: confusion([(r["pitch"], r["measured"]["pitch_level"]) for r in ok if r["gender"] == g], levels)
        for g in genders}
    report = {
        "kind": "control_check",
        "model_dir": str(model_dir),
        "text": text,
        "grid": {"genders": genders, "pitch_levels": pitch_levels, "speed_levels": speed_levels,
                 "repeats": repeats},
        "generation": _jsonable(vars(options)) if options is not None else None,
        "pitch_backend": pitch_backend,
        "requested": len(rows),
        "synthesised": len(ok),
        "failed": len(rows) - len(ok),
        "failures": _count([r["error"].split(";")[0] for r in rows if r["error"]]),
        "tables": tables,
        "value_chain": _value_chain(ok),
        "utterances": rows,
    }
    _write_json(out / "report.json", report)
    (out / "report.html").write_text(_control_html(report), encoding="utf-8")
    return report


def _count(items) -> Dict[str, int]:
    out: Dict[str, int] = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return dict(sorted(out.items()))


def _value_chain(rows: List[dict]) -> dict:
    """How far the model's own CoT values are from what the annotation measured."""
    out = {}
    for attr in ("pitch_value", "speed_value"):
        diffs = [abs(r[f"model_{attr}"] - r["measured"][attr]) for r in rows
                 if r.get(f"model_{attr}") is not None and r["measured"].get(attr) is not None]
        out[attr] = {"n": len(diffs), "mean_abs_diff": float(np.mean(diffs)) if diffs else None}
    return out


def _table_html(title: str, t: dict) -> str:
    h = [f"<h3>{html.escape(title)}</h3><table><tr><th>requested \\ measured</th>"
         + "".join(f"<th>{c}</th>" for c in t["cols"]) + "</tr>"]
    for r in t["rows"]:
        cells = []
        for c in t["cols"]:
            v = t["matrix"][r][c]
            style = " style='background:#d8f0d8'" if c == r and v else ""
            cells.append(f"<td{style}>{v}</td>")
        h.append(f"<tr><th>{r}</th>{''.join(cells)}</tr>")
    acc = "-" if t["accuracy"] is None else f"{t['accuracy']:.2f}"
    near = "-" if t["within_one"] is None else f"{t['within_one']:.2f}"
    h.append(f"</table><p>exact {acc}, within one level {near}, {t['measured']} measured</p>")
    return "\n".join(h)


def _control_html(r: dict) -> str:
    h = [f"<!doctype html><meta charset='utf-8'><title>control check</title><style>{_CSS}</style>",
         "<h1>Spark-TTS control check</h1>",
         f"<p>Text: <b>{html.escape(r['text'])}</b>. {r['synthesised']} of {r['requested']} utterances "
         f"synthesised, {r['failed']} failed. Levels measured with voxbox's annotators "
         f"(pitch backend {html.escape(r['pitch_backend'])}; pitch levels under the requested gender's "
         f"boundaries).</p>"]
    if r["failures"]:
        h.append("<p>Failures: " + ", ".join(f"{html.escape(k)} ({v})" for k, v in r["failures"].items()) + "</p>")
    h.append(_table_html("Pitch level", r["tables"]["pitch"]))
    for g, t in r["tables"]["pitch_by_gender"].items():
        h.append(_table_html(f"Pitch level, {g}", t))
    h.append(_table_html("Speed level", r["tables"]["speed"]))
    h.append(_table_html("Gender (voxbox's built-in classifier)", r["tables"]["gender"]))
    h.append("<h2>Utterances</h2><table><tr><th>gender</th><th>pitch</th><th>speed</th><th>audio</th>"
             "<th>F0 (Hz)</th><th>measured pitch</th><th>syll/s</th><th>measured speed</th><th>measured gender</th>"
             "<th>model values (pitch, speed)</th><th>error</th></tr>")
    for u in r["utterances"]:
        m = u.get("measured") or {}
        audio = f"<audio controls src='{u['wav']}'></audio>" if u.get("wav") else "-"
        cls = " class='flag'" if u["error"] else ""
        h.append(f"<tr{cls}><td>{u['gender']}</td><td>{u['pitch']}</td><td>{u['speed']}</td><td>{audio}</td>"
                 f"<td>{_fmt(m.get('pitch'), 1)}</td><td>{_fmt(m.get('pitch_level'))}</td>"
                 f"<td>{_fmt(m.get('speed'), 2)}</td><td>{_fmt(m.get('speed_level'))}</td>"
                 f"<td>{_fmt(m.get('gender'))}</td>"
                 f"<td>{_fmt(u.get('model_pitch_value'))}, {_fmt(u.get('model_speed_value'))}</td>"
                 f"<td>{html.escape(u['error'] or '')}</td></tr>")
    h.append("</table>")
    return "\n".join(h) + "\n"
