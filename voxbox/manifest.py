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
from typing import Any, Iterable, Iterator, Optional, Tuple, Union

from voxbox.errors import VoxboxError, first_line
from voxbox.limits import MAX_MANIFEST_LINE_CHARS
from voxbox.record import Rejection, Result, Utterance, format_reason_counts


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
        try:
            self._open()
        except OSError as e:
            self.tmp.unlink(missing_ok=True)
            raise self._io_error(e) from None
        return self

    def _open(self) -> None:
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

    def write(self, rec: Utterance) -> None:
        try:
            if self._pq is not None:
                self._batch.append(_to_arrow_row(rec))
                if len(self._batch) >= self._parquet_batch:
                    self._flush_parquet(self._pq)
            else:
                self._fh.write(_json_line(rec.to_dict()))
        except OSError as e:  # pyarrow's carry no file name: say which file it was
            raise self._io_error(e) from None
        self.count += 1

    def write_all(self, recs: Iterable[Utterance]) -> int:
        for r in recs:
            self.write(r)
        return self.count

    def _flush_parquet(self, writer) -> None:
        import pyarrow as pa

        if self._batch:
            writer.write_table(pa.Table.from_pylist(self._batch, schema=_arrow_schema()))
            self._batch = []

    def _io_error(self, e: OSError) -> VoxboxError:
        from voxbox.errors import os_error_reason

        return VoxboxError(f"{self.path}: cannot write the manifest ({os_error_reason(e)})")

    def close(self, ok: bool = True) -> None:
        """Finish (ok) or drop the file. A failure to finish (a full disk) drops it too and
        is one VoxboxError; nothing is left for a library to retry at exit."""
        try:
            self._close_writers(ok)
        except (OSError, ValueError) as e:
            self.tmp.unlink(missing_ok=True)
            if ok:
                raise self._io_error(e if isinstance(e, OSError) else OSError(str(e))) from None
            return
        if ok:
            os.replace(self.tmp, self.path)
        else:
            # A failed run has nothing to resume from a half manifest; leave no litter.
            self.tmp.unlink(missing_ok=True)

    def _close_writers(self, ok: bool) -> None:
        pq_writer, self._pq = self._pq, None
        fh, self._fh = self._fh, None
        try:
            if pq_writer is not None:
                try:
                    if ok:
                        self._flush_parquet(pq_writer)
                    pq_writer.close()
                finally:
                    # A close that failed leaves pyarrow's writer "open", and its __del__
                    # would try again at exit and print "Exception ignored ...".
                    pq_writer.is_open = False
        finally:
            if fh is not None:
                try:
                    fh.close()
                finally:
                    if self.format == "jsonl.gz":
                        self._raw.close()

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
    if not path.is_file():  # a FIFO would block forever, a device never end
        raise VoxboxError(f"{path}: not a regular file (a FIFO or device), not a manifest")
    return fmt


def _unreadable(path: Path, fmt: str, e: Exception) -> VoxboxError:
    what = {"parquet": "a Parquet file", "jsonl.gz": "a gzipped JSONL file"}.get(fmt, "a UTF-8 JSONL file")
    msg = first_line(e)
    return VoxboxError(f"{path}: not a readable manifest, expected {what} ({msg})")


class _Unparsable:
    """A manifest line that is no JSON value at all (or far too long to be a record)."""

    def __init__(self, message: str):
        self.message = message


def _lines(fh) -> Iterator[Optional[str]]:
    """Lines of a text file, each read with a length limit; None for a line over it
    (skipped to its end): one runaway line must not fill the memory."""
    while True:
        line = fh.readline(MAX_MANIFEST_LINE_CHARS + 1)
        if not line:
            return
        if len(line) > MAX_MANIFEST_LINE_CHARS and not line.endswith("\n"):
            while True:
                rest = fh.readline(1 << 20)
                if not rest or rest.endswith("\n"):
                    break
            yield None
        else:
            yield line


def _json_rows(path: Path, fmt: str) -> Iterator[Tuple[int, Any]]:
    opener = gzip.open if fmt == "jsonl.gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(_lines(fh), 1):
                if line is None:
                    yield lineno, _Unparsable(f"line longer than {MAX_MANIFEST_LINE_CHARS} characters")
                    continue
                line = line.strip()
                if not line:
                    continue
                try:
                    yield lineno, json.loads(line)
                except json.JSONDecodeError as e:
                    yield lineno, _Unparsable(f"not valid JSON ({e.msg})")
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise _unreadable(path, fmt, e) from None


