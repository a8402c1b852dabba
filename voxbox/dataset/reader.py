"""Read a built dataset folder (the output of ``voxbox build``).

Everything after the build (validate, publish, report, export, synth) reads through
this module, never by globbing shard files::

    from voxbox.dataset.reader import open_dataset

    ds = open_dataset("out/libritts-dev-clean")
    ds.index["totals"]["records"]          # index.json as a dict
    for rec in ds.records():               # Utterance, by split then index, shard by shard
        ...
    for rec, audio, ext in ds.samples():   # plus the audio bytes ("flac" or original ext)
        wav, sr = decode_audio(audio)
    for rej in ds.rejects():               # Rejection: stage, path, reason, index, detail
        ...

``open_dataset`` also takes the URL of a dataset built into object storage or the Hub
(``s3://bucket/prefix``, ``memory://...``, ``hf://datasets/OWNER/NAME[@REV]/PATH``, any
fsspec URL): it is read in place through :mod:`voxbox.storage` (``ds.path`` is then a
:class:`~voxbox.storage.RemotePath`): index and metadata whole, shards by byte ranges
(Parquet reads only the columns asked for; a tar streams), every request retried, a
failure one :class:`~voxbox.storage.StorageError` line. Nothing is copied to disk.

Both shard formats hold the same records in the same order (by split, then index; a
shard never mixes splits); readers use Parquet when the folder has it (it can skip the
audio column) and WebDataset otherwise, or the format passed as ``fmt=``. ``split=``
reads one split (``train``, ``dev``/``validation``, ``test``).

For training, :func:`voxbox.dataset.torch_dataset` streams the WebDataset shards into a
torch ``DataLoader`` and :func:`voxbox.dataset.hf_dataset` gives a Hugging Face
``datasets.Dataset`` whose audio decodes with soundfile.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, List, Optional, Tuple, Union

from voxbox.errors import VoxboxError, first_line
from voxbox.record import Rejection, Utterance
from voxbox.manifest import _from_arrow_row, read_rejects
from voxbox.shards import index as ix

if TYPE_CHECKING:
    from voxbox.storage import RemotePath


def hub_split(split: Optional[str]) -> str:
    """The Hub split a record split is published (and selected) as: ``dev``/``val``/
    ``valid`` become ``validation``, the Hub's name; anything else keeps its name, made a
    valid split name; no split means ``train``."""
    s = (split or "train").strip().lower()
    if s in ("dev", "val", "valid", "validation"):
        return "validation"
    return re.sub(r"\W+", "_", s).strip("_") or "train"


def decode_audio(data: bytes, dtype: str = "float32"):
    """Decode shard audio bytes to ``(samples[frames, channels], sample_rate)``."""
    import soundfile as sf

    samples, sr = sf.read(io.BytesIO(data), dtype=dtype, always_2d=True)
    return samples, sr


def hf_record_features():
    """``datasets.Features`` of one record as stored in the shards (the ``.json`` member
    of a WebDataset sample, the non-audio columns of a Parquet shard)."""
    import datasets

    from voxbox.shards.parquet import shard_schema

    return datasets.Features.from_arrow_schema(shard_schema().remove(0).remove_metadata())  # no audio column


def hf_webdataset_features(audio_ext: str = "flac", decode_audio: bool = False):
    """Explicit features for ``datasets.load_dataset("webdataset", data_files=...,
    features=...)``: pins the record types instead of inferring them from the first
    five samples. The audio member stays raw bytes (decode them with
    :func:`decode_audio`, or use :func:`voxbox.dataset.hf_dataset`); ``decode_audio=True``
    asks for ``datasets.Audio``, which decodes with ``torchcodec`` (its CUDA-linked
    wheels do not load next to a CPU torch)."""
    import datasets

    audio = datasets.Audio() if decode_audio else datasets.Value("binary")
    return datasets.Features({
        audio_ext: audio,
        "json": dict(hf_record_features()),
        "__key__": datasets.Value("string"),
        "__url__": datasets.Value("string"),
    })


class BuiltDataset:
    """A built folder: its index, shard files, records, samples and rejects."""

    def __init__(self, path: Union[str, Path, "RemotePath"]):
        self.path = dataset_root(path)
        self.index: dict = _read_index(self.path)

    @property
    def remote(self) -> bool:
        """Whether the folder is in object storage or on the Hub (``path`` a RemotePath)."""
        from voxbox.storage import is_remote

        return is_remote(self.path)

    # -- facts ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.index["name"]

    @property
    def formats(self) -> List[str]:
        return list(self.index["formats"])

    @property
    def audio_format(self) -> str:
        return self.index["audio_format"]

    @property
    def shards(self) -> List[dict]:
        return list(self.index["shards"])

    @property
    def hours(self) -> float:
        return float(self.index["totals"]["hours"])

    def __len__(self) -> int:
        return int(self.index["totals"]["records"])

    def __repr__(self) -> str:
        return f"BuiltDataset({str(self.path)!r}, records={len(self)}, hours={self.hours:.3f})"

    @property
    def pipeline_text(self) -> Optional[str]:
        p = self.path / ix.PIPELINE_NAME
        return p.read_text(encoding="utf-8") if p.exists() else None

    @property
    def pipeline(self) -> Optional[dict]:
        """The resolved pipeline this folder was built with (None for write_dataset folders)."""
        text = self.pipeline_text
        if text is None:
            return None
        import yaml

        return yaml.safe_load(text)

    @property
    def provenance(self) -> dict:
        p = self.path / ix.PROVENANCE_NAME
        return json.loads(p.read_text(encoding="utf-8")) if p.exists() else {}

    @property
    def rejects_path(self):
        """rejects.jsonl: a Path, or a RemotePath for a remote dataset."""
        return self.path / ix.REJECTS_NAME

    def shard_files(self, fmt: str, split: Optional[str] = None) -> list:
        """Paths of the shard files of one format (RemotePaths for a remote dataset), in
        shard order; with ``split`` only the shards of that split (a record split such as
        ``test``, or its Hub name)."""
        if fmt not in self.formats:
            raise VoxboxError(f"{self.path}: has no {fmt} shards (formats: {', '.join(self.formats)})")
        return [self.file(s["files"][fmt]["path"]) for s in self.split_shards(split)]

    def file(self, rel: str):
        """The file ``rel`` (a path index.json names) inside the dataset; one that leaves a
        remote dataset's root is refused in one line."""
        try:
            return self.path / rel
        except ValueError:  # RemotePath refuses "../" and absolute names
            raise VoxboxError(f"{self.path}: index.json names a file outside the dataset ({rel}); "
                              "refusing it") from None

    @property
    def splits(self) -> List[str]:
        """The record splits of this dataset, in shard order (``train``, ``dev``, ``test`` ...)."""
        out: List[str] = []
        for s in self.shards:
            for name in ([s["split"]] if s.get("split") else sorted(self.index.get("summary", {}).get("split", {}))):
                if name not in out:
                    out.append(name)
        return out

    def split_shards(self, split: Optional[str] = None) -> List[dict]:
        """The index entries of the shards holding ``split`` (all shards when None).
        Shards written before builds grouped records by split hold several; they are kept
        and their records filtered when read."""
        if split is None:
            return self.shards
        want = hub_split(split)
        if want not in {hub_split(x) for x in self.splits}:
            raise VoxboxError(f"{self.path}: no split {split!r} (splits: {', '.join(self.splits) or 'none'})")
        return [s for s in self.shards if s.get("split") is None or hub_split(s["split"]) == want]

    def _pick(self, fmt: Optional[str]) -> str:
        if fmt is not None:
            if fmt not in self.formats:
                raise VoxboxError(f"{self.path}: has no {fmt} shards (formats: {', '.join(self.formats)})")
            return fmt
        return "parquet" if "parquet" in self.formats else "webdataset"

    # -- streams ------------------------------------------------------------------------
    def records(self, fmt: Optional[str] = None, split: Optional[str] = None) -> Iterator[Utterance]:
        """Every record (of ``split``, when given), in shard order (by split, then index),
        without decoding or holding audio."""
        fmt = self._pick(fmt)
        keep = _split_filter(split)
        if fmt != "parquet":
            for rec, _audio, _ext in self.samples(fmt, split):
                yield rec
            return
        for path in self.shard_files(fmt, split):
            for rec in self._guarded(path, _parquet_records(path)):
                if keep(rec):
                    yield rec

    def samples(self, fmt: Optional[str] = None,
                split: Optional[str] = None) -> Iterator[Tuple[Utterance, bytes, str]]:
        """``(record, audio_bytes, audio_ext)`` for every record (of ``split``), streaming
        shard by shard."""
        fmt = self._pick(fmt)
        keep = _split_filter(split)
        for path in self.shard_files(fmt, split):
            for rec, audio, ext in self.file_samples(path, fmt):
                if keep(rec):
                    yield rec, audio, ext

    def audio_of(self, indices) -> dict:
        """``{index: (audio bytes, ext)}`` for a few records, reading only what holds them:
        the Parquet row groups whose index statistics cover them (100 rows each), else the
        tar shards whose index range does."""
        wanted = set(indices)
        out: dict = {}
        if not wanted:
            return out
        if "parquet" in self.formats:
            for path in self.shard_files("parquet"):
                with self._reading(path):
                    _parquet_audio(path, wanted, out)
            return out
        for shard in self.shards:
            lo, hi = shard.get("first_index"), shard.get("last_index")
            if lo is not None and any(lo <= i <= hi for i in wanted):
                path = self.file(shard["files"]["webdataset"]["path"])
                for rec, audio, ext in self.file_samples(path, "webdataset"):
                    if rec.index in wanted:
                        out[rec.index] = (audio, ext)
        return out

    def file_samples(self, path, fmt: str) -> Iterator[Tuple[Utterance, bytes, str]]:
        """``(record, audio_bytes, audio_ext)`` of one shard file (a damaged file is one clear error)."""
        return self._guarded(path, _shard_samples(path, fmt))

    def _reading(self, path):
        """Turn a damaged or missing shard into one clear error that points at validate."""
        import contextlib
        import tarfile

        import pyarrow as pa

        @contextlib.contextmanager
        def guard():
            try:
                yield
            except (pa.ArrowException, tarfile.TarError, EOFError, OSError) as e:
                msg = first_line(e)
                raise VoxboxError(f"{path}: shard cannot be read ({msg}); "
                                  f"run `voxbox validate {self.path}`") from None

        return guard()

    def _guarded(self, path, items: Iterator) -> Iterator:
        while True:
            with self._reading(path):
                try:
                    item = next(items)
                except StopIteration:
                    return
            yield item

    def rejects(self) -> Iterator[Rejection]:
        """Every rejection of the build (prepare and stages), from rejects.jsonl."""
        yield from read_rejects(self.rejects_path)


