"""Writers of built datasets: WebDataset tars, Parquet files, the index and the journal.

Public API:

- :func:`write_dataset` ``(records, out_dir, name=..., formats=("webdataset", "parquet"),
  audio_format="flac")``: annotated records (audio at ``rec.audio_path``) -> a complete
  built folder with ``index.json``; read it back with :func:`voxbox.dataset.reader.open_dataset`.
- :class:`ShardCommitter`, :func:`plan_shards`, :func:`finish`: the pieces
  :mod:`voxbox.build.run` composes for resumable, parallel builds.
"""

from voxbox.shards.encode import AUDIO_FORMATS, EncodedSample, encode_record
from voxbox.shards.writer import (DEFAULT_SHARD_MB, DEFAULT_SHARD_RECORDS, FORMATS, ShardCommitter, check_formats,
                     estimate_bytes, finish, format_build_summary, plan_shards, write_dataset)

__all__ = [
    "AUDIO_FORMATS", "DEFAULT_SHARD_MB", "DEFAULT_SHARD_RECORDS", "EncodedSample", "FORMATS",
    "ShardCommitter", "check_formats", "encode_record", "estimate_bytes", "finish", "format_build_summary",
    "plan_shards", "write_dataset",
]
