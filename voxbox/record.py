"""The utterance record: the one type that flows between stages.

Field names and order follow the VoxBox release (``index`` ... ``wav_path``), then
what a rebuild needs and VoxBox lost (provenance), then what later stages add
(labels with their provenance, levels, value tokens, quality fields, BiCodec tokens).
Every field not yet known is ``None``; a stage fills fields with
:func:`dataclasses.replace` and never mutates a record in place.

Manifests are streams of records stored as JSONL (optionally ``.gz``) or Parquet.
Readers and writers here never hold a whole manifest in memory.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import itertools
import json
import os
import zlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Tuple, Union

from .errors import VoxboxError

# The release's key order (spec/voxbox.md section 4); also the order of export.
VOXBOX_FIELDS = (
    "index", "split", "language", "age", "gender", "emotion", "pitch", "pitch_std",
    "speed", "duration", "speech_duration", "syllable_num", "text", "syllables",
    "wav_path",
)

AGE_GROUPS = ("Child", "Teenager", "Youth-Adult", "Middle-aged", "Elderly")
GENDERS = ("female", "male")
EMOTIONS = (
    "UNKNOWN", "NEUTRAL", "ANGRY", "HAPPY", "SAD", "FEARFUL", "DISGUSTED", "SURPRISED",
    "SARCASTIC", "EXCITED", "SLEEPY", "CONFUSED", "EMPHASIS", "LAUGHING", "SINGING",
    "WORRIED", "WHISPER", "ANXIOUS", "NO-AGREEMENT", "APOLOGETIC", "CONCERNED",
    "ENUNCIATED", "ASSERTIVE", "ENCOURAGING", "CONTEMPT",
)
LEVELS = ("very_low", "low", "moderate", "high", "very_high")

# Where a categorical label came from.
NATIVE = "native"
PREDICTED = "predicted"


def age_group(years: float | int | None) -> Optional[str]:
    """Map an age in years to VoxBox's five groups (None stays None)."""
    if years is None:
        return None
    years = float(years)
    if years < 12:
        return "Child"
    if years < 18:
        return "Teenager"
    if years < 40:
        return "Youth-Adult"
    if years < 60:
        return "Middle-aged"
    return "Elderly"


def make_index(corpus: str, source_path: str) -> str:
    """Stable id: same corpus and source path give the same index, on any machine.

    VoxBox numbered utterances sequentially (``VCTK_0000044280``), which changes when
    the file list changes. We hash instead: 16 hex digits (64 bits) keep the chance of
    any collision in a 100M-utterance corpus below 3e-4, and prepare rejects
    duplicates anyway. No dots, so it is a valid WebDataset key.
    """
    rel = source_path.replace(os.sep, "/")
    digest = hashlib.sha1(f"{corpus}\0{rel}".encode("utf-8")).hexdigest()[:16]
    return f"{corpus}_{digest}"


