"""The in-memory ``voxbox dedup`` that the on-disk one replaced (kept for comparison):
every entry, a datasketch ``MinHashLSH`` and the exact-hash dict in memory. Used by
tests/test_dedup.py (same answers) and benchmarks/bench_dedup.py (memory and speed,
side by side). Not part of the package: at VoxBox scale it needs tens of GB."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from voxbox.errors import VoxboxError
from voxbox.labels.dedup import (DEFAULT_PRIORITY, NUM_PERM, REPORT_FORMAT, SHINGLE, DedupConfig, _audio_hash,
                                 _Groups, _path_evidence, embed_needed, join_if_same_voice, normalise_text,
                                 priority_key)


@dataclass
class _Entry:
    index: str
    corpus: str
    source: str           # which input it came from
    duration: Optional[float]
    audio_hash: Optional[str]
    text: str


def _minhash(text: str):
    from datasketch import MinHash

    m = MinHash(num_perm=NUM_PERM, seed=1)
    shingles = {text[i:i + SHINGLE] for i in range(max(1, len(text) - SHINGLE + 1))}
    m.update_batch([s.encode("utf-8") for s in sorted(shingles)])
    return m


# ----------------------------------------------------------------------------------
# The passes
# ----------------------------------------------------------------------------------
def _scan(inputs: Sequence[Union[str, Path]]):
    """Pass 1: entries, exact-hash groups, LSH text candidates, unreadable counts."""
    from datasketch import MinHashLSH

    from voxbox.annotate.frontend import AudioError
    from voxbox.labels.inputs import records_with_audio
    from voxbox.progress import Progress

    entries: List[_Entry] = []
    hashes: Dict[str, int] = {}
    groups, skipped = _Groups(), {}
    lsh, sigs = MinHashLSH(threshold=0.5, num_perm=NUM_PERM), {}
    with Progress("dedup: hashes") as bar:
        for src in inputs:
            for rec, load in records_with_audio(src):
                pos = len(entries)
                try:
                    audio, sr = load()
                    digest, dur = _audio_hash(audio, sr), len(audio) / sr
                except AudioError as e:
                    skipped[e.reason] = skipped.get(e.reason, 0) + 1
                    digest, dur = None, rec.duration
                entries.append(_Entry(rec.index, rec.corpus or "", str(src), dur, digest, normalise_text(rec.text)))
                if digest is not None:
                    if digest in hashes:
                        groups.union(hashes[digest], pos, {"evidence": "audio_hash"})
                    else:
                        hashes[digest] = pos
                if len(entries[-1].text) >= SHINGLE:
                    sigs[pos] = _minhash(entries[-1].text)
                    lsh.insert(pos, sigs[pos])
                bar.update(1, audio_seconds=dur or 0.0)
    return entries, groups, lsh, sigs, skipped


def _candidates(entries: List[_Entry], groups: _Groups, lsh, sigs, cfg: DedupConfig) -> List[tuple]:
    """Text pairs (a < b) worth an embedding check: similar text and similar length."""
    out = []
    for a, sig in sigs.items():
        for b in lsh.query(sig):
            if b <= a or groups.find(a) == groups.find(b):
                continue
            jac = float(sig.jaccard(sigs[b]))
            da, db = entries[a].duration, entries[b].duration
            diff = abs(da - db) if da is not None and db is not None else None
            if jac >= cfg.text_threshold and diff is not None and \
                    diff <= max(cfg.duration_tolerance_s, 0.1 * max(da, db)):
                out.append((a, b, jac, diff))
    return sorted(out)


def _confirm(inputs, entries, groups: _Groups, pairs: List[tuple], cfg: DedupConfig) -> None:
    """Pass 2 (only when there are candidates): embeddings of candidate records, then
    cosine per pair (the package's own steps: they did not change)."""
    need = {x for a, b, _, _ in pairs for x in (a, b)}
    if not need:
        return
    emb = embed_needed(inputs, need, cfg)
    for pair in pairs:
        join_if_same_voice(groups, emb, pair, cfg)


def find_duplicates_in_memory(inputs: Sequence[Union[str, Path]], cfg: DedupConfig = DedupConfig(),
                    priority: Sequence[str] = DEFAULT_PRIORITY) -> dict:
    """The dedup report (a JSON-able dict) for manifests and built folders."""
    from voxbox.labels.inputs import check_input

    for p in inputs:
        check_input(p)
    entries, groups, lsh, sigs, skipped = _scan(inputs)
    seen: Dict[str, int] = {}
    for i, e in enumerate(entries):
        if e.index in seen:
            raise VoxboxError(f"index {e.index} appears twice ({entries[seen[e.index]].source} and {e.source}): "
                              "the same records were given twice")
        seen[e.index] = i
    pairs = _candidates(entries, groups, lsh, sigs, cfg)
    _confirm(inputs, entries, groups, pairs, cfg)
    return _report(inputs, entries, groups, cfg, priority, skipped, len(pairs))


def _report(inputs, entries: List[_Entry], groups: _Groups, cfg: DedupConfig, priority, skipped, n_pairs) -> dict:
    out_groups, by_pair = [], {}
    for members in sorted(groups.groups(), key=lambda g: min(entries[i].index for i in g)):
        keep = min(members, key=lambda i: (priority_key(entries[i].corpus, priority), entries[i].index))
        dups = []
        for i in sorted(members, key=lambda i: entries[i].index):
            if i == keep:
                continue
            ev = groups.evidence.get((min(i, keep), max(i, keep))) or _path_evidence(groups, members, i)
            dups.append({"index": entries[i].index, "corpus": entries[i].corpus, **ev})
            pair = " / ".join(sorted({entries[keep].corpus, entries[i].corpus}))
            by_pair[pair] = by_pair.get(pair, 0) + 1
        out_groups.append({"keep": entries[keep].index, "corpus": entries[keep].corpus,
                           "members": sorted(entries[i].index for i in members), "duplicates": dups})
    return {"format": REPORT_FORMAT, "inputs": [str(p) for p in inputs],
            "settings": {"text_threshold": cfg.text_threshold, "min_cosine": cfg.min_cosine,
                         "duration_tolerance_s": cfg.duration_tolerance_s, "embedding_model": cfg.embedding_model,
                         "shingle": SHINGLE, "num_perm": NUM_PERM, "priority": list(priority)},
            "records": len(entries), "unreadable": skipped, "text_candidates": n_pairs,
            "duplicates": sum(len(g["duplicates"]) for g in out_groups), "by_corpus_pair": by_pair,
            "groups": out_groups}
