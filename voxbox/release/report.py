"""``voxbox report``: one self-contained HTML page about a built dataset.

The numbers come from :func:`voxbox.dataset.stats.collect_stats`. :func:`write_report`
draws the plots with matplotlib's Agg backend and embeds them as base64 PNG, and the
audio of the records worth listening to as ``<audio>`` players with data URIs, so the page
needs nothing but itself: no scripts, no network.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from voxbox.errors import VoxboxError
from voxbox.record import LEVELS
from voxbox.dataset.stats import (DURATION_MAX, GLOBAL_TOKENS_PER_UTTERANCE, ODD_PER_KIND,
                                  SEMANTIC_TOKENS_PER_SECOND, DatasetStats, OddRecord, _Hist, collect_stats,
                                  level_boundaries)

_LEVEL_COLOURS = ("#d7e3f4", "#eef3d6", "#f7f7f7", "#f9e3cc", "#f4d0d0")


def _figure(w: float = 7.5, h: float = 3.2, n: int = 1):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n, figsize=(w, h), squeeze=False)
    return fig, list(axes[0])


def _counts_axis(axis) -> None:
    """A count axis ticks whole records only (no 0.5 records)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


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
        # Above the bars (zorder) on a pale box, so a tall bar cannot hide the label.
        ax.text((edges[i] + edges[i + 1]) / 2, 0.97, name.replace("_", " "), transform=ax.get_xaxis_transform(),
                ha="center", va="top", fontsize=7, color="#555", zorder=5,
                bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none", alpha=0.8))
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
        _counts_axis(ax.yaxis)
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
    _counts_axis(ax.yaxis)
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
    _counts_axis(ax.yaxis)
    ax = axes[1]
    h = stats.semantic_rate_hist
    nz = np.nonzero(h.counts)[0]
    ax.stairs(h.counts, h.edges(), fill=True, color="#c06c84")
    if len(nz):
        ax.set_xlim(max(nz[0] * h.width - 5, 0), (nz[-1] + 1) * h.width + 5)
    ax.axvline(SEMANTIC_TOKENS_PER_SECOND, color="#c0392b", ls="--", lw=1)
    ax.set_title("semantic tokens per second (expected 50)", fontsize=9)
    ax.set_ylabel("records", fontsize=8)
    _counts_axis(ax.yaxis)
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
    _counts_axis(ax.xaxis)
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


def _hours(h: float) -> str:
    """Hours as every number on the page shows them (the headline too): 3 decimals below 10 h."""
    return f"{h:.3f}" if h < 10 else f"{h:,.1f}"


def _count_table(title: str, rows: List[Tuple[str, int, float]]) -> str:
    body = "".join(f"<tr><td>{_esc(k)}</td><td class=n>{n}</td><td class=n>{_hours(h)}</td></tr>"
                   for k, n, h in rows)
    return (f"<div><table><tr><th>{_esc(title)}</th><th>records</th><th>hours</th></tr>{body}</table></div>")


# Kinds that are two ends of one scale: a record goes to the end it ranks higher at, so a
# small dataset never lists the same clip as both slowest and fastest.
_OPPOSITES = (("slowest", "fastest"), ("longest", "shortest"))
MAX_EMBED_BYTES = 4 * 1024 * 1024      # one clip larger than this is named, not embedded
MAX_EMBED_TOTAL = 48 * 1024 * 1024     # the whole page's audio
_MIME = {"flac": "audio/flac", "wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg", "opus": "audio/ogg"}


@dataclass
class ListenRow:
    """One record worth listening to, with every reason it was picked."""

    odd: OddRecord
    kinds: List[str]
    whys: List[str]


def listening_rows(stats: DatasetStats) -> List[ListenRow]:
    """The oddities, each record once (its kinds merged), opposite ends kept apart."""
    odd = stats.oddities()
    rank = {(o.kind, o.index): i for kind in {o.kind for o in odd}
            for i, o in enumerate([x for x in odd if x.kind == kind])}
    keep = []
    for o in odd:
        other = next((b if o.kind == a else a for a, b in _OPPOSITES if o.kind in (a, b)), None)
        theirs = rank.get((other, o.index)) if other else None
        mine = rank[(o.kind, o.index)]
        if theirs is not None and (theirs < mine or (theirs == mine and o.kind in {b for _, b in _OPPOSITES})):
            continue
        keep.append(o)
    rows: Dict[str, ListenRow] = {}
    for o in keep:
        row = rows.setdefault(o.index, ListenRow(o, [], []))
        row.kinds.append(o.kind.replace("_", " "))
        row.whys.append(o.why)
    return list(rows.values())


def _audio_cell(index: str, audio: Dict[str, Tuple[bytes, str]], budget: List[int]) -> str:
    data, ext = audio.get(index, (None, ""))
    if data is None:
        return "<span class=muted>not found</span>"
    if len(data) > MAX_EMBED_BYTES or len(data) > budget[0]:
        return f"<span class=muted>{len(data) / 1e6:.1f} MB, not embedded</span>"
    budget[0] -= len(data)
    mime = _MIME.get(ext, f"audio/{ext or 'flac'}")
    return (f'<audio controls preload=none src="data:{mime};base64,{base64.b64encode(data).decode("ascii")}">'
            "</audio>")


def _listening_section(rows: List[ListenRow], audio: Dict[str, Tuple[bytes, str]]) -> List[str]:
    parts = ["<h2>Records worth listening to</h2><p class=muted>The slowest, fastest and oddest records "
             f"(up to {ODD_PER_KIND} per kind), each once, with its audio.</p>"]
    if not rows:
        return parts + ["<p class=muted>No records.</p>"]
    parts.append("<table><tr><th>kind</th><th>why</th><th>index</th><th>corpus</th><th>gender</th>"
                 "<th>lang</th><th>s</th><th>text</th><th>listen</th></tr>")
    budget = [MAX_EMBED_TOTAL]
    for row in rows:
        o = row.odd
        text = (o.text or "")[:120] + ("..." if o.text and len(o.text) > 120 else "")
        dur = f"{o.duration:.2f}" if o.duration is not None else ""
        parts.append(
            f"<tr><td>{_esc(', '.join(row.kinds))}</td><td>{_esc('; '.join(row.whys))}</td>"
            f"<td>{_esc(o.index)}<br><span class=muted>{_esc(o.where)}</span></td><td>{_esc(o.corpus)}</td>"
            f"<td>{_esc(o.gender)}</td><td>{_esc(o.language)}</td><td class=n>{dur}</td><td>{_esc(text)}</td>"
            f"<td>{_audio_cell(o.index, audio, budget)}</td></tr>")
    return parts + ["</table>"]


def _headline(stats: DatasetStats, title: str, source: str, facts: Optional[Dict[str, str]]) -> List[str]:
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_esc(title)}</h1><p class=muted>{_esc(source)}</p><div class=facts>",
        f"<div><b>{stats.records:,}</b>records</div><div><b>{_hours(stats.hours)}</b>hours</div>",
        f"<div><b>{len(stats.by['corpus'])}</b>corpora</div>",
        f"<div><b>{sum(stats.rejects.values()):,}</b>rejected</div>",
        f"<div><b>{stats.tokenized:,}</b>with BiCodec tokens</div>",
    ]
    for k, v in (facts or {}).items():
        parts.append(f"<div><b>{_esc(v)}</b>{_esc(k)}</div>")
    return parts + ["</div>"]


