"""Statistics of a built dataset.

:func:`collect_stats` streams the records once (no audio is read) into fixed-size
histograms, counters and small top-k lists, so memory does not grow with the dataset.
The same :class:`DatasetStats` feeds the dataset card (:mod:`voxbox.release.card`), the
report (:mod:`voxbox.release.report`) and publish.
"""


from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from voxbox.annotate.levels import VOXBOX_BOUNDARIES, Boundaries, pitch_mel
from voxbox.record import Rejection, Utterance

# Histogram grids. Pitch is binned in Mel because that is where VoxBox draws its level
# boundaries (spec voxbox.md 3.6); speed in syllables per second, clipped like VoxBox.
PITCH_MEL_MAX = 1000.0
PITCH_BIN = 4.0
SPEED_MAX = 10.0
SPEED_BIN = 0.1
DURATION_MAX = 60.0
DURATION_BIN = 0.25
SEMANTIC_RATE_MAX = 100.0
SEMANTIC_RATE_BIN = 1.0
SEMANTIC_TOKENS_PER_SECOND = 50.0
GLOBAL_TOKENS_PER_UTTERANCE = 32
ODD_PER_KIND = 5

def level_boundaries(pipeline: Optional[dict] = None) -> Dict[str, Dict[str, Tuple[float, ...]]]:
    """``{"pitch": {gender: (b1..b4 in Mel)}, "speed": {language: (b1..b4 in SPS)}}``.

    The annotator's table (:mod:`voxbox.annotate.levels`): VoxBox's published numbers,
    overlaid with the boundaries file named by the pipeline's annotate stage when it has
    one and it still exists.
    """
    tables = [VOXBOX_BOUNDARIES]
    try:
        path = _pipeline_boundaries_path(pipeline)
        if path is not None and Path(path).is_file():
            tables.append(Boundaries.load(path).table)
    except Exception:  # noqa: BLE001 - a report must not fail over a boundaries file
        pass
    out = {}
    for kind in ("pitch", "speed"):
        groups = {}
        for table in tables:
            for group, bounds in (table.get(kind) or {}).items():
                groups[group] = tuple(float(b) for b in bounds)
        out[kind] = groups
    return out


def _pipeline_boundaries_path(pipeline: Optional[dict]) -> Optional[str]:
    for stage in (pipeline or {}).get("stages") or []:
        if isinstance(stage, dict) and stage.get("stage") == "annotate":
            value = (stage.get("params") or {}).get("boundaries")
            return str(value) if value else None
    return None


def _bincount_into(acc, tokens):
    import numpy as np

    if not tokens:
        return acc
    arr = np.asarray(tokens, dtype=np.int64)
    if arr.min() < 0:
        arr = arr[arr >= 0]  # a negative id is invalid; validate reports it, plots skip it
    counts = np.bincount(arr)
    if acc is None:
        return counts
    if len(counts) > len(acc):
        counts[:len(acc)] += acc
        return counts
    acc[:len(counts)] += counts
    return acc


