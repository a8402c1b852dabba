"""The Ray Data engine (``voxbox build --engine ray``), for builds that outgrow one machine.

Each task (a batch of records of one shard) becomes one row of a Ray Dataset, and the
pipeline becomes a chain of ``map_batches`` steps:

- consecutive plain CPU stages run as stateless Ray *tasks*;
- a batched stage or one that asks for resources (the tokenizer, ``resources =
  {"num_gpus": 1}``) runs on an *actor pool*: each actor loads its model once in
  ``setup()`` and keeps it; actors take ``actor_cpus`` (fractional) and, when asked,
  GPUs;
- the audio encoding of the survivors runs as tasks too.

- for a build (:meth:`RayEngine.run_shards`) the rows are then grouped by shard
  (``groupby("shard").map_groups``) and each group is written by a Ray task: audio
  encoding, then the same shard committer as the local engine (tmp name, fsync,
  rename). The task returns the shard's journal entry; the driver appends it to the
  journal, so shard names, contents, index and resume are identical to a local build;
- for ``voxbox annotate`` / ``voxbox tokenize`` (:meth:`RayEngine.run`) the stage
  results come back to the driver, in task order, like the local engine's.

Tasks are fed in windows of about ``window`` rows (whole shards only) so the driver
never holds the whole corpus. A private Ray instance (no ``address``) is shut down by
:meth:`RayEngine.close`, which the build calls when it ends, however it ends.

Cluster use: start Ray on the machines (``ray start --head`` on one,
``ray start --address HEAD:6379`` on the others), then run ``voxbox build --engine ray
--ray-address auto`` (or set ``RAY_ADDRESS``) on the head. Every node needs voxbox
installed and must see the corpus and the output folder at the same paths (a shared
filesystem), since workers read audio by path.
"""

from __future__ import annotations

import os
import pickle
from typing import Iterable, Iterator, List, Optional, Sequence

from voxbox.errors import MissingExtraError
from voxbox.stages import Stage
from voxbox.build.engine.common import Task, TaskResult, encode_all

_COL = "item"


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise MissingExtraError("ray[data]", "ray") from None
    return ray


def _stage_step(stages_blob: bytes):
    """A stateless map_batches function running some stages over each row."""
    def fn(batch):
        stages = pickle.loads(stages_blob)
        return {**batch, _COL: [_apply(stages, blob) for blob in batch[_COL]]}
    return fn


def _apply(stages: Sequence[Stage], blob: bytes) -> bytes:
    from voxbox.record import Utterance
    from voxbox.build.engine.common import run_stages_on

    from voxbox import media

    task, slots, stats = pickle.loads(blob)
    live = [i for i, r in enumerate(slots) if isinstance(r, Utterance)]
    if live:
        with media.prefetch([slots[i] for i in live]):  # one pass per .tar.gz archive
            out, st = run_stages_on(stages, [slots[i] for i in live])
        for i, res in zip(live, out):
            slots[i] = res
        stats.update(st)
    return pickle.dumps((task, slots, stats), protocol=pickle.HIGHEST_PROTOCOL)


class _StageActor:
    """An actor holding set-up stages (models loaded once per actor)."""

    def __init__(self, stages_blob: bytes, threads: int):
        from voxbox.build.engine.common import limit_threads

        limit_threads(threads)
        self.stages = pickle.loads(stages_blob)
        for st in self.stages:
            st.ensure_setup()
        limit_threads(threads)  # again: setup() may have imported torch

    def __call__(self, batch):
        return {**batch, _COL: [_apply(self.stages, blob) for blob in batch[_COL]]}


def _write_step(out_dir: str, name: str, formats: Sequence[str], audio_format: str):
    """map_groups function: all rows of one shard -> encode audio, write and commit the
    shard's files (tmp name, fsync, rename) -> one row with the journal entry."""
    def fn(batch):
        import json

        from voxbox import media
        from voxbox.record import Utterance
        from voxbox.shards.encode import encode_record
        from voxbox.shards.writer import ShardCommitter

        order = sorted(range(len(batch["seq"])), key=lambda i: int(batch["seq"][i]))
        committer = None
        stats = {}
        try:
            for i in order:
                task, slots, st = pickle.loads(batch[_COL][i])
                if committer is None:
                    committer = ShardCommitter(out_dir, name, task.shard, formats)
                for name_, vals in st.items():
                    acc = stats.setdefault(name_, [0, 0, 0.0, 0.0])
                    for k in range(4):
                        acc[k] += vals[k]
                with media.prefetch([r for r in slots if isinstance(r, Utterance)]):
                    for r in slots:
                        committer.add(encode_record(r, audio_format) if isinstance(r, Utterance) else r)
            entry = committer.commit()
        except BaseException:
            if committer is not None:
                committer.abort()
            raise
        entry["stats"] = stats
        return {"entry": [json.dumps(entry)]}
    return fn