def _split_filter(split: Optional[str]):
    if split is None:
        return lambda rec: True
    want = hub_split(split)
    return lambda rec: hub_split(rec.split) == want


@contextlib.contextmanager
def opened(path):
    """A shard file as pyarrow and tarfile take it: a local path's string, or an open
    seekable file over a remote one (closed afterwards)."""
    from voxbox.storage import is_remote

    if not is_remote(path):
        yield str(path)
        return
    with path.open() as fh:
        yield fh


def _parquet_records(path) -> Iterator[Utterance]:
    """The records of one Parquet shard, a row group at a time, without the audio column."""
    import pyarrow.parquet as pq

    with opened(path) as src:
        pf = pq.ParquetFile(src)
        cols = [c for c in pf.schema_arrow.names if c != "audio"]
        for i in range(pf.num_row_groups):
            for row in pf.read_row_group(i, columns=cols).to_pylist():
                yield _from_arrow_row(row)


def _parquet_audio(path, wanted: set, out: dict) -> None:
    with opened(path) as src:
        _row_group_audio(src, wanted, out)


def _row_group_audio(src, wanted: set, out: dict) -> None:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(src)
    # The leaf column of "index" (audio's bytes and path are leaves of their own).
    col = next(j for j in range(pf.metadata.num_columns) if pf.metadata.schema.column(j).path == "index")
    for i in range(pf.num_row_groups):
        st = pf.metadata.row_group(i).column(col).statistics
        if st is not None and st.has_min_max and not any(st.min <= w <= st.max for w in wanted):
            continue
        for row in pf.read_row_group(i, columns=["index", "audio"]).to_pylist():
            if row["index"] in wanted and row["audio"]:
                apath = row["audio"].get("path") or ""
                out[row["index"]] = (row["audio"]["bytes"], apath.rsplit(".", 1)[-1].lower() if "." in apath else "")


