"""Statistics of a built dataset, and ``voxbox report``: one self-contained HTML page.

:func:`collect_stats` streams the records once (no audio is read) into fixed-size
histograms, counters and small top-k lists, so memory does not grow with the dataset.
The same :class:`DatasetStats` feeds the dataset card (:mod:`voxbox.card`) and the
report. :func:`write_report` draws the plots with matplotlib's Agg backend and embeds
them as base64 PNG, so the page needs nothing but itself: no scripts, no network.
"""

from __future__ import annotations

import base64
import heapq
import html
import io
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from .errors import VoxboxError
from .record import LEVELS, Rejection, Utterance

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

# VoxBox's published boundaries (spec voxbox.md 3.6): b1..b4 for the five levels.
# Used when voxbox.annotate.levels does not provide its own table.
_FALLBACK_BOUNDARIES = {
    "pitch": {"male": (144.275, 163.172, 211.044, 249.549), "female": (224.325, 257.532, 313.213, 352.569)},
    "speed": {"zh": (2.677, 3.540, 5.166, 6.072), "en": (2.553, 3.306, 4.720, 5.464)},
}


def hz_to_mel(f: float) -> float:
    return min(max(2595.0 * math.log10(1.0 + f / 700.0), 0.0), PITCH_MEL_MAX)


def mel_to_hz(m: float) -> float:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def level_boundaries(pipeline: Optional[dict] = None) -> Dict[str, Dict[str, Tuple[float, ...]]]:
    """``{"pitch": {gender: (b1..b4 in Mel)}, "speed": {language: (b1..b4 in SPS)}}``.

    The annotator's table (:mod:`voxbox.annotate.levels`): the boundaries file named by
    the pipeline's annotate stage when it has one and it still exists, else VoxBox's
    published numbers.
    """
    table = None
    try:
        from .annotate.levels import VOXBOX_BOUNDARIES, Boundaries

        table = VOXBOX_BOUNDARIES
        path = _pipeline_boundaries_path(pipeline)
        if path is not None and Path(path).is_file():
            table = Boundaries.load(path).table
    except Exception:  # noqa: BLE001 - a report must not fail over a boundaries file
        table = table or _FALLBACK_BOUNDARIES
    out = {}
    for kind in ("pitch", "speed"):
        groups = dict(_FALLBACK_BOUNDARIES[kind])
        for group, bounds in ((table or {}).get(kind) or {}).items():
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
    boundaries: Optional[dict] = None  # the level boundaries the records were compared with
    _odd: Dict[str, list] = field(default_factory=lambda: defaultdict(list))  # kind -> heap
    _seq: int = 0

    # -- gathering ---------------------------------------------------------------------
    def add(self, rec: Utterance, boundaries: Optional[dict] = None) -> None:
        boundaries = boundaries or _FALLBACK_BOUNDARIES
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
        corpus = rec.corpus or "unknown"
        self.corpus_licenses[corpus][rec.license or "unstated"] += 1
        self.corpus_languages[corpus][rec.language or "unknown"] += 1
        if rec.duration is not None:
            self.duration_hist.add(dur)
        if rec.pitch is not None and rec.pitch > 0:
            g = rec.gender or "unknown"
            self.pitch_hist.setdefault(g, _Hist(PITCH_MEL_MAX, PITCH_BIN)).add(hz_to_mel(rec.pitch))
        if rec.speed is not None:
            lang = rec.language or "unknown"
            self.speed_hist.setdefault(lang, _Hist(SPEED_MAX, SPEED_BIN)).add(min(float(rec.speed), SPEED_MAX))
        self._tokens(rec, dur)
        self._oddities(rec, dur, boundaries)

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
            mel = hz_to_mel(rec.pitch)
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
    """One streaming pass over a built dataset (:class:`voxbox.dataset.BuiltDataset`)."""
    from .progress import track

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

_LEVEL_COLOURS = ("#d7e3f4", "#eef3d6", "#f7f7f7", "#f9e3cc", "#f4d0d0")


