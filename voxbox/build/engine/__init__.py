"""Engines: where the pipeline's stages run.

- :mod:`voxbox.build.engine.local`: a fixed pool of worker processes with bounded queues
  (the default; ``--workers``), inline when one worker is asked for.
- :mod:`voxbox.build.engine.ray`: Ray (``--engine ray``, ``pip install 'voxbox[ray]'``), for
  clusters: one streaming task per shard, model stages on actor pools
  (:mod:`voxbox.build.engine.ray_worker` is what runs on the workers; docs/cluster.md).
- :mod:`voxbox.build.engine.common`: the unit of work (:class:`~voxbox.build.engine.common.Task`,
  a batch of one shard's records) and what runs on it; engines differ only in where.

Every engine has ``run(tasks)``: the :class:`~voxbox.build.engine.common.TaskResult`
of each task, in task order, with bounded work in flight; and ``close()``. Stages never
know which engine runs them; the caller (:mod:`voxbox.build.run` for a build,
:mod:`voxbox.build.manifest_run` for ``voxbox annotate`` / ``voxbox tokenize``) owns
ordering, commits and the journal, so every engine gives the same bytes.
"""

from __future__ import annotations

from typing import Optional, Sequence

from voxbox.errors import VoxboxError

ENGINES = ("local", "ray")


def check_engine(engine: str, workers: int) -> None:
    if engine not in ENGINES:
        raise VoxboxError(f"unknown engine {engine!r} (use local or ray)")
    if workers < 1:
        raise VoxboxError(f"workers must be at least 1, got {workers}")


def make_engine(engine: str, stages: Sequence, audio_format: Optional[str], workers: int,
                ray_address: Optional[str] = None):
    """An engine running ``stages`` then, when ``audio_format`` is set, the shard audio encoding."""
    check_engine(engine, workers)
    if engine == "local":
        from voxbox.build.engine.local import LocalEngine

        return LocalEngine(stages, audio_format, workers=workers)
    from voxbox.build.engine.ray import RayEngine

    return RayEngine(stages, audio_format, workers=workers, address=ray_address)
