"""Stream a built dataset's WebDataset shards into a torch ``DataLoader``.

::

    from torch.utils.data import DataLoader
    from voxbox.dataset import collate, torch_dataset

    ds = torch_dataset("out/sample", split="test", sampling_rate=16000)
    for batch in DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate):
        batch["audio"], batch["audio_lens"], batch["semantic_tokens"], batch["labels"]["gender"]

The source is a built folder, any fsspec URL of one (``hf://datasets/OWNER/NAME``,
``s3://bucket/out``, ``file:///data/out`` ...; its ``index.json`` names the shards and
their splits) or an explicit list of ``.tar`` shard URLs.

**Who reads what.** Every (distributed rank, DataLoader worker) pair is one *slot*;
``slots = world_size * num_workers``. With at least as many shards as slots, shard ``i``
goes to slot ``i % slots``. With fewer, the slots that share a shard take turns over its
records, so a one-shard dataset still feeds every worker. Either way every record is
read by exactly one slot per epoch; no slot sees a duplicate. Rank and world size come
from ``torch.distributed`` when it is initialised, else ``RANK``/``WORLD_SIZE``, else the
``rank=``/``world_size=`` arguments. Shard order (and, with ``shuffle``, a buffer of
records) is shuffled by ``seed + epoch`` (:meth:`VoxboxStream.set_epoch`), the same on
every rank, so the split stays exact.

**Batches by duration.** ``batch_duration=`` (seconds of audio per batch) turns on
dynamic bucketing, after lhotse's ``DynamicBucketingSampler``: records go to
``num_buckets`` duration buckets (boundaries of equal total duration, estimated from the
first records each slot sees) and a bucket is emitted as a collated batch once it holds
``batch_duration`` seconds, so batches need little padding. Use the DataLoader with
``batch_size=None`` then.
"""

from __future__ import annotations

import bisect
import io
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from voxbox.errors import VoxboxError, first_line

# Record fields returned under sample["labels"].
LABEL_FIELDS = ("speaker", "language", "gender", "age", "emotion", "pitch_level", "pitch_std_level",
                "speed_level", "pitch_value", "pitch_var_value", "speed_value", "pitch", "pitch_std", "speed")
SEMANTIC_PAD = -1  # pad id of collated semantic tokens (BiCodec ids are >= 0)


@dataclass(frozen=True)
class Shard:
    url: str
    split: Optional[str] = None


# ------------------------------------------------------------------------------------
# Finding the shards
# ------------------------------------------------------------------------------------

def _is_url(source: str) -> bool:
    return "://" in source


def _read_index(source: str, storage_options: Optional[dict]) -> dict:
    if not _is_url(source):
        from voxbox.shards.index import read_index

        return read_index(source)
    import fsspec

    url = source.rstrip("/") + "/index.json"
    try:
        with fsspec.open(url, "rb", **(storage_options or {})) as fh:
            return json.loads(fh.read().decode("utf-8"))
    except FileNotFoundError:
        raise VoxboxError(f"{url}: not found; give a built dataset folder, its URL, or a list of .tar shards") from None
    except (OSError, ValueError) as e:
        raise VoxboxError(f"{url}: cannot be read ({first_line(e)})") from None


def find_shards(source: Union[str, Path, Sequence[str]], split: Optional[str] = None,
                storage_options: Optional[dict] = None) -> List[Shard]:
    """The WebDataset shards of ``source`` (of ``split`` when given), in index order."""
    from voxbox.dataset.reader import hub_split

    if isinstance(source, (list, tuple)):
        if split is not None:
            raise VoxboxError("split= needs a dataset folder or URL (its index.json says which shard is which split)")
        return [Shard(str(u)) for u in source]
    source = str(source)
    index = _read_index(source, storage_options)
    if "webdataset" not in index.get("formats", []):
        raise VoxboxError(f"{source}: has no webdataset shards (formats: {', '.join(index.get('formats', []))}); "
                          "build with --format webdataset")
    base = source.rstrip("/")
    shards = [Shard(f"{base}/{s['files']['webdataset']['path']}", s.get("split")) for s in index["shards"]]
    if split is None:
        return shards
    names = {hub_split(s.split) for s in shards if s.split is not None} | set(
        hub_split(k) for k in (index.get("summary", {}).get("split") or {}))
    if hub_split(split) not in names:
        raise VoxboxError(f"{source}: no split {split!r} (splits: {', '.join(sorted(names)) or 'none'})")
    return [s for s in shards if s.split is None or hub_split(s.split) == hub_split(split)]