def _figure(w: float = 7.5, h: float = 3.2, n: int = 1):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n, figsize=(w, h), squeeze=False)
    return fig, list(axes[0])


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _no_data(ax, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#777")
    ax.set_xticks([])
    ax.set_yticks([])


def _shade_levels(ax, bounds: Sequence[float], lo: float, hi: float) -> None:
    edges = [lo, *bounds, hi]
    for i, name in enumerate(LEVELS):
        ax.axvspan(edges[i], edges[i + 1], color=_LEVEL_COLOURS[i], zorder=0)
        if (edges[i + 1] - edges[i]) < 0.09 * (hi - lo):
            continue  # too narrow to label legibly; the colour still marks it
        ax.text((edges[i] + edges[i + 1]) / 2, 0.97, name.replace("_", " "), transform=ax.get_xaxis_transform(),
                ha="center", va="top", fontsize=7, color="#555")
    for b in bounds:
        ax.axvline(b, color="#c0392b", lw=1, ls="--", zorder=3)


def _hist_window(h: _Hist, bounds: Sequence[float], pad: float):
    import numpy as np

    nz = np.nonzero(h.counts)[0]
    lo = min([*bounds, (nz[0] * h.width) if len(nz) else bounds[0]]) - pad
    hi = max([*bounds, ((nz[-1] + 1) * h.width) if len(nz) else bounds[-1]]) + pad
    return max(lo, 0.0), hi


def plot_level_hists(hists: Dict[str, _Hist], bounds: Dict[str, Sequence[float]], xlabel: str, pad: float,
                     top_axis_hz: bool = False) -> str:
    groups = sorted(set(hists) | set(bounds))
    groups = [g for g in groups if g in hists] or groups[:2]
    fig, axes = _figure(4.0 * max(len(groups), 1), 3.2, max(len(groups), 1))
    for ax, g in zip(axes, groups):
        h = hists.get(g)
        b = bounds.get(g)
        if h is None or h.total == 0:
            _no_data(ax, f"{g}: no values")
            continue
        lo, hi = _hist_window(h, b or [0.0], pad)
        edges = h.edges()
        ax.stairs(h.counts, edges, fill=True, color="#34699a", alpha=0.85, zorder=2)
        if b is not None:
            _shade_levels(ax, b, lo, hi)
            title = f"{g} ({h.total} records)"
        else:
            title = f"{g} ({h.total} records, no boundary table)"
        ax.set_xlim(lo, hi)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel("records", fontsize=8)
        ax.tick_params(labelsize=7)
        if top_axis_hz:
            sec = ax.secondary_xaxis("top", functions=(lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0),
                                                       lambda f: 2595.0 * __import__("numpy").log10(1.0 + f / 700.0)))
            sec.set_xlabel("Hz", fontsize=7)
            sec.tick_params(labelsize=6)
    return _png(fig)


def plot_duration(h: _Hist) -> str:
    import numpy as np

    fig, (ax,) = _figure(7.5, 2.8)
    if h.total == 0:
        _no_data(ax)
        return _png(fig)
    nz = np.nonzero(h.counts)[0]
    hi = (nz[-1] + 1) * h.width
    ax.stairs(h.counts, h.edges(), fill=True, color="#4a7f52")
    ax.set_xlim(0, hi + h.width)
    ax.set_xlabel(f"duration (s){'; last bin: >= %g s' % DURATION_MAX if h.counts[-1] else ''}", fontsize=8)
    ax.set_ylabel("records", fontsize=8)
    ax.tick_params(labelsize=7)
    return _png(fig)


def plot_hours(stats: DatasetStats) -> str:
    fig, axes = _figure(11.0, 3.4, 3)
    for ax, name in zip(axes, ("corpus", "gender", "language")):
        rows = stats.table(name)[:20]
        if not rows:
            _no_data(ax)
            continue
        labels = [r[0] for r in rows][::-1]
        hours = [r[2] for r in rows][::-1]
        ax.barh(labels, hours, color="#6c5b7b")
        ax.set_title(f"hours per {name}", fontsize=9)
        ax.set_xlabel("hours", fontsize=8)
        ax.tick_params(labelsize=7)
    return _png(fig)


