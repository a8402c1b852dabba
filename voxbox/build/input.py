"""The prepared input of a build: the source streamed to disk, with flat memory.

The source (a recipe's prepare output or a manifest) is written to
``OUT/.work/prepared.jsonl``; only ``(offset, length, size estimate)`` per index stays
in memory. Duplicate indices are rejected. The sorted records, a content signature
of each record's audio (:mod:`voxbox.build.signature`) and the rejects define the
*input fingerprint*, so a resumed build knows it is given the same input, audio
re-processed in place included; each shard's own input hash (its records and their
audio) lets a forced rebuild redo exactly the shards whose input changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Dict, Iterable, List, Tuple

from voxbox.errors import VoxboxError
from voxbox.manifest import read_rejects
from voxbox.record import Rejection, Result, Utterance, audio_seconds, format_reason_counts
from voxbox.shards import index as ix
from voxbox.shards.writer import estimate_bytes, rejects_sort_key

PREPARED_NAME = "prepared.jsonl"
REJECTS_NAME = "prepare.rejects.jsonl"


@dataclass
class PreparedInput:
    path: Path
    rejects_path: Path
    keys: Dict[str, Tuple[int, int, int, str]] = field(default_factory=dict)  # index -> (offset, length, est, split)
    fingerprint: str = ""
    roots: set = field(default_factory=set)  # (corpus, corpus_root): for provenance.json, not the records
    hashes: Dict[str, bytes] = field(default_factory=dict)  # index -> hash of its record line and audio

    def shard_input(self, members: List[str]) -> str:
        """The input hash of one shard: its records (sorted, as planned) and their audio."""
        h = hashlib.sha256()
        for idx in members:
            h.update(idx.encode("utf-8") + b" " + self.hashes[idx])
        return h.hexdigest()

    def read(self, fh: BinaryIO, index: str) -> Utterance:
        return Utterance.from_dict(json.loads(self.read_line(fh, index).decode("utf-8")))

    def read_line(self, fh: BinaryIO, index: str) -> bytes:
        """The record's prepared JSON line, as bytes (newline included)."""
        off, length = self.keys[index][:2]
        fh.seek(off)
        return fh.read(length)


def _line_identity(d: dict) -> bytes:
    # Where the corpus sits on disk does not change the data: leave corpus_root out.
    d = {k: v for k, v in d.items() if k != "corpus_root"}
    return hashlib.sha256(ix.canonical_json(d).encode("utf-8")).digest()


def prepare_input(source: Iterable[Result], work: Path, audio_format: str) -> PreparedInput:
    """Stream ``source`` into ``work``; return the prepared input with its fingerprint."""
    work.mkdir(parents=True, exist_ok=True)
    prep = PreparedInput(work / PREPARED_NAME, work / REJECTS_NAME)
    hashes = prep.hashes
    try:
        rejects = _spool(source, prep, hashes, audio_format)
        rejects.sort(key=rejects_sort_key)
        with open(prep.rejects_path, "w", encoding="utf-8") as fh:
            for r in rejects:
                fh.write(json.dumps(r.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n")
    except OSError as e:
        raise ix.io_error(work, e) from None
    prep.fingerprint = _fingerprint(hashes, rejects)
    return prep


def _spool(source: Iterable[Result], prep: PreparedInput, hashes: Dict[str, bytes],
           audio_format: str) -> List[Rejection]:
    """Write the records to ``prep.path``, fill ``prep.keys``; return the rejections."""
    from voxbox.progress import Progress

    rejects: List[Rejection] = []
    audio = _AudioHashes(hashes)
    with open(prep.path, "wb") as fh, Progress("prepare") as bar:
        offset = 0
        for res in source:
            if isinstance(res, Rejection):
                rejects.append(res)
                continue
            if not isinstance(res, Utterance):
                raise VoxboxError(f"the source yielded a {type(res).__name__}, not an Utterance or Rejection")
            if res.index in prep.keys:
                rejects.append(Rejection("prepare", res.source_path or "", "duplicate_index", res.index))
                continue
            d = res.to_dict()
            line = (json.dumps(d, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
            fh.write(line)
            prep.keys[res.index] = (offset, len(line), estimate_bytes(res, audio_format), res.split or "")
            if res.corpus_root:
                prep.roots.add((res.corpus or "", res.corpus_root))
            audio.add(res, _line_identity(d))
            offset += len(line)
            bar.update(1, audio_seconds(res))
        audio.flush()
    return rejects


class _AudioHashes:
    """Each record's hash: its line identity and its audio's content signature, the
    signatures read in batches by a few threads (the reads wait on the disk). A file
    many records are cut from (a long recording with spans, an archive) is read once."""

    BATCH = 256

    def __init__(self, hashes: Dict[str, bytes]):
        self.hashes = hashes
        self.pending: List[Tuple[str, bytes, str, bool]] = []  # index, identity, audio file, shared
        self.shared: Dict[str, str] = {}                        # shared file -> signature

    def add(self, rec: Utterance, identity: bytes) -> None:
        path, shared = _audio_file(rec)
        self.pending.append((rec.index, identity, path, shared))
        if len(self.pending) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        from voxbox.build.signature import audio_signature, audio_signatures

        own = [path for _, _, path, shared in self.pending if path and not shared]
        sigs = dict(zip(map(str, own), audio_signatures(own)))
        for idx, identity, path, shared in self.pending:
            if shared:
                sig = self.shared.get(str(path)) or self.shared.setdefault(str(path), audio_signature(path))
            else:
                sig = sigs.get(str(path), "no-audio")
            self.hashes[idx] = hashlib.sha256(identity + sig.encode()).digest()
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


def _fingerprint(hashes: Dict[str, bytes], rejects: List[Rejection]) -> str:
    h = hashlib.sha256()
    for idx in sorted(hashes):
        h.update(f"{idx} {hashes[idx].hex()}\n".encode())
    for r in rejects:
        h.update((ix.canonical_json(r.to_dict()) + "\n").encode("utf-8"))
    return h.hexdigest()


def no_usable_records(prep: PreparedInput) -> VoxboxError:
    """The error for an input without one usable record, counting why (an empty dataset
    is never the goal)."""
    from collections import Counter

    reasons = Counter(r.reason for r in read_rejects(prep.rejects_path))
    why = f" ({sum(reasons.values())} rejected: {format_reason_counts(reasons)})" if reasons else ""
    return VoxboxError(f"the input has no usable records{why}: nothing to build "
                       "(check --manifest, or --corpus, --root and --subset)")
