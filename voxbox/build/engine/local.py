"""The embedded engine: a fixed pool of worker processes fed through bounded queues.

The main process reads tasks lazily, keeps at most ``2 * workers`` of them in flight,
and hands results back strictly in task order (a small reorder buffer), so memory is
bounded by the in-flight batches whatever the corpus size, and shards are written in
the same order as a single-process run. With one worker the tasks run inline: no
process, no pickling, same results.

A build that tokenizes on a GPU runs its device stages (from the first stage asking for
a GPU, e.g. ``tokenize`` with ``device: cuda``) once, in this process: one model in GPU
memory whatever ``-j`` is, fed by the workers, which run the CPU stages and encode the
shard audio of the next tasks meanwhile (:func:`~voxbox.build.engine.common.split_at_device`).
Without the split every worker loaded its own model: ``-j 16`` on a 24 GB card ran out of
memory.

Workers are started with ``spawn`` (no inherited torch or thread state), get their
stage objects once (stages pickle as their parameters; models load in each worker's
``setup``), limit torch/BLAS threads to ``cores // workers``, and exit within a
fraction of a second of the main process dying (for example on SIGKILL), even in the
middle of a task, so a killed build leaves nothing running.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from voxbox.errors import VoxboxError
from voxbox.stages import Stage
from voxbox.build.engine.common import (Task, TaskResult, finish_task, limit_threads, run_front, run_task,
                                        split_at_device)


PARENT_POLL_S = 0.2


def _die_with(parent: int) -> None:
    """End this worker within ~0.2 s of the main process dying, even in the middle of a
    task: a killed build must not leave workers holding CPUs or GPU memory while the
    user reruns it. The kernel is asked to SIGKILL us when the parent goes (Linux); a
    thread polling the parent pid does the same everywhere (and covers C code that
    holds the GIL only briefly)."""
    import signal
    import sys
    import threading
    import time

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # it died before we asked
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)  # no clean-up to wait for: the build is gone, its rerun redoes this task

    threading.Thread(target=watch, name="voxbox-parent-watch", daemon=True).start()


def _worker_main(stages: List[Stage], audio_format: Optional[str], threads: int, tasks, results,
                 parent: int, front_only: bool = False) -> None:
    _die_with(parent)
    run = run_front if front_only else run_task
    limit_threads(threads)
    results.cancel_join_thread()  # never block exit on an unread result after the parent died
    while True:
        try:
            item = tasks.get(timeout=1.0)
        except queue.Empty:
            continue
        if item is None:
            return
        ticket, task = item
        try:
            res = run(stages, audio_format, task)
            # Stages may import torch lazily inside setup(); keep its threads bounded too.
            limit_threads(threads)
            results.put((ticket, res, None))
        except VoxboxError as e:  # a user's problem (a model that does not load): said as is
            results.put((ticket, None, str(e)))
        except BaseException as e:  # noqa: BLE001 - report, never hang the pool
            results.put((ticket, None, f"worker failed: {type(e).__name__}: {e}"))


class _Pool:
    """The worker processes and their two queues (tasks in, results out)."""

    def __init__(self, engine: "LocalEngine"):
        ctx = mp.get_context("spawn")
        self.tasks = ctx.Queue(maxsize=engine.max_in_flight)
        self.results = ctx.Queue()
        self.procs = [ctx.Process(target=_worker_main, daemon=True,
                                  args=(engine.pool_stages, engine.audio_format, engine.threads, self.tasks,
                                        self.results, os.getpid(), bool(engine.device_stages)))
                      for _ in range(engine.workers)]
        for p in self.procs:
            p.start()

    def get(self) -> Tuple[int, TaskResult]:
        """The next finished (ticket, result), in whatever order workers finish."""
        while True:
            try:
                ticket, res, err = self.results.get(timeout=5.0)
            except queue.Empty:
                dead = [p for p in self.procs if not p.is_alive()]
                if dead:
                    raise VoxboxError(f"a worker died (exit code {dead[0].exitcode}); "
                                      "finished work is kept, rerun to resume") from None
                continue
            if err is not None:
                raise VoxboxError(err)
            return ticket, res

    def close(self) -> None:
        for _ in self.procs:
            try:
                self.tasks.put_nowait(None)
            except queue.Full:
                pass
        for p in self.procs:
            p.join(timeout=2.0)
            if p.is_alive():
                p.terminate()
                p.join(timeout=2.0)
        self.tasks.cancel_join_thread()
        self.results.cancel_join_thread()


class LocalEngine:
    """Run tasks on ``workers`` processes (inline when ``workers <= 1``)."""

    name = "local"

    def __init__(self, stages: Sequence[Stage], audio_format: Optional[str], workers: int = 1,
                 threads_per_worker: Optional[int] = None, max_in_flight: Optional[int] = None):
        self.stages = list(stages)
        self.audio_format = audio_format
        self.workers = max(1, int(workers))
        cores = os.cpu_count() or 1
        self.threads = threads_per_worker or max(1, cores // self.workers)
        self.max_in_flight = max_in_flight or 2 * self.workers
        self.pool_stages, self.device_stages = split_at_device(self.stages) if self.workers > 1 else (self.stages, [])
        if self.device_stages and not self.pool_stages and audio_format is None:
            self.workers = 1  # `voxbox tokenize --device cuda -j N`: workers would have nothing to do
            self.pool_stages, self.device_stages = self.stages, []

    def describe(self) -> Optional[str]:
        """A line for the build log when stages run in this process, else None."""
        if not self.device_stages:
            return None
        names = ", ".join(st.name for st in self.device_stages)
        return (f"stage {names} runs once, in this process (it asks for a GPU), "
                f"fed by {self.workers} workers")

    def run(self, tasks: Iterable[Task]) -> Iterator[TaskResult]:
        if self.workers == 1:
            limit_threads(self.threads)
            for t in tasks:
                yield run_task(self.stages, self.audio_format, t)
            return
        for res in self._run_pool(tasks):
            yield finish_task(self.device_stages, self.audio_format, res) if self.device_stages else res

    def _run_pool(self, tasks: Iterable[Task]) -> Iterator[TaskResult]:
        pool = _Pool(self)
        it = iter(tasks)
        sent = given = 0    # tickets handed out / given back (in order)
        pending: Dict[int, TaskResult] = {}
        try:
            while True:
                # Keep the pipe full but bounded.
                while sent - given < self.max_in_flight:
                    t = next(it, None)
                    if t is None:
                        break
                    pool.tasks.put((sent, t))
                    sent += 1
                if given == sent:
                    return
                while given not in pending:
                    ticket, res = pool.get()
                    pending[ticket] = res
                yield pending.pop(given)
                given += 1
        finally:
            pool.close()

    def close(self) -> None:
        """Nothing to release: the pool lives only while run() is iterated."""
