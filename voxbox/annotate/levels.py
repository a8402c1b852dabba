"""Five-level labels, Spark-TTS value tokens and percentile boundaries (spec 3.6, 5).

VoxBox stores raw values; levels are derived from them with four boundaries
b1 < b2 < b3 < b4 per group and this rule (note the asymmetric edges)::

    x < b1          -> very_low
    b1 <= x < b2    -> low
    x > b4          -> very_high
    b3 < x <= b4    -> high
    otherwise       -> moderate

- pitch: Mel(pitch) = 2595 log10(1 + f/700) clipped to [0, 1000], boundaries per
  gender at the 5th/20th/70th/90th percentiles;
- speed: syllables/s clipped to [0, 10], boundaries per language (zh when the text
  has a CJK character, else en) at the 5th/20th/80th/95th percentiles;
- pitch_std: per gender, 5th/20th/80th/95th; loudness: one group, same percentiles.

Value tokens: ``pitch_value`` = int(Mel) in 0..1000, ``speed_value`` = int(speed)
in 0..10, ``pitch_var_value`` = round(20 * min(pitch_std, 0.5)) in 0..10,
``loudness_value`` = int(dB + 30) in 0..30.

A value whose group has no boundaries (unknown gender, a language the boundaries
file lacks) gets no level; the caller records the reason.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

from voxbox.errors import VoxboxError, read_json_file
from voxbox.record import LEVELS

PITCH_PERCENTILES = (5, 20, 70, 90)
SPREAD_PERCENTILES = (5, 20, 80, 95)
ALL_PERCENTILES = (5, 20, 70, 80, 90, 95)
ATTRIBUTES = ("pitch", "speed", "pitch_std", "loudness")
PERCENTILES_OF = {"pitch": PITCH_PERCENTILES, "speed": SPREAD_PERCENTILES,
                  "pitch_std": SPREAD_PERCENTILES, "loudness": SPREAD_PERCENTILES}

# VoxBox's boundaries (SparkVox statistic_percentile.jsonl; spec 3.6).
VOXBOX_BOUNDARIES: dict = {
    "format": "voxbox-boundaries/1",
    "source": "VoxBox release (SparkVox statistic_percentile.jsonl)",
    "pitch": {"male": [144.275, 163.172, 211.044, 249.549],
              "female": [224.325, 257.532, 313.213, 352.569]},
    "speed": {"zh": [2.677, 3.540, 5.166, 6.072],
              "en": [2.553, 3.306, 4.720, 5.464]},
    "pitch_std": {"male": [0.101, 0.142, 0.222, 0.266],
                  "female": [0.107, 0.144, 0.219, 0.265]},
    "loudness": {"all": [-22.119, -20.101, -15.989, -14.073]},
}


def hz_to_mel(hz: float) -> float:
    return 2595.0 * math.log10(1.0 + hz / 700.0)


def pitch_mel(pitch_hz: float) -> float:
    return min(max(hz_to_mel(pitch_hz), 0.0), 1000.0)


def clip_speed(speed: float) -> float:
    return min(max(speed, 0.0), 10.0)


def level(x: float, bounds: Sequence[float]) -> str:
    b1, b2, b3, b4 = bounds
    if x < b1:
        return LEVELS[0]
    if x < b2:
        return LEVELS[1]
    if x > b4:
        return LEVELS[4]
    if x > b3:
        return LEVELS[3]
    return LEVELS[2]


def pitch_value(pitch_hz: float) -> int:
    return int(pitch_mel(pitch_hz))


def speed_value(speed: float) -> int:
    return int(clip_speed(speed))


def pitch_var_value(pitch_std: float) -> int:
    return int(round(20 * min(max(pitch_std, 0.0), 0.5)))


def loudness_value(db: float) -> int:
    return int(min(max(db + 30.0, 0.0), 30.0))


class Boundaries:
    """Boundary table: attribute -> group -> [b1, b2, b3, b4]."""

    def __init__(self, table: Optional[dict] = None):
        table = VOXBOX_BOUNDARIES if table is None else table
        self.table = table
        for attr in ATTRIBUTES:
            for group, bounds in (table.get(attr) or {}).items():
                if len(bounds) != 4 or any(not math.isfinite(float(b)) for b in bounds) \
                        or list(bounds) != sorted(bounds):
                    raise VoxboxError(f"boundaries: {attr}/{group} needs four ascending numbers, got {bounds}")

    @classmethod
    def load(cls, path: Union[str, Path, None]) -> "Boundaries":
        if path is None:
            return cls()
        p = Path(path)
        table = read_json_file(p, "boundaries file")
        if not isinstance(table, dict) or not any(a in table for a in ATTRIBUTES):
            raise VoxboxError(f"{p}: not a boundaries file (expected keys {', '.join(ATTRIBUTES)})")
        return cls(table)

    def bounds(self, attr: str, group: Optional[str]) -> Optional[List[float]]:
        if group is None:
            return None
        return (self.table.get(attr) or {}).get(group)

    def groups(self, attr: str) -> List[str]:
        return sorted((self.table.get(attr) or {}).keys())


# ------------------------------------------------------------------ recompute
class _Reservoir:
    """Every value up to ``cap``, then a uniform sample of ``cap`` (fixed seed), so
    percentiles of a 100M-row manifest need bounded memory."""

    def __init__(self, cap: int, seed: int):
        self.cap = cap
        self.n = 0
        self.values = np.empty(min(cap, 1024), dtype=np.float64)
        self.rng = np.random.default_rng(seed)

    def add(self, x: float) -> None:
        if self.n < self.cap:
            if self.n == self.values.shape[0]:
                self.values = np.resize(self.values, min(self.cap, 2 * self.n))
            self.values[self.n] = x
        else:
            j = int(self.rng.integers(0, self.n + 1))
            if j < self.cap:
                self.values[j] = x
        self.n += 1

    def array(self) -> np.ndarray:
        return self.values[: min(self.n, self.cap)]


def compute_boundaries(records: Iterable, min_count: int = 20, cap: int = 2_000_000,
                       language_of=None) -> dict:
    """Percentile boundaries from records with raw values (the VoxBox rule).

    Groups: pitch and pitch_std by gender (voiced clips only, i.e. pitch > 0),
    speed by language (the CJK rule unless the record's language is another one),
    loudness over all clips. Groups with fewer than ``min_count`` values are left
    out (and listed under ``skipped``): their percentiles would be noise.
    """
    from voxbox.annotate.syllables import language_of as cjk_language

    language_of = language_of or cjk_language
    res: Dict[str, Dict[str, _Reservoir]] = {a: {} for a in ATTRIBUTES}
    backends = set()

    def add(attr: str, group: str, x) -> None:
        if x is None or not math.isfinite(float(x)):
            return
        r = res[attr].get(group)
        if r is None:
            r = res[attr][group] = _Reservoir(cap, seed=len(res[attr]) + 17)
        r.add(float(x))

    n = 0
    for rec in records:
        n += 1
        if rec.pitch_backend:
            backends.add(rec.pitch_backend)
        if rec.gender and rec.pitch is not None and rec.pitch > 0:
            add("pitch", rec.gender, pitch_mel(rec.pitch))
            if rec.pitch_std is not None:
                add("pitch_std", rec.gender, rec.pitch_std)
        if rec.syllable_num is not None and rec.speech_duration:
            add("speed", speed_group(rec, language_of), clip_speed(rec.syllable_num / rec.speech_duration))
        if rec.loudness is not None:
            add("loudness", "all", rec.loudness)
    if len(backends) > 1:
        raise VoxboxError(f"manifest mixes pitch backends {sorted(backends)}: re-annotate with one backend")

    out: dict = {"format": "voxbox-boundaries/1", "source": "recomputed", "records": n,
                 "pitch_backend": next(iter(backends)) if backends else None,
                 "rule": "pitch: Mel, p5/p20/p70/p90 per gender; speed: syll/s clipped to [0,10], "
                         "p5/p20/p80/p95 per language; pitch_std: p5/p20/p80/p95 per gender; "
                         "loudness: p5/p20/p80/p95",
                 "stats": {}, "skipped": {}}
    for attr in ATTRIBUTES:
        out[attr] = {}
        for group, r in sorted(res[attr].items()):
            values = r.array()
            if r.n < min_count:
                out["skipped"][f"{attr}/{group}"] = r.n
                continue
            pct = np.percentile(values, ALL_PERCENTILES)
            stats = {f"p{p}": round(float(v), 3) for p, v in zip(ALL_PERCENTILES, pct)}
            stats.update(mean=round(float(values.mean()), 3), std=round(float(values.std()), 3), count=r.n)
            out["stats"][f"{attr}/{group}"] = stats
            out[attr][group] = [stats[f"p{p}"] for p in PERCENTILES_OF[attr]]
    return out


def speed_group(rec, language_of=None) -> Optional[str]:
    """Language group for speed: a recipe's own language other than zh/en wins;
    otherwise the release's rule (zh when the text has a CJK character)."""
    if rec.language and rec.language not in ("zh", "en"):
        return rec.language
    if language_of is None:
        from voxbox.annotate.syllables import language_of
    return language_of(rec.text)
