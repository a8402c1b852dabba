"""Duplicate utterances within and across corpora (``voxbox dedup``).

The same recording often ships in several corpora (LibriSpeech, LibriTTS, LibriTTS-R;
MLS and its LibriVox sources), re-encoded, resampled or re-trimmed. Two tests:

1. **Exact audio**: sha256 of the decoded channel-0 samples (float32) and the rate, so
   the same samples in WAV and FLAC match; nothing else is compared.
2. **Same words, same voice, same length**: normalised text (NFKC, lower case,
   punctuation and spaces removed) as character 5-gram shingles, MinHash (128
   permutations, seed 1, ``datasketch``) and LSH banding at Jaccard 0.5 propose pairs;
   a pair is a duplicate when its MinHash Jaccard reaches ``text_threshold``, the
   speaker embeddings' cosine reaches ``min_cosine`` (0.85: the same recording
   re-encoded scores 0.95+, another speaker reading the same sentence ~0.6) and the
   durations differ by at most ``max(duration_tolerance_s, 10%)``. Embeddings are
   only computed for records in a proposed pair (or read from the record).

Duplicates are grouped (transitively); the *keeper* of a group is the record of the
corpus listed first in the priority (:data:`DEFAULT_PRIORITY`, then unlisted corpora
alphabetically), then the smallest index. Every other member gets ``duplicate_of`` =
the keeper's index. ``voxbox build --dedup`` sends them to the rejects as ``duplicate``.

**Memory.** VoxBox is 47 M utterances: 128 signatures per record in memory would be
48 GB. So the inputs are read once and every per-record fact goes to disk under a
work folder (``DedupConfig.work_dir``, default the system temp folder): a fixed-size
row per record position (duration, signature: 520 bytes), the (index, corpus) names,
and three :class:`~voxbox.build.extsort.ExternalSort` runs: (audio digest, position),
(index, position) and (band key, position) for LSH. Equal keys come out of a sort side
by side, so exact copies, repeated indexes and LSH buckets are found by walking sorted
streams; bucket pairs go through a fourth sort that removes the pairs several bands
share. Memory holds one sort run (``run_items``), the duplicates and candidate pairs'
records (union-find, embeddings): it grows with the duplicates, not with the records.
Disk: about 520 B of rows + ~1 kB of band keys + ~150 B of names, indexes and
digests per record (~80 GB at 47 M).

**LSH banding.** The in-memory version used ``datasketch.MinHashLSH(threshold=0.5,
num_perm=128)``, which picks the bands minimising its false positive + negative areas:
25 bands of 5 rows (a pair at Jaccard 0.8 shares a band with probability 0.99996,
at 0.5 with 0.55). We band the same way (band i = signature values 5i..5i+4, the key
is those exact values), so the candidate pairs are exactly the ones it returned. One
key shared by very many records (the same short phrase read by thousands of speakers)
would make n^2/2 pairs: a bucket is cut at ``max_bucket`` records (the lowest
positions); the report counts the cut buckets and records (``capped_buckets``). Those
records still pair through their other 24 bands' buckets.
"""

from __future__ import annotations

import bisect
import errno
import functools
import hashlib
import math
import re
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from voxbox.build.extsort import RUN_ITEMS, ExternalSort, read_items, write_items
from voxbox.errors import VoxboxError
from voxbox.record import Rejection, Result, Utterance

REPORT_FORMAT = "voxbox-dedup/1"
#: Which copy to keep: restored and sentence-segmented TTS corpora first, then curated
#: TTS/emotion corpora, then ASR corpora (long, re-segmented audiobook readings).
DEFAULT_PRIORITY = ("libritts_r", "libritts", "hifitts", "vctk", "ljspeech", "esd", "emovdb", "cremad",
                    "ravdess", "aishell3", "librispeech", "mls_english")
NUM_PERM = 128
SHINGLE = 5
#: datasketch's choice for MinHashLSH(threshold=0.5, num_perm=128) (see the module doc).
BANDS, ROWS = 25, 5
MAX_BUCKET = 1000  # 499,500 pairs at most from one band key
#: One record position on disk: duration (NaN = unknown) and MinHash signature (values
#: are < 2**32: datasketch masks them to 32 bits; zeros when the text is too short).
_ROW = np.dtype([("duration", "<f8"), ("sig", "<u4", (NUM_PERM,))])


