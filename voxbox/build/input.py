"""The prepared input of a build: the source streamed to disk, with flat memory.

The source (a recipe's prepare output or a manifest) is written to
``OUT/.work/prepared.jsonl``; each record's planning key (index, offset, length, size
estimate, split, hash) goes to an on-disk sort (:mod:`voxbox.build.extsort`), never to
an in-memory table, so a 47 M-record input plans in bounded memory. Duplicate indices
are found as neighbours in index order and rejected. The plan (:meth:`PreparedInput.plan`)
streams the keys sorted by split, then index, into shards and writes each shard's
members to ``plan.bin``; only per-shard entries stay in memory. The sorted records, a content signature
of each record's audio (:mod:`voxbox.build.signature`) and the rejects define the
*input fingerprint*, so a resumed build knows it is given the same input, audio
re-processed in place included; each shard's own input hash (its records and their
audio) lets a forced rebuild redo exactly the shards whose input changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Dict, Iterable, Iterator, List, Optional, Tuple

from voxbox.build.extsort import RUN_ITEMS, ExternalSort, read_items, write_items
from voxbox.errors import VoxboxError
from voxbox.manifest import read_rejects
from voxbox.record import Rejection, Result, Utterance, audio_seconds, format_reason_counts
from voxbox.shards import index as ix
from voxbox.shards.writer import RejectsSort, cut_shards, estimate_bytes

PREPARED_NAME = "prepared.jsonl"
REJECTS_NAME = "prepare.rejects.jsonl"
PLAN_NAME = "plan.bin"
# (reason, detail) of a record whose index an earlier record has; a recipe source passes
# its own (voxbox.sources.corpora.base.DUPLICATE_ID).
DUPLICATE_INDEX: Tuple[str, Optional[str]] = ("duplicate_index", None)


@dataclass
class PlannedShard:
    """One planned shard: counts and estimates for the plan, the input hash for the
    journal, and where its members start in the plan file."""
    records: int
    seconds: float
    est_bytes: int
    split: str
    first: str
    last: str
    input: str = ""   # sha256 of its records (sorted, as planned) and their audio
    offset: int = -1  # byte offset of its members in the plan file; -1 when not kept


@dataclass
class Plan:
    shards: List[PlannedShard]
    path: Optional[Path] = None  # (index, offset, length) per record in plan order

    def members(self, k: int) -> List[Tuple[str, int, int]]:
        """Shard ``k``'s records as (index, offset, length) in the prepared file."""
        s = self.shards[k]
        with open(self.path, "rb") as fh:
            fh.seek(s.offset)
            return list(read_items(fh, s.records))


@dataclass
class PreparedInput:
    """The prepared input: ``path`` holds the records (input order), ``keys`` the
    planning tuples sorted by split, then index (on disk, duplicates already rejected)."""
    path: Path
    rejects_path: Path
    keys: Optional[ExternalSort] = None  # (split, index, est, offset, length, seconds, hash)
    count: int = 0
    fingerprint: str = ""
    roots: set = field(default_factory=set)  # (corpus, corpus_root): for provenance.json, not the records

    def plan(self, shard_mb: float, shard_records: int, keep_members: bool = True) -> Plan:
        """Cut the sorted records into shards (:func:`cut_shards`), streaming; with
        ``keep_members`` each shard's members go to a plan file for the build's tasks."""
        path = self.path.with_name(PLAN_NAME) if keep_members else None
        shards: List[PlannedShard] = []
        with ExitStack() as stack:
            fh = stack.enter_context(open(path, "wb", buffering=1 << 20)) if path else None
            offset = 0
            for members in cut_shards(self.keys, shard_mb, shard_records):
                h = hashlib.sha256()
                for m in members:
                    h.update(m[1].encode("utf-8") + b" " + m[6])
                shards.append(PlannedShard(len(members), sum(m[5] for m in members), sum(m[2] for m in members),
                                           members[0][0], members[0][1], members[-1][1], h.hexdigest(), offset))
                if fh is not None:
                    offset += write_items(fh, ((m[1], m[3], m[4]) for m in members))
        return Plan(shards, path)

    def read(self, fh: BinaryIO, offset: int, length: int) -> Utterance:
        return Utterance.from_dict(json.loads(self.read_line(fh, offset, length).decode("utf-8")))

    def read_line(self, fh: BinaryIO, offset: int, length: int) -> bytes:
        """A record's prepared JSON line, as bytes (newline included), where the plan
        (:meth:`Plan.members`) says it is."""
        fh.seek(offset)
        return fh.read(length)

    def close(self) -> None:
        if self.keys is not None:
            self.keys.close()


def _line_identity(d: dict) -> bytes:
    # Where the corpus sits on disk does not change the data: leave corpus_root out.
    d = {k: v for k, v in d.items() if k != "corpus_root"}
    return hashlib.sha256(ix.canonical_json(d).encode("utf-8")).digest()


