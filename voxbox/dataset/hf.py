"""A built dataset (a local folder or a published Hub repo) as a Hugging Face ``datasets``
dataset whose audio decodes with soundfile.

``datasets`` decodes its ``Audio`` feature with torchcodec, whose wheels link CUDA
libraries and do not load next to a CPU torch; ``ds[0]["audio"]`` then raises "install
torchcodec". :func:`hf_dataset` keeps the audio column as raw bytes
(``Audio(decode=False)``) and decodes it on access with soundfile (libsndfile, which
voxbox needs anyway), optionally resampled with soxr::

    from voxbox.dataset import hf_dataset

    ds = hf_dataset("out/sample", split="test")          # or "OWNER/NAME" on the Hub
    ds[0]["audio"]    # {"array": float32 numpy, "sampling_rate": 24000, "path": "<index>.flac"}

The other columns are the stored record fields (``null_reasons`` and ``extra`` as JSON
text). Without ``datasets``: ``pip install 'voxbox[hf]'``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Optional, Union

from voxbox.errors import VoxboxError


def decode_example_audio(audio: Optional[dict], sampling_rate: Optional[int] = None, mono: bool = True) -> Optional[dict]:
    """``{"bytes", "path"}`` -> ``{"array", "sampling_rate", "path"}`` (float32; mono mixes
    the channels down, otherwise ``array`` is ``[channels, frames]`` as in ``datasets``)."""
    import numpy as np
    import soundfile as sf

    if audio is None or audio.get("bytes") is None:
        return audio
    samples, sr = sf.read(io.BytesIO(audio["bytes"]), dtype="float32", always_2d=True)
    if sampling_rate is not None and sampling_rate != sr:
        import soxr

        samples = soxr.resample(samples, sr, sampling_rate).astype(np.float32, copy=False)
        sr = sampling_rate
    array = samples.mean(axis=1, dtype=np.float32) if mono else np.ascontiguousarray(samples.T)
    return {"array": array, "sampling_rate": sr, "path": audio.get("path")}


def _decoder(sampling_rate: Optional[int], mono: bool):
    def decode_batch(batch: dict) -> dict:
        if "audio" in batch:
            batch["audio"] = [decode_example_audio(a, sampling_rate, mono) for a in batch["audio"]]
        return batch

    return decode_batch


def _with_soundfile_audio(ds, sampling_rate: Optional[int], mono: bool):
    """Raw audio bytes in the table, decoded with soundfile when read."""
    import datasets

    if "audio" not in (ds.column_names or []):
        return ds
    ds = ds.cast_column("audio", datasets.Audio(decode=False))
    if isinstance(ds, datasets.IterableDataset):
        decode = _decoder(sampling_rate, mono)
        return ds.map(decode, batched=True, batch_size=16)
    return ds.with_transform(_decoder(sampling_rate, mono))


def _local_dataset(path: Path, split: Optional[str], streaming: bool):
    """``datasets`` over a built folder's shards of ``split`` (all splits when None)."""
    import datasets

    from voxbox.dataset.reader import hub_split, open_dataset

    ds = open_dataset(path)
    splits = [split] if split is not None else ds.splits
    if "parquet" not in ds.formats:
        return _local_webdataset(ds, splits, split, streaming)
    files = {hub_split(s): [str(p) for p in ds.shard_files("parquet", s)] for s in splits}
    out = datasets.load_dataset("parquet", data_files=files, streaming=streaming)
    out = _only_split_records(out, ds)
    return out[hub_split(split)] if split is not None else out


def _only_split_records(out, ds):
    """Shards from builds before shards were grouped by split mix splits: keep each split's own rows."""
    from voxbox.dataset.reader import hub_split

    if all(s.get("split") is not None for s in ds.shards):
        return out
    for name in list(out):
        out[name] = out[name].filter(lambda rec, want=name: hub_split(rec) == want, input_columns="split")
    return out


def _local_webdataset(ds, splits, split: Optional[str], streaming: bool):
    """A webdataset-only folder: each sample's ``.json`` becomes the columns, its audio ``audio``."""
    import datasets

    from voxbox.dataset.reader import hf_webdataset_features, hub_split

    ext = ds.audio_format if ds.audio_format != "original" else None
    if ext is None:
        raise VoxboxError(f"{ds.path}: webdataset shards with original audio files (several extensions) "
                          "load with voxbox.dataset.torch_dataset or open_dataset; build with --format parquet "
                          "for `datasets`")
    files = {hub_split(s): [str(p) for p in ds.shard_files("webdataset", s)] for s in splits}
    raw = datasets.load_dataset("webdataset", data_files=files, streaming=streaming,
                                features=hf_webdataset_features(ext, decode_audio=False))

    def flatten(sample: dict) -> dict:
        return {"audio": {"bytes": sample[ext], "path": f"{sample['__key__']}.{ext}"}, **sample["json"]}

    out = datasets.IterableDatasetDict() if streaming else datasets.DatasetDict()
    for name, part in raw.items():
        out[name] = part.map(flatten, remove_columns=[ext, "json", "__key__", "__url__"])
    out = _only_split_records(out, ds)
    return out[hub_split(split)] if split is not None else out


def hf_dataset(source: Union[str, Path], split: Optional[str] = None, *, revision: Optional[str] = None,
               streaming: bool = False, sampling_rate: Optional[int] = None, mono: bool = True):
    """A built dataset as a ``datasets.Dataset`` (``split`` given) or ``DatasetDict``
    (all splits), with audio decoded by soundfile on access.

    ``source``: a built folder (the ``--out`` of ``voxbox build``) or a Hub dataset repo
    ``OWNER/NAME`` published with ``voxbox publish`` (``revision`` picks a branch).
    ``split``: ``train``, ``validation`` (the corpora's ``dev``), ``test`` ... as the card's
    configs publish them. ``streaming``: an ``IterableDataset`` instead of a download.
    ``sampling_rate``: resample on access (soxr); ``mono``: mix channels down.
    """
    try:
        import datasets  # noqa: F401
    except ImportError:
        raise VoxboxError("hf_dataset needs the `datasets` package: pip install 'voxbox[hf]'") from None
    path = Path(source)
    if path.is_dir():
        ds = _local_dataset(path, split, streaming)
    elif path.exists() or "/" not in str(source) or str(source).count("/") != 1:
        raise VoxboxError(f"{source}: neither a built dataset folder nor a Hub repo id OWNER/NAME")
    else:
        import datasets

        from voxbox.dataset.reader import hub_split

        ds = datasets.load_dataset(str(source), split=hub_split(split) if split else None, revision=revision,
                                   streaming=streaming)
    if split is not None:
        return _with_soundfile_audio(ds, sampling_rate, mono)
    for name in list(ds):
        ds[name] = _with_soundfile_audio(ds[name], sampling_rate, mono)
    return ds
