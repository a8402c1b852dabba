"""Read a built dataset folder (the output of ``voxbox build``).

Everything after the build (validate, publish, report, export, synth) reads through
this module, never by globbing shard files::

    from voxbox.dataset.reader import open_dataset

    ds = open_dataset("out/libritts-dev-clean")
    ds.index["totals"]["records"]          # index.json as a dict
    for rec in ds.records():               # Utterance, sorted by index, shard by shard
        ...
    for rec, audio, ext in ds.samples():   # plus the audio bytes ("flac" or original ext)
        wav, sr = decode_audio(audio)
    for rej in ds.rejects():               # Rejection: stage, path, reason, index, detail
        ...

Both shard formats hold the same records in the same order; readers use Parquet when
the folder has it (it can skip the audio column) and WebDataset otherwise, or the
format passed as ``fmt=``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Iterator, List, Optional, Tuple, Union

from voxbox.errors import VoxboxError
from voxbox.record import Rejection, Utterance
from voxbox.manifest import _from_arrow_row, read_rejects
from voxbox.shards import index as ix


def decode_audio(data: bytes, dtype: str = "float32"):
    """Decode shard audio bytes to ``(samples[frames, channels], sample_rate)``."""
    import soundfile as sf

    samples, sr = sf.read(io.BytesIO(data), dtype=dtype, always_2d=True)
    return samples, sr


def hf_record_features():
    """``datasets.Features`` of one record as stored in the shards (the ``.json`` member
    of a WebDataset sample, the non-audio columns of a Parquet shard)."""
    import datasets

    from voxbox.manifest import _arrow_schema

    return datasets.Features.from_arrow_schema(_arrow_schema())


def hf_webdataset_features(audio_ext: str = "flac", decode_audio: bool = True):
    """Explicit features for ``datasets.load_dataset("webdataset", data_files=...,
    features=...)``: pins the record types instead of inferring them from the first
    five samples, and lets ``decode_audio=False`` keep the audio as raw bytes (which
    also works where ``torchcodec``, needed by ``datasets.Audio``, is not installed)."""
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

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        self.index: dict = ix.read_index(self.path)

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
    def rejects_path(self) -> Path:
        return self.path / ix.REJECTS_NAME

    def shard_files(self, fmt: str) -> List[Path]:
        """Absolute paths of the shard files of one format, in shard order."""
        if fmt not in self.formats:
            raise VoxboxError(f"{self.path}: has no {fmt} shards (formats: {', '.join(self.formats)})")
        return [self.path / s["files"][fmt]["path"] for s in self.shards]

    def _pick(self, fmt: Optional[str]) -> str:
        if fmt is not None:
            if fmt not in self.formats:
                raise VoxboxError(f"{self.path}: has no {fmt} shards (formats: {', '.join(self.formats)})")
            return fmt
        return "parquet" if "parquet" in self.formats else "webdataset"

    # -- streams ------------------------------------------------------------------------
    def records(self, fmt: Optional[str] = None) -> Iterator[Utterance]:
        """Every record, in index order, without decoding or holding audio."""
        fmt = self._pick(fmt)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            for path in self.shard_files(fmt):
                with self._reading(path):
                    pf = pq.ParquetFile(str(path))
                    cols = [c for c in pf.schema_arrow.names if c != "audio"]
                    groups = range(pf.num_row_groups)
                for i in groups:
                    with self._reading(path):
                        rows = pf.read_row_group(i, columns=cols).to_pylist()
                    for row in rows:
                        yield _from_arrow_row(row)
        else:
            for rec, _audio, _ext in self.samples(fmt):
                yield rec

    def samples(self, fmt: Optional[str] = None) -> Iterator[Tuple[Utterance, bytes, str]]:
        """``(record, audio_bytes, audio_ext)`` for every record, streaming shard by shard."""
        fmt = self._pick(fmt)
        if fmt == "parquet":
            from voxbox.shards.parquet import iter_parquet_rows

            for path in self.shard_files(fmt):
                yield from self._guarded(path, iter_parquet_rows(path))
        else:
            from voxbox.shards.webdataset import iter_tar_samples, record_from_json, split_sample

            for path in self.shard_files(fmt):
                for key, members in self._guarded(path, iter_tar_samples(path)):
                    try:
                        rec_json, audio, ext = split_sample(members)
                    except ValueError as e:
                        raise VoxboxError(f"{path}: {key}: {e}") from None
                    yield record_from_json(rec_json), audio, ext

    def _reading(self, path: Path):
        """Turn a damaged or missing shard into one clear error that points at validate."""
        import contextlib
        import tarfile

        import pyarrow as pa

        @contextlib.contextmanager
        def guard():
            try:
                yield
            except (pa.ArrowException, tarfile.TarError, EOFError, OSError) as e:
                msg = str(e).splitlines()[0] if str(e) else type(e).__name__
                raise VoxboxError(f"{path}: shard cannot be read ({msg}); "
                                  f"run `voxbox validate {self.path}`") from None

        return guard()

    def _guarded(self, path: Path, items: Iterator) -> Iterator:
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


def open_dataset(path: Union[str, Path]) -> BuiltDataset:
    """Open a built folder; raises VoxboxError if it has no (finished) index."""
    p = Path(path)
    if not p.is_dir():
        if p.exists():
            raise VoxboxError(f"{p}: is a file; give a built dataset folder (the --out of voxbox build)")
        raise VoxboxError(f"{p}: no such dataset folder")
    return BuiltDataset(p)
