"""The embedded engine: a fixed pool of worker processes fed through bounded queues.

The main process reads tasks lazily, keeps at most ``2 * workers`` of them in flight,
and hands results back strictly in task order (a small reorder buffer), so memory is
bounded by the in-flight batches whatever the corpus size, and shards are written in
the same order as a single-process run. With one worker the tasks run inline: no
process, no pickling, same results.

Workers are started with ``spawn`` (no inherited torch or thread state), get their
stage objects once (stages pickle as their parameters; models load in each worker's
``setup``), limit torch/BLAS threads to ``cores // workers``, and exit by themselves
if the main process dies (for example on SIGKILL), so a killed build leaves nothing
running.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
from typing import Dict, Iterable, Iterator, List, Optional, Sequence

from voxbox.errors import VoxboxError
from voxbox.stages import Stage
from voxbox.build.engine.common import Task, TaskResult, limit_threads, run_task

def _worker_main(stages: List[Stage], audio_format: str, threads: int, tasks, results, parent: int) -> None:
    limit_threads(threads)
    results.cancel_join_thread()  # never block exit on an unread result after the parent died
    while True:
        try:
            item = tasks.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:
                return  # orphaned: the build was killed
            continue
        if item is None:
            return
        ticket, task = item
        try:
            res = run_task(stages, audio_format, task)
            # Stages may import torch lazily inside setup(); keep its threads bounded too.
            limit_threads(threads)
            results.put((ticket, res, None))
        except BaseException as e:  # noqa: BLE001 - report, never hang the pool
            results.put((ticket, None, f"{type(e).__name__}: {e}"))


class LocalEngine:
    """Run tasks on ``workers`` processes (inline when ``workers <= 1``)."""

    name = "local"

    def __init__(self, stages: Sequence[Stage], audio_format: str, workers: int = 1,
                 threads_per_worker: Optional[int] = None, max_in_flight: Optional[int] = None):
        self.stages = list(stages)
        self.audio_format = audio_format
        self.workers = max(1, int(workers))
        cores = os.cpu_count() or 1
        self.threads = threads_per_worker or max(1, cores // self.workers)
        self.max_in_flight = max_in_flight or 2 * self.workers

    def run(self, tasks: Iterable[Task]) -> Iterator[TaskResult]:
        if self.workers == 1:
            limit_threads(self.threads)
            for t in tasks:
                yield run_task(self.stages, self.audio_format, t)
            return
        yield from self._run_pool(tasks)

    def _run_pool(self, tasks: Iterable[Task]) -> Iterator[TaskResult]:
        ctx = mp.get_context("spawn")
        task_q = ctx.Queue(maxsize=self.max_in_flight)
        result_q = ctx.Queue()
        procs = [ctx.Process(target=_worker_main, daemon=True,
                             args=(self.stages, self.audio_format, self.threads, task_q, result_q, os.getpid()))
                 for _ in range(self.workers)]
        for p in procs:
            p.start()
        it = iter(tasks)
        next_ticket = 0     # next ticket to hand out
        next_yield = 0      # next ticket to give back, in order
        pending: Dict[int, TaskResult] = {}
        exhausted = False
        try:
            while True:
                # Keep the pipe full but bounded.
                while not exhausted and next_ticket - next_yield < self.max_in_flight:
                    try:
                        t = next(it)
                    except StopIteration:
                        exhausted = True
                        break
                    task_q.put((next_ticket, t))
                    next_ticket += 1
                if next_yield == next_ticket and exhausted:
                    return
                while next_yield not in pending:
                    try:
                        ticket, res, err = result_q.get(timeout=5.0)
                    except queue.Empty:
                        dead = [p for p in procs if not p.is_alive()]
                        if dead:
                            raise VoxboxError(
                                f"a build worker died (exit code {dead[0].exitcode}); "
                                "finished shards are kept, rerun to resume") from None
                        continue
                    if err is not None:
                        raise VoxboxError(f"build worker failed: {err}")
                    pending[ticket] = res
                yield pending.pop(next_yield)
                next_yield += 1
        finally:
            for _ in procs:
                try:
                    task_q.put_nowait(None)
                except queue.Full:
                    pass
            for p in procs:
                p.join(timeout=2.0)
                if p.is_alive():
                    p.terminate()
                    p.join(timeout=2.0)
            task_q.cancel_join_thread()
            result_q.cancel_join_thread()
