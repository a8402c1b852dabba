"""Acoustic features for the label classifiers.

The embedding classifiers (:mod:`voxbox.labels.classifier`) use the speaker embedding
plus one scalar, :func:`robust_f0` (the octave-guarded median F0). The F0/formant
features below belong to the earlier F0 gender model (``voxbox-gender-f0-v1``), which
stays available by name.

Two cues separate adult female and male voices and survive a change of language,
corpus and microphone: the fundamental frequency (larynx size) and the formant
frequencies (vocal-tract length, roughly 15-20% shorter in women). Per clip:

- F0 from the same WORLD track as ``pitch``: median, 10th and 90th percentile of
  log2 F0 over voiced frames, and the voiced fraction;
- F1-F4 from Praat's Burg formant tracker (5 formants below 5500 Hz, 25 ms window,
  10 ms step), medians of log2 Fk over frames that are voiced, and the log2
  formant dispersion (mean spacing F1..F4), a vocal-tract-length estimate.

Spectral-envelope features (MFCC means) were tried and dropped: they raised the
in-corpus score but lowered the cross-corpus one, because they learn the channel.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

FEATURE_NAMES: List[str] = [
    "f0_median", "f0_p10", "f0_p90", "voiced_fraction",
    "f1", "f2", "f3", "f4", "dispersion",
]


FORMANT_FEATURES = ("f1", "f2", "f3", "f4", "dispersion")

#: A frame further than this (in octaves) from the clip's median F0 is taken for an
#: octave error of the tracker (DIO halves and doubles; real intonation in read speech
#: rarely strays 0.75 octave from the speaker's median) and folded back by one octave.
OCTAVE_GUARD = 0.75


def robust_f0(f0: np.ndarray) -> float:
    """log2 of the clip's median F0 after folding octave jumps; NaN without voiced frames.

    Not VoxBox's ``pitch`` (the mean, which a few doubled frames pull up by tens of
    Hz): frames more than :data:`OCTAVE_GUARD` octave from the median are moved one
    octave toward it and the median is taken again, until it settles (at most three
    passes; jumped frames pull the first median toward them, so one pass can miss some).
    A whole clip spoken high (a man reading a child's line) stays high: that is the
    embedding's job, not F0's.
    """
    voiced = np.asarray(f0)[np.asarray(f0) > 0]
    if voiced.size == 0:
        return float("nan")
    raw = np.log2(voiced)
    m = float(np.median(raw))
    for _ in range(3):
        lf = np.where(raw > m + OCTAVE_GUARD, raw - 1.0, np.where(raw < m - OCTAVE_GUARD, raw + 1.0, raw))
        m, prev = float(np.median(lf)), m
        if m == prev:
            break
    return m


#: Scalar features an embedding classifier may add to the embedding, computed from the
#: 5 ms F0 track of the trimmed speech.
SCALAR_FEATURES = {"f0_median": robust_f0}


def formant_medians(audio: np.ndarray, sr: int, f0: np.ndarray, frame_s: float = 0.005) -> np.ndarray:
    """log2 medians of F1-F4 over voiced frames, and log2 dispersion (NaN if unknown)."""
    import parselmouth
    from parselmouth.praat import call

    out = np.full(5, np.nan)
    snd = parselmouth.Sound(np.ascontiguousarray(audio, dtype=np.float64), sampling_frequency=sr)
    if snd.duration < 0.06:
        return out
    fm = snd.to_formant_burg(time_step=0.01, max_number_of_formants=5,
                             maximum_formant=5500.0, window_length=0.025)
    n = fm.get_number_of_frames()
    if n == 0:
        return out
    times = np.asarray(fm.xs())
    if f0.size:
        idx = np.clip(np.round(times / frame_s).astype(int), 0, f0.size - 1)
        keep = f0[idx] > 0
    else:
        keep = np.zeros(n, dtype=bool)
    if keep.sum() < 3:
        keep = np.ones(n, dtype=bool)  # unvoiced clip: formants of everything beat none
    tracks = np.full(4, np.nan)
    for k in range(1, 5):
        vals = np.asarray(call(fm, "To Matrix", k).values, dtype=np.float64).reshape(-1)[:n][keep]
        vals = vals[np.isfinite(vals) & (vals > 0)]
        if vals.size:
            tracks[k - 1] = float(np.median(vals))
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:4] = np.log2(tracks)
        if np.all(np.isfinite(tracks)) and tracks[3] > tracks[0]:
            out[4] = np.log2((tracks[3] - tracks[0]) / 3.0)
    return out


def gender_features(audio: np.ndarray, sr: int, f0: Optional[np.ndarray] = None,
                    names: Optional[Sequence[str]] = None) -> np.ndarray:
    """Features ``names`` (default: all, in FEATURE_NAMES order) of trimmed,
    normalised speech. Formants are only measured when a formant feature is asked for.

    ``f0`` is the 5 ms WORLD track when the caller already has it; missing values
    are NaN (a model imputes them with its training means).
    """
    names = list(FEATURE_NAMES if names is None else names)
    unknown = [n for n in names if n not in FEATURE_NAMES]
    if unknown:
        raise ValueError(f"unknown gender features {unknown} (known: {', '.join(FEATURE_NAMES)})")
    if f0 is None:
        from voxbox.annotate.pitch import f0_world

        f0 = f0_world(audio, sr)
    feats = dict.fromkeys(FEATURE_NAMES, np.nan)
    voiced = f0[f0 > 0]
    feats["voiced_fraction"] = voiced.size / f0.size if f0.size else 0.0
    if voiced.size:
        lf = np.log2(voiced)
        feats["f0_median"] = float(np.median(lf))
        feats["f0_p10"] = float(np.percentile(lf, 10))
        feats["f0_p90"] = float(np.percentile(lf, 90))
    if any(n in FORMANT_FEATURES for n in names):
        feats.update(zip(FORMANT_FEATURES, formant_medians(audio, sr, f0)))
    return np.array([feats[n] for n in names], dtype=np.float64)