@dataclass
class DedupConfig:
    text_threshold: float = 0.8
    min_cosine: float = 0.85
    duration_tolerance_s: float = 0.5
    embedding_model: str = "ge2e"
    device: str = "cpu"
    max_bucket: int = MAX_BUCKET         # records compared within one LSH bucket
    work_dir: Optional[str] = None       # where the sorts spill (None: the system temp folder)
    run_items: int = RUN_ITEMS           # items per sorted run: what one sort holds in memory


def normalise_text(text: Optional[str]) -> str:
    """NFKC, lower case, only letters and digits (any script)."""
    t = unicodedata.normalize("NFKC", text or "").lower()
    return re.sub(r"[\W_]+", "", t)


@functools.lru_cache(maxsize=1)
def _permutations():
    # MinHash draws its 128 permutations from the seed on every construction; drawing
    # them once makes the per-record cost the hashing alone (same values).
    from datasketch import MinHash

    m = MinHash(num_perm=NUM_PERM, seed=1)
    scheme = getattr(m, "scheme", None)  # datasketch >= 2.0 wants it named with permutations
    return {"permutations": m.permutations, **({"scheme": scheme} if scheme else {})}


def _signature(text: str) -> np.ndarray:
    """MinHash of the text's 5-gram shingles: (NUM_PERM,) uint32."""
    from datasketch import MinHash

    m = MinHash(num_perm=NUM_PERM, seed=1, **_permutations())
    shingles = {text[i:i + SHINGLE] for i in range(max(1, len(text) - SHINGLE + 1))}
    m.update_batch([s.encode("utf-8") for s in sorted(shingles)])
    return m.hashvalues.astype(np.uint32)


def _band_keys(sig: np.ndarray) -> Iterator[bytes]:
    """One key per band: its number, then its ROWS signature values."""
    for band in range(BANDS):
        yield bytes((band,)) + sig[band * ROWS:(band + 1) * ROWS].tobytes()


def _audio_hash(audio: np.ndarray, sr: int) -> str:
    h = hashlib.sha256(f"{sr}\n".encode())
    h.update(np.ascontiguousarray(audio, dtype=np.float32).tobytes())
    return h.hexdigest()


def priority_key(corpus: str, priority: Sequence[str]) -> tuple:
    c = (corpus or "").lower().replace("-", "_")
    return (priority.index(c), "") if c in priority else (len(priority), c)


class _Groups:
    """Union-find over record positions, with the evidence of each union. Only records
    that joined a group are stored."""

    def __init__(self):
        self.parent: Dict[int, int] = {}
        self.evidence: Dict[Tuple[int, int], dict] = {}

    def find(self, a: int) -> int:
        while self.parent.get(a, a) != a:
            a = self.parent[a]
        return a

    def union(self, a: int, b: int, evidence: dict) -> None:
        self.evidence[(min(a, b), max(a, b))] = evidence
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> List[List[int]]:
        by: Dict[int, List[int]] = {}
        for a in set(self.parent) | {x for p in self.evidence for x in p}:
            by.setdefault(self.find(a), []).append(a)
        return [sorted(g) for g in by.values() if len(g) > 1]


@dataclass
class _Spool:
    """What the one pass over the inputs leaves under ``work`` (see the module doc)."""
    work: Path
    run_items: int
    hashes: ExternalSort = field(init=False)   # (audio digest bytes, position)
    indexes: ExternalSort = field(init=False)  # (index, position)
    bands: ExternalSort = field(init=False)    # (band key, position)
    ends: List[int] = field(default_factory=list)  # positions after each input
    skipped: Dict[str, int] = field(default_factory=dict)
    count: int = 0

    def __post_init__(self):
        self.hashes = ExternalSort(self.work / "sort-hashes", self.run_items)
        self.indexes = ExternalSort(self.work / "sort-indexes", self.run_items)
        self.bands = ExternalSort(self.work / "sort-bands", self.run_items)

    @property
    def rows(self) -> Path:
        return self.work / "rows.bin"

    @property
    def names(self) -> Path:
        return self.work / "names.bin"

    def source(self, inputs: Sequence, pos: int) -> str:
        return str(inputs[bisect.bisect_right(self.ends, pos)])


