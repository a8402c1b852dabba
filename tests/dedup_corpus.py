"""A synthetic dedup corpus of any size: manifests of span records over one small WAV
per corpus, with stored speaker embeddings (no model needed) and planted cases.

Per base record (random words, a random voice), by a seeded draw:
- 2% an exact copy in another corpus (the same span: the same samples, same hash);
- 2% a resampled copy (4 -> 8 kHz, its own file) with re-typed or one-word-changed text
  and a slightly different embedding of the same voice (some fall under the Jaccard
  threshold: both implementations must agree on those too);
- 1% an impostor: the same words read by another voice (no audio: unreadable);
- 0.5% a same-voice, same-words record 3 s longer (fails the duration check);
- 0.5% a text too short to shingle.
Used by tests/test_dedup.py and benchmarks/bench_dedup.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

import numpy as np

CORPORA = ("libritts", "librispeech", "folder")
SR, SR2, DIM = 4000, 8000, 16
MODEL = "ge2e-resemblyzer"  # the name the default embedding backend writes


def write_corpus(root: Path, n: int, seed: int = 0) -> List[Path]:
    """``n`` base records (plus the planted ones) under ``root``; the manifest paths."""
    import soundfile as sf

    from voxbox.manifest import ManifestWriter
    from voxbox.record import Utterance, make_index

    rng = np.random.default_rng(seed)
    vocab = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), size=int(rng.integers(3, 9))))
             for _ in range(600)]
    voices = _unit(rng.standard_normal((max(8, n // 20), DIM)))
    audio = {c: [] for c in CORPORA}
    audio["resampled"] = []
    rows = {c: [] for c in CORPORA}
    at = {c: 0 for c in audio}

    def add(corpus, text, voice, source=None, seg=None, sr=SR, duration=None):
        k = sum(len(v) for v in rows.values())
        rec = dict(index=make_index(corpus, f"utt{k:08d}"), corpus=corpus, text=text,
                   embedding=[round(float(x), 4) for x in _unit(voice + rng.normal(0, 0.03, DIM))],
                   embedding_model=MODEL, duration=duration)
        if source is not None:
            rec.update(source_path=f"{source}.wav", corpus_root=str(root), span_offset=seg[0] / sr,
                       span_duration=seg[1] / sr)
        rows[corpus].append(Utterance(**rec))

    def segment(name, samples):
        audio[name].append(samples)
        at[name] += len(samples)
        return at[name] - len(samples), len(samples)

    for i in range(n):
        corpus, other = CORPORA[i % 3], CORPORA[(i + 1) % 3]
        words = list(rng.choice(vocab, size=int(rng.integers(6, 15))))
        text, voice = " ".join(words) + ".", voices[rng.integers(len(voices))]
        x = (rng.standard_normal(int(rng.integers(80, 400))) * 0.1).astype(np.float32)
        seg = segment(corpus, x)
        add(corpus, text, voice, corpus, seg)
        draw = rng.random()
        if draw < 0.02:
            add(other, text, voice, corpus, seg)
        elif draw < 0.04:
            y = np.interp(np.arange(2 * len(x)) / 2.0, np.arange(len(x)), x).astype(np.float32)
            add(other, _variant(rng, words, vocab), voice, "resampled", segment("resampled", y), sr=SR2)
        elif draw < 0.05:
            add(other, text, voices[rng.integers(len(voices))], duration=len(x) / SR)
        elif draw < 0.055:
            add(other, text, voice, duration=len(x) / SR + 3.0)
        elif draw < 0.06:
            add(other, "ok", voice, duration=len(x) / SR)
    for name, parts in audio.items():
        sf.write(root / f"{name}.wav", np.concatenate(parts) if parts else np.zeros(1, np.float32),
                 SR2 if name == "resampled" else SR, subtype="FLOAT")
    paths = []
    for corpus in CORPORA:
        paths.append(root / f"{corpus}.jsonl")
        with ManifestWriter(paths[-1]) as w:
            w.write_all(iter(rows[corpus]))
    return paths


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _variant(rng, words, vocab) -> str:
    """Re-typed (case, punctuation) or one word changed."""
    if rng.random() < 0.5:
        return " ".join(words).upper().replace(" ", " , ", 1) + " !"
    w = list(words)
    w[int(rng.integers(len(w)))] = str(rng.choice(vocab))
    return " ".join(w) + "."