def plot_level_grid(stats: DatasetStats) -> str:
    import numpy as np

    rows = list(LEVELS) + (["unknown"] if any(k[0] == "unknown" for k in stats.level_grid) else [])
    cols = list(LEVELS) + (["unknown"] if any(k[1] == "unknown" for k in stats.level_grid) else [])
    grid = np.array([[stats.level_grid.get((r, c), 0) for c in cols] for r in rows], dtype=float)
    fig, (ax,) = _figure(6.0, 4.2)
    ax.imshow(grid, cmap="Blues", aspect="auto")
    peak = grid.max() if grid.size else 0
    for i in range(len(rows)):
        for j in range(len(cols)):
            v = int(grid[i, j])
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                    color="white" if peak and v > peak * 0.6 else "#222")
    ax.set_xticks(range(len(cols)), [c.replace("_", " ") for c in cols], fontsize=7)
    ax.set_yticks(range(len(rows)), [r.replace("_", " ") for r in rows], fontsize=7)
    ax.set_xlabel("speed level", fontsize=8)
    ax.set_ylabel("pitch level", fontsize=8)
    return _png(fig)


def plot_tokens(stats: DatasetStats) -> str:
    import numpy as np

    fig, axes = _figure(11.0, 3.0, 3)
    if stats.tokenized == 0:
        for ax in axes:
            _no_data(ax, "no BiCodec tokens in this dataset")
        return _png(fig)
    ax = axes[0]
    lens = sorted(stats.global_len)
    ax.bar([str(x) for x in lens], [stats.global_len[x] for x in lens], color="#355c7d")
    ax.set_title(f"global tokens per record (expected {GLOBAL_TOKENS_PER_UTTERANCE})", fontsize=9)
    ax.set_ylabel("records", fontsize=8)
    ax = axes[1]
    h = stats.semantic_rate_hist
    nz = np.nonzero(h.counts)[0]
    ax.stairs(h.counts, h.edges(), fill=True, color="#c06c84")
    if len(nz):
        ax.set_xlim(max(nz[0] * h.width - 5, 0), (nz[-1] + 1) * h.width + 5)
    ax.axvline(SEMANTIC_TOKENS_PER_SECOND, color="#c0392b", ls="--", lw=1)
    ax.set_title("semantic tokens per second (expected 50)", fontsize=9)
    ax.set_ylabel("records", fontsize=8)
    ax = axes[2]
    for counts, label, colour in ((stats.semantic_codes, "semantic", "#c06c84"),
                                  (stats.global_codes, "global", "#355c7d")):
        if counts is not None and counts.sum() > 0:
            freq = np.sort(counts[counts > 0])[::-1].astype(float)
            ax.plot(np.arange(1, len(freq) + 1), freq / freq.sum(), label=f"{label}: {len(freq)} codes used",
                    color=colour)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title("codebook usage (rank vs share)", fontsize=9)
    ax.legend(fontsize=7)
    for a in axes:
        a.tick_params(labelsize=7)
    return _png(fig)


def plot_rejects(stats: DatasetStats) -> str:
    rows = stats.rejects.most_common(20)
    fig, (ax,) = _figure(7.5, max(1.6, 0.3 * len(rows) + 0.8))
    if not rows:
        _no_data(ax, "nothing was rejected")
        return _png(fig)
    ax.barh([r[0] for r in rows][::-1], [r[1] for r in rows][::-1], color="#b5542f")
    ax.set_xlabel("records", fontsize=8)
    ax.tick_params(labelsize=7)
    return _png(fig)


