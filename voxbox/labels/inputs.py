"""Records and their audio from a manifest or a built dataset folder (the inputs of
``voxbox speakers`` and ``voxbox dedup``), and embeddings for them in batches."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from voxbox.errors import VoxboxError
from voxbox.record import Utterance

#: (channel-0 samples as float64, sample rate); raises AudioError for unusable audio.
AudioLoader = Callable[[], Tuple[np.ndarray, int]]


def is_built_folder(path: Union[str, Path]) -> bool:
    """A built dataset: a folder with index.json, or a URL (``s3://``, ``hf://`` ...), which
    can only be one (read in place by :func:`~voxbox.dataset.reader.open_dataset`)."""
    from voxbox.storage import is_remote

    if is_remote(path):
        return True
    return Path(path).is_dir() and (Path(path) / "index.json").is_file()


def check_input(path: Union[str, Path]) -> None:
    from voxbox.storage import is_remote

    if is_remote(path):
        from voxbox.dataset.reader import open_dataset

        open_dataset(path)  # a missing or unfinished dataset is its one-line error, before any work
        return
    p = Path(path)
    if p.is_dir() and not is_built_folder(p):
        raise VoxboxError(f"{p}: a folder without index.json is not a built dataset (give a manifest or "
                          "a `voxbox build` output folder)")
    if not p.exists():
        raise VoxboxError(f"{p}: not found")
    if p.is_file():
        from voxbox.manifest import manifest_format

        manifest_format(p)


def records(path: Union[str, Path]) -> Iterator[Utterance]:
    if is_built_folder(path):
        from voxbox.dataset.reader import open_dataset

        yield from open_dataset(path).records()
    else:
        from voxbox.manifest import read_manifest

        yield from read_manifest(path)


def records_with_audio(path: Union[str, Path]) -> Iterator[Tuple[Utterance, AudioLoader]]:
    """(record, loader) pairs; a built folder's audio comes from its shards, a manifest's
    from its files (spans and archive members through :mod:`voxbox.media`)."""
    if is_built_folder(path):
        from voxbox.dataset.reader import open_dataset

        for rec, data, _ext in open_dataset(path).samples():
            yield rec, (lambda data=data: _decode(data))
    else:
        from voxbox.manifest import read_manifest

        for rec in read_manifest(path):
            if not rec.source_path:
                yield rec, _missing(rec)
            else:
                yield rec, (lambda rec=rec: _record_audio(rec))


def _record_audio(rec: Utterance) -> Tuple[np.ndarray, int]:
    from voxbox import media
    from voxbox.annotate.frontend import read_audio, read_record_channel0

    if media.is_plain(rec):
        return read_audio(rec.audio_path)[:2]
    return read_record_channel0(rec)[:2]


def _decode(data: bytes) -> Tuple[np.ndarray, int]:
    import soundfile as sf

    from voxbox.annotate.frontend import AudioError

    try:
        x, sr = sf.read(io.BytesIO(data), dtype="float64", always_2d=True)
    except Exception as e:  # noqa: BLE001  (libsndfile raises several types)
        raise AudioError("unreadable_audio", f"cannot decode shard audio ({e})") from None
    return np.ascontiguousarray(x[:, 0]), int(sr)


def _missing(rec: Utterance) -> AudioLoader:
    def load():
        from voxbox.annotate.frontend import AudioError

        raise AudioError("no_audio_path", rec.missing_audio_detail())
    return load


class Embedder:
    """Embeddings for records in batches: the record's own when it holds one from the same
    backend, else the annotate front end's speech through the encoder."""

    def __init__(self, spec: str = "ge2e", device: str = "cpu", batch_size: int = 16):
        from voxbox.annotate.embeddings import encoder_name

        self.name = encoder_name(spec)  # checks the spec now; the model loads on first use
        self.spec, self.device, self._encoder = spec, device, None
        self.batch_size = batch_size
        self._pending: List[Tuple[int, np.ndarray]] = []
        self.vectors: Dict[int, np.ndarray] = {}
        self.failed: Dict[int, str] = {}

    @property
    def encoder(self):
        """Loaded only when a record needs one computed: records that carry their own
        embeddings (annotate --embeddings) never pay for the model."""
        if self._encoder is None:
            from voxbox.annotate.embeddings import make_encoder

            self._encoder = make_encoder(self.spec, device=self.device)
        return self._encoder

    def add(self, key: int, rec: Utterance, load: AudioLoader) -> None:
        from voxbox.annotate.frontend import AudioError, prepare_array

        if rec.embedding is not None and rec.embedding_model == self.name:
            self.vectors[key] = np.asarray(rec.embedding, dtype=np.float32)
            return
        try:
            audio, sr = load()
            speech = prepare_array(audio, sr).speech
        except AudioError as e:
            self.failed[key] = e.reason
            return
        self._pending.append((key, speech))
        if len(self._pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        from voxbox.annotate.embeddings import to_float16_list

        if not self._pending:
            return
        vecs = self.encoder.embed_batch([s for _, s in self._pending])
        for (key, _), v in zip(self._pending, vecs):
            if np.all(np.isfinite(v)):
                self.vectors[key] = np.asarray(to_float16_list(v), dtype=np.float32)
            else:
                self.failed[key] = "no_embedding"
        self._pending = []

    def get(self, key: int) -> Optional[np.ndarray]:
        return self.vectors.get(key)
