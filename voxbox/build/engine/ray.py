"""The Ray engine (``voxbox build --engine ray``): streaming shard tasks and actor pools.

For a build (:meth:`RayEngine.run_shards`) a shard is the unit of work end to end: the
driver turns each shard still to do into a :class:`~voxbox.build.engine.common.ShardPlan`
(its number and its records' prepared JSON lines) and submits one Ray task per shard
(:func:`voxbox.build.engine.ray_worker.shard_task`: records -> stages -> encoding ->
shard files committed by tmp name, fsync, rename -> journal entry). At most
``max_in_flight`` shard tasks are out at once; the driver takes entries back as they
finish (``ray.wait``) and submits the next shard at once, so a slow shard holds one
slot, never the others, and the driver holds plans and journal entries, never records.
The entries come back in completion order; the journal is keyed by shard, and the index
is written in shard order at the end, so the bytes equal a local build's.

Where stages run:

- plain stages run inside the shard task, set up once per worker process;
- a stage that holds a model (``batched``, like the tokenizer, or one that declares
  ``resources``) runs on an *actor pool*: each actor loads its model once and takes
  batches from any shard task. A pool is sized by what its stages ask for: ``num_gpus``
  (fractional, e.g. 0.25 = four actors per GPU), ``num_cpus`` (default
  ``actor_cpus`` = 0.5) and ``actors`` (default: as many as the cluster's GPUs hold, for
  a GPU pool; ``workers`` for a CPU pool). Declare them per stage in the pipeline file
  (``resources: {num_gpus: 0.25}``); torch threads are capped per actor and task.
- The CPUs the pools leave are shared by ``workers`` concurrent shard tasks (a
  fractional ``num_cpus`` each when pools take some, e.g. 0.5 on a 2-CPU machine).

``voxbox annotate`` / ``voxbox tokenize`` (:meth:`RayEngine.run`) use the same segments
per batch, with the outcomes coming back to the driver in task order.

A node that dies takes its tasks with it: Ray reruns a shard task elsewhere (the task
rewrites the shard from the start; its partial files never count), a pool actor is
restarted and its batches go to the others meanwhile. Anything the journal does not
list is redone by a rerun. A private Ray instance (no ``address``) is shut down by
:meth:`RayEngine.close`, which the build calls however it ends. docs/cluster.md says
how to run on a cluster and what every node needs.
"""

from __future__ import annotations

import math
import os
import pickle
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence

from voxbox.build.engine.common import ShardPlan, Task, TaskResult
from voxbox.errors import MissingExtraError, VoxboxError
from voxbox.stages import Stage



def _import_ray():
    try:
        import ray
    except ImportError:
        raise MissingExtraError("ray", "ray") from None
    return ray


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


