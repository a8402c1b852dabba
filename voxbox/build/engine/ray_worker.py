"""What runs on Ray workers: one task per shard, and the actors that hold model stages.

Imported by Ray worker processes (and by the driver to submit): nothing here reads a
file the driver made. A shard task gets a :class:`~voxbox.build.engine.common.ShardPlan`
(its records as JSON lines), the pipeline as *segments* and the output folder, and does
the whole shard: records -> stages -> audio encoding -> shard files (tmp name, fsync,
rename, by the same :class:`~voxbox.shards.writer.ShardCommitter` as the local
engine) -> the journal entry it returns. The driver only writes that entry to the
journal, so the journal stays the truth: a shard whose task died is simply not in it.

Segments are consecutive stages that run in the same place: ``("local", blob)``
(pickled plain stages, run inside the task's own process; set up once per worker
process, see :func:`_local_stages`) or ``("actors", handles)`` (a pool of
:class:`StageActor`, each holding set-up model stages; a batch goes to one actor).
"""

from __future__ import annotations

import hashlib
import pickle
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from voxbox.build.engine.common import (ShardPlan, Task, TaskResult, add_stats, encode_all, limit_threads,
                                        run_stages_on, storable)
from voxbox.errors import VoxboxError
from voxbox.record import Rejection, Utterance

Slots = List[Union[Utterance, Rejection]]
# How long a shard task keeps trying when every actor of a pool is away (restarting
# after its node died): long enough for a restart, short enough to fail a dead pool.
ACTOR_WAIT_S = 120.0


class StageActor:
    """Holds set-up stages (models loaded once per actor) and runs batches through them.
    Torch/BLAS threads are capped to the CPUs the actor asked for (at least one)."""

    def __init__(self, stages_blob: bytes, threads: int):
        limit_threads(threads)
        self.stages = pickle.loads(stages_blob)
        self.error: Optional[str] = None
        try:
            for st in self.stages:
                st.ensure_setup()
        except VoxboxError as e:  # a user's problem (a model folder that does not load): said as is
            self.error = str(e)
        except Exception as e:  # noqa: BLE001 - reported once by the driver, not as a dead actor
            self.error = f"stage setup failed: {type(e).__name__}: {e}"
        limit_threads(threads)  # again: setup() may have imported torch

    def ready(self) -> Optional[str]:
        """None once the stages are set up; else why they could not be."""
        return self.error

    def process(self, recs: List[Utterance]) -> Tuple[Slots, Dict[str, list]]:
        from voxbox import media

        with media.prefetch(recs):  # one pass per .tar.gz archive
            return run_stages_on(self.stages, recs)


_STAGES_CACHE: Dict[str, list] = {}


def _local_stages(blob: bytes) -> list:
    """The plain stages of a segment, set up once per worker process: Ray reuses worker
    processes across tasks, so a stage's setup() (a model load) is paid once per
    process, not once per shard."""
    key = hashlib.sha256(blob).hexdigest()
    if key not in _STAGES_CACHE:
        stages = pickle.loads(blob)
        for st in stages:
            st.ensure_setup()
        _STAGES_CACHE.clear()  # one pipeline per build; never hold an old one's models
        _STAGES_CACHE[key] = stages
    return _STAGES_CACHE[key]


def _on_pool(actors: Sequence, recs: List[Utterance], key: int) -> Tuple[Slots, Dict[str, list]]:
    """Run a batch on one actor of the pool (``key`` spreads batches over the pool). An
    actor that died or is restarting (its node went away) is skipped for the next one;
    when all are away the task waits for a restart, up to ``ACTOR_WAIT_S``."""
    import ray
    from ray.exceptions import RayActorError

    deadline = time.monotonic() + ACTOR_WAIT_S
    last = None
    while True:
        for k in range(len(actors)):
            try:
                return ray.get(actors[(key + k) % len(actors)].process.remote(recs))
            except RayActorError as e:  # dead or restarting: another actor does it
                last = e
        if time.monotonic() > deadline:
            raise VoxboxError(f"no actor of the stage pool answered for {ACTOR_WAIT_S:g} s ({last})")
        time.sleep(1.0)


def run_segments(segments: Sequence[tuple], recs: Slots, key: int) -> Tuple[Slots, Dict[str, list]]:
    """The pipeline over one batch: each segment sees the batch's surviving records;
    outcomes stay in input order. Returns the outcomes and per-stage stats."""
    slots = list(recs)
    stats: Dict[str, list] = {}
    for kind, what in segments:
        live = [i for i, r in enumerate(slots) if isinstance(r, Utterance)]
        if not live:
            break
        batch = [slots[i] for i in live]
        out, st = run_stages_on(_local_stages(what), batch) if kind == "local" else _on_pool(what, batch, key)
        for i, res in zip(live, out):
            slots[i] = res
        add_stats(stats, st)
    return slots, stats


def shard_task(plan: ShardPlan, segments: Sequence[tuple], audio_format: str, out_dir: str, name: str,
               formats: Sequence[str], threads: int, store: Optional[str] = None) -> dict:
    """One whole shard: its batches through the pipeline, encoded, written and
    committed; returns the journal entry with per-stage ``stats``. A failure removes
    the shard's temporary files; nothing of it is journalled. With ``store`` (an object
    store URL: ``--out s3://...``) the shard is committed in a temporary folder on this
    node and uploaded from here (:func:`voxbox.storage.output.upload_shard`), so the
    driver's staging folder need not be shared with the workers."""
    limit_threads(threads)
    if store is None:
        return _write_shard(plan, segments, audio_format, out_dir, name, formats)
    import shutil
    import tempfile

    from voxbox.storage.output import upload_shard

    local = tempfile.mkdtemp(prefix=f"voxbox-shard-{plan.shard}-")
    try:
        entry = _write_shard(plan, segments, audio_format, local, name, formats)
        upload_shard(store, Path(local), entry)  # marks entry["uploaded"]
        return entry
    finally:
        shutil.rmtree(local, ignore_errors=True)


def _write_shard(plan: ShardPlan, segments: Sequence[tuple], audio_format: str, out_dir: str, name: str,
                 formats: Sequence[str]) -> dict:
    from voxbox import media
    from voxbox.shards.writer import ShardCommitter

    stats: Dict[str, list] = {}
    committer = ShardCommitter(out_dir, name, plan.shard, formats)
    try:
        for task in plan.tasks():
            with media.prefetch(task.records):  # one pass per .tar.gz archive, stages and encoding
                slots, st = run_segments(segments, storable(task.records, audio_format), plan.shard + task.seq)
                for outcome in encode_all(slots, audio_format):
                    committer.add(outcome)
            add_stats(stats, st)
        entry = committer.commit()
    except BaseException:
        committer.abort()
        raise
    entry["stats"] = stats
    return entry


def batch_task(task: Task, segments: Sequence[tuple], audio_format, threads: int) -> TaskResult:
    """One batch for a manifest run (``voxbox annotate`` / ``tokenize``): the stages'
    outcomes come back to the driver, which commits the parts in order."""
    from voxbox import media

    limit_threads(threads)
    with media.prefetch(task.records):
        slots, stats = run_segments(segments, storable(task.records, audio_format), task.shard + task.seq)
        return TaskResult(task, encode_all(slots, audio_format), stats)