# ----------------------------------------------------------------------------------
# The passes
# ----------------------------------------------------------------------------------
def _scan(inputs: Sequence[Union[str, Path]], spool: _Spool) -> None:
    """The one pass over the inputs: each record's facts to the spool, none kept."""
    from voxbox.annotate.frontend import AudioError
    from voxbox.labels.inputs import records_with_audio
    from voxbox.progress import Progress

    with Progress("dedup: hashes") as bar, open(spool.rows, "wb", buffering=1 << 20) as rows, \
            open(spool.names, "wb", buffering=1 << 20) as names:
        for src in inputs:
            for rec, load in records_with_audio(src):
                try:
                    audio, sr = load()
                    digest, dur = _audio_hash(audio, sr), len(audio) / sr
                except AudioError as e:
                    spool.skipped[e.reason] = spool.skipped.get(e.reason, 0) + 1
                    digest, dur = None, rec.duration
                _spool_record(spool, rows, names, rec, digest, dur)
                bar.update(1, audio_seconds=dur or 0.0)
            spool.ends.append(spool.count)


def _spool_record(spool: _Spool, rows: BinaryIO, names: BinaryIO, rec: Utterance,
                  digest: Optional[str], dur: Optional[float]) -> None:
    pos = spool.count
    write_items(names, ((rec.index, rec.corpus or ""),))
    spool.indexes.add((rec.index, pos))
    if digest is not None:
        spool.hashes.add((bytes.fromhex(digest), pos))
    row = np.zeros((), _ROW)
    row["duration"] = math.nan if dur is None else dur
    text = normalise_text(rec.text)
    if len(text) >= SHINGLE:  # shorter texts have no shingle, so no text candidates
        row["sig"] = sig = _signature(text)
        for key in _band_keys(sig):
            spool.bands.add((key, pos))
    rows.write(row.tobytes())
    spool.count += 1


def _check_unique(inputs, spool: _Spool) -> None:
    """Repeated indexes sort side by side: the same records given twice."""
    prev = None
    for index, pos in spool.indexes:
        if prev is not None and prev[0] == index:
            raise VoxboxError(f"index {index} appears twice ({spool.source(inputs, prev[1])} and "
                              f"{spool.source(inputs, pos)}): the same records were given twice")
        prev = (index, pos)


def _exact_groups(spool: _Spool, groups: _Groups) -> None:
    """Each run of equal audio digests joins its first record."""
    first = None
    for digest, pos in spool.hashes:
        if first is not None and first[0] == digest:
            groups.union(first[1], pos, {"evidence": "audio_hash"})
        else:
            first = (digest, pos)


def _buckets(bands: ExternalSort, cap: int) -> Iterator[Tuple[List[int], int]]:
    """(the first ``cap`` positions, how many more) of each band key two records share."""
    key, members, extra = None, [], 0
    for k, pos in bands:
        if k != key:
            if len(members) > 1:
                yield members, extra
            key, members, extra = k, [], 0
        if len(members) < cap:
            members.append(pos)
        else:
            extra += 1
    if len(members) > 1:
        yield members, extra


def _band_pairs(spool: _Spool, cfg: DedupConfig) -> Tuple[ExternalSort, dict]:
    """Every pair (a < b) sharing a bucket, sorted (with repeats: several bands)."""
    pairs = ExternalSort(spool.work / "sort-pairs", spool.run_items)
    capped = {"buckets": 0, "records": 0, "max_bucket": cfg.max_bucket}
    for members, extra in _buckets(spool.bands, max(2, cfg.max_bucket)):
        if extra:
            capped["buckets"] += 1
            capped["records"] += extra
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                pairs.add((a, b))
    return pairs, capped


class _Rows:
    """Reads record rows by position (only candidate pairs' records are read)."""

    def __init__(self, fh: BinaryIO):
        self.fh, self.last = fh, (None, None)

    def get(self, pos: int) -> np.ndarray:
        if self.last[0] != pos:  # pairs come sorted by a: the same a many times in a row
            self.fh.seek(pos * _ROW.itemsize)
            self.last = (pos, np.frombuffer(self.fh.read(_ROW.itemsize), dtype=_ROW)[0])
        return self.last[1]