def _plot_sections(stats: DatasetStats, bounds: dict) -> List[str]:
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
    parts = []
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
    return parts


def render_html(stats: DatasetStats, *, title: str, source: str, facts: Optional[Dict[str, str]] = None,
                boundaries: Optional[dict] = None, audio: Optional[Dict[str, Tuple[bytes, str]]] = None) -> str:
    """The page: headline facts, the plots, and the records worth listening to with their
    audio embedded (``audio``: index -> (bytes, ext), see :meth:`BuiltDataset.audio_of`)."""
    bounds = boundaries or stats.boundaries or level_boundaries()
    parts = _headline(stats, title, source, facts) + _plot_sections(stats, bounds)
    parts.append(_consistency_html(stats.gender_consistency.summary()))
    parts += _listening_section(listening_rows(stats), audio or {})
    parts.append("</body></html>\n")
    return "".join(parts)


_CONSISTENCY_TEXT = {
    "native": ("Native gender labels checked", "Clips whose corpus label the gender model contradicts, per "
               "speaker: a speaker most of whose clips disagree probably has a wrong label in the corpus "
               "metadata."),
    "vote": ("Speakers whose clips disagree", "Genders set by speaker vote (annotate --gender-by speaker): "
             "speakers whose clips the model splits strongly (mixed recordings, or a wrong speaker id)."),
}


def _consistency_html(summary: Dict[str, dict]) -> str:
    parts = []
    for kind, s in summary.items():
        title, caption = _CONSISTENCY_TEXT[kind]
        parts.append(f"<h2>{_esc(title)}</h2><p class=muted>{_esc(caption)} {s['speakers']:,} speakers, "
                     f"{s['clips']:,} clips; the model disagrees on {s['disagree']:,} ({s['rate']:.1%}); "
                     f"{s['flagged_total']:,} speakers flagged.</p>")
        if s["flagged"]:
            parts.append("<table><tr><th>speaker</th><th>gender</th><th>clips</th><th>disagree</th></tr>")
            for f in s["flagged"]:
                parts.append(f"<tr><td>{_esc(f['speaker'])}</td><td>{_esc(f['gender'])}</td>"
                             f"<td class=n>{f['clips']}</td><td class=n>{f['rate']:.0%}</td></tr>")
            parts.append("</table>")
    return "".join(parts)


def write_report(dataset_dir: Union[str, Path], out: Union[str, Path], *, title: Optional[str] = None,
                 progress: bool = True) -> Path:
    """Read a built folder and write the self-contained HTML report to ``out``."""
    from voxbox.dataset.reader import open_dataset

    ds = open_dataset(dataset_dir)
    stats = collect_stats(ds, progress=progress)
    facts = {"shards": str(len(ds.shards)), "formats": ", ".join(ds.formats)}
    audio = ds.audio_of(row.odd.index for row in listening_rows(stats))
    page = render_html(stats, title=title or f"voxbox report: {ds.name}", source=str(ds.path if ds.remote else ds.path.resolve()),
                       facts=facts, audio=audio)
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".partial")
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(out)
    except OSError as e:
        from voxbox.errors import os_error_reason

        raise VoxboxError(f"{out}: cannot write the report ({os_error_reason(e)})") from None
    return out