class _Hist:
    """Counts on a fixed grid [0, top) with an overflow bin at the end."""

    def __init__(self, top: float, width: float):
        import numpy as np

        self.top, self.width = top, width
        self.counts = np.zeros(int(round(top / width)) + 1, dtype=np.int64)

    def add(self, x: float) -> None:
        i = int(max(x, 0.0) // self.width)
        self.counts[min(i, len(self.counts) - 1)] += 1

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def edges(self):
        import numpy as np

        return np.arange(len(self.counts) + 1) * self.width


@dataclass
class OddRecord:
    kind: str
    why: str
    score: float
    index: str
    corpus: Optional[str]
    gender: Optional[str]
    language: Optional[str]
    duration: Optional[float]
    text: Optional[str]
    where: Optional[str]


def _gender_consistency():
    from voxbox.labels.speakers import GenderConsistency

    return GenderConsistency()


@dataclass
class DatasetStats:
    """Everything the card and the report show, gathered in one pass."""

    records: int = 0
    seconds: float = 0.0
    by: Dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # field -> value -> records
    seconds_by: Dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # field -> value -> s
    level_grid: Counter = field(default_factory=Counter)  # (pitch_level, speed_level) -> records
    label_sources: Dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    corpus_licenses: Dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    corpus_languages: Dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    pitch_hist: Dict[str, _Hist] = field(default_factory=dict)  # gender -> Mel histogram
    speed_hist: Dict[str, _Hist] = field(default_factory=dict)  # language -> SPS histogram
    duration_hist: _Hist = field(default_factory=lambda: _Hist(DURATION_MAX, DURATION_BIN))
    semantic_rate_hist: _Hist = field(default_factory=lambda: _Hist(SEMANTIC_RATE_MAX, SEMANTIC_RATE_BIN))
    global_len: Counter = field(default_factory=Counter)
    semantic_total: int = 0
    tokenized: int = 0
    # Code usage counts, index = token id (numpy, grown on demand: bincount is ~100x
    # faster than a Counter for millions of records).
    global_codes: object = None
    semantic_codes: object = None
    rejects: Counter = field(default_factory=Counter)  # "stage: reason" -> count
    corrected: Counter = field(default_factory=Counter)  # field -> records corrected by hand (build --corrections)
    boundaries: Optional[dict] = None  # the level boundaries the records were compared with
    # Per speaker: the gender model's clip answers against native labels and speaker votes.
    gender_consistency: object = field(default_factory=lambda: _gender_consistency())
    _odd: Dict[str, list] = field(default_factory=lambda: defaultdict(list))  # kind -> heap
    _seq: int = 0

    # -- gathering ---------------------------------------------------------------------
    def add(self, rec: Utterance, boundaries: Optional[dict] = None) -> None:
        if not boundaries:
            # Compared with VoxBox's published boundaries unless told otherwise.
            boundaries = self.boundaries = self.boundaries or level_boundaries()
        dur = float(rec.duration) if rec.duration is not None else 0.0
        self.records += 1
        self.seconds += dur
        for name in ("corpus", "language", "gender", "age", "emotion", "split", "pitch_level", "speed_level",
                     "pitch_std_level"):
            value = getattr(rec, name)
            key = str(value) if value is not None else "unknown"
            self.by[name][key] += 1
            self.seconds_by[name][key] += dur
        self.level_grid[(rec.pitch_level or "unknown", rec.speed_level or "unknown")] += 1
        for name in ("gender", "age", "emotion"):
            if getattr(rec, name) is not None:
                self.label_sources[name][getattr(rec, f"{name}_source") or "unstated"] += 1
        for name in ((rec.extra or {}).get("corrected") or {}):
            self.corrected[name] += 1
        corpus = rec.corpus or "unknown"
        self.corpus_licenses[corpus][rec.license or "unstated"] += 1
        self.corpus_languages[corpus][rec.language or "unknown"] += 1
        if rec.duration is not None:
            self.duration_hist.add(dur)
        if rec.pitch is not None and rec.pitch > 0:
            g = rec.gender or "unknown"
            self.pitch_hist.setdefault(g, _Hist(PITCH_MEL_MAX, PITCH_BIN)).add(pitch_mel(rec.pitch))
        if rec.speed is not None:
            lang = rec.language or "unknown"
            self.speed_hist.setdefault(lang, _Hist(SPEED_MAX, SPEED_BIN)).add(min(float(rec.speed), SPEED_MAX))
        self._tokens(rec, dur)
        self._oddities(rec, dur, boundaries)
        self.gender_consistency.add(rec)

    def _tokens(self, rec: Utterance, dur: float) -> None:
        if rec.global_tokens is None and rec.semantic_tokens is None:
            return
        self.tokenized += 1
        g = list(rec.global_tokens or [])
        s = list(rec.semantic_tokens or [])
        self.global_len[len(g)] += 1
        self.global_codes = _bincount_into(self.global_codes, g)
        self.semantic_codes = _bincount_into(self.semantic_codes, s)
        self.semantic_total += len(s)
        if dur > 0:
            self.semantic_rate_hist.add(len(s) / dur)

    def _push(self, kind: str, score: float, why: str, rec: Utterance) -> None:
        self._seq += 1
        where = rec.wav_path or rec.source_path
        item = (score, self._seq, OddRecord(kind, why, score, rec.index, rec.corpus, rec.gender, rec.language,
                                            rec.duration, rec.text, where))
        heap = self._odd[kind]
        if len(heap) < ODD_PER_KIND:
            heapq.heappush(heap, item)
        elif score > heap[0][0]:
            heapq.heapreplace(heap, item)

    def _oddities(self, rec: Utterance, dur: float, boundaries: dict) -> None:
        if rec.speed is not None and rec.speed > 0:
            self._push("slowest", -float(rec.speed), f"speed {rec.speed:.2f} syllables/s", rec)
            self._push("fastest", float(rec.speed), f"speed {rec.speed:.2f} syllables/s", rec)
        if rec.duration is not None:
            self._push("longest", dur, f"{dur:.2f} s long", rec)
            self._push("shortest", -dur, f"{dur:.2f} s long", rec)
        if rec.pitch is not None and rec.pitch > 0 and rec.gender in boundaries["pitch"]:
            b1, _b2, _b3, b4 = boundaries["pitch"][rec.gender]
            mel = pitch_mel(rec.pitch)
            # Distance outside the gender's very_low..very_high band, in band widths.
            out = max(b1 - mel, mel - b4, 0.0) / max(b4 - b1, 1e-9)
            if out > 0:
                self._push("pitch_outlier", out, f"{rec.pitch:.0f} Hz is far outside the {rec.gender} range", rec)
        if rec.speech_duration is not None and dur > 0:
            silent = 1.0 - float(rec.speech_duration) / dur
            if silent > 0.3:
                self._push("mostly_silence", silent, f"{silent:.0%} of the clip is trimmed silence", rec)
        if rec.clipping_ratio is not None and rec.clipping_ratio > 0:
            self._push("clipping", float(rec.clipping_ratio), f"{rec.clipping_ratio:.2%} samples clipped", rec)
        if rec.gender_source == "predicted" and rec.gender_confidence is not None:
            self._push("unsure_gender", -float(rec.gender_confidence),
                       f"gender {rec.gender} predicted with confidence {rec.gender_confidence:.2f}", rec)
        if rec.semantic_tokens is not None and dur > 0:
            off = abs(len(rec.semantic_tokens) / dur - SEMANTIC_TOKENS_PER_SECOND)
            if off > 2.0:
                self._push("token_rate", off, f"{len(rec.semantic_tokens) / dur:.1f} semantic tokens/s", rec)

    def add_rejects(self, rejects: Iterable[Rejection]) -> None:
        for r in rejects:
            self.rejects[f"{r.stage}: {r.reason}"] += 1

    # -- reading -----------------------------------------------------------------------
    @property
    def hours(self) -> float:
        return self.seconds / 3600.0

    def oddities(self) -> List[OddRecord]:
        order = ("slowest", "fastest", "pitch_outlier", "mostly_silence", "clipping", "unsure_gender",
                 "token_rate", "longest", "shortest")
        out = []
        for kind in order + tuple(k for k in self._odd if k not in order):
            out += [item[2] for item in sorted(self._odd.get(kind, []), key=lambda t: (-t[0], t[1]))]
        return out

    def table(self, name: str) -> List[Tuple[str, int, float]]:
        """``(value, records, hours)`` rows for one field, most hours first."""
        rows = [(k, self.by[name][k], self.seconds_by[name][k] / 3600.0) for k in self.by[name]]
        return sorted(rows, key=lambda r: (-r[2], -r[1], r[0]))


def collect_stats(ds, progress: bool = True) -> DatasetStats:
    """One streaming pass over a built dataset (:class:`voxbox.dataset.reader.BuiltDataset`)."""
    from voxbox.progress import track

    stats = DatasetStats()
    bounds = level_boundaries(ds.pipeline)
    records = ds.records()
    if progress:
        records = track(records, desc="statistics", total=len(ds))
    stats.boundaries = bounds
    for rec in records:
        stats.add(rec, bounds)
    stats.add_rejects(ds.rejects())
    return stats


# ------------------------------------------------------------------------------------
# Plots
# ------------------------------------------------------------------------------------
