"""``voxbox build``: pipeline -> stages -> engine -> shard writers, resumably.

The flow of one build:

1. **Check.** The pipeline is loaded and checked (:mod:`voxbox.build.pipeline`), the
   stages are made and their cheap ``check()`` runs; a foreign output folder is refused
   (:mod:`voxbox.build.guards`). Nothing of the input is read yet.
2. **Prepare.** The source (:mod:`voxbox.build.sources`) is streamed to a work file
   (:mod:`voxbox.build.input`); the sorted records define the *input fingerprint*.
3. **Resume or refuse.** A folder built from another pipeline or input is refused
   unless ``force``; one from the same pipeline and input is resumed.
4. **Plan.** Indices sorted by split, then index (an on-disk sort, bounded memory), are
   cut into shards (:func:`voxbox.shards.writer.cut_shards`), so shard contents depend
   only on the input.
5. **Run.** Shards that the journal lists and whose files still match their sha256
   are skipped; the others are streamed through the engine (stages + audio encoding)
   and committed one by one (:mod:`voxbox.build.commit`: tmp name, fsync, rename,
   journal line).
6. **Finish.** ``rejects.jsonl``, ``pipeline.yaml``, ``provenance.json`` and, last,
   ``index.json``. The work folder is removed; the engine is closed however the build ends.

Same input + same pipeline -> byte-identical shards and index, whether the build ran
in one go, was killed and resumed, or ran with more workers or on Ray.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from voxbox.build.commit import commit_in_order, finished
from voxbox.build.engine import check_engine, make_engine
from voxbox.build.engine.common import fault_point
from voxbox.build.guards import (WORK_DIR, check_existing, check_foreign, check_out_dir, make_writable,
                                 remove_unplanned)
from voxbox.build.input import DUPLICATE_INDEX, Plan, PreparedInput, no_usable_records, prepare_input
from voxbox.build.pipeline import Pipeline, load_pipeline, make_stages
from voxbox.lock import OutputLock
from voxbox.manifest import read_rejects
from voxbox.record import Result
from voxbox.shards import index as ix
from voxbox.shards.writer import ShardCommitter, finish
from voxbox.storage.output import RemoteOutput, is_output_url

Log = Callable[[str], None]


def build(source: Iterable[Result], out_dir: Union[str, Path], pipeline: Optional[Pipeline] = None, *,
          engine: str = "local", workers: int = 1, force: bool = False, ray_address: Optional[str] = None,
          command: Optional[Sequence[str]] = None, log: Optional[Log] = None,
          duplicate: Tuple[str, Optional[str]] = DUPLICATE_INDEX) -> dict:
    """Build (or resume) a dataset folder from ``source`` records; return its index.

    ``source`` yields :class:`Utterance` and :class:`Rejection` values (a recipe's
    ``prepare`` output, or :func:`voxbox.build.sources.manifest_source`). ``pipeline``
    defaults to the shipped VoxBox pipeline. Rerun with the same arguments to resume
    after a crash. ``duplicate``: the (reason, detail) a repeated index is rejected with
    (a recipe source run with ``dedupe=False`` passes its ``DUPLICATE_ID``).
    """
    log = log or (lambda msg: None)
    pipe = pipeline or load_pipeline()
    check_engine(engine, workers)
    if is_output_url(out_dir):
        # Object storage: the build runs in a local staging folder that mirrors the store.
        with RemoteOutput(str(out_dir), force, log) as remote, OutputLock(remote.staging, log):
            return _build(source, remote.staging, pipe, engine, workers, force, ray_address, command, log,
                          duplicate, remote)
    out = Path(out_dir)
    with OutputLock(out, log):  # two builds into one folder would interleave their shards
        return _build(source, out, pipe, engine, workers, force, ray_address, command, log, duplicate)


def _build(source: Iterable[Result], out: Path, pipe: Pipeline, engine: str, workers: int, force: bool,
           ray_address: Optional[str], command: Optional[Sequence[str]], log: Log,
           duplicate: Tuple[str, Optional[str]] = DUPLICATE_INDEX, remote: Optional[RemoteOutput] = None) -> dict:
    stages = _ready(out, pipe, force, log)
    prep = prepare_input(source, out / WORK_DIR, pipe.audio_format, duplicate=duplicate)
    if not prep.count:
        error = no_usable_records(prep)  # counts the rejects before the work folder goes
        shutil.rmtree(out / WORK_DIR, ignore_errors=True)
        raise error
    fingerprint = {"input": prep.fingerprint, "pipeline": pipe.fingerprint()}
    journal = _open_journal(out, pipe, fingerprint, force, log)
    plan = prep.plan(pipe.shard_mb, pipe.shard_records)
    prep.close()
    n_shards = len(plan.shards)
    remove_unplanned(out, pipe.name, n_shards)
    if remote is not None:
        remote.sync_start(n_shards, pipe.name)
    inputs = [s.input for s in plan.shards]
    done = finished(journal, out, [s.records for s in plan.shards], log, inputs=inputs,
                    **({"verify": remote.verify} if remote is not None else {}))
    if done:
        log(f"resuming: {len(done)} of {n_shards} shard(s) already finished and verified")
    eng = make_engine(engine, stages, pipe.audio_format, workers, ray_address)
    note = eng.describe() if hasattr(eng, "describe") else None  # the local engine's GPU split
    if note:
        log(note)
    try:
        _run(eng, prep, plan, done, pipe, out, journal, inputs, remote)
    finally:
        eng.close()  # a private Ray instance must not outlive the build
    index = finish(out, name=pipe.name, formats=pipe.formats, audio_format=pipe.audio_format,
                   shard_entries=[done[k] for k in range(n_shards)], rejects=read_rejects(prep.rejects_path),
                   fingerprint=fingerprint, pipeline_yaml=pipe.to_yaml(), command=command,
                   sources=[{"corpus": c, "root": r} for c, r in sorted(prep.roots)])
    if remote is not None:
        remote.finish()
    shutil.rmtree(out / WORK_DIR, ignore_errors=True)
    return index


def _ready(out: Path, pipe: Pipeline, force: bool, log: Log) -> list:
    """Every check that needs no input: the output folder, the stages and their options."""
    check_out_dir(out, force)
    make_writable(out)
    for stage, why in pipe.skipped():
        log(f"stage {stage} skipped: {why}")
    stages = make_stages(pipe)  # fail early on unknown stages, before any work
    for stage in stages:
        stage.check()  # e.g. a model folder with missing or truncated files
    check_foreign(out, force)
    return stages


def _open_journal(out: Path, pipe: Pipeline, fingerprint: Dict[str, str], force: bool, log: Log) -> ix.Journal:
    check_existing(out, fingerprint, force, log)
    journal = ix.Journal(out / ix.JOURNAL_NAME)
    if journal.start() is None:
        journal.append({"kind": "start", "fingerprint": fingerprint, "name": pipe.name})
    for p in ix.remove_partials(out):
        log(f"removed unfinished {p.relative_to(out)}")
    return journal


def _tasks(prep: PreparedInput, plan: Plan, todo: List[int], batch_size: int) -> Iterator:
    from voxbox.build.engine.common import Task

    with open(prep.path, "rb") as fh:
        for k in todo:
            members = plan.members(k)  # one shard's (index, offset, length) at a time
            batches = [members[i:i + batch_size] for i in range(0, len(members), batch_size)]
            for j, b in enumerate(batches):
                yield Task(shard=k, seq=j, last=j == len(batches) - 1,
                           records=[prep.read(fh, off, length) for _, off, length in b])


def _plans(prep: PreparedInput, plan: Plan, todo: List[int], batch_size: int) -> Iterator:
    """Shard plans (number + the records' prepared JSON lines), read lazily: the engine
    asks for the next one only when a shard slot frees up."""
    from voxbox.build.engine.common import ShardPlan

    with open(prep.path, "rb") as fh:
        for k in todo:
            lines = b"".join(prep.read_line(fh, off, length) for _, off, length in plan.members(k))
            yield ShardPlan(shard=k, lines=lines, batch_size=batch_size)


class _Bars:
    """One progress bar per stage (records and audio seconds) plus one for shards."""

    def __init__(self, shards: int, done: int):
        from voxbox.progress import Progress

        self._progress = Progress
        self.t0 = time.monotonic()
        self.stage_bars: Dict[str, object] = {}
        self.shard_bar = Progress("shards", total=shards, unit="shard")
        self.shard_bar.update(done)

    def stages(self, stats: Dict[str, list]) -> None:
        for name, (n_in, _n_out, secs, _cpu) in stats.items():
            if name not in self.stage_bars:
                self.stage_bars[name] = self._progress(name, start=self.t0)
            self.stage_bars[name].update(n_in, secs)

    def close(self) -> None:
        for b in self.stage_bars.values():
            b.close()
        self.shard_bar.close()


def _run(eng, prep: PreparedInput, plan: Plan, done: Dict[int, dict], pipe: Pipeline, out: Path,
         journal: ix.Journal, inputs: List[str], remote: Optional[RemoteOutput] = None) -> None:
    """Run the shards not done yet; each committed shard is journalled (with the hash of
    its input) and added to ``done``; with a remote output, uploaded before its line."""
    bars = _Bars(len(plan.shards), len(done))

    def record(entry: dict) -> None:
        if remote is not None:
            remote.committed(entry)
        fault_point("before_journal")
        entry["input"] = inputs[entry["shard"]]
        journal.append(entry)
        if remote is not None:
            remote.journalled(entry)
        done[entry["shard"]] = entry
        bars.shard_bar.update(1)
        fault_point("shard_commit")

    todo = [k for k in range(len(plan.shards)) if k not in done]
    try:
        if getattr(eng, "writes_shards", False):
            # The engine writes and commits whole shards itself (Ray), from shard plans
            # (the records' prepared lines); we journal the entries as they come.
            # With an object-store output each task uploads its own shard (no shared disk).
            store = {"store": remote.store.url} if remote is not None else {}
            for entry in eng.run_shards(_plans(prep, plan, todo, pipe.batch_size), out, pipe.name, pipe.formats,
                                        **store):
                bars.stages(entry.pop("stats", {}))
                record(entry)
        else:
            commit_in_order(eng.run(_tasks(prep, plan, todo, pipe.batch_size)),
                            lambda k: ShardCommitter(out, pipe.name, k, pipe.formats), record,
                            on_result=lambda res: bars.stages(res.stats))
    finally:
        bars.close()
