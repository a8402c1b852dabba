"""The Ray Data engine (``voxbox build --engine ray``), for builds that outgrow one machine.

Each task (a batch of records of one shard) becomes one row of a Ray Dataset, and the
pipeline becomes a chain of ``map_batches`` steps:

- consecutive plain CPU stages run as stateless Ray *tasks*;
- a batched stage or one that asks for resources (the tokenizer, ``resources =
  {"num_gpus": 1}``) runs on an *actor pool*: each actor loads its model once in
  ``setup()`` and keeps it; actors take ``actor_cpus`` (fractional) and, when asked,
  GPUs;
- the audio encoding of the survivors runs as tasks too.

Rows come back to the driver in task order (``preserve_order``), where the same shard
committer as the local engine writes, fsyncs, renames and journals each shard: shard
names, contents, index and resume are identical to a local build. Tasks are fed in
windows of ``window`` rows so the driver never holds the whole corpus.

Cluster use: start Ray on the machines (``ray start --head`` on one,
``ray start --address HEAD:6379`` on the others), then run ``voxbox build --engine ray
--ray-address auto`` (or set ``RAY_ADDRESS``) on the head. Every node needs voxbox
installed and must see the corpus and the output folder at the same paths (a shared
filesystem), since workers read audio by path.
"""

from __future__ import annotations

import itertools
import os
import pickle
from typing import Iterable, Iterator, List, Optional, Sequence

from ..errors import MissingExtraError
from ..stages import Stage
from .common import Task, TaskResult

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
        from .common import run_stages_on

        stages = pickle.loads(stages_blob)
        out = []
        for blob in batch[_COL]:
            out.append(_apply(stages, blob))
        return {_COL: out}
    return fn


def _apply(stages: Sequence[Stage], blob: bytes) -> bytes:
    from ..record import Utterance
    from .common import run_stages_on

    task, slots, stats = pickle.loads(blob)
    live = [i for i, r in enumerate(slots) if isinstance(r, Utterance)]
    if live:
        out, st = run_stages_on(stages, [slots[i] for i in live])
        for i, res in zip(live, out):
            slots[i] = res
        stats.update(st)
    return pickle.dumps((task, slots, stats), protocol=pickle.HIGHEST_PROTOCOL)


class _StageActor:
    """An actor holding set-up stages (models loaded once per actor)."""

    def __init__(self, stages_blob: bytes, threads: int):
        import sys

        for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[k] = str(threads)
        self.stages = pickle.loads(stages_blob)
        for st in self.stages:
            st.ensure_setup()
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)

    def __call__(self, batch):
        return {_COL: [_apply(self.stages, blob) for blob in batch[_COL]]}


def _encode_step(audio_format: str):
    def fn(batch):
        from ..record import Utterance
        from ..shards.encode import encode_record

        out = []
        for blob in batch[_COL]:
            task, slots, stats = pickle.loads(blob)
            outcomes = [encode_record(r, audio_format) if isinstance(r, Utterance) else r for r in slots]
            out.append(pickle.dumps(TaskResult(task, outcomes, stats), protocol=pickle.HIGHEST_PROTOCOL))
        return {_COL: out}
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
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False

    def _pipeline(self, ds):
        for kind, group in _segments(self.stages):
            blob = pickle.dumps(group)
            if kind == "tasks":
                ds = ds.map_batches(_stage_step(blob), batch_size=1, num_cpus=1)
            else:
                gpus = self.num_gpus_per_actor
                if gpus is None:
                    gpus = max(float(st.resources.get("num_gpus", 0)) for st in group)
                threads = max(1, int(self.actor_cpus)) if self.actor_cpus >= 1 else 1
                ds = ds.map_batches(_StageActor, fn_constructor_args=(blob, threads), batch_size=1,
                                    compute=self._ray.data.ActorPoolStrategy(size=self.workers),
                                    num_cpus=self.actor_cpus, num_gpus=gpus or None)
        return ds.map_batches(_encode_step(self.audio_format), batch_size=1, num_cpus=1)

    def run(self, tasks: Iterable[Task]) -> Iterator[TaskResult]:
        self._init()
        ray = self._ray
        it = iter(tasks)
        while True:
            window = list(itertools.islice(it, self.window))
            if not window:
                return
            rows = [{_COL: pickle.dumps((t, list(t.records), {}), protocol=pickle.HIGHEST_PROTOCOL)}
                    for t in window]
            ds = self._pipeline(ray.data.from_items(rows, override_num_blocks=len(rows)))
            for row in ds.iter_rows():
                yield pickle.loads(row[_COL])

    def shutdown(self) -> None:
        if self._ray.is_initialized() and not self.address:
            self._ray.shutdown()
