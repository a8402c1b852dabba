"""Audio bytes for shards: a fixed FLAC encoding of the source, or its original bytes.

FLAC is lossless for integer PCM sources: 8/16-bit sources become 16-bit FLAC and
deeper or float sources 24-bit FLAC, all channels and the source sample rate kept, so
a shard holds the corpus audio itself (annotation works on its own resampled copy).
The encoder settings are fixed so that the same source gives the same bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from voxbox.record import Rejection, Utterance

AUDIO_FORMATS = ("flac", "original")
FLAC_COMPRESSION_LEVEL = 0.5  # soundfile's 0..1 scale; fixed for byte-stable output
_SHALLOW = {"PCM_S8", "PCM_U8", "PCM_16", "ULAW", "ALAW", "DPCM_8", "DPCM_16", "DWVW_12", "DWVW_16",
            "G721_32", "G723_24", "G723_40", "GSM610", "IMA_ADPCM", "MS_ADPCM", "VOX_ADPCM",
            "MPEG_LAYER_III", "VORBIS", "OPUS"}


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
    import soundfile as sf

    info = sf.info(str(path))
    if info.subtype in _SHALLOW:
        dtype, subtype = "int16", "PCM_16"
    else:
        dtype, subtype = "int32", "PCM_24"
    data, sr = sf.read(str(path), dtype=dtype, always_2d=True)
    buf = io.BytesIO()
    sf.write(buf, data, sr, format="FLAC", subtype=subtype, compression_level=FLAC_COMPRESSION_LEVEL)
    return buf.getvalue()


def encode_record(rec: Utterance, audio_format: str = "flac", stage: str = "shard") -> Union[EncodedSample, Rejection]:
    """Read ``rec.audio_path`` and return its shard bytes, or a Rejection if unreadable."""
    path = rec.audio_path
    try:
        if audio_format == "original" or source_ext(path) == "flac":
            # A FLAC source already is a fixed lossless encoding: keep its bytes.
            data = Path(path).read_bytes()
            ext = source_ext(path)
            if audio_format == "flac":
                ext = "flac"
        elif audio_format == "flac":
            data, ext = encode_flac(path), "flac"
        else:
            raise ValueError(f"unknown audio format {audio_format!r} (use one of {', '.join(AUDIO_FORMATS)})")
    except FileNotFoundError:
        return Rejection(stage=stage, path=rec.source_path or str(path), reason="missing_audio", index=rec.index)
    except Exception as e:  # noqa: BLE001 - any decoder failure is a bad input, not a crash
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        return Rejection(stage=stage, path=rec.source_path or str(path), reason="unreadable_audio",
                         index=rec.index, detail=msg[:300])
    return EncodedSample(rec, data, ext)
