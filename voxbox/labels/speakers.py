"""Speakers from embeddings, and labels made consistent per speaker.

Clustering (:func:`cluster`): agglomerative, average linkage, cosine distance; two
clusters merge while the mean distance between their clips is below ``threshold``.
The default 0.2 (mean cosine similarity 0.8) separates the 24 speakers of the shared
real-speech clips with one split (ARI 0.995); same-speaker GE2E pairs there have
cosine 0.73-0.99 (median 0.92), different-speaker pairs -0.1-0.84 (median 0.57).
Short, emotional clips (1-2 s of TV drama) scatter more and are over-split at 0.2: a
higher threshold merges more. Exact clustering holds N^2/2 distances, so a set larger
than ``max_exact`` is clustered in blocks of that size, in input order, and the
blocks' clusters (their mean embeddings) are clustered again with the same rule.

Speaker vote (:func:`vote`): a speaker's label is the class with the largest sum of
clip confidences; its confidence is that sum over the sum of all its clips'
confidences. A speaker is *inconsistent* when at least :data:`DISAGREE_FLAG` of its
clips (and at least 2) disagree with its label.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

DEFAULT_THRESHOLD = 0.2
MAX_EXACT = 4000
DISAGREE_FLAG = 0.25          # share of a speaker's clips that disagree with its label
PREDICTED = "predicted"


# ----------------------------------------------------------------------------------
# Clustering
# ----------------------------------------------------------------------------------
def _agglomerate(E: np.ndarray, threshold: float) -> np.ndarray:
    """Cluster ids 0.. (numbered by first appearance) for unit rows of ``E``."""
    if len(E) == 1:
        return np.zeros(1, dtype=int)
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    d = np.clip(pdist(E.astype(np.float64), "cosine"), 0.0, 2.0)
    raw = fcluster(linkage(d, "average"), threshold, criterion="distance")
    return _renumber(raw)


def _renumber(raw: np.ndarray) -> np.ndarray:
    first: Dict[int, int] = {}
    return np.array([first.setdefault(int(c), len(first)) for c in raw], dtype=int)


def cluster(E: np.ndarray, threshold: float = DEFAULT_THRESHOLD, max_exact: int = MAX_EXACT) -> np.ndarray:
    """Speaker cluster ids (0.., in order of first appearance) for (N, D) embeddings."""
    E = np.asarray(E, dtype=np.float64)
    E = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    if len(E) == 0:
        return np.zeros(0, dtype=int)
    if len(E) <= max_exact:
        return _agglomerate(E, threshold)
    # Blocks, then the blocks' clusters by their mean embeddings.
    local, centroids = np.zeros(len(E), dtype=int), []
    for start in range(0, len(E), max_exact):
        ids = _agglomerate(E[start:start + max_exact], threshold)
        local[start:start + max_exact] = ids + len(centroids)
        for c in range(ids.max() + 1):
            m = E[start:start + max_exact][ids == c].mean(axis=0)
            centroids.append(m / np.linalg.norm(m))
    top = cluster(np.array(centroids), threshold, max_exact)
    return _renumber(top[local])


# ----------------------------------------------------------------------------------
# Voting and consistency
# ----------------------------------------------------------------------------------
@dataclass
class SpeakerVote:
    label: str
    confidence: float
    clips: int
    disagree: int                      # clips whose own label differs from ``label``
    counts: Dict[str, int] = field(default_factory=dict)

    @property
    def disagree_rate(self) -> float:
        return self.disagree / self.clips if self.clips else 0.0

    @property
    def inconsistent(self) -> bool:
        return self.disagree >= 2 and self.disagree_rate >= DISAGREE_FLAG


def vote(clips: Sequence[Tuple[str, float]]) -> Optional[SpeakerVote]:
    """Confidence-weighted vote over one speaker's (label, confidence) clip predictions;
    ties go to the alphabetically first label (deterministic)."""
    t = VoteTally()
    for label, conf in clips:
        t.add("s", label, conf)
    return t.votes().get("s")


def speaker_key(corpus: Optional[str], speaker: Optional[str]) -> Optional[str]:
    """``corpus/speaker``: speaker ids are only unique within a corpus."""
    return f"{corpus or ''}/{speaker}" if speaker else None


class VoteTally:
    """Streaming per-speaker sums of clip predictions (memory: one entry per speaker)."""

    def __init__(self):
        self._sums: Dict[str, Dict[str, List[float]]] = {}

    def add(self, key: Optional[str], label: Optional[str], conf: Optional[float]) -> None:
        if key is None or label is None:
            return
        s = self._sums.setdefault(key, {}).setdefault(label, [0.0, 0])
        s[0] += float(conf if conf is not None else 1.0)
        s[1] += 1

    def votes(self) -> Dict[str, SpeakerVote]:
        out = {}
        for key in sorted(self._sums):
            sums = self._sums[key]
            label = min(sums, key=lambda k: (-sums[k][0], k))
            total, n = sum(v[0] for v in sums.values()), sum(v[1] for v in sums.values())
            out[key] = SpeakerVote(label=label, confidence=round(sums[label][0] / total, 4) if total else 0.0,
                                   clips=n, disagree=n - sums[label][1],
                                   counts={k: v[1] for k, v in sorted(sums.items())})
        return out


def votable(rec) -> bool:
    """A record whose gender a speaker vote may set: not native, with a speaker id."""
    return bool(rec.speaker) and rec.gender_source != "native"


def apply_vote(rec, votes: Dict[str, SpeakerVote], boundaries):
    """The record with its speaker's voted gender (clip answer kept in gender_clip) and
    pitch levels recomputed for that gender; unchanged when it has no vote."""
    from voxbox.annotate.stage import pitch_levels

    vote_ = votes.get(speaker_key(rec.corpus, rec.speaker)) if votable(rec) else None
    if vote_ is None:
        return rec
    reasons = dict(rec.null_reasons or {})
    reasons.pop("gender", None)
    levels = {}
    if rec.pitch_value is not None:  # voiced: levels follow the gender
        levels = pitch_levels(rec.pitch, rec.pitch_std, vote_.label, boundaries, reasons)
    model = (rec.gender_model or "").replace(" (speaker vote)", "") or "gender model"
    return rec.replace(gender=vote_.label, gender_source="predicted", gender_confidence=vote_.confidence,
                       gender_model=f"{model} (speaker vote)", null_reasons=reasons or None, **levels)


# ----------------------------------------------------------------------------------
# `voxbox speakers`: predicted speaker ids for records that have none
# ----------------------------------------------------------------------------------
def predict_speakers(src, out, threshold: float = DEFAULT_THRESHOLD, relabel_all: bool = False,
                     encoder_spec: str = "ge2e", device: str = "cpu", store_embeddings: bool = True,
                     max_exact: int = MAX_EXACT) -> dict:
    """Cluster each corpus's records without a speaker id (all, with ``relabel_all``) and
    write every record to ``out`` with ``speaker = "<cluster prefix>NNNNN"`` and
    ``speaker_source = "predicted"``. Two passes over ``src``: embeddings, then writing."""
    from voxbox.annotate.embeddings import to_float16_list
    from voxbox.labels.inputs import Embedder, check_input, records, records_with_audio
    from voxbox.manifest import ManifestWriter
    from voxbox.progress import Progress

    check_input(src)
    emb = Embedder(encoder_spec, device=device)
    todo: Dict[str, List[int]] = {}                       # corpus -> positions to cluster
    with Progress("embeddings") as bar:
        for pos, (rec, load) in enumerate(records_with_audio(src)):
            if relabel_all or not rec.speaker or rec.speaker_source == PREDICTED:
                todo.setdefault(rec.corpus or "", []).append(pos)
                emb.add(pos, rec, load)
            bar.update(1)
        emb.flush()
    assigned: Dict[int, str] = {}
    clusters: Dict[str, int] = {}
    for corpus, positions in sorted(todo.items()):
        have = [p for p in positions if emb.get(p) is not None]
        if not have:
            continue
        ids = cluster(np.array([emb.get(p) for p in have]), threshold, max_exact)
        clusters[corpus] = int(ids.max()) + 1
        for p, c in zip(have, ids):
            assigned[p] = f"spk{c:05d}"
    with ManifestWriter(out) as writer:
        for pos, rec in enumerate(records(src)):
            if pos in assigned:
                vec = emb.get(pos) if store_embeddings else None
                rec = rec.replace(speaker=assigned[pos], speaker_source=PREDICTED, **(
                    {"embedding": to_float16_list(vec), "embedding_model": emb.encoder.name}
                    if vec is not None and rec.embedding is None else {}))
            elif pos in emb.failed:
                reasons = dict(rec.null_reasons or {})
                reasons["speaker"] = "no_embedding"
                rec = rec.replace(null_reasons=reasons)
            writer.write(rec)
        total = writer.count
    return {"records": total, "clustered": len(assigned), "failed": len(emb.failed),
            "clusters": clusters, "threshold": threshold, "encoder": emb.encoder.name}


# ----------------------------------------------------------------------------------
# Consistency of gender labels per speaker (report + card)
# ----------------------------------------------------------------------------------
MAX_LISTED = 20


class GenderConsistency:
    """Per speaker, how often the gender model's clip answer (``gender_clip``) disagrees
    with the record's gender. Two kinds are kept apart: ``native`` (the corpus's label:
    a high rate points at a metadata error) and ``vote`` (a speaker vote: a high rate is a
    speaker whose clips the model splits). Memory: one counter per speaker."""

    def __init__(self):
        self._c: Dict[Tuple[str, str], List] = {}   # (kind, speaker key) -> [label, clips, disagree]

    def add(self, rec) -> None:
        if not (rec.gender and rec.gender_clip and rec.speaker):
            return
        if rec.gender_source == "native":
            kind = "native"
        elif (rec.gender_model or "").endswith("(speaker vote)"):
            kind = "vote"
        else:
            return  # a clip-level prediction agrees with itself
        c = self._c.setdefault((kind, speaker_key(rec.corpus, rec.speaker)), [rec.gender, 0, 0])
        c[1] += 1
        c[2] += rec.gender_clip != rec.gender

    def summary(self) -> Dict[str, dict]:
        """kind -> speakers, clips, disagreeing clips and rate, and the flagged speakers
        (most disagreeing first, at most MAX_LISTED)."""
        out: Dict[str, dict] = {}
        for kind in ("native", "vote"):
            rows = [(k, *v) for (kd, k), v in self._c.items() if kd == kind]
            if not rows:
                continue
            clips, dis = sum(r[2] for r in rows), sum(r[3] for r in rows)
            flagged = [SpeakerVote(label=lab, confidence=0.0, clips=n, disagree=d) for _, lab, n, d in rows]
            listed = sorted(((r[0], r[1], r[2], r[3]) for r, v in zip(rows, flagged) if v.inconsistent),
                            key=lambda r: (-r[3] / r[2], r[0]))
            out[kind] = {"speakers": len(rows), "clips": clips, "disagree": dis,
                         "rate": round(dis / clips, 4) if clips else 0.0,
                         "flagged": [{"speaker": s, "gender": g, "clips": n, "disagree": d,
                                      "rate": round(d / n, 3)} for s, g, n, d in listed[:MAX_LISTED]],
                         "flagged_total": len(listed)}
        return out