def _candidates(spool: _Spool, groups: _Groups, pairs: ExternalSort, cfg: DedupConfig, out: Path) -> Tuple[int, set]:
    """Text pairs worth an embedding check (similar text and similar length), written to
    ``out`` in (a, b) order; returns their number and the records they name."""
    n, need, prev = 0, set(), None
    with open(spool.rows, "rb") as fh, open(out, "wb", buffering=1 << 20) as dst:
        rows_a, rows_b = _Rows(fh), _Rows(fh)
        for a, b in pairs:
            if (a, b) == prev:  # shared by several bands
                continue
            prev = (a, b)
            if groups.find(a) == groups.find(b):  # already one group by their audio
                continue
            ra, rb = rows_a.get(a), rows_b.get(b)
            jac = float(np.count_nonzero(ra["sig"] == rb["sig"])) / NUM_PERM  # = MinHash.jaccard
            da, db = float(ra["duration"]), float(rb["duration"])
            if jac >= cfg.text_threshold and not (math.isnan(da) or math.isnan(db)) and \
                    abs(da - db) <= max(cfg.duration_tolerance_s, 0.1 * max(da, db)):
                write_items(dst, ((a, b, jac, abs(da - db)),))
                n += 1
                need.update((a, b))
    return n, need


def _confirm(inputs, groups: _Groups, candidates: Path, need: set, cfg: DedupConfig) -> None:
    """A second read of the inputs (only when there are candidates): embeddings of the
    candidate records, then the cosine of each pair."""
    if not need:
        return
    emb = embed_needed(inputs, need, cfg)
    with open(candidates, "rb") as fh:
        for a, b, jac, diff in read_items(fh):
            join_if_same_voice(groups, emb, (a, b, jac, diff), cfg)


def embed_needed(inputs, need: set, cfg: DedupConfig):
    """An ``Embedder`` holding the embeddings of the records at positions ``need``."""
    from voxbox.labels.inputs import Embedder, records_with_audio
    from voxbox.progress import Progress

    emb = Embedder(cfg.embedding_model, device=cfg.device)
    with Progress("dedup: embeddings", total=len(need)) as bar:
        pos = 0
        for src in inputs:
            for rec, load in records_with_audio(src):
                if pos in need:
                    emb.add(pos, rec, load)
                    bar.update(1)
                pos += 1
        emb.flush()
    return emb


def join_if_same_voice(groups: _Groups, emb, pair: tuple, cfg: DedupConfig) -> None:
    """Group a text candidate ``(a, b, jaccard, duration difference)`` when the two
    speaker embeddings agree."""
    a, b, jac, diff = pair
    va, vb = emb.get(a), emb.get(b)
    if va is None or vb is None:
        return
    cos = float(np.dot(va, vb) / (np.linalg.norm(va) * np.linalg.norm(vb)))
    if cos >= cfg.min_cosine:
        groups.union(a, b, {"evidence": "text+embedding", "jaccard": round(jac, 3),
                            "cosine": round(cos, 3), "duration_diff": round(diff, 3)})


def find_duplicates(inputs: Sequence[Union[str, Path]], cfg: DedupConfig = DedupConfig(),
                    priority: Sequence[str] = DEFAULT_PRIORITY) -> dict:
    """The dedup report (a JSON-able dict) for manifests and built folders."""
    from voxbox.labels.inputs import check_input

    for p in inputs:
        check_input(p)
    if cfg.work_dir is not None:
        try:
            Path(cfg.work_dir).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise VoxboxError(f"work folder {cfg.work_dir}: {e.strerror or e}") from None
    with tempfile.TemporaryDirectory(prefix="voxbox-dedup-", dir=cfg.work_dir) as work:
        try:
            return _find(inputs, cfg, priority, _Spool(Path(work), cfg.run_items))
        except OSError as e:  # a full disk is the likely one at VoxBox size: say where and what to do
            if e.errno != errno.ENOSPC and not str(getattr(e, "filename", "") or "").startswith(work):
                raise
            raise VoxboxError(f"dedup work folder {work}: {e.strerror or e} (--work-dir names a folder "
                              "with more space: ~1.7 kB per record)") from None


def _find(inputs, cfg: DedupConfig, priority, spool: _Spool) -> dict:
    _scan(inputs, spool)
    _check_unique(inputs, spool)
    groups = _Groups()
    _exact_groups(spool, groups)
    pairs, capped = _band_pairs(spool, cfg)
    n_pairs, need = _candidates(spool, groups, pairs, cfg, spool.work / "candidates.bin")
    pairs.close()
    _confirm(inputs, groups, spool.work / "candidates.bin", need, cfg)
    return _report(inputs, spool, groups, cfg, priority, n_pairs, capped)


def _names(spool: _Spool, positions: set) -> Dict[int, Tuple[str, str]]:
    """(index, corpus) of the given positions: one sequential read of the names file."""
    out: Dict[int, Tuple[str, str]] = {}
    with open(spool.names, "rb", buffering=1 << 20) as fh:
        for pos, (index, corpus) in enumerate(read_items(fh)):
            if pos in positions:
                out[pos] = (index, corpus)
    return out


