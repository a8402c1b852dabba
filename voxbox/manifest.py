"""Manifests: streams of :class:`~voxbox.record.Utterance` stored as JSONL (optionally
``.gz``) or Parquet, and the rejects files beside them. Readers and writers here never
hold a whole manifest in memory.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import os
import zlib
from dataclasses import fields
from pathlib import Path
from typing import Iterable, Iterator, Optional, Tuple, Union

from voxbox.errors import VoxboxError
from voxbox.record import Rejection, Utterance, format_reason_counts


_INT_LIST_FIELDS = ("global_tokens", "semantic_tokens")
_HALF_LIST_FIELDS = ("embedding",)  # float16 values: exact in Parquet's float16, short in JSON
_DICT_FIELDS = ("null_reasons", "extra")


def manifest_format(path: Union[str, Path]) -> str:
    name = str(path)
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".jsonl.gz") or name.endswith(".json.gz"):
        return "jsonl.gz"
    if name.endswith(".jsonl") or name.endswith(".json"):
        return "jsonl"
    raise VoxboxError(f"{path}: unknown manifest format (use .jsonl, .jsonl.gz or .parquet)")


def rejects_path(manifest: Union[str, Path]) -> Path:
    """Rejects file that sits next to a manifest: ``X.jsonl`` -> ``X.rejects.jsonl``."""
    p = Path(manifest)
    name = p.name
    for suffix in (".jsonl.gz", ".json.gz", ".jsonl", ".json", ".parquet"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return p.with_name(name + ".rejects.jsonl")


def _json_line(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=False) + "\n"


def _arrow_schema():
    import pyarrow as pa

    cols = []
    hints = Utterance.__annotations__
    for f in fields(Utterance):
        hint = str(hints[f.name])
        if f.name in _INT_LIST_FIELDS:
            t = pa.list_(pa.int32())
        elif f.name in _HALF_LIST_FIELDS:
            t = pa.list_(pa.float16())
        elif f.name in _DICT_FIELDS:
            t = pa.string()  # JSON text: schemas of free-form dicts vary per record
        elif "float" in hint:
            t = pa.float64()
        elif "int" in hint:
            t = pa.int64()
        else:
            t = pa.string()
        cols.append(pa.field(f.name, t))
    return pa.schema(cols)


def _to_arrow_row(rec: Utterance) -> dict:
    row = rec.to_dict()
    for k in _DICT_FIELDS:
        if row[k] is not None:
            row[k] = json.dumps(row[k], ensure_ascii=False, sort_keys=True)
    return row


def half_floats(values) -> list:
    """float16 values as short floats (5 significant digits always read back to the same
    float16): Parquet gives exact doubles such as 0.0999755859375, JSON keeps 0.099976."""
    import numpy as np

    return [float(f"{v:.5g}") for v in np.asarray(values, dtype=np.float16).astype(np.float64).tolist()]


def _from_arrow_row(row: dict) -> Utterance:
    for k in _DICT_FIELDS:
        if row.get(k) is not None:
            row[k] = json.loads(row[k])
    for k in _HALF_LIST_FIELDS:
        if row.get(k) is not None:
            row[k] = half_floats(row[k])
    return Utterance.from_dict(row)


def check_manifest_out(path: Union[str, Path]) -> None:
    """Refuse an output manifest path that cannot work (unknown suffix, an existing folder)
    before any work is done."""
    path = Path(path)
    fmt = manifest_format(path)
    if path.is_dir():
        raise VoxboxError(f"{path}: is a folder; give a manifest file name such as {path / ('out.' + fmt)}")


class ManifestWriter:
    """Streams records to JSONL, JSONL.gz or Parquet. Use as a context manager.

    Writes to ``<path>.partial`` and renames on a clean close, so a crashed run never
    leaves a file that looks complete; an error inside the ``with`` block removes it.
    """

    def __init__(self, path: Union[str, Path], parquet_batch: int = 1000):
        self.path = Path(path)
        self.format = manifest_format(self.path)
        self.tmp = self.path.with_name(self.path.name + ".partial")
        self.count = 0
        self._batch: list = []
        self._parquet_batch = parquet_batch
        self._fh = None
        self._pq = None

    def __enter__(self) -> "ManifestWriter":
        check_manifest_out(self.path)  # found now, not after the whole run when the rename fails
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.format == "jsonl":
            self._fh = open(self.tmp, "w", encoding="utf-8")
        elif self.format == "jsonl.gz":
            # mtime=0 and no file name in the header keep the gzip bytes deterministic.
            raw = open(self.tmp, "wb")
            gz = gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0)
            self._fh = io.TextIOWrapper(gz, encoding="utf-8")
            self._raw = raw
        else:
            import pyarrow.parquet as pq

            self._pq = pq.ParquetWriter(self.tmp, _arrow_schema(), compression="zstd")
        return self

    def write(self, rec: Utterance) -> None:
        if self._pq is not None:
            self._batch.append(_to_arrow_row(rec))
            if len(self._batch) >= self._parquet_batch:
                self._flush_parquet()
        else:
            self._fh.write(_json_line(rec.to_dict()))
        self.count += 1

    def write_all(self, recs: Iterable[Utterance]) -> int:
        for r in recs:
            self.write(r)
        return self.count

    def _flush_parquet(self) -> None:
        import pyarrow as pa

        if self._batch:
            self._pq.write_table(pa.Table.from_pylist(self._batch, schema=_arrow_schema()))
            self._batch = []

    def close(self, ok: bool = True) -> None:
        if self._pq is not None:
            if ok:
                self._flush_parquet()
            self._pq.close()
            self._pq = None
        if self._fh is not None:
            self._fh.close()
            if self.format == "jsonl.gz":
                self._raw.close()
            self._fh = None
        if ok:
            os.replace(self.tmp, self.path)
        else:
            # A failed run has nothing to resume from a half manifest; leave no litter.
            self.tmp.unlink(missing_ok=True)

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(ok=exc_type is None)


def write_manifest(path: Union[str, Path], records: Iterable[Utterance]) -> int:
    with ManifestWriter(path) as w:
        return w.write_all(records)


def _check_readable(path: Path) -> str:
    fmt = manifest_format(path)
    if not path.exists():
        raise VoxboxError(f"{path}: manifest not found")
    if path.is_dir():
        raise VoxboxError(f"{path}: is a folder, not a manifest file")
    return fmt


def _unreadable(path: Path, fmt: str, e: Exception) -> VoxboxError:
    what = {"parquet": "a Parquet file", "jsonl.gz": "a gzipped JSONL file"}.get(fmt, "a UTF-8 JSONL file")
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    return VoxboxError(f"{path}: not a readable manifest, expected {what} ({msg})")


def read_manifest(path: Union[str, Path]) -> Iterator[Utterance]:
    """Yield records one by one (Parquet is read a row group at a time)."""
    path = Path(path)
    fmt = _check_readable(path)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
            names = pf.schema_arrow.names
            if "index" not in names:
                raise VoxboxError(f"{path}: not a voxbox manifest (no 'index' column)")
            if "audio" in names:
                raise VoxboxError(f"{path}: a dataset shard with audio, not a manifest; read built "
                                  "datasets with voxbox.dataset.open_dataset, or use the manifest you built from")
            for i in range(pf.num_row_groups):
                rows = pf.read_row_group(i).to_pylist()
                for row in rows:
                    yield _from_arrow_row(row)
        except (pa.ArrowException, OSError) as e:
            raise _unreadable(path, fmt, e) from None
        return
    opener = gzip.open if fmt == "jsonl.gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    data = json.loads(line)
                except json.JSONDecodeError as e:
                    raise VoxboxError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
                if not isinstance(data, dict):
                    raise VoxboxError(f"{path}:{lineno}: expected a JSON object (one record per line), "
                                      f"got {type(data).__name__}")
                try:
                    rec = Utterance.from_dict(data)
                except VoxboxError as e:
                    raise VoxboxError(f"{path}:{lineno}: {e}") from None
                yield rec
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise _unreadable(path, fmt, e) from None


def count_manifest(path: Union[str, Path]) -> int:
    """Number of records, cheaply (Parquet metadata, or a line count)."""
    path = Path(path)
    fmt = _check_readable(path)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).metadata.num_rows
        except (pa.ArrowException, OSError) as e:
            raise _unreadable(path, fmt, e) from None
    opener = gzip.open if fmt == "jsonl.gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            return sum(1 for line in fh if line.strip())
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise _unreadable(path, fmt, e) from None


def open_manifest(path: Union[str, Path], limit: Optional[int] = None) -> Tuple[int, Iterator[Utterance]]:
    """(number of records, the records) of a manifest, both cut to the first ``limit``
    records when a limit is given; the records are read lazily, as they are consumed.
    An empty manifest is an error: a run over it would only write another empty file."""
    total = count_manifest(path)
    if total == 0:
        raise VoxboxError(f"{path}: manifest has no records")
    records = read_manifest(path)
    if limit is not None:
        total = min(total, limit)
        records = itertools.islice(records, limit)
    return total, records


class RejectsWriter:
    """Appends rejections as JSONL; opened lazily so clean runs leave no empty file."""

    def __init__(self, path: Union[str, Path], append: bool = False):
        self.path = Path(path)
        self.count = 0
        self.by_reason: dict = {}
        self._fh = None
        self._mode = "a" if append else "w"
        if not append and self.path.exists():
            self.path.unlink()

    def write(self, rej: Rejection) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, self._mode, encoding="utf-8")
        self._fh.write(_json_line(rej.to_dict()))
        self._fh.flush()
        self.count += 1
        key = f"{rej.stage}: {rej.reason}"
        self.by_reason[key] = self.by_reason.get(key, 0) + 1

    def summary(self) -> str:
        if not self.count:
            return "0 rejected"
        return f"{self.count} rejected ({format_reason_counts(self.by_reason)}); see {self.path}"

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> "RejectsWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_rejects(path: Union[str, Path]) -> Iterator[Rejection]:
    path = Path(path)
    if not path.exists():
        return
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield Rejection.from_dict(json.loads(line))
