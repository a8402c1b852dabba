"""Parquet shards in the Hugging Face ``datasets`` layout.

Columns: ``audio`` (struct ``{bytes: binary, path: string}``, declared as an ``Audio``
feature in the schema's ``huggingface`` metadata so ``load_dataset("parquet")`` gives
an Audio column), then every :class:`Utterance` field but ``corpus_root``
(:mod:`voxbox.shards.finalize`), typed as in Parquet manifests
(``global_tokens`` / ``semantic_tokens`` as ``list<int32>``, ``null_reasons`` /
``extra`` as JSON text).

Row groups hold 100 rows, the value ``datasets`` itself uses for audio, so a reader
never loads more than ~100 clips at once. Writer settings are fixed (zstd level 3,
statistics on, no page index); pyarrow writes no timestamps, so the same rows give
the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import BinaryIO, Iterator, List, Tuple, Union

from voxbox.record import Utterance

from voxbox.manifest import _arrow_schema, _from_arrow_row, _to_arrow_row
from voxbox.shards.encode import EncodedSample
from voxbox.shards.finalize import SHARD_EXCLUDED, shard_row

ROW_GROUP_SIZE = 100
_HF_METADATA = {"info": {"features": {"audio": {"_type": "Audio"}}}}


def shard_schema():
    import pyarrow as pa

    audio = pa.field("audio", pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())]))
    schema = pa.schema([audio, *(f for f in _arrow_schema() if f.name not in SHARD_EXCLUDED)])
    return schema.with_metadata({b"huggingface": json.dumps(_HF_METADATA, sort_keys=True).encode()})


class ParquetShardWriter:
    """Streams samples into one Parquet file, one row group per 100 rows."""

    def __init__(self, fileobj: BinaryIO, row_group_size: int = ROW_GROUP_SIZE):
        import pyarrow.parquet as pq

        self._schema = shard_schema()
        self._writer = pq.ParquetWriter(
            fileobj, self._schema, compression="zstd", compression_level=3, use_dictionary=True,
            write_statistics=True, version="2.6", data_page_version="1.0",
        )
        self._rows: List[dict] = []
        self._row_group_size = row_group_size
        self.count = 0

    def write(self, sample: EncodedSample) -> None:
        row = shard_row(_to_arrow_row(sample.record))
        row = {"audio": {"bytes": sample.audio, "path": f"{sample.record.index}.{sample.ext}"}, **row}
        self._rows.append(row)
        self.count += 1
        if len(self._rows) >= self._row_group_size:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self._rows:
            table = pa.Table.from_pylist(self._rows, schema=self._schema)
            self._writer.write_table(table, row_group_size=self._row_group_size)
            self._rows = []

    def close(self) -> None:
        try:
            self._flush()
            self._writer.close()
        finally:
            self._writer.is_open = False  # see abort()

    def abort(self) -> None:
        """Give the file up (it is deleted): no footer, and nothing left for pyarrow's
        __del__ to write into a closed file at exit ("Exception ignored ...")."""
        self._rows = []
        self._writer.is_open = False


def iter_parquet_rows(path: Union[str, Path, BinaryIO]) -> Iterator[Tuple[Utterance, bytes, str]]:
    """Yield ``(record, audio_bytes, audio_ext)`` a row group at a time, from a path or an
    open seekable binary file (a remote shard)."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path if hasattr(path, "read") else str(path))
    for i in range(pf.num_row_groups):
        for row in pf.read_row_group(i).to_pylist():
            audio = row.pop("audio") or {}
            apath = audio.get("path") or ""
            ext = apath.rsplit(".", 1)[-1].lower() if "." in apath else ""
            yield _from_arrow_row(row), audio.get("bytes"), ext
