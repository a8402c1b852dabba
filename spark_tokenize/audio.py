"""The Spark-TTS audio front end: read, channel 0, soxr VHQ resample, volume normalise.

Public so that other code (voxbox's annotation front end) can share one
implementation. Everything stays float64 until the model boundary, as in the
reference, so the loaded waveform is bit-identical to it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .errors import TokenizerError

AudioInput = Union[str, os.PathLike, np.ndarray]


def volume_normalize(audio: np.ndarray, coeff: float = 0.2) -> np.ndarray:
    """Spark-TTS / VoxBox volume normalisation.

    Quiet audio (peak < 0.1) is first scaled so that its peak becomes 0.1. The level
    estimate is then the mean of the 90th..99th percentile band of the magnitudes above
    0.01 and the signal is scaled by clip(coeff / level, 0.1, 10), then peak-limited to 1.

    Faithful to a quirk of the reference: the magnitudes used for the level estimate are
    those *before* the quiet-audio scaling, so for quiet input the band is taken from the
    unscaled values while the gain is applied to the scaled signal.
    """
    audio = np.asarray(audio)
    if audio.size == 0:
        return audio
    mags = np.sort(np.abs(audio))
    if mags[-1] < 0.1:
        audio = audio / max(mags[-1], 1e-3) * 0.1
    mags = mags[mags > 0.01]
    n = mags.shape[0]
    if n <= 10:
        return audio
    volume = np.mean(mags[int(0.9 * n): int(0.99 * n)])
    audio = audio * np.clip(coeff / volume, a_min=0.1, a_max=10)
    peak = np.max(np.abs(audio))
    if peak > 1:
        audio = audio / peak
    return audio


_normalize_volume = volume_normalize  # load_audio's flag shadows the name


def read_audio(path: Union[str, os.PathLike], max_seconds: Optional[float] = None) -> tuple[np.ndarray, int]:
    """Read a file as float64 with soundfile; channel 0 of multichannel audio.

    Only a regular file is read (a FIFO would block, a device never end); with
    ``max_seconds`` a longer file is refused from its header, before decoding.
    """
    import soundfile as sf

    p = Path(path)
    if not p.is_file():
        if p.exists():
            raise TokenizerError(f"not a regular file (a FIFO, device or folder): {p}", reason="not_a_regular_file")
        raise TokenizerError(f"audio file not found: {p}", reason="missing_audio")
    try:
        with sf.SoundFile(str(p)) as f:
            if max_seconds is not None and f.frames > max_seconds * f.samplerate:
                raise TokenizerError(f"{p}: {f.frames / f.samplerate:.1f} s, longer than the {max_seconds:g} s "
                                     "allowed", reason="too_long")
            audio, sr = f.read(dtype="float64", always_2d=False), f.samplerate
    except TokenizerError:
        raise
    except Exception as e:  # soundfile raises a bare RuntimeError/LibsndfileError
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise TokenizerError(f"cannot read audio file {p}: {msg}", reason="unreadable_audio") from None
    if audio.ndim > 1:
        audio = audio[:, 0]
    return audio, int(sr)


def load_audio(
    path_or_array: AudioInput,
    sample_rate: Optional[int] = None,
    target_sr: int = 16000,
    volume_normalize: bool = True,
    max_seconds: Optional[float] = None,
) -> np.ndarray:
    """Load audio the way Spark-TTS does and return a 1-D float64 array at ``target_sr``.

    ``path_or_array`` is a file path or a numpy array (1-D, or 2-D as (samples, channels)
    like soundfile returns; channel 0 is kept). An array needs ``sample_rate``; a file's
    own rate is used and ``sample_rate`` must be None or equal to it. A file longer than
    ``max_seconds`` is refused from its header (TokenizerError reason ``too_long``).
    """
    if isinstance(path_or_array, (str, os.PathLike)):
        audio, sr = read_audio(path_or_array, max_seconds)
        if sample_rate is not None and int(sample_rate) != sr:
            raise TokenizerError(
                f"sample_rate={sample_rate} given for {path_or_array}, but the file is {sr} Hz",
                reason="bad_audio_array")
    else:
        if sample_rate is None:
            raise TokenizerError("an audio array needs its sample_rate", reason="bad_audio_array")
        audio = np.asarray(path_or_array)
        if audio.ndim == 2:
            audio = audio[:, 0]
        elif audio.ndim != 1:
            raise TokenizerError(f"audio array must be 1-D or (samples, channels), got shape {audio.shape}",
                                 reason="bad_audio_array")
        if not np.issubdtype(audio.dtype, np.floating):
            raise TokenizerError(f"audio array must be floating point in [-1, 1], got dtype {audio.dtype}",
                                 reason="bad_audio_array")
        audio = audio.astype(np.float64, copy=False)
        sr = int(sample_rate)
        if sr <= 0:
            raise TokenizerError(f"sample_rate must be positive, got {sample_rate}", reason="bad_audio_array")
    if audio.size and not np.all(np.isfinite(audio)):
        bad = int(np.count_nonzero(~np.isfinite(audio)))
        raise TokenizerError(f"audio contains {bad} NaN or infinite sample(s)", reason="non_finite_samples")
    if sr != target_sr and audio.size:
        import soxr

        audio = soxr.resample(audio, sr, target_sr, quality="VHQ")
    if volume_normalize:
        audio = _normalize_volume(audio)
    return audio


def reference_clip(wav: np.ndarray, length: int) -> np.ndarray:
    """The speaker-branch input: the first ``length`` samples, tiling short audio whole."""
    if len(wav) < length:
        wav = np.tile(wav, length // len(wav) + 1)
    return wav[:length]