def _segments(stages: Sequence[Stage]) -> List[tuple]:
    """Group consecutive stages: ("tasks", [...]) for plain CPU stages, ("actors", [...])
    for batched or resource-hungry ones."""
    segs: List[tuple] = []
    for st in stages:
        kind = "actors" if (st.batched or st.resources) else "tasks"
        if segs and segs[-1][0] == kind:
            segs[-1][1].append(st)
        else:
            segs.append((kind, [st]))
    return segs


class RayEngine:
    """Run tasks on Ray Data; results come back in task order."""

    name = "ray"
    writes_shards = True  # the build hands it whole shards; see run_shards

    def __init__(self, stages: Sequence[Stage], audio_format: str, workers: int = 2,
                 address: Optional[str] = None, actor_cpus: float = 0.5, window: int = 512,
                 num_gpus_per_actor: Optional[float] = None):
        self.stages = list(stages)
        self.audio_format = audio_format
        self.workers = max(1, int(workers))
        self.address = address or os.environ.get("RAY_ADDRESS")
        self.actor_cpus = actor_cpus
        self.window = window
        self.num_gpus_per_actor = num_gpus_per_actor
        self._ray = _import_ray()
        self._private = False  # True once this engine started its own local Ray instance

    def _init(self) -> None:
        ray = self._ray
        if ray.is_initialized():
            return
        if self.address:
            ray.init(address=self.address, ignore_reinit_error=True, log_to_driver=False)
        else:
            # A private local instance sized to --workers, quiet and without the dashboard.
            ray.init(num_cpus=self.workers, include_dashboard=False, ignore_reinit_error=True,
                     log_to_driver=False, configure_logging=False)
            self._private = True
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False

    def _stages(self, ds):
        for kind, group in _segments(self.stages):
            blob = pickle.dumps(group)
            if kind == "tasks":
                ds = ds.map_batches(_stage_step(blob), batch_size=1, num_cpus=1)
            else:
                gpus = self.num_gpus_per_actor
                if gpus is None:
                    # A stage asks for GPUs by its resources, or by a cuda device parameter.
                    gpus = max(max(float(st.resources.get("num_gpus", 0)),
                                   1.0 if str(st.params.get("device", "")).startswith("cuda") else 0.0)
                               for st in group)
                threads = max(1, int(self.actor_cpus)) if self.actor_cpus >= 1 else 1
                ds = ds.map_batches(_StageActor, fn_constructor_args=(blob, threads), batch_size=1,
                                    compute=self._ray.data.ActorPoolStrategy(size=self.workers),
                                    num_cpus=self.actor_cpus, num_gpus=gpus or None)
        return ds

    def _windows(self, tasks: Iterable[Task]) -> Iterator[List[Task]]:
        """Consecutive tasks, about ``window`` at a time, never splitting a shard."""
        window: List[Task] = []
        for t in tasks:
            window.append(t)
            if t.last and len(window) >= self.window:
                yield window
                window = []
        if window:
            yield window

    def _rows(self, window: List[Task]) -> list:
        from voxbox.build.engine.common import storable

        blob = lambda t: pickle.dumps((t, storable(t.records, self.audio_format), {}),  # noqa: E731
                                      protocol=pickle.HIGHEST_PROTOCOL)
        return [{"ticket": i, "shard": t.shard, "seq": t.seq, _COL: blob(t)} for i, t in enumerate(window)]

    def run(self, tasks: Iterable[Task]) -> Iterator[TaskResult]:
        """Run the stages on Ray and give the results back in task order (one window
        in memory at a time), the audio encoded when the engine has an audio format."""
        self._init()
        ray = self._ray
        for window in self._windows(tasks):
            rows = self._rows(window)
            ds = self._stages(ray.data.from_items(rows, override_num_blocks=len(rows)))
            done = {int(row["ticket"]): pickle.loads(row[_COL]) for row in ds.iter_rows()}
            for i in range(len(window)):
                task, slots, stats = done[i]
                yield TaskResult(task, encode_all(slots, self.audio_format), stats)

    def run_shards(self, tasks: Iterable[Task], out_dir, name: str, formats: Sequence[str]) -> Iterator[dict]:
        """Run the stages and write every shard on Ray; yield each committed shard's
        journal entry (with its rejects and per-stage ``stats``) as it finishes."""
        import json

        self._init()
        ray = self._ray
        for window in self._windows(tasks):
            rows = self._rows(window)
            n_shards = len({t.shard for t in window})
            ds = self._stages(ray.data.from_items(rows, override_num_blocks=len(rows)))
            ds = ds.groupby("shard", num_partitions=min(n_shards, max(1, self.workers))).map_groups(
                _write_step(str(out_dir), name, list(formats), self.audio_format), num_cpus=1)
            for row in ds.iter_rows():
                yield json.loads(row["entry"])

    def close(self) -> None:
        """Shut down the private Ray instance this engine started (a cluster joined by
        address, or an instance the caller started, is left running)."""
        if self._private and self._ray.is_initialized():
            self._ray.shutdown()
        self._private = False