def pool_size(group: Sequence[Stage], cluster: Dict[str, float], workers: int,
              actor_cpus: float) -> Dict[str, float]:
    """``{"num_cpus", "num_gpus", "actors"}`` for one pool: the most any of its stages
    asks for; a stage with a ``cuda`` device asks for a whole GPU unless it says less."""
    ask = {"num_cpus": actor_cpus, "num_gpus": 0.0}
    actors = None
    for st in group:
        res = dict(st.resources)
        if str(st.params.get("device", "")).startswith("cuda"):
            res.setdefault("num_gpus", 1.0)
        for k in ("num_cpus", "num_gpus"):
            ask[k] = max(ask[k], float(res.get(k, 0.0)))
        if res.get("actors"):
            actors = max(actors or 0, int(res["actors"]))
    names = ", ".join(st.name for st in group)
    gpus = cluster.get("GPU", 0.0)
    if ask["num_gpus"] > 0 and gpus < ask["num_gpus"]:
        raise VoxboxError(f"stage {names} asks for {ask['num_gpus']:g} GPU per actor, but the Ray cluster "
                          f"has {gpus:g} GPU(s)")
    if actors is None:
        actors = int(gpus // ask["num_gpus"] + 1e-9) if ask["num_gpus"] > 0 else workers
    return {**ask, "actors": max(1, actors)}


class RayEngine:
    """Run shards (a build) or batches (a manifest run) on Ray with bounded work in flight."""

    name = "ray"
    writes_shards = True  # the build hands it whole shards; see run_shards

    def __init__(self, stages: Sequence[Stage], audio_format: Optional[str], workers: int = 2,
                 address: Optional[str] = None, actor_cpus: float = 0.5, max_in_flight: Optional[int] = None):
        self.stages = list(stages)
        self.audio_format = audio_format
        self.workers = max(1, int(workers))
        self.address = address or os.environ.get("RAY_ADDRESS")
        self.actor_cpus = actor_cpus
        self.max_in_flight = max_in_flight or 2 * self.workers
        self._ray = _import_ray()
        self._private = False  # True once this engine started its own local Ray instance
        self._segments_ref = None
        self._actors: list = []
        self.task_cpus = 1.0

    def _init(self) -> None:
        ray = self._ray
        if ray.is_initialized():
            return
        if self.address:
            ray.init(address=self.address, ignore_reinit_error=True, log_to_driver=False)
        else:
            # A private local instance sized to --workers, quiet and without the dashboard;
            # "local": never join a cluster another program started on this machine.
            ray.init(address="local", num_cpus=self.workers, include_dashboard=False, ignore_reinit_error=True,
                     log_to_driver=False, configure_logging=False)
            self._private = True

    def _start(self) -> None:
        """Start Ray, the actor pools (waiting until every actor has loaded its stages)
        and share the segments once through the object store."""
        if self._segments_ref is not None:
            return
        self._init()
        ray = self._ray
        cluster = ray.cluster_resources()
        segments, pool_cpus = [], 0.0
        for kind, group in _segments(self.stages):
            blob = pickle.dumps(group)
            if kind == "tasks":
                segments.append(("local", blob))
                continue
            size = pool_size(group, cluster, self.workers, self.actor_cpus)
            segments.append(("actors", self._pool(blob, size)))
            pool_cpus += size["num_cpus"] * size["actors"]
        self.task_cpus = self._task_cpus(cluster.get("CPU", 0.0), pool_cpus)
        for ref in [a.ready.remote() for a in self._actors]:
            error = self._get(ref)
            if error:  # a model that does not load fails here, once, with its message
                raise VoxboxError(error)
        self._segments_ref = ray.put(segments)

    def _pool(self, blob: bytes, size: Dict[str, float]) -> list:
        from voxbox.build.engine.ray_worker import StageActor

        threads = max(1, int(size["num_cpus"]))
        cls = self._ray.remote(StageActor).options(
            num_cpus=size["num_cpus"], num_gpus=size["num_gpus"] or None,
            max_restarts=-1)  # a node that dies takes its actors; they come back elsewhere
        actors = [cls.remote(blob, threads) for _ in range(int(size["actors"]))]
        self._actors.extend(actors)
        return actors

    def _task_cpus(self, cpus: float, pool_cpus: float) -> float:
        """The CPUs each shard task asks for: ``workers`` of them share what the pools leave."""
        free = cpus - pool_cpus
        if free <= 0:
            raise VoxboxError(f"the actor pools take all {cpus:g} CPUs of the Ray cluster; lower their "
                              "'actors' or 'num_cpus' in the pipeline's stage resources")
        return max(0.01, math.floor(min(1.0, free / self.workers) * 100) / 100)

    def run_shards(self, plans: Iterable[ShardPlan], out_dir, name: str, formats: Sequence[str],
                   store: Optional[str] = None) -> Iterator[dict]:
        """Run and commit every planned shard on Ray; yield each committed shard's
        journal entry (with its rejects and per-stage ``stats``) as it finishes. With
        ``store`` (an object-store output URL) each task uploads its own shard."""
        from voxbox.build.engine.ray_worker import shard_task

        self._start()
        # Absolute: a task's working directory is wherever its node started the worker.
        out = str(Path(out_dir).resolve())
        remote = self._ray.remote(shard_task).options(num_cpus=self.task_cpus, max_retries=3)
        args = (self._segments_ref, self.audio_format, out, name, list(formats), self._threads(), store)
        yield from self._stream(plans, lambda p: remote.remote(p, *args), ordered=False)

    def run(self, tasks: Iterable[Task]) -> Iterator[TaskResult]:
        """Run the stages on Ray and give the results back in task order, the audio
        encoded when the engine has an audio format."""
        from voxbox.build.engine.ray_worker import batch_task

        self._start()
        remote = self._ray.remote(batch_task).options(num_cpus=self.task_cpus, max_retries=3)
        args = (self._segments_ref, self.audio_format, self._threads())
        yield from self._stream(tasks, lambda t: remote.remote(t, *args), ordered=True)

    def _threads(self) -> int:
        return max(1, int(self.task_cpus))

    def _stream(self, items: Iterable, submit: Callable, ordered: bool) -> Iterator:
        """Submit items with at most ``max_in_flight`` out; yield results as they finish
        (``ordered``: in submission order, through a reorder buffer). Whatever is still
        out when this stops (an error, the caller gone) is cancelled."""
        ray = self._ray
        it = iter(items)
        out: Dict[object, int] = {}      # object ref -> ticket
        ready: Dict[int, object] = {}    # ticket -> result waiting for its turn (ordered)
        sent = given = 0
        try:
            while True:
                while len(out) + len(ready) < self.max_in_flight:
                    item = next(it, None)
                    if item is None:
                        break
                    out[submit(item)] = sent
                    sent += 1
                if ordered and given in ready:
                    yield ready.pop(given)
                    given += 1
                    continue
                if not out:
                    return
                done, _ = ray.wait(list(out), num_returns=1)
                ticket, value = out.pop(done[0]), self._get(done[0])
                if ordered:
                    ready[ticket] = value
                else:
                    yield value
        finally:
            for ref in out:
                ray.cancel(ref, force=True)

    def _get(self, ref):
        """A task's result; a task's failure as one VoxboxError (the user's own problem,
        e.g. a model that does not load, said as is)."""
        from ray.exceptions import RayError, RayTaskError

        try:
            return self._ray.get(ref)
        except RayTaskError as e:
            cause = e.cause if isinstance(getattr(e, "cause", None), BaseException) else e
            if isinstance(cause, VoxboxError):
                raise VoxboxError(str(cause)) from None
            raise VoxboxError(f"a Ray task failed: {type(cause).__name__}: {cause}; finished shards are "
                              "kept, rerun to resume") from None
        except RayError as e:
            raise VoxboxError(f"Ray failed: {type(e).__name__}: {e}; finished shards are kept, "
                              "rerun to resume") from None

    def close(self) -> None:
        """Let the actors go, and shut down the private Ray instance this engine started
        (a cluster joined by address, or an instance the caller started, stays up)."""
        ray = self._ray
        if ray.is_initialized():
            for a in self._actors:
                ray.kill(a)
        self._actors, self._segments_ref = [], None
        if self._private and ray.is_initialized():
            ray.shutdown()
        self._private = False
