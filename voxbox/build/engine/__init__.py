"""Engines: where the pipeline's stages run.

- :mod:`voxbox.build.engine.local`: a fixed pool of worker processes with bounded queues
  (the default; ``--workers``), inline when one worker is asked for.
- :mod:`voxbox.build.engine.ray`: Ray Data (``--engine ray``, ``pip install 'voxbox[ray]'``),
  for clusters.
- :mod:`voxbox.build.engine.common`: the unit of work (:class:`~voxbox.build.engine.common.Task`,
  a batch of one shard's records) and what runs on it; engines differ only in where.

Stages never know which engine runs them; the build (:mod:`voxbox.build.run`) owns
ordering, shard commits and the journal, so every engine gives the same bytes.
"""
