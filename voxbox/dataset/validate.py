"""``voxbox validate``: re-read every shard of a built folder and check it.

Checks, each failure named as ``<file or record>: <problem>``:

- the index: totals equal the sum of the shards; the rejects file has as many lines
  as the index says;
- every shard file: present, size and sha256 as in the index;
- every sample (in every format): record count per shard, keys unique across the
  dataset and in index order within each split (shards are grouped by split),
  first/last index as in the index, the same records in every format;
- every audio decodes; its length matches the record (``num_samples`` and
  ``sample_rate`` exactly when known, ``duration`` within 0.05 s); for annotated
  records its level too: the annotation front end is run on the stored audio, which
  must not be silent and must have the record's ``loudness`` within 1 LU (records
  from other stages: not silent);
- tokens, when present: 32 global tokens in 0..4095, semantic tokens in 0..8191 and
  as many as BiCodec makes for the audio (``floor((N16 - 400) / 320) + 1`` for N16
  samples at 16 kHz, i.e. ~50 per second, within 2 + 2 %).

A dataset in object storage or on the Hub (``voxbox validate s3://bucket/prefix``, any
URL :func:`voxbox.dataset.reader.open_dataset` takes) gets the same checks: each shard
file is copied, by retried range reads, to a temporary file (one at a time, removed
once checked: the disk holds at most one shard, memory the storage layer's 48 MiB block
cache), hashed and read from there, so every byte comes down once. A storage failure
that retries do not cure ends the run with its one-line error (a rerun starts over).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
from voxbox.dataset.reader import open_dataset
from voxbox.errors import VoxboxError, first_line
from voxbox.idset import IdSet, key64
from voxbox.record import Utterance
from voxbox.shards import index as ix

GLOBAL_TOKENS = 32
GLOBAL_VOCAB = 4096
SEMANTIC_VOCAB = 8192
DURATION_TOLERANCE_S = 0.05
LOUDNESS_TOLERANCE_LU = 1.0  # re-measured from the shard; lossless storage agrees to ~0.01
SILENT_PEAK = 1e-4           # -80 dBFS: no recording of speech peaks this low
MAX_PROBLEMS_PER_KIND = 50
COPY_CHUNK = 8 << 20         # a remote shard comes down in reads of this size (each retried)


@dataclass
class ValidationReport:
    path: Path
    problems: List[str] = field(default_factory=list)
    records: int = 0
    shards: int = 0
    files: int = 0
    audio_seconds: float = 0.0
    suppressed: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, where: str, what: str) -> None:
        if len(self.problems) >= MAX_PROBLEMS_PER_KIND * 20:
            self.suppressed += 1
            return
        self.problems.append(f"{where}: {what}")

    def summary(self) -> str:
        head = (f"{self.records} records in {self.shards} shard(s), {self.files} file(s), "
                f"{self.audio_seconds / 3600:.3f} h checked")
        if self.ok:
            return f"ok: {head}"
        more = f" (+{self.suppressed} more not listed)" if self.suppressed else ""
        return f"{len(self.problems) + self.suppressed} problem(s){more}; {head}"


def expected_semantic_tokens(num_samples: int, sample_rate: int) -> int:
    n16 = round(num_samples * 16000 / sample_rate)
    return max(0, (n16 - 400) // 320 + 1)


def check_tokens(rec: Utterance, seconds: Optional[float], report: ValidationReport, where: str) -> None:
    g, s = rec.global_tokens, rec.semantic_tokens
    if g is not None:
        if len(g) != GLOBAL_TOKENS:
            report.add(where, f"{len(g)} global tokens (expected {GLOBAL_TOKENS})")
        bad = [t for t in g if not (isinstance(t, int) and 0 <= t < GLOBAL_VOCAB)]
        if bad:
            report.add(where, f"global token {bad[0]!r} out of range 0..{GLOBAL_VOCAB - 1}")
    if s is not None:
        bad = [t for t in s if not (isinstance(t, int) and 0 <= t < SEMANTIC_VOCAB)]
        if bad:
            report.add(where, f"semantic token {bad[0]!r} out of range 0..{SEMANTIC_VOCAB - 1}")
        if rec.num_samples and rec.sample_rate:
            want = expected_semantic_tokens(rec.num_samples, rec.sample_rate)
        elif seconds:
            want = expected_semantic_tokens(int(seconds * 16000), 16000)
        else:
            want = None
        if want is not None and abs(len(s) - want) > 2 + 0.02 * want:
            report.add(where, f"{len(s)} semantic tokens for {want / 50:.2f} s of audio (expected ~{want}, 50/s)")
    if (g is None) != (s is None):
        report.add(where, "has only one of global_tokens / semantic_tokens")


def _check_audio(rec: Utterance, audio: bytes, report: ValidationReport, where: str) -> Optional[float]:
    import soundfile as sf

    try:
        with sf.SoundFile(io.BytesIO(audio)) as f:
            frames, sr = f.frames, f.samplerate
            first = f.read(dtype="float64", always_2d=True)[:, 0]  # a full decode: catches corrupt frames
    except Exception as e:  # noqa: BLE001 - any decoder error is a finding
        report.add(where, f"audio does not decode ({first_line(e)})")
        return None
    secs = frames / sr if sr else 0.0
    if rec.num_samples is not None and rec.sample_rate:
        if sr != rec.sample_rate or frames != rec.num_samples:
            report.add(where, f"audio is {frames} samples at {sr} Hz, record says "
                              f"{rec.num_samples} at {rec.sample_rate} Hz")
    if rec.duration is not None and abs(secs - rec.duration) > DURATION_TOLERANCE_S:
        report.add(where, f"audio lasts {secs:.3f} s, record duration is {rec.duration} s")
    if sr and (rec.loudness is not None or rec.pitch is not None):
        _check_level(rec, first, sr, report, where)
    return secs


def _check_level(rec: Utterance, first: np.ndarray, sr: int, report: ValidationReport, where: str) -> None:
    """The stored audio must be the audio the record was annotated from. A silent shard
    behind a pitch value (float sources were once stored so) decodes and has the right
    length; only its level gives it away. Records from voxbox's annotate stage (they
    carry ``pitch_backend``) get its front end run again and the loudness compared (a
    lossless copy agrees to the rounding); records from other stages, whose loudness may
    be defined otherwise, only must not be near-silent (peak below -80 dBFS)."""
    from voxbox.annotate.frontend import AudioError, prepare_array
    from voxbox.annotate.loudness import integrated_lufs

    gain = ((rec.extra or {}).get("stored_audio") or {}).get("gain") or 1.0
    said = f"loudness {rec.loudness} LUFS" if rec.loudness is not None else f"pitch {rec.pitch} Hz"
    peak = float(np.max(np.abs(first))) / gain if first.size else 0.0
    if rec.pitch_backend is None:
        if peak < SILENT_PEAK:
            report.add(where, f"stored audio is silent (peak {_peak_db(first)}), but the record has {said}")
        return
    try:
        fe = prepare_array(first / gain, sr)
    except AudioError as e:
        report.add(where, f"stored audio is {e.reason.replace('_', ' ')} (peak {_peak_db(first)}), "
                          f"but the record has {said}")
        return
    if rec.loudness is not None:
        got = integrated_lufs(fe.speech, fe.sr)
        if abs(got - rec.loudness) > LOUDNESS_TOLERANCE_LU:
            report.add(where, f"stored audio has loudness {got:.2f} LUFS, the record says {rec.loudness} "
                              f"(peak {_peak_db(first)})")


def _peak_db(x: np.ndarray) -> str:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return f"{20 * np.log10(peak):.1f} dBFS" if peak > 0 else "digital silence"


def _record_digest(rec: Utterance) -> str:
    return hashlib.sha1(json.dumps(rec.to_dict(), sort_keys=True, default=str).encode()).hexdigest()


def validate(path: Union[str, Path], *, check_audio: bool = True, progress: bool = True) -> ValidationReport:
    """Check a built folder; returns a report (``.ok``, ``.problems``); never raises for
    problems in the data, only for a folder that is not a built dataset at all."""
    from voxbox.progress import Progress

    ds = open_dataset(path)
    report = ValidationReport(ds.path)
    report.shards = len(ds.shards)
    total = _check_totals(ds, report)
    digests: Dict[int, str] = {}  # shard -> digest of the first format's records, in order
    scratch = tempfile.TemporaryDirectory(prefix="voxbox-validate-") if ds.remote else contextlib.nullcontext()
    with scratch as tmp, Progress("validate", total=total * len(ds.formats)) as bar:
        for fmt in ds.formats:
            walk = _Walk(fmt, check_audio, bar, tmp)
            for s in ds.shards:
                _check_shard(ds, s, walk, digests, report)
            if fmt == ds.formats[0]:
                report.records = len(walk.seen)
    return report


def _check_totals(ds, report: ValidationReport) -> int:
    idx = ds.index
    total = sum(s["records"] for s in ds.shards)
    if total != idx["totals"]["records"]:
        report.add(ix.INDEX_NAME, f"totals.records is {idx['totals']['records']}, shards sum to {total}")
    n_rej = sum(1 for _ in ds.rejects())
    if n_rej != idx["rejects"]["count"]:
        report.add(ix.REJECTS_NAME, f"{n_rej} rejections, index says {idx['rejects']['count']}")
    return total


def _check_file(local: Path, info: dict, report: ValidationReport) -> None:
    """Size and sha256 of a shard file against the index (checked before its records:
    a bad checksum explains the record problems that follow)."""
    size = local.stat().st_size
    if size != info["bytes"]:
        report.add(info["path"], f"{size} bytes, index says {info['bytes']}")
    elif ix.sha256_file(local) != info["sha256"]:
        report.add(info["path"], "sha256 does not match the index")


@contextlib.contextmanager
def _shard_file(ds, rel: str, scratch: Optional[str]):
    """The shard file ``rel`` as a local path (None when it is missing): the file itself,
    or for a remote dataset a temporary copy in ``scratch``, removed afterwards."""
    p = ds.file(rel)
    if not ds.remote:
        yield p if p.exists() else None
        return
    if not p.is_file():
        yield None
        return
    local = Path(scratch) / p.name
    try:
        with p.open() as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst, COPY_CHUNK)
        yield local
    finally:
        local.unlink(missing_ok=True)


@dataclass
class _Walk:
    """One pass over every shard of one format: keys seen and the last key per split."""

    fmt: str
    check_audio: bool
    bar: Any
    scratch: Optional[str] = None  # where a remote dataset's shard is copied while checked
    seen: IdSet = field(default_factory=IdSet)  # 64-bit keys of the indices: ~20 bytes a record
    last_by_split: Dict[str, str] = field(default_factory=dict)


def _check_shard(ds, s: dict, walk: _Walk, digests: Dict[int, str], report: ValidationReport) -> None:
    info = s["files"].get(walk.fmt)
    if info is None:
        report.add(f"shard {s['shard']}", f"no {walk.fmt} file in the index")
        return
    report.files += 1
    with _shard_file(ds, info["path"], walk.scratch) as local:
        if local is None:
            report.add(info["path"], "missing")
            return
        _check_file(local, info, report)
        _check_contents(ds, s, local, walk, digests, report)


def _check_contents(ds, s: dict, local: Path, walk: _Walk, digests: Dict[int, str],
                    report: ValidationReport) -> None:
    """The records of one shard file: count, index range, the same as the first format's."""
    from voxbox.shards.parquet import iter_parquet_rows

    rel = s["files"][walk.fmt]["path"]
    try:
        stream = iter_parquet_rows(local) if walk.fmt == "parquet" else _tar_stream(local, report, rel)
        keys, shard_digest = _check_records(ds, stream, rel, walk, report)
    except VoxboxError:
        raise
    except Exception as e:  # noqa: BLE001 - an unreadable shard is a finding
        report.add(rel, f"cannot be read ({type(e).__name__}: {first_line(e, '')})")
        return
    if len(keys) != s["records"]:
        report.add(rel, f"{len(keys)} records, index says {s['records']}")
    first_key, last_key = (keys[0], keys[-1]) if keys else (None, None)
    if s.get("first_index") is not None and (first_key, last_key) != (s["first_index"], s["last_index"]):
        report.add(rel, f"holds {first_key}..{last_key}, index says {s['first_index']}..{s['last_index']}")
    if s["shard"] in digests:
        if digests[s["shard"]] != shard_digest:
            report.add(rel, f"records differ from the {ds.formats[0]} shard")
    else:
        digests[s["shard"]] = shard_digest


