"""Audio bytes for shards: a fixed FLAC encoding of the source, or its original bytes.

FLAC holds every source that prepare accepts, with the source's channels and rate:

- 8/16-bit and other shallow sources become 16-bit FLAC and 24-bit integer sources
  24-bit FLAC: lossless.
- Float sources (what ``scipy.io.wavfile`` writes from float arrays) are *scaled*: full
  scale 1.0 becomes the 24-bit full scale. libsndfile's own float-to-integer read does
  not scale, which stored such files as near-silence. Floats that 24 bits hold exactly
  (a float file made from 16- or 24-bit audio) stay lossless; others are rounded to 24
  bits, and a source that goes beyond full scale is scaled down to fit (the gain is
  recorded, so the source level can be restored).
- 32-bit integer PCM is stored exactly when its low 8 bits are zero (24-bit audio in a
  32-bit container), else rounded to 24 bits, the most FLAC holds here.

Whatever is not lossless is said in the record: ``extra["stored_audio"]`` = {"source":
subtype, "stored": "FLAC PCM_24", "lossless": false, "gain": g, "detail": ...}. The
encoder settings are fixed so that the same source gives the same bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np

from voxbox.errors import VoxboxError, first_line
from voxbox.limits import MAX_AUDIO_BYTES, FileRefused, audio_problem, open_regular, read_regular
from voxbox.record import Rejection, Utterance

AUDIO_FORMATS = ("flac", "original")
FLAC_COMPRESSION_LEVEL = 0.5  # soundfile's 0..1 scale; fixed for byte-stable output
_SHALLOW = {"PCM_S8", "PCM_U8", "PCM_16", "ULAW", "ALAW", "DPCM_8", "DPCM_16", "DWVW_12", "DWVW_16",
            "G721_32", "G723_24", "G723_40", "GSM610", "IMA_ADPCM", "MS_ADPCM", "VOX_ADPCM",
            "MPEG_LAYER_III", "VORBIS", "OPUS"}
_FLOAT = {"FLOAT", "DOUBLE"}
_INT32 = {"PCM_32", "ALAC_32"}
_FULL24 = 2 ** 23


@dataclass(frozen=True)
class EncodedSample:
    """One record ready for the writers: the record, its audio bytes and extension."""

    record: Utterance
    audio: bytes
    ext: str  # lower case, no dot: "flac", "wav", ...


def source_ext(path: Union[str, Path]) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    return suffix or "bin"


def encode_flac(path: Union[str, Path]) -> bytes:
    """FLAC bytes of an audio file (see the module docstring)."""
    return encode_flac_noted(path)[0]


def encode_flac_noted(path: Union[str, Path]) -> Tuple[bytes, Optional[dict]]:
    """FLAC bytes of an audio file, and what was changed to store it (None: lossless).
    Raises FileRefused for files that are not regular, or that no shard can hold."""
    import soundfile as sf

    with open_regular(path, missing="missing_audio") as fh, sf.SoundFile(fh) as f:
        problem = audio_problem(f.samplerate, f.frames, f.channels)
        if problem is not None:
            raise problem
        data, sr, subtype = f.read(dtype=_dtype(f.subtype), always_2d=True), f.samplerate, f.subtype
    return _to_flac(data, sr, subtype)


def _dtype(subtype: str) -> str:
    """How to read a source so that nothing is lost: floats as floats (libsndfile reads
    float samples as integers without scaling: near-silence), the rest as integers."""
    return "int16" if subtype in _SHALLOW else "float64" if subtype in _FLOAT else "int32"


def _to_flac(data: np.ndarray, sr: int, subtype: str) -> Tuple[bytes, Optional[dict]]:
    if subtype in _SHALLOW:
        return _flac(data, sr, "PCM_16"), None
    if subtype in _FLOAT:
        return _float_to_flac(data, sr, subtype)
    if subtype in _INT32:
        return _int32_to_flac(data, sr, subtype)
    return _flac(data, sr, "PCM_24"), None


def _flac(data: np.ndarray, sr: int, subtype: str) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, data, sr, format="FLAC", subtype=subtype, compression_level=FLAC_COMPRESSION_LEVEL)
    return buf.getvalue()


def _float_to_flac(x: np.ndarray, sr: int, subtype: str) -> Tuple[bytes, Optional[dict]]:
    if not np.all(np.isfinite(x)):
        raise FileRefused("non_finite_samples", "NaN or infinite samples: no shard can hold them")
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    # Beyond full scale, scale down so the peak lands on the largest 24-bit value.
    gain = (_FULL24 - 1) / _FULL24 / peak if peak > 1.0 else 1.0
    q = np.clip(np.round(x * (gain * _FULL24)), -_FULL24, _FULL24 - 1)
    note = None
    if gain != 1.0:
        note = _note(subtype, f"{subtype.lower()} samples peak at {peak:.4g}, beyond full scale: scaled by "
                              f"{gain:.6g} to fit, then rounded to 24 bits", gain)
    elif not np.array_equal(q / _FULL24, x):
        note = _note(subtype, f"{subtype.lower()} samples rounded to 24 bits (error at most 2^-24 of full scale)")
    return _flac(q.astype(np.int32) << 8, sr, "PCM_24"), note


def _int32_to_flac(data: np.ndarray, sr: int, subtype: str) -> Tuple[bytes, Optional[dict]]:
    if not np.any(data & 0xFF):
        return _flac(data, sr, "PCM_24"), None  # 24-bit audio in a 32-bit container: exact
    q = np.minimum((data.astype(np.int64) + 128) >> 8, _FULL24 - 1)
    note = _note(subtype, "32-bit integer samples rounded to 24 bits, the most a FLAC shard holds")
    return _flac((q << 8).astype(np.int32), sr, "PCM_24"), note


def _note(subtype: str, detail: str, gain: float = 1.0) -> dict:
    return {"source": subtype, "stored": "FLAC PCM_24", "lossless": False, "gain": round(gain, 9), "detail": detail}


def _encode_plain(path: Path, audio_format: str) -> Tuple[bytes, str, Optional[dict]]:
    if audio_format == "original" or source_ext(path) == "flac":
        # A FLAC source already is a fixed lossless encoding: keep its bytes.
        data = read_regular(path, MAX_AUDIO_BYTES, missing="missing_audio")
        return data, "flac" if audio_format == "flac" else source_ext(path), None
    data, note = encode_flac_noted(path)
    return data, "flac", note


def _encode_located(rec: Utterance, audio_format: str) -> Tuple[bytes, str, Optional[dict]]:
    """A span (always FLAC: there are no original bytes of a cut) or an archive member
    (its own bytes, as for a file), read through :mod:`voxbox.media`."""
    from voxbox import media

    loc = media.record_location(rec)
    ext = source_ext(loc.member or loc.file.name)
    whole = rec.span_offset is None and rec.span_duration is None
    if whole and (audio_format == "original" or ext == "flac"):
        return media.record_bytes(rec), "flac" if audio_format == "flac" else ext, None
    data, sr, subtype = media.read_frames(rec, dtype=_dtype)
    problem = audio_problem(sr, data.shape[0], data.shape[1])
    if problem is not None:
        raise problem
    flac, note = _to_flac(data, sr, subtype)
    return flac, "flac", note


def storage_rejection(rec: Utterance, stage: str = "shard") -> Optional[Rejection]:
    """For a record that does not say its channels or rate (a manifest from elsewhere):
    the rejection when its audio file is one no FLAC shard holds, found from the header
    before any stage spends time on it. Records that say them were checked when read."""
    import soundfile as sf

    from voxbox import media

    if rec.channels is not None and rec.sample_rate is not None:
        return None
    try:
        if not rec.source_path or not media.is_plain(rec):
            return None
        with open_regular(rec.audio_path, missing="missing_audio") as fh, sf.SoundFile(fh) as f:
            problem = audio_problem(f.samplerate, f.frames, f.channels)
    except Exception:  # noqa: BLE001 - unreadable audio is the stages' and the encoder's to reject
        return None
    if problem is None:
        return None
    return Rejection(stage=stage, path=rec.source_path, reason=problem.reason, index=rec.index, detail=problem.detail)


def encode_record(rec: Utterance, audio_format: str = "flac", stage: str = "shard") -> Union[EncodedSample, Rejection]:
    """The record's shard bytes, or a Rejection when its audio is unusable. When FLAC
    cannot hold the source as it is, the returned record says what changed."""
    audio = encode_audio(rec, audio_format, stage)
    return audio if isinstance(audio, Rejection) else with_audio(rec, audio)


#: What :func:`encode_audio` gives for a usable record: (bytes, extension, note or None).
EncodedAudio = Tuple[bytes, str, Optional[dict]]


def with_audio(rec: Utterance, audio: EncodedAudio) -> EncodedSample:
    """The sample of ``rec`` holding ``audio``; the record notes any change FLAC made."""
    data, ext, note = audio
    if note is not None:
        rec = rec.replace(extra={**(rec.extra or {}), "stored_audio": note})
    return EncodedSample(rec, data, ext)


def encode_audio(rec: Utterance, audio_format: str = "flac", stage: str = "shard") -> Union[EncodedAudio, Rejection]:
    """The shard bytes of the record's audio, which depend only on where the audio is
    (source, span, archive member), never on what stages added: an engine may encode
    before the last stages run (:mod:`voxbox.build.engine.local`)."""
    from voxbox import media

    if audio_format not in AUDIO_FORMATS:
        raise VoxboxError(f"unknown audio format {audio_format!r} (use one of {', '.join(AUDIO_FORMATS)})")
    if not rec.source_path:
        return Rejection(stage=stage, path=rec.index, reason="no_audio_path", index=rec.index,
                         detail=rec.missing_audio_detail())
    try:
        if media.is_plain(rec):
            return _encode_plain(rec.audio_path, audio_format)
        return _encode_located(rec, audio_format)
    except FileRefused as e:
        return Rejection(stage=stage, path=rec.source_path, reason=e.reason, index=rec.index, detail=e.detail)
    except media.MediaError as e:
        return Rejection(stage=stage, path=rec.source_path, reason=e.reason, index=rec.index, detail=str(e)[:300])
    except Exception as e:  # noqa: BLE001 - any decoder failure is a bad input, not a crash
        msg = first_line(e)
        return Rejection(stage=stage, path=rec.source_path, reason="unreadable_audio", index=rec.index,
                         detail=msg[:300])
