"""One record and its audio, read from the dataset's shards by position.

The app never takes a path from a request: a record index is looked up in the table
(:mod:`voxbox.serve.table`), which gives ``(shard, row)``; the shard's file comes from
``index.json`` and must resolve inside the dataset folder. Parquet rows are read one
row group at a time; WebDataset members are found through a map of each tar's member
offsets, made once per shard.
"""

from __future__ import annotations

import tarfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Tuple

from voxbox.errors import VoxboxError
from voxbox.record import Utterance

OPEN_SHARDS = 16  # shard readers kept open (LRU)
AUDIO_TYPES = {"flac": "audio/flac", "wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg",
               "opus": "audio/ogg", "webm": "audio/webm", "m4a": "audio/mp4"}


def checked_shard_files(ds, fmt: str) -> List[Path]:
    """The shard files of one format, refusing any that index.json places outside the folder."""
    root = ds.path.resolve()
    out = []
    for p in ds.shard_files(fmt):
        real = p.resolve()
        if root not in real.parents:
            raise VoxboxError(f"{ds.path}: index.json names a shard outside the dataset folder ({p}); refusing it")
        if not real.is_file():
            raise VoxboxError(f"{p}: shard missing or not a regular file; run `voxbox validate {ds.path}`")
        out.append(real)
    return out


class _ParquetReader:
    def __init__(self, path: Path):
        import pyarrow.parquet as pq

        self.pf = pq.ParquetFile(str(path))
        md = self.pf.metadata
        self.starts = []
        n = 0
        for i in range(md.num_row_groups):
            self.starts.append(n)
            n += md.row_group(i).num_rows
        self.rows = n

    def read(self, row: int, columns: List[str]) -> dict:
        import bisect

        if not 0 <= row < self.rows:
            raise KeyError(row)
        g = bisect.bisect_right(self.starts, row) - 1
        table = self.pf.read_row_group(g, columns=columns)
        return table.slice(row - self.starts[g], 1).to_pylist()[0]


class _TarReader:
    """Sample i of a tar -> {extension: (data offset, size)}, from the member headers."""

    def __init__(self, path: Path):
        self.path = path
        self.samples: List[Dict[str, Tuple[int, int]]] = []
        key = None
        # Grouped by consecutive key, as the shard reader (iter_tar_samples) numbers samples.
        with tarfile.open(str(path), "r:") as tf:
            for m in tf:
                if not m.isfile():
                    continue
                base, _, ext = m.name.partition(".")
                if key is None or base != key or ext in self.samples[-1]:
                    self.samples.append({})
                key = base
                self.samples[-1][ext] = (m.offset_data, m.size)

    def member(self, row: int, exts) -> Tuple[bytes, str]:
        if not 0 <= row < len(self.samples):
            raise KeyError(row)
        sample = self.samples[row]
        for ext in exts:
            if ext in sample:
                off, size = sample[ext]
                with open(self.path, "rb") as fh:
                    fh.seek(off)
                    return fh.read(size), ext
        raise KeyError(row)

    def audio(self, row: int) -> Tuple[bytes, str]:
        others = [e for e in self.samples[row] if e != "json"] if 0 <= row < len(self.samples) else []
        return self.member(row, others)


class ShardStore:
    """Records and audio by ``(shard, row)``; thread-safe."""

    def __init__(self, ds):
        self.ds = ds
        self.fmt = "parquet" if "parquet" in ds.formats else "webdataset"
        self.files = checked_shard_files(ds, self.fmt) if ds.shards else []
        self._open: "OrderedDict[int, object]" = OrderedDict()
        self._lock = threading.Lock()

    def _reader(self, shard: int):
        if not 0 <= shard < len(self.files):
            raise KeyError(shard)
        r = self._open.get(shard)
        if r is None:
            cls = _ParquetReader if self.fmt == "parquet" else _TarReader
            try:
                r = cls(self.files[shard])
            except (OSError, tarfile.TarError) as e:
                raise VoxboxError(f"{self.files[shard]}: shard cannot be read ({e})") from None
            self._open[shard] = r
            while len(self._open) > OPEN_SHARDS:
                self._open.popitem(last=False)
        self._open.move_to_end(shard)
        return r

    def record(self, shard: int, row: int) -> Utterance:
        from voxbox.manifest import _from_arrow_row
        from voxbox.shards.webdataset import record_from_json

        with self._lock:
            r = self._reader(shard)
            if self.fmt == "parquet":
                cols = [c for c in r.pf.schema_arrow.names if c != "audio"]
                return _from_arrow_row(r.read(row, cols))
            data, _ext = r.member(row, ["json"])
        return record_from_json(data)

    def audio(self, shard: int, row: int) -> Tuple[bytes, str]:
        """(bytes, lower-case extension) of the record's stored audio."""
        with self._lock:
            r = self._reader(shard)
            if self.fmt == "parquet":
                audio = r.read(row, ["audio"])["audio"] or {}
                path = audio.get("path") or ""
                return audio.get("bytes") or b"", path.rsplit(".", 1)[-1].lower() if "." in path else ""
            return r.audio(row)