def _check_records(ds, stream, rel: str, walk: _Walk, report: ValidationReport) -> Tuple[List[str], str]:
    """Every record of one shard: key order and uniqueness, audio, tokens. Returns the
    keys and one digest of the records in shard order (a digest per shard, not per record:
    47 M record digests would hold gigabytes until the second format is read)."""
    keys: List[str] = []
    shard_digest = hashlib.sha256()
    for rec, audio, ext in stream:
        keys.append(rec.index)
        where = f"{rel}: {rec.index}"
        if not walk.seen.add(key64(rec.index)):
            report.add(where, "duplicate key")
        last = walk.last_by_split.get(rec.split or "")
        if last is not None and rec.index <= last:
            report.add(where, f"out of index order (after {last})")
        walk.last_by_split[rec.split or ""] = rec.index
        secs = None
        if audio is None:
            report.add(where, "no audio")
        elif walk.check_audio:
            secs = _check_audio(rec, audio, report, where)
        if secs is not None and walk.fmt == ds.formats[0]:
            report.audio_seconds += secs
        check_tokens(rec, secs, report, where)
        shard_digest.update(_record_digest(rec).encode())
        walk.bar.update(1, secs or 0.0)
    return keys, shard_digest.hexdigest()


def _tar_stream(path, report: ValidationReport, rel: str):
    from voxbox.shards.webdataset import iter_tar_samples, record_from_json, split_sample

    for key, members in iter_tar_samples(path):
        where = f"{rel}: {key}"
        try:
            rec_json, audio, ext = split_sample(members)
        except ValueError as e:
            report.add(where, str(e))
            continue
        try:
            rec = record_from_json(rec_json)
        except Exception as e:  # noqa: BLE001
            report.add(where, f".json does not parse ({e})")
            continue
        if rec.index != key:
            report.add(where, f"key differs from the record index {rec.index}")
        yield rec, audio, ext