# ------------------------------------------------------------------------------------
# Who reads what
# ------------------------------------------------------------------------------------

def rank_and_world(rank: Optional[int] = None, world_size: Optional[int] = None) -> Tuple[int, int]:
    """This process's distributed rank and the world size (explicit arguments win)."""
    if rank is None or world_size is None:
        try:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                return dist.get_rank(), dist.get_world_size()
        except ImportError:  # pragma: no cover - torch without distributed
            pass
        rank = int(os.environ.get("RANK", 0)) if rank is None else rank
        world_size = int(os.environ.get("WORLD_SIZE", 1)) if world_size is None else world_size
    if world_size < 1 or not 0 <= rank < world_size:
        raise VoxboxError(f"rank {rank} is not in 0..{world_size - 1} (world size {world_size})")
    return rank, world_size


def slot_plan(n_shards: int, slot: int, n_slots: int) -> List[Tuple[int, int, int]]:
    """``(shard, k, of)`` for each shard this slot reads: it keeps the records ``j`` of
    that shard with ``j % of == k``. Every record of every shard lands in one slot."""
    if n_shards >= n_slots:
        return [(i, 0, 1) for i in range(slot, n_shards, n_slots)]
    i = slot % n_shards  # fewer shards than slots: the slots of one shard take turns
    sharing = len(range(i, n_slots, n_shards))
    return [(i, slot // n_shards, sharing)]


# ------------------------------------------------------------------------------------
# Samples
# ------------------------------------------------------------------------------------

def _duration(rec) -> float:
    if rec.num_samples and rec.sample_rate:
        return rec.num_samples / rec.sample_rate
    return float(rec.duration or 0.0)


def make_sample(rec, audio: Optional[bytes], sampling_rate: Optional[int] = None, mono: bool = True) -> dict:
    """One training sample: audio (float32 tensor, ``[T]`` mono or ``[C, T]``), tokens
    (int64 tensors or None), text, labels and the record itself."""
    import numpy as np
    import torch

    out: Dict[str, Any] = {"index": rec.index, "text": rec.text, "duration": _duration(rec),
                           "sample_rate": rec.sample_rate, "audio": None}
    if audio is not None:
        import soundfile as sf

        wav, sr = sf.read(io.BytesIO(audio), dtype="float32", always_2d=True)
        if sampling_rate is not None and sampling_rate != sr:
            import soxr

            wav, sr = soxr.resample(wav, sr, sampling_rate).astype(np.float32, copy=False), sampling_rate
        wav = wav.mean(axis=1) if mono else wav.T
        out["audio"], out["sample_rate"] = torch.from_numpy(np.ascontiguousarray(wav)), sr
    for name in ("global_tokens", "semantic_tokens"):
        tokens = getattr(rec, name)
        out[name] = torch.tensor(tokens, dtype=torch.int64) if tokens is not None else None
    out["labels"] = {k: getattr(rec, k) for k in LABEL_FIELDS}
    out["record"] = rec
    return out


def _shard_records(url: str, storage_options: Optional[dict]) -> Iterator[Tuple[Any, bytes]]:
    """``(record, audio bytes)`` of one shard, streamed (local path or fsspec URL)."""
    import tarfile

    import fsspec

    from voxbox.shards.webdataset import iter_tar_samples, record_from_json, split_sample

    try:
        with fsspec.open(url, "rb", **(storage_options or {})) as fh:
            for key, members in iter_tar_samples(fh):
                rec_json, audio, _ext = split_sample(members)
                yield record_from_json(rec_json), audio
    except FileNotFoundError:
        raise VoxboxError(f"{url}: shard not found") from None
    except (OSError, ValueError, EOFError, tarfile.TarError) as e:
        why = first_line(e)
        raise VoxboxError(f"{url}: shard cannot be read ({why}); run `voxbox validate` on the folder") from None


# ------------------------------------------------------------------------------------
# Collating and bucketing
# ------------------------------------------------------------------------------------

def _pad(tensors: List[Any], value: float):
    import torch

    lens = torch.tensor([t.shape[-1] for t in tensors], dtype=torch.int64)
    out = torch.full((len(tensors), *tensors[0].shape[:-1], int(lens.max()) if len(lens) else 0), value,
                     dtype=tensors[0].dtype)
    for i, t in enumerate(tensors):
        out[i, ..., : t.shape[-1]] = t
    return out, lens


def collate(samples: List[dict]) -> dict:
    """Samples -> a batch: ``audio`` ``[B, T]`` zero-padded with ``audio_lens``; ``semantic_tokens``
    ``[B, N]`` padded with -1 with ``semantic_lens``; ``global_tokens`` ``[B, 32]``;
    ``labels`` as lists; ``index``, ``text``, ``records`` as lists. A tensor field that some
    sample lacks (no tokens, audio not decoded) becomes a list with None in its place."""
    import torch

    batch: Dict[str, Any] = {k: [s[k] for s in samples] for k in ("index", "text", "duration")}
    batch["records"] = [s["record"] for s in samples]
    batch["sample_rate"] = torch.tensor([s["sample_rate"] or 0 for s in samples], dtype=torch.int64)
    for name, lens, pad in (("audio", "audio_lens", 0.0), ("semantic_tokens", "semantic_lens", SEMANTIC_PAD)):
        values = [s[name] for s in samples]
        if values and all(v is not None for v in values):
            batch[name], batch[lens] = _pad(values, pad)
        else:
            batch[name] = values
    glob = [s["global_tokens"] for s in samples]
    same = glob and all(g is not None for g in glob) and len({g.shape for g in glob}) == 1
    batch["global_tokens"] = torch.stack(glob) if same else glob
    batch["labels"] = {k: [s["labels"][k] for s in samples] for k in LABEL_FIELDS}
    return batch


def bucket_bounds(durations: Sequence[float], num_buckets: int) -> List[float]:
    """Upper edges between ``num_buckets`` duration buckets of equal total duration."""
    ds = sorted(durations)
    total = sum(ds)
    if not ds or num_buckets < 2 or total <= 0:
        return []
    bounds, acc, step = [], 0.0, total / num_buckets
    for d in ds:
        acc += d
        if acc >= step * (len(bounds) + 1) and len(bounds) < num_buckets - 1:
            bounds.append(d)
    return sorted(set(bounds))


def bucketed_batches(samples: Iterator[dict], batch_duration: float, num_buckets: int = 10,
                     max_batch_records: Optional[int] = None, estimate_records: int = 500,
                     drop_last: bool = False) -> Iterator[List[dict]]:
    """Group samples into batches of at most ``batch_duration`` seconds, each from one
    duration bucket (a single longer sample is a batch of its own)."""
    head = []
    for s in samples:  # estimate the bucket edges from the first records
        head.append(s)
        if len(head) >= estimate_records:
            break
    bounds = bucket_bounds([s["duration"] for s in head], num_buckets)
    buckets: List[List[dict]] = [[] for _ in range(len(bounds) + 1)]
    seconds = [0.0] * len(buckets)
    for s in _chain(head, samples):
        b = bisect.bisect_left(bounds, s["duration"])
        full = max_batch_records is not None and len(buckets[b]) >= max_batch_records
        if buckets[b] and (full or seconds[b] + s["duration"] > batch_duration):
            yield buckets[b]
            buckets[b], seconds[b] = [], 0.0
        buckets[b].append(s)
        seconds[b] += s["duration"]
    if not drop_last:
        yield from (b for b in buckets if b)


def _chain(first: List[dict], rest: Iterator[dict]) -> Iterator[dict]:
    yield from first
    yield from rest


def _shuffled(items: Iterator[dict], buffer_size: int, rng: random.Random) -> Iterator[dict]:
    buf: List[dict] = []
    for item in items:
        if len(buf) < buffer_size:
            buf.append(item)
            continue
        i = rng.randrange(len(buf))
        yield buf[i]
        buf[i] = item
    rng.shuffle(buf)
    yield from buf


# ------------------------------------------------------------------------------------
# The dataset
# ------------------------------------------------------------------------------------

def _iterable_base():
    from torch.utils.data import IterableDataset

    return IterableDataset


class VoxboxStream(_iterable_base()):
    """A torch ``IterableDataset`` over WebDataset shards; see the module docstring."""

    def __init__(self, shards: List[Shard], *, decode_audio: bool = True, sampling_rate: Optional[int] = None,
                 mono: bool = True, shuffle: bool = False, buffer_size: int = 1000, seed: int = 0,
                 batch_duration: Optional[float] = None, num_buckets: int = 10,
                 max_batch_records: Optional[int] = None, drop_last: bool = False, rank: Optional[int] = None,
                 world_size: Optional[int] = None, storage_options: Optional[dict] = None):
        super().__init__()
        if not shards:
            raise VoxboxError("no shards to read")
        if batch_duration is not None and batch_duration <= 0:
            raise VoxboxError(f"batch_duration must be positive seconds, got {batch_duration}")
        self.shards = list(shards)
        self.decode = dict(decode_audio=decode_audio, sampling_rate=sampling_rate, mono=mono)
        self.shuffle, self.buffer_size, self.seed, self.epoch = shuffle, buffer_size, seed, 0
        self.batching = dict(batch_duration=batch_duration, num_buckets=num_buckets,
                             max_batch_records=max_batch_records, drop_last=drop_last)
        self.rank, self.world_size = rank_and_world(rank, world_size)
        self.storage_options = storage_options

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for a new epoch (same order on every rank, so the split stays exact)."""
        self.epoch = int(epoch)

    def slot(self) -> Tuple[int, int]:
        """(this reader's slot, number of slots) from the rank and the DataLoader worker."""
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return self.rank * workers + worker, self.world_size * workers

    def records(self) -> Iterator[Tuple[Any, bytes]]:
        """``(record, audio bytes)`` of this slot's share, in plan order."""
        order = list(range(len(self.shards)))
        if self.shuffle:
            random.Random(self.seed + self.epoch).shuffle(order)
        slot, n_slots = self.slot()
        for pos, k, of in slot_plan(len(order), slot, n_slots):
            for j, item in enumerate(_shard_records(self.shards[order[pos]].url, self.storage_options)):
                if j % of == k:
                    yield item

    def __iter__(self) -> Iterator[Union[dict, List[dict]]]:
        opts = self.decode
        samples = (make_sample(rec, audio if opts["decode_audio"] else None, opts["sampling_rate"], opts["mono"])
                   for rec, audio in self.records())
        if self.shuffle:
            slot, _ = self.slot()
            samples = _shuffled(samples, self.buffer_size, random.Random(self.seed + self.epoch * 7919 + slot))
        if self.batching["batch_duration"] is None:
            yield from samples
            return
        for batch in bucketed_batches(samples, **self.batching):
            yield collate(batch)


def torch_dataset(source: Union[str, Path, Sequence[str]], split: Optional[str] = None, *,
                  decode_audio: bool = True, sampling_rate: Optional[int] = None, mono: bool = True,
                  shuffle: bool = False, buffer_size: int = 1000, seed: int = 0,
                  batch_duration: Optional[float] = None, num_buckets: int = 10,
                  max_batch_records: Optional[int] = None, drop_last: bool = False, rank: Optional[int] = None,
                  world_size: Optional[int] = None, storage_options: Optional[dict] = None) -> VoxboxStream:
    """A built dataset's WebDataset shards as a torch ``IterableDataset``.

    ``source``: a built folder, an fsspec URL of one (``hf://datasets/OWNER/NAME``), or a
    list of ``.tar`` URLs. ``split``: ``train``/``validation`` (``dev``)/``test``.
    Samples: ``index``, ``text``, ``duration``, ``audio`` (float32 tensor; resampled to
    ``sampling_rate`` when given; None with ``decode_audio=False``), ``sample_rate``,
    ``global_tokens``/``semantic_tokens`` (int64 tensors or None), ``labels`` (gender,
    levels, ...), ``record`` (the :class:`~voxbox.record.Utterance`). Batch them with
    :func:`collate`, or pass ``batch_duration`` (seconds) for duration-bucketed,
    ready-collated batches. ``shuffle`` shuffles shards and a ``buffer_size`` window of
    records by ``seed`` and the epoch (:meth:`VoxboxStream.set_epoch`). ``rank`` /
    ``world_size`` override what ``torch.distributed`` or the environment say.
    ``storage_options`` go to fsspec (credentials, endpoints).
    """
    shards = find_shards(source, split, storage_options)
    return VoxboxStream(shards, decode_audio=decode_audio, sampling_rate=sampling_rate, mono=mono,
                        shuffle=shuffle, buffer_size=buffer_size, seed=seed, batch_duration=batch_duration,
                        num_buckets=num_buckets, max_batch_records=max_batch_records, drop_last=drop_last,
                        rank=rank, world_size=world_size, storage_options=storage_options)