def _parquet_rows(path: Path) -> Iterator[Tuple[int, Any]]:
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
        n = 0
        for i in range(pf.num_row_groups):
            for row in pf.read_row_group(i).to_pylist():
                n += 1
                yield n, _decode_arrow_row(row)
    except (pa.ArrowException, OSError) as e:
        raise _unreadable(path, "parquet", e) from None


def _decode_arrow_row(row: dict) -> Any:
    for k in _DICT_FIELDS:
        if row.get(k) is not None:
            try:
                row[k] = json.loads(row[k])
            except (TypeError, ValueError):
                return _Unparsable(f"column {k!r} holds no JSON object")
    for k in _HALF_LIST_FIELDS:
        v = row.get(k)
        if isinstance(v, list) and all(isinstance(x, float) for x in v):  # else the record check says why
            row[k] = half_floats(v)
    return row


def _rows(path: Union[str, Path]) -> Iterator[Tuple[int, Any]]:
    """(line or row number, decoded value) for every non-blank line or row."""
    path = Path(path)
    fmt = _check_readable(path)
    return _parquet_rows(path) if fmt == "parquet" else _json_rows(path, fmt)


def _parse(data: Any, need_audio: bool = False, allow_outside_root: bool = False):
    from voxbox.checks import BadRecord, record_or_problem

    if isinstance(data, _Unparsable):
        return None, BadRecord("bad_record", "line", data.message)
    return record_or_problem(data, need_audio, allow_outside_root)


def read_manifest(path: Union[str, Path]) -> Iterator[Utterance]:
    """Yield records one by one (Parquet is read a row group at a time). Strict: the
    first malformed record is a VoxboxError naming its line and field (commands that
    reject bad records and go on read with :func:`read_results`)."""
    for n, data in _rows(path):
        rec, bad = _parse(data)
        if bad is not None:
            raise VoxboxError(f"{path}:{n}: {bad}")
        yield rec


def read_results(path: Union[str, Path], need_audio: bool = True,
                 allow_outside_root: bool = False) -> Iterator[Result]:
    """Records of a manifest, and for each malformed one a rejection (stage
    ``manifest``) whose detail names the line and the field (see :mod:`voxbox.checks`).
    ``need_audio``: records must name their audio file, inside ``corpus_root`` unless
    ``allow_outside_root``."""
    name = Path(path).name
    for n, data in _rows(path):
        rec, bad = _parse(data, need_audio, allow_outside_root)
        yield rec if bad is None else _bad_record(name, n, data, bad)


def _bad_record(name: str, n: int, data: Any, bad) -> Rejection:
    from voxbox.checks import INDEX_RE

    d = data if isinstance(data, dict) else {}
    index = d.get("index") if isinstance(d.get("index"), str) and INDEX_RE.match(d.get("index")) else None
    src = d.get("source_path")
    path = src if isinstance(src, str) and src and bad.field != "source_path" else f"{name}:{n}"
    return Rejection("manifest", path, bad.reason, index, f"{name}:{n}: {bad}")


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
            return sum(1 for line in _lines(fh) if line is None or line.strip())
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


def open_results(path: Union[str, Path], limit: Optional[int] = None, need_audio: bool = True,
                 allow_outside_root: bool = False) -> Tuple[int, Iterator[Result]]:
    """:func:`open_manifest` for commands that go on past a bad record: (number of
    lines, one record or rejection per line; see :func:`read_results`)."""
    total = count_manifest(path)
    if total == 0:
        raise VoxboxError(f"{path}: manifest has no records")
    results = read_results(path, need_audio, allow_outside_root)
    if limit is not None:
        total = min(total, limit)
        results = itertools.islice(results, limit)
    return total, results


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
        try:
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.path, self._mode, encoding="utf-8")
            self._fh.write(_json_line(rej.to_dict()))
            self._fh.flush()
        except OSError as e:
            from voxbox.errors import os_error_reason

            raise VoxboxError(f"{self.path}: cannot write the rejects ({os_error_reason(e)})") from None
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


def read_rejects(path) -> Iterator[Rejection]:
    """The rejections of a rejects file: a local path, or a
    :class:`~voxbox.storage.RemotePath` (a dataset in object storage), streamed."""
    from voxbox.storage import RemotePath

    path = path if isinstance(path, RemotePath) else Path(path)
    if not path.exists():
        return
    with io.TextIOWrapper(path.open("rb"), encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield Rejection.from_dict(json.loads(line))