def _report(inputs, spool: _Spool, groups: _Groups, cfg: DedupConfig, priority, n_pairs, capped) -> dict:
    found = groups.groups()
    names = _names(spool, {i for g in found for i in g})
    index, corpus = (lambda i: names[i][0]), (lambda i: names[i][1])
    out_groups, by_pair = [], {}
    for members in sorted(found, key=lambda g: min(index(i) for i in g)):
        keep = min(members, key=lambda i: (priority_key(corpus(i), priority), index(i)))
        dups = []
        for i in sorted(members, key=index):
            if i == keep:
                continue
            ev = groups.evidence.get((min(i, keep), max(i, keep))) or _path_evidence(groups, members, i)
            dups.append({"index": index(i), "corpus": corpus(i), **ev})
            pair = " / ".join(sorted({corpus(keep), corpus(i)}))
            by_pair[pair] = by_pair.get(pair, 0) + 1
        out_groups.append({"keep": index(keep), "corpus": corpus(keep),
                           "members": sorted(index(i) for i in members), "duplicates": dups})
    return {"format": REPORT_FORMAT, "inputs": [str(p) for p in inputs],
            "settings": {"text_threshold": cfg.text_threshold, "min_cosine": cfg.min_cosine,
                         "duration_tolerance_s": cfg.duration_tolerance_s, "embedding_model": cfg.embedding_model,
                         "shingle": SHINGLE, "num_perm": NUM_PERM, "priority": list(priority),
                         "lsh_bands": BANDS, "lsh_rows": ROWS, "max_bucket": cfg.max_bucket},
            "records": spool.count, "unreadable": spool.skipped, "text_candidates": n_pairs,
            "capped_buckets": {k: capped[k] for k in ("buckets", "records")},
            "duplicates": sum(len(g["duplicates"]) for g in out_groups), "by_corpus_pair": by_pair,
            "groups": out_groups}


def _path_evidence(groups: _Groups, members: List[int], i: int) -> dict:
    """A member joined through a third record: the evidence of one of its own links."""
    for (a, b), ev in sorted(groups.evidence.items()):
        if i in (a, b) and a in members and b in members:
            return {**ev, "via": True}
    return {"evidence": "group"}


# ----------------------------------------------------------------------------------
# Using a report
# ----------------------------------------------------------------------------------
def load_report(path: Union[str, Path]) -> dict:
    from voxbox.errors import read_json_file

    p = Path(path)
    data = read_json_file(p, "dedup report")
    if not isinstance(data, dict) or data.get("format") != REPORT_FORMAT:
        raise VoxboxError(f"{p}: not a voxbox dedup report (format {REPORT_FORMAT} expected)")
    return data


def duplicate_map(report: dict, priority: Optional[Sequence[str]] = None) -> Dict[str, Tuple[str, str]]:
    """index -> (keeper index, evidence) for every record to drop; ``priority`` re-picks
    each group's keeper (default: the report's own choice)."""
    out: Dict[str, Tuple[str, str]] = {}
    for g in report["groups"]:
        evidence = {d["index"]: d["evidence"] for d in g["duplicates"]}
        keep = g["keep"]
        if priority is not None:
            corpus_of = {d["index"]: d["corpus"] for d in g["duplicates"]}
            corpus_of[g["keep"]] = g["corpus"]
            keep = min(g["members"], key=lambda i: (priority_key(corpus_of[i], priority), i))
        for i in g["members"]:
            if i != keep:
                out[i] = (keep, evidence.get(i, "group"))
    return out


def mark_duplicates(records: Iterator[Utterance], dups: Dict[str, Tuple[str, str]]) -> Iterator[Utterance]:
    for rec in records:
        hit = dups.get(rec.index)
        yield rec.replace(duplicate_of=hit[0] if hit else None)


def drop_duplicates(source: Iterator[Result], dups: Dict[str, Tuple[str, str]]) -> Iterator[Result]:
    """A build source without the duplicates: each becomes a ``duplicate`` rejection."""
    for res in source:
        hit = dups.get(res.index) if isinstance(res, Utterance) else None
        if hit is None:
            yield res
        else:
            yield Rejection(stage="dedup", path=res.source_path or "", reason="duplicate", index=res.index,
                            detail=f"duplicate of {hit[0]} ({hit[1]})")
