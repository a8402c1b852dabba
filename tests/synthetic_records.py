"""A synthetic built dataset without audio, for the serve query tests and benchmark.

``write_synthetic_dataset(out, n)`` writes ``n`` records as real Parquet shards (the
shard schema of :mod:`voxbox.shards.parquet`, 100-row row groups like a build) plus
``index.json`` and ``rejects.jsonl``, so :func:`voxbox.dataset.open_dataset` and
``voxbox serve`` open it like any built folder. Columns are generated with numpy in
bulk (a million records take seconds); the ``audio`` column holds empty bytes, so
only the records table can be explored, not listened to.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CORPORA = ("libritts", "vctk", "aishell3", "esd", "emilia")
LEVELS = ("very_low", "low", "moderate", "high", "very_high")
EMOTIONS = ("UNKNOWN", "NEUTRAL", "HAPPY", "SAD", "ANGRY")
AGES = ("Child", "Teenager", "Youth-Adult", "Middle-aged", "Elderly")
WORDS = ("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "speech", "voice", "data",
         "river", "morning", "light", "garden", "window", "silver", "train", "music")


def _columns(rng, start: int, n: int) -> dict:
    """Every Utterance column for records start..start+n, as numpy/Python arrays."""
    k = np.arange(start, start + n)
    corpus = np.array(CORPORA)[k % len(CORPORA)]
    gender = np.where(rng.random(n) < 0.5, "female", "male")
    predicted = rng.random(n) < 0.4
    pitch = np.where(gender == "female", rng.normal(210, 35, n), rng.normal(125, 25, n)).clip(60, 500)
    speed = rng.normal(4.2, 0.9, n).clip(0.5, 12)
    duration = rng.uniform(1.0, 20.0, n)
    words = np.array(WORDS)
    text = [" ".join(words[rng.integers(0, len(words), 6)]) for _ in range(n)]
    return {
        "index": [f"synth_{i:016x}" for i in k],  # globally sorted, like a build
        "split": np.where(k % 20 == 0, "test", "train"),
        "language": np.where(corpus == "aishell3", "zh", "en"),
        "age": np.array(AGES)[rng.integers(0, len(AGES), n)],
        "gender": gender,
        "emotion": np.array(EMOTIONS)[rng.integers(0, len(EMOTIONS), n)],
        "pitch": pitch.round(3), "pitch_std": rng.uniform(0.05, 0.4, n).round(3), "speed": speed.round(1),
        "duration": duration.round(2), "speech_duration": (duration * 0.9).round(3),
        "syllable_num": (speed * duration * 0.9).astype(np.int64), "text": text,
        "corpus": corpus, "speaker": [f"spk{i % 997}" for i in k], "source_path": [f"a/{i}.wav" for i in k],
        "sample_rate": np.full(n, 16000), "num_samples": (duration * 16000).astype(np.int64),
        "channels": np.ones(n, dtype=np.int64), "license": np.full(n, "CC BY 4.0"),
        "gender_source": np.where(predicted, "predicted", "native"),
        "gender_model": np.where(predicted, "builtin", None),
        "gender_confidence": np.where(predicted, rng.uniform(0.5, 1.0, n).round(3), np.nan),
        "pitch_backend": np.full(n, "world"),
        "pitch_level": np.array(LEVELS)[rng.integers(0, 5, n)],
        "pitch_std_level": np.array(LEVELS)[rng.integers(0, 5, n)],
        "speed_level": np.array(LEVELS)[rng.integers(0, 5, n)],
        "pitch_value": rng.integers(100, 400, n), "pitch_var_value": rng.integers(0, 10, n),
        "speed_value": speed.astype(np.int64), "loudness": rng.normal(-23, 3, n).round(2),
        "clipping_ratio": np.where(rng.random(n) < 0.05, rng.uniform(0, 0.01, n), 0.0).round(6),
        "dnsmos_ovrl": np.where(rng.random(n) < 0.9, rng.uniform(1.5, 4.2, n), np.nan).round(3),
    }


def _table(rng, start: int, n: int):
    import pyarrow as pa

    from voxbox.shards.parquet import shard_schema

    schema = shard_schema()
    cols = _columns(rng, start, n)
    arrays = []
    for f in schema:
        if f.name == "audio":
            paths = pa.array([f"{i}.flac" for i in cols["index"]])
            arrays.append(pa.StructArray.from_arrays([pa.array([b""] * n, pa.binary()), paths],
                                                     fields=list(f.type)))
        elif f.name in cols:
            v = cols[f.name]
            if isinstance(v, np.ndarray) and v.dtype.kind == "f":
                arrays.append(pa.array(v, f.type, mask=np.isnan(v)))
            else:
                arrays.append(pa.array(v.tolist() if isinstance(v, np.ndarray) else v, f.type))
        else:
            arrays.append(pa.nulls(n, f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def write_synthetic_dataset(out, n: int, shards: int = 10, seed: int = 0, rejects: int = 20) -> Path:
    """Write an ``n``-record built folder (Parquet only, no audio) under ``out``."""
    import pyarrow.parquet as pq

    from voxbox.shards import index as ix
    from voxbox.shards.parquet import ROW_GROUP_SIZE

    out = Path(out)
    (out / "parquet").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    per = -(-n // shards)
    entries = []
    for s in range(shards):
        start, count = s * per, max(0, min(per, n - s * per))
        if count == 0:
            break
        table = _table(rng, start, count).sort_by("index")
        rel = ix.shard_filename("synthetic", s, "parquet")
        pq.write_table(table, out / rel, row_group_size=ROW_GROUP_SIZE, compression="zstd",
                       compression_level=3, write_statistics=True)
        idx = table.column("index")
        entries.append({"shard": s, "records": count, "audio_seconds": float(pc_sum(table, "duration")),
                        "first_index": idx[0].as_py(), "last_index": idx[-1].as_py(),
                        "files": {"parquet": {"path": rel, "sha256": "0" * 64,
                                              "bytes": (out / rel).stat().st_size}}})
    reasons = {}
    with open(out / ix.REJECTS_NAME, "w", encoding="utf-8") as fh:
        for i in range(rejects):
            reason = ("too_short", "empty_text", "audio_unreadable")[i % 3]
            reasons[f"annotate: {reason}"] = reasons.get(f"annotate: {reason}", 0) + 1
            fh.write(json.dumps({"stage": "annotate", "path": f"bad/{i}.wav", "reason": reason,
                                 "index": f"bad_{i:016x}", "detail": "synthetic"}) + "\n")
    index = ix.build_index(name="synthetic", formats=["parquet"], audio_format="flac", shard_entries=entries,
                           rejects_by_reason=reasons, fingerprint={"input": "synthetic", "pipeline": "synthetic"})
    (out / ix.INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    return out


def pc_sum(table, column: str) -> float:
    import pyarrow.compute as pc

    return pc.sum(table.column(column)).as_py() or 0.0