def _shard_samples(path, fmt: str) -> Iterator[Tuple[Utterance, bytes, str]]:
    """``(record, audio bytes, ext)`` of one shard file of either format."""
    with opened(path) as src:
        if fmt == "parquet":
            from voxbox.shards.parquet import iter_parquet_rows

            yield from iter_parquet_rows(src)
        else:
            yield from _tar_samples(path, src)


def _tar_samples(path, src) -> Iterator[Tuple[Utterance, bytes, str]]:
    from voxbox.shards.webdataset import iter_tar_samples, record_from_json, split_sample

    for key, members in iter_tar_samples(src):
        try:
            rec_json, audio, ext = split_sample(members)
        except ValueError as e:
            raise VoxboxError(f"{path}: {key}: {e}") from None
        yield record_from_json(rec_json), audio, ext


def dataset_root(path):
    """Where a dataset is: a local Path, or a RemotePath for a URL (``file://`` is local;
    an ``hf://`` URL without a revision is pinned to the repo's head commit)."""
    from voxbox.storage import is_remote, is_url, root_path

    if is_remote(path) or (isinstance(path, str) and is_url(path)):
        return root_path(path)
    return Path(path).expanduser()


def _read_index(root) -> dict:
    from voxbox.storage import is_remote

    if not is_remote(root):
        return ix.read_index(root)
    found = root / ix.INDEX_NAME
    if not found.is_file():
        raise ix.not_built(root)
    try:
        data = found.read_bytes(limit=ix.MAX_INDEX_BYTES)
    except OverflowError as e:
        raise VoxboxError(f"{found}: {e}") from None
    return ix.parse_index(data.decode("utf-8", "replace"), found)


def require_local(path, command: str, advice: str) -> None:
    """Refuse a dataset URL in a command that needs the folder on this machine."""
    from voxbox.storage import is_remote, is_url, redact

    if is_remote(path) or is_url(str(path)):
        raise VoxboxError(f"{redact(str(path))}: voxbox {command} needs the built folder on this machine; {advice}")


def open_dataset(path) -> BuiltDataset:
    """Open a built folder, or a dataset built into object storage or the Hub (a URL:
    ``s3://...``, ``memory://...``, ``hf://datasets/O/N[@REV]/PATH``); raises
    VoxboxError if it has no (finished) index, StorageError if the storage fails."""
    from voxbox.storage import StorageError, is_remote

    root = dataset_root(path)
    if is_remote(root):
        if not root.is_dir():
            raise StorageError("remote_missing", f"{root.not_found()}; give a built dataset (the --out of voxbox build)")
        return BuiltDataset(root)
    p = root
    if not p.is_dir():
        if p.exists():
            raise VoxboxError(f"{p}: is a file; give a built dataset folder (the --out of voxbox build)")
        raise VoxboxError(f"{p}: no such dataset folder")
    return BuiltDataset(p)
