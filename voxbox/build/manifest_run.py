"""Stages over a manifest into a manifest (``voxbox annotate``, ``voxbox tokenize``),
on the build's engines and by the build's journal rules.

- The input records, in input order, are cut into *parts* of ``part_records``. A part
  is what a shard is to a build: its records go through the engine (local or Ray) in
  tasks of ``batch_size`` records, bounded and in order; the results are committed to
  ``OUT.work/part-000000.jsonl`` (tmp name, fsync, rename) and journalled in
  ``OUT.work/journal.jsonl`` with their sha256 and rejects (:mod:`voxbox.build.commit`).
- A rerun with the same input and stage options resumes: verified parts are kept. A
  work folder of other input or options is refused, unless none of its parts finished
  (then the run starts over).
- At the end ``OUT`` (JSONL, JSONL.gz or Parquet) is written from the parts, the
  rejections go to ``OUT``'s ``.rejects.jsonl`` (input order) and the work folder goes.
  A run whose every record is rejected writes no ``OUT`` and fails with the reasons;
  its rejects file stays and its work folder goes, so a fixed rerun redoes everything.

:func:`stream_records` is the same engine without a journal, for records in memory.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Union

from voxbox.build.commit import commit_in_order, finished
from voxbox.build.engine import check_engine, make_engine
from voxbox.build.engine.common import Task
from voxbox.build.guards import changed
from voxbox.errors import VoxboxError
from voxbox.lock import OutputLock
from voxbox.manifest import (ManifestWriter, RejectsWriter, check_manifest_out, open_results, read_rejects,
                             rejects_path)
from voxbox.progress import Progress
from voxbox.record import Rejection, Result, Utterance, audio_seconds
from voxbox.shards import index as ix
from voxbox.stages import Stage

WORK_SUFFIX = ".work"
DEFAULT_PART_RECORDS = 256
Log = Callable[[str], None]


def work_dir(out: Union[str, Path]) -> Path:
    """Where an unfinished run over ``out`` keeps its parts and journal: ``OUT.work/``."""
    out = Path(out)
    return out.with_name(out.name + WORK_SUFFIX)


def stream_records(records: Iterable[Utterance], stages: Sequence[Stage], *, engine: str = "local",
                   workers: int = 1, batch_size: int = 8, ray_address: Optional[str] = None) -> Iterator[Result]:
    """Each record through ``stages`` on an engine: the results in input order."""
    check_engine(engine, workers)
    it = iter(records)
    tasks = (Task(shard=k, seq=0, last=True, records=chunk)
             for k, chunk in enumerate(iter(lambda: list(itertools.islice(it, batch_size)), [])))
    eng = make_engine(engine, stages, None, workers, ray_address)
    try:
        for res in eng.run(tasks):
            yield from res.outcomes
    finally:
        eng.close()


def run_manifest(src: Union[str, Path], out: Union[str, Path], stages: Sequence[Stage], *, engine: str = "local",
                 workers: int = 1, batch_size: int = 8, part_records: int = DEFAULT_PART_RECORDS,
                 limit: Optional[int] = None, ray_address: Optional[str] = None, desc: Optional[str] = None,
                 allow_absolute_paths: bool = False, log: Optional[Log] = None) -> dict:
    """Run ``stages`` over manifest ``src`` into ``out`` (resumable, see the module
    docstring); return a summary: records, rejected, carried (rejects of the input's own
    rejects file, carried forward), resumed_from, audio_seconds, wall_seconds,
    audio_seconds_per_second, rejects, reject_summary.

    A malformed input record is a rejection naming its line and field; a record whose
    ``source_path`` leaves its ``corpus_root`` too, unless ``allow_absolute_paths``.
    """
    log = log or (lambda msg: None)
    src, out = Path(src), Path(out)
    _check_args(src, out, stages, engine, workers, batch_size, part_records)
    with OutputLock(out, log):  # one run per output: two would interleave their parts
        total, results = open_results(src, limit, need_audio=True, allow_outside_root=allow_absolute_paths)
        work = work_dir(out)
        journal = _open_journal(work, _fingerprint(src, stages, limit, part_records, allow_absolute_paths), log)
        sizes = [min(part_records, total - k) for k in range(0, total, part_records)]
        done = finished(journal, work, sizes, log, unit="part")
        resumed = sum(e["records"] + len(e["rejects"]) for e in done.values())
        if done:
            log(f"resuming: {resumed} of {total} records already done ({len(done)} of {len(sizes)} parts, verified)")
        t0 = time.perf_counter()
        with Progress(desc or "+".join(st.name for st in stages) or "records", total=total) as bar:
            bar.update(resumed)
            parts = _Parts(results, sizes, done, batch_size, work, journal, bar)
            fresh = _run_parts(make_engine(engine, stages, None, workers, ray_address), parts)
        wall = time.perf_counter() - t0
        summary = _write_output(src, out, work, [done[k] for k in range(len(sizes))])
        shutil.rmtree(work, ignore_errors=True)
    summary.update(resumed_from=resumed, wall_seconds=round(wall, 3),
                   audio_seconds_per_second=round(fresh / wall, 3) if wall > 0 and fresh else 0.0)
    return summary


def _check_args(src: Path, out: Path, stages, engine: str, workers: int, batch_size: int,
                part_records: int) -> None:
    """Everything that can be refused before the input is read."""
    if not src.exists():
        raise VoxboxError(f"{src}: manifest not found")
    if src.resolve() == out.resolve():
        raise VoxboxError(f"{out}: output must differ from the input manifest")
    if rejects_path(out).resolve() == rejects_path(src).resolve():
        # m.jsonl -> m.parquet: both name m.rejects.jsonl, which holds the input's rejects.
        raise VoxboxError(f"{out}: its rejects would go to {rejects_path(out)}, which holds the rejects of "
                          f"{src}; give --out another name (e.g. {_other_name(out)})")
    check_manifest_out(out)  # written last: a bad --out must not waste the whole run
    check_engine(engine, workers)
    if batch_size < 1 or part_records < 1:
        raise VoxboxError("batch size and part size must be at least 1")
    for st in stages:
        st.check()  # e.g. the tokenizer's model folder: refused now, not inside a worker


def _other_name(out: Path) -> str:
    name = out.name
    for suffix in (".jsonl.gz", ".json.gz", ".jsonl", ".json", ".parquet"):
        if name.endswith(suffix):
            return str(out.with_name(name[: -len(suffix)] + ".out" + suffix))
    return str(out.with_name(name + ".out"))


def _fingerprint(src: Path, stages: Sequence[Stage], limit: Optional[int], part_records: int,
                 allow_absolute_paths: bool = False) -> Dict[str, str]:
    """What a resumed run must share with the first: the input bytes and cut, the stage options."""
    h = hashlib.sha256()
    with open(src, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    cut = ix.canonical_json({"sha256": h.hexdigest(), "limit": limit, "part_records": part_records,
                             **({"absolute_paths": True} if allow_absolute_paths else {})})
    options = ix.canonical_json([{"stage": st.name, "params": st.params} for st in stages])
    return {"input": ix.sha256_text(cut), "pipeline": ix.sha256_text(options)}


def _open_journal(work: Path, fingerprint: Dict[str, str], log: Log) -> ix.Journal:
    journal = ix.Journal(work / ix.JOURNAL_NAME)
    start = journal.start()
    if start is not None and changed(start.get("fingerprint"), fingerprint):
        if journal.shards():
            raise VoxboxError(f"{work} holds an unfinished run with other input or options; rerun the "
                              f"same command to finish it, or delete {work} to start over")
        log(f"{work}: the previous run finished nothing; starting over")
        shutil.rmtree(work)
        start = None
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ix.io_error(work, e) from None
    if start is None:
        journal.append({"kind": "start", "fingerprint": fingerprint})
    ix.remove_partials(work)
    return journal


class PartCommitter:
    """One part's records as JSONL under a temporary name, committed like a shard file."""

    def __init__(self, work: Path, part: int):
        self.part = part
        self.path = work / f"part-{part:06d}.jsonl"
        self.tmp = self.path.with_name(self.path.name + ix.PARTIAL_SUFFIX)
        self.records, self.seconds, self.rejects = 0, 0.0, []
        try:
            self._fh = open(self.tmp, "w", encoding="utf-8")
        except OSError as e:
            raise ix.io_error(work, e) from None

    def add(self, outcome: Union[Utterance, Rejection]) -> None:
        if isinstance(outcome, Rejection):
            self.rejects.append(outcome.to_dict())
            return
        try:
            self._fh.write(json.dumps(outcome.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n")
        except OSError as e:
            raise ix.io_error(self.tmp, e) from None
        self.records += 1
        self.seconds += audio_seconds(outcome)

    def commit(self) -> dict:
        try:
            self._fh.close()
            ix.commit_file(self.tmp, self.path)
        except OSError as e:
            raise ix.io_error(self.path, e) from None
        info = {"path": self.path.name, "bytes": self.path.stat().st_size, "sha256": ix.sha256_file(self.path)}
        return {"kind": "shard", "shard": self.part, "records": self.records, "audio_seconds": self.seconds,
                "files": {"jsonl": info}, "rejects": self.rejects}

    def abort(self) -> None:
        try:
            self._fh.close()
        except OSError:
            pass  # a full disk fails the flush too; the file goes anyway
        self.tmp.unlink(missing_ok=True)


class _Parts:
    """The input cut into parts, as engine tasks. A malformed line is a rejection already:
    it goes straight into its part (a part of nothing else is committed at once), so
    every input line ends in its part as a record or a rejection."""

    def __init__(self, results: Iterator[Result], sizes: List[int], done: Dict[int, dict], batch_size: int,
                 work: Path, journal: ix.Journal, bar):
        self.results, self.sizes, self.done, self.batch_size = results, sizes, done, batch_size
        self.work, self.journal, self.bar = work, journal, bar
        self.pre: Dict[int, List[Rejection]] = {}
        self.kept = 0.0  # audio seconds committed by this run

    def tasks(self) -> Iterator[Task]:
        """Tasks for the parts not done, in input order (the lines of done parts are skipped)."""
        for k, size in enumerate(self.sizes):
            part = list(itertools.islice(self.results, size))
            if k in self.done:
                continue
            recs = [r for r in part if isinstance(r, Utterance)]
            self.pre[k] = [r for r in part if not isinstance(r, Utterance)]
            if not recs:
                self.record(self.open(k).commit())
                continue
            batches = [recs[i:i + self.batch_size] for i in range(0, len(recs), self.batch_size)]
            for j, b in enumerate(batches):
                yield Task(shard=k, seq=j, last=j == len(batches) - 1, records=b)

    def open(self, k: int) -> "PartCommitter":
        committer = PartCommitter(self.work, k)
        pre = self.pre.pop(k, [])
        for r in pre:
            committer.add(r)
        self.bar.update(len(pre))
        return committer

    def record(self, entry: dict) -> None:
        self.journal.append(entry)
        self.done[entry["shard"]] = entry
        self.kept += entry["audio_seconds"]


def _run_parts(eng, parts: _Parts) -> float:
    """Run the tasks; journal each part as it commits. Returns the audio seconds kept.
    An unfinished work folder with no finished part goes (nothing to resume from)."""
    def progress(res) -> None:
        parts.bar.update(len(res.outcomes), sum(audio_seconds(o) for o in res.outcomes if isinstance(o, Utterance)))

    try:
        commit_in_order(eng.run(parts.tasks()), parts.open, parts.record, on_result=progress)
    except BaseException:
        if not parts.journal.shards():
            shutil.rmtree(parts.work, ignore_errors=True)
        raise
    finally:
        eng.close()
    return parts.kept


def _write_output(src: Path, out: Path, work: Path, entries: List[dict]) -> dict:
    """OUT from the parts, and OUT's rejects file: the input's own rejects carried forward
    (so inputs = records + rejects still holds after this command), then this run's, in
    input order."""
    rej_path = rejects_path(out)
    with RejectsWriter(rej_path) as rejects:
        for r in read_rejects(rejects_path(src)):
            rejects.write(r)
        carried = rejects.count
        for e in entries:
            for r in e["rejects"]:
                rejects.write(Rejection.from_dict(r))
    if rejects.count > carried and not sum(e["records"] for e in entries):
        # No empty manifest; the rejects file stays, and the work folder goes so that a
        # rerun after fixing the audio redoes every record.
        shutil.rmtree(work, ignore_errors=True)
        raise VoxboxError(f"every record was rejected, nothing to write: {rejects.summary()}")
    with ManifestWriter(out) as writer:
        for e in entries:
            with open(work / e["files"]["jsonl"]["path"], encoding="utf-8") as fh:
                for line in fh:
                    writer.write(Utterance.from_dict(json.loads(line)))
    seconds = sum(e["audio_seconds"] for e in entries)
    return {"records": writer.count, "rejected": rejects.count - carried, "carried": carried,
            "audio_seconds": round(seconds, 3), "audio_hours": round(seconds / 3600, 4),
            "rejects": str(rej_path) if rejects.count else None, "reject_summary": rejects.summary()}