def prepare_input(source: Iterable[Result], work: Path, audio_format: str, *, hashes: bool = True,
                  keep_records: bool = True, run_items: int = RUN_ITEMS,
                  duplicate: Tuple[str, Optional[str]] = DUPLICATE_INDEX) -> PreparedInput:
    """Stream ``source`` into ``work``; return the prepared input with its fingerprint.

    Memory stays bounded whatever the input size: records go to ``prepared.jsonl``,
    their planning keys to an on-disk sort (runs of ``run_items``). ``hashes=False``
    (a dry run) reads no audio and leaves the fingerprint empty; ``keep_records=False``
    writes no copy of the records (nothing to run). ``duplicate``: the (reason, detail)
    of the rejection of a repeated index (the first record in input order is kept).
    """
    work.mkdir(parents=True, exist_ok=True)
    prep = PreparedInput(work / PREPARED_NAME, work / REJECTS_NAME)
    by_index = ExternalSort(work / "sort-index", run_items)
    try:
        rejects = RejectsSort(work / "sort-rejects", run_items)
        splits = _spool(source, prep, by_index, rejects, audio_format, hashes, keep_records)
        fp = hashlib.sha256()
        prep.keys = ExternalSort(work / "sort-plan", run_items)
        unique = _unique(by_index, rejects, fp, prep, duplicate)
        if len(splits) <= 1:
            prep.keys.add_sorted(unique)  # one split: index order is already plan order
        else:
            for item in unique:
                prep.keys.add(item)
        by_index.close()
        rejects.write(prep.rejects_path)
        rejects.close()
        if hashes:
            with open(prep.rejects_path, encoding="utf-8") as fh:
                for line in fh:
                    fp.update((ix.canonical_json(json.loads(line)) + "\n").encode("utf-8"))
    except OSError as e:
        by_index.close()
        prep.close()
        raise ix.io_error(work, e) from None
    prep.fingerprint = fp.hexdigest() if hashes else ""
    return prep


def _unique(by_index: ExternalSort, rejects: RejectsSort, fp, prep: PreparedInput,
            duplicate: Tuple[str, Optional[str]]) -> Iterator[tuple]:
    """The records sorted by index, the first of each index kept (input order breaks
    ties) and the others rejected; feeds the fingerprint in index order."""
    prev = None
    for idx, _seq, off, length, est, split, secs, h, src in by_index:
        if idx == prev:
            rejects.add(Rejection("prepare", src, duplicate[0], idx, duplicate[1]))
            continue
        prev = idx
        prep.count += 1
        fp.update(f"{idx} {h.hex()}\n".encode())
        yield (split, idx, est, off, length, secs, h)


def _spool(source: Iterable[Result], prep: PreparedInput, keys: ExternalSort, rejects: RejectsSort,
           audio_format: str, hashes: bool, keep_records: bool) -> set:
    """Write the records to ``prep.path`` and their keys ``(index, seq, offset, length,
    est, split, seconds, hash, source_path)`` and the rejections to their sorts; return
    the splits seen."""
    from voxbox.progress import Progress

    splits: set = set()
    audio = _AudioHashes(keys.add, hashes)
    with open(prep.path if keep_records else os.devnull, "wb") as fh, Progress("prepare") as bar:
        offset = 0
        for seq, res in enumerate(source):
            if isinstance(res, Rejection):
                rejects.add(res)
                continue
            if not isinstance(res, Utterance):
                raise VoxboxError(f"the source yielded a {type(res).__name__}, not an Utterance or Rejection")
            d, line = _line(res, hashes or keep_records)
            fh.write(line)
            secs = audio_seconds(res)
            splits.add(res.split or "")
            audio.add(res, d, (res.index, seq, offset, len(line), estimate_bytes(res, audio_format, stat=hashes),
                               res.split or "", secs, res.source_path or ""))
            if res.corpus_root:
                prep.roots.add((res.corpus or "", res.corpus_root))
            offset += len(line)
            bar.update(1, secs)
        audio.flush()
    return splits


def _line(res: Utterance, needed: bool) -> Tuple[dict, bytes]:
    """The record as a dict and its JSON line; nothing when neither is used (dry run)."""
    if not needed:
        return {}, b""
    d = res.to_dict()
    return d, (json.dumps(d, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


class _AudioHashes:
    """Each record's hash: its line identity and its audio's content signature, the
    signatures read in batches by a few threads (the reads wait on the disk). A file
    many records are cut from (a long recording with spans, an archive) is read once.
    Each key leaves through ``emit`` with its hash put in (before the source path)."""

    BATCH = 256

    def __init__(self, emit, enabled: bool = True):
        self.emit, self.enabled = emit, enabled
        self.pending: List[Tuple[tuple, bytes, str, bool]] = []  # key, identity, audio file, shared
        self.shared: Dict[str, str] = {}                          # shared file -> signature

    def add(self, rec: Utterance, d: dict, key: tuple) -> None:
        if not self.enabled:
            self.emit(key[:-1] + (b"", key[-1]))
            return
        path, shared = _audio_file(rec)
        self.pending.append((key, _line_identity(d), path, shared))
        if len(self.pending) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        from voxbox.build.signature import audio_signature, audio_signatures

        own = [path for _, _, path, shared in self.pending if path and not shared]
        sigs = dict(zip(map(str, own), audio_signatures(own)))
        for key, identity, path, shared in self.pending:
            if shared:
                sig = self.shared.get(str(path)) or self.shared.setdefault(str(path), audio_signature(path))
            else:
                sig = sigs.get(str(path), "no-audio")
            self.emit(key[:-1] + (hashlib.sha256(identity + sig.encode()).digest(), key[-1]))
        self.pending = []


def _audio_file(rec: Utterance) -> Tuple[Any, bool]:
    """(the file holding the record's audio: a path, or a RemotePath under a remote root;
    whether other records share it: a span of a recording or an archive member);
    ("", False) when there is none to read."""
    from voxbox import media

    if not rec.source_path:
        return "", False
    try:
        if media.is_plain(rec):
            return str(rec.audio_path), False
        return media.record_location(rec).file, True
    except (media.MediaError, OSError):
        return "", False


def no_usable_records(prep: PreparedInput) -> VoxboxError:
    """The error for an input without one usable record, counting why (an empty dataset
    is never the goal)."""
    from collections import Counter

    reasons = Counter(r.reason for r in read_rejects(prep.rejects_path))
    why = f" ({sum(reasons.values())} rejected: {format_reason_counts(reasons)})" if reasons else ""
    return VoxboxError(f"the input has no usable records{why}: nothing to build "
                       "(check --manifest, or --corpus, --root and --subset)")