@dataclass(frozen=True)
class Utterance:
    # --- VoxBox release fields, in release order -------------------------------
    index: str
    split: str = "train"
    language: Optional[str] = None
    age: Optional[str] = None
    gender: Optional[str] = None
    emotion: Optional[str] = None
    pitch: Optional[float] = None
    pitch_std: Optional[float] = None
    speed: Optional[float] = None
    duration: Optional[float] = None
    speech_duration: Optional[float] = None
    syllable_num: Optional[int] = None
    text: Optional[str] = None
    syllables: Optional[str] = None
    wav_path: Optional[str] = None
    # --- provenance VoxBox lost --------------------------------------------------
    corpus: Optional[str] = None
    speaker: Optional[str] = None
    source_path: Optional[str] = None  # relative to corpus_root, "/"-separated
    corpus_root: Optional[str] = None  # where source_path resolves; set by prepare
    sample_rate: Optional[int] = None  # of the source file
    num_samples: Optional[int] = None  # of the source file, per channel
    channels: Optional[int] = None
    license: Optional[str] = None
    # --- label provenance: "native" (from the corpus) or "predicted" ------------
    gender_source: Optional[str] = None
    gender_model: Optional[str] = None
    gender_confidence: Optional[float] = None
    age_source: Optional[str] = None
    age_model: Optional[str] = None
    age_confidence: Optional[float] = None
    emotion_source: Optional[str] = None
    emotion_model: Optional[str] = None
    emotion_confidence: Optional[float] = None
    # --- derived levels and Spark-TTS value tokens ------------------------------
    pitch_backend: Optional[str] = None
    pitch_level: Optional[str] = None
    pitch_std_level: Optional[str] = None
    speed_level: Optional[str] = None
    pitch_value: Optional[int] = None
    pitch_var_value: Optional[int] = None
    speed_value: Optional[int] = None
    # --- quality ---------------------------------------------------------------
    loudness: Optional[float] = None
    clipping_ratio: Optional[float] = None
    # Explicit nulls carry a reason code, e.g. {"pitch": "no_voiced_frames"}.
    null_reasons: Optional[dict] = None
    # --- BiCodec tokens ----------------------------------------------------------
    global_tokens: Optional[list] = None
    semantic_tokens: Optional[list] = None
    # Free-form, JSON-serialisable; for recipe-specific extras (e.g. emotion level).
    extra: Optional[dict] = None

    # -------------------------------------------------------------------------------
    @property
    def audio_path(self) -> Path:
        """Absolute location of the source audio."""
        if self.source_path is None:
            raise VoxboxError(f"{self.index}: record has no source_path")
        root = Path(self.corpus_root) if self.corpus_root else Path(".")
        return root / self.source_path

    def missing_audio_detail(self) -> str:
        """Why a stage cannot find this record's audio (for a ``no_audio_path`` rejection)."""
        if self.wav_path:
            # A VoxBox release line: its wav_path is relative to an unknown folder.
            return (f"record has no source_path, only the release's wav_path {self.wav_path!r}; set "
                    "source_path to the audio file (and corpus_root to the folder it is relative to)")
        return "record has no source_path"

    def replace(self, **changes: Any) -> "Utterance":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def voxbox_dict(self) -> dict:
        """The record as the VoxBox release shapes it (15 keys, release order)."""
        return {k: getattr(self, k) for k in VOXBOX_FIELDS}

    @classmethod
    def from_dict(cls, data: dict) -> "Utterance":
        known = FIELD_NAMES
        unknown = set(data) - known
        kwargs = {k: v for k, v in data.items() if k in known}
        if unknown:
            # Keep what we do not know instead of dropping it silently.
            extra = dict(kwargs.get("extra") or {})
            for k in sorted(unknown):
                extra[k] = data[k]
            kwargs["extra"] = extra
        if "index" not in kwargs or not kwargs["index"]:
            raise VoxboxError(f"record without an index (every record needs a unique 'index'; "
                              f"`voxbox prepare` makes manifests with one): {json.dumps(data, ensure_ascii=False)[:80]}...")
        return cls(**kwargs)


FIELD_NAMES = frozenset(f.name for f in fields(Utterance))


@dataclass(frozen=True)
class Rejection:
    """A record that a stage could not use, with the reason. Never an exception."""

    stage: str
    path: str
    reason: str
    index: Optional[str] = None
    detail: Optional[str] = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Rejection":
        return cls(**{k: data.get(k) for k in ("stage", "path", "reason", "index", "detail")})


Result = Union[Utterance, Rejection]

# ------------------------------------------------------------------------------------
# Manifest I/O
# ------------------------------------------------------------------------------------

_INT_LIST_FIELDS = ("global_tokens", "semantic_tokens")
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


def _from_arrow_row(row: dict) -> Utterance:
    for k in _DICT_FIELDS:
        if row.get(k) is not None:
            row[k] = json.loads(row[k])
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
        parts = ", ".join(f"{n} {r}" for r, n in sorted(self.by_reason.items(), key=lambda x: -x[1]))
        return f"{self.count} rejected ({parts}); see {self.path}"

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