# ------------------------------------------------------------------------------------
# HTML
# ------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1150px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ddd}
.facts{display:flex;gap:1.2em;flex-wrap:wrap;margin:1em 0}.facts div{background:#f4f6f8;padding:.5em .9em;border-radius:6px}
.facts b{display:block;font-size:1.3em}img.plot{max-width:100%;border:1px solid #eee}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f6f8}td.n{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#777}
.tables{display:flex;gap:1.5em;flex-wrap:wrap}
"""


def _esc(x) -> str:
    return html.escape("" if x is None else str(x))


def _img(b64: str, alt: str) -> str:
    return f'<img class="plot" alt="{_esc(alt)}" src="data:image/png;base64,{b64}">'


def _count_table(title: str, rows: List[Tuple[str, int, float]]) -> str:
    body = "".join(f"<tr><td>{_esc(k)}</td><td class=n>{n}</td><td class=n>{h:.3f}</td></tr>" for k, n, h in rows)
    return (f"<div><table><tr><th>{_esc(title)}</th><th>records</th><th>hours</th></tr>{body}</table></div>")


def render_html(stats: DatasetStats, *, title: str, source: str, facts: Optional[Dict[str, str]] = None,
                boundaries: Optional[dict] = None) -> str:
    bounds = boundaries or stats.boundaries or level_boundaries()
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_esc(title)}</h1><p class=muted>{_esc(source)}</p><div class=facts>",
        f"<div><b>{stats.records:,}</b>records</div><div><b>{stats.hours:.2f}</b>hours</div>",
        f"<div><b>{len(stats.by['corpus'])}</b>corpora</div>",
        f"<div><b>{sum(stats.rejects.values()):,}</b>rejected</div>",
        f"<div><b>{stats.tokenized:,}</b>with BiCodec tokens</div>",
    ]
    for k, v in (facts or {}).items():
        parts.append(f"<div><b>{_esc(v)}</b>{_esc(k)}</div>")
    parts.append("</div>")

    sections = [
        ("Pitch by gender", "Mean pitch per record in Mel, with the five-level boundaries (dashed) the level "
         "labels are cut at; the top axis shows Hz.",
         plot_level_hists(stats.pitch_hist, bounds["pitch"], "pitch (Mel)", pad=30.0, top_axis_hz=True)),
        ("Speed by language", "Syllables per second of speech, with the language's five-level boundaries.",
         plot_level_hists(stats.speed_hist, bounds["speed"], "speed (syllables/s)", pad=0.5)),
        ("Duration", "Clip duration after loading.", plot_duration(stats.duration_hist)),
        ("Hours", "Audio hours per corpus, gender and language.", plot_hours(stats)),
        ("Pitch level x speed level", "Records per combination of the two level labels Spark-TTS is "
         "controlled with.", plot_level_grid(stats)),
        ("BiCodec tokens", "Global tokens per record, semantic token rate, and how evenly the codebooks are "
         "used.", plot_tokens(stats)),
        ("Rejects by reason", "Records that did not make it into the shards, by stage and reason.",
         plot_rejects(stats)),
    ]
    for name, caption, b64 in sections:
        parts.append(f"<h2>{_esc(name)}</h2><p class=muted>{_esc(caption)}</p>{_img(b64, name)}")
        if name == "Hours":
            parts.append("<div class=tables>")
            for f in ("corpus", "gender", "language", "pitch_level", "speed_level"):
                rows = stats.table(f)
                if f.endswith("_level"):
                    rank = {k: i for i, k in enumerate(LEVELS)}
                    rows = sorted(rows, key=lambda r: (rank.get(r[0], len(rank)), r[0]))
                parts.append(_count_table(f, rows))
            parts.append("</div>")

    parts.append("<h2>Records worth listening to</h2><p class=muted>The slowest, fastest and oddest records "
                 f"(up to {ODD_PER_KIND} per kind).</p>")
    odd = stats.oddities()
    if odd:
        parts.append("<table><tr><th>kind</th><th>why</th><th>index</th><th>corpus</th><th>gender</th>"
                     "<th>lang</th><th>s</th><th>text</th><th>audio</th></tr>")
        for o in odd:
            text = (o.text or "")[:120] + ("..." if o.text and len(o.text) > 120 else "")
            dur = f"{o.duration:.2f}" if o.duration is not None else ""
            parts.append(
                f"<tr><td>{_esc(o.kind.replace('_', ' '))}</td><td>{_esc(o.why)}</td><td>{_esc(o.index)}</td>"
                f"<td>{_esc(o.corpus)}</td><td>{_esc(o.gender)}</td><td>{_esc(o.language)}</td>"
                f"<td class=n>{dur}</td><td>{_esc(text)}</td><td>{_esc(o.where)}</td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p class=muted>No records.</p>")
    parts.append("</body></html>\n")
    return "".join(parts)


def write_report(dataset_dir: Union[str, Path], out: Union[str, Path], *, title: Optional[str] = None,
                 progress: bool = True) -> Path:
    """Read a built folder and write the self-contained HTML report to ``out``."""
    from .dataset import open_dataset

    ds = open_dataset(dataset_dir)
    stats = collect_stats(ds, progress=progress)
    facts = {"shards": str(len(ds.shards)), "formats": ", ".join(ds.formats)}
    page = render_html(stats, title=title or f"voxbox report: {ds.name}", source=str(Path(dataset_dir).resolve()),
                       facts=facts)
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".partial")
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(out)
    except OSError as e:
        from .errors import os_error_reason

        raise VoxboxError(f"{out}: cannot write the report ({os_error_reason(e)})") from None
    return out
