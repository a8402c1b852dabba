"""WebDataset tar shards with byte-stable metadata.

One sample per record, all members sharing the key (the record's ``index``, which
has no dots):

- ``KEY.flac`` (or the original extension): the audio;
- ``KEY.json``: the record, one JSON object with every :class:`Utterance` field in
  order but ``corpus_root`` (:mod:`voxbox.shards.finalize`); ``null_reasons`` and ``extra`` are JSON *text* (as in the Parquet shards), so
  every sample has the same flat schema and ``datasets.load_dataset("webdataset")``
  can infer it; ``global_tokens`` / ``semantic_tokens`` are integer lists (or null).

Tar members get fixed metadata (mtime 0, uid/gid 0, empty owner names, mode 0644,
USTAR format) and samples are written in the order given (the build sorts by index),
so the same records give the same bytes.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import BinaryIO, Dict, Iterator, Tuple, Union

from voxbox.record import Utterance

from voxbox.manifest import _from_arrow_row, _to_arrow_row
from voxbox.shards.encode import EncodedSample
from voxbox.shards.finalize import shard_row


def record_json(rec: Utterance) -> bytes:
    return json.dumps(shard_row(_to_arrow_row(rec)), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def record_from_json(data: bytes) -> Utterance:
    return _from_arrow_row(json.loads(data.decode("utf-8")))


class TarShardWriter:
    """Writes samples to one tar stream. The caller owns the file object."""

    def __init__(self, fileobj: BinaryIO):
        self._tar = tarfile.open(fileobj=fileobj, mode="w", format=tarfile.USTAR_FORMAT)
        self.count = 0

    def _add(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = 0
        info.mode = 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.type = tarfile.REGTYPE
        self._tar.addfile(info, io.BytesIO(data))

    def write(self, sample: EncodedSample) -> None:
        key = sample.record.index
        if "." in key or "/" in key:
            raise ValueError(f"{key}: WebDataset keys may not contain dots or slashes")
        self._add(f"{key}.{sample.ext}", sample.audio)
        self._add(f"{key}.json", record_json(sample.record))
        self.count += 1

    def close(self) -> None:
        self._tar.close()


def split_sample(members: Dict[str, bytes]) -> Tuple[bytes, bytes, str]:
    """``(record json, audio bytes, audio ext)`` of one sample's members; ValueError
    naming the problem when it is not one ``.json`` plus one audio member."""
    if "json" not in members:
        raise ValueError("sample has no .json member")
    audio = [(e, b) for e, b in members.items() if e != "json"]
    if len(audio) != 1:
        raise ValueError(f"sample has {len(audio)} audio members ({', '.join(e for e, _ in audio) or 'none'})")
    return members["json"], audio[0][1], audio[0][0]


def iter_tar_samples(path: Union[str, Path, BinaryIO]) -> Iterator[Tuple[str, Dict[str, bytes]]]:
    """Yield ``(key, {ext: bytes})`` per sample, in file order, streaming, from a path or
    an open binary file (e.g. an fsspec file of a remote shard).

    Members are grouped by consecutive key, as WebDataset readers do; a key that
    appears again later shows up as a second sample (validate reports it).
    """
    opened = (tarfile.open(fileobj=path, mode="r|") if hasattr(path, "read")
              else tarfile.open(str(path), mode="r|"))
    with opened as tar:
        key, members = None, {}
        for info in tar:
            if not info.isfile():
                continue
            base, _, ext = info.name.partition(".")
            data = tar.extractfile(info).read()
            if key is not None and (base != key or ext in members):
                yield key, members
                members = {}
            key = base
            members[ext] = data
        if key is not None:
            yield key, members
