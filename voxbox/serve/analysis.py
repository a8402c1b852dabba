"""What the record view draws: the waveform, the trimmed speech region and the pitch track.

All three come from the annotator's own front end (:func:`voxbox.annotate.frontend.prepare_array`:
16 kHz, volume-normalised, RMS-trimmed) and pitch tracker, so the picture shows exactly
what the stored ``speech_duration`` and ``pitch`` were measured on.
"""

from __future__ import annotations

import io
from typing import Optional

import numpy as np

from voxbox.errors import first_line

ENVELOPE_POINTS = 800
MAX_SECONDS = 600.0  # longer clips are not analysed in a request


def envelope(audio: np.ndarray, points: int = ENVELOPE_POINTS) -> dict:
    """Min and max of ``points`` equal slices: a waveform drawing that fits any width."""
    n = len(audio)
    points = max(1, min(points, n))
    edges = np.linspace(0, n, points + 1).astype(np.int64)
    lo = np.minimum.reduceat(audio, edges[:-1]) if n else np.zeros(0)
    hi = np.maximum.reduceat(audio, edges[:-1]) if n else np.zeros(0)
    # float64 before rounding: rounded float32 values print as 0.0001000000047...
    return {"min": np.round(lo.astype(np.float64), 4).tolist(), "max": np.round(hi.astype(np.float64), 4).tolist()}


def analyse(audio_bytes: bytes, pitch_backend: Optional[str] = None) -> dict:
    """Waveform envelope, speech bounds (s) and F0 track (Hz per 5 ms frame, 0 = unvoiced)."""
    from voxbox.annotate.frontend import AudioError, prepare_array
    from voxbox.annotate.pitch import BACKENDS, FRAME_PERIOD_MS, f0_track
    from voxbox.dataset.reader import decode_audio

    try:
        samples, sr = decode_audio(audio_bytes)
    except Exception as e:  # noqa: BLE001 - libsndfile raises its own error type
        return {"error": "unreadable_audio", "detail": first_line(e)}
    if len(samples) > MAX_SECONDS * sr:
        return {"error": "too long to draw", "detail": f"clip longer than {MAX_SECONDS:.0f} s is not drawn"}
    try:
        fe = prepare_array(samples[:, 0], sr)
    except AudioError as e:
        return {"error": e.reason, "detail": str(e)}
    backend = pitch_backend if pitch_backend in BACKENDS else "world"
    f0 = f0_track(fe.speech, fe.sr, backend)
    voiced = f0[f0 > 0]
    return {
        "sample_rate": fe.sr,
        "duration": len(fe.audio) / fe.sr,
        "speech_start": fe.start / fe.sr,
        "speech_end": fe.end / fe.sr,
        "envelope": envelope(fe.audio.astype(np.float32)),
        "pitch": {"backend": backend, "hop": FRAME_PERIOD_MS / 1000.0, "offset": fe.start / fe.sr,
                  "f0": np.round(f0, 1).tolist(),
                  "mean": round(float(voiced.mean()), 3) if voiced.size else None},
    }


def wav_bytes(wav: np.ndarray, sr: int) -> bytes:
    """16-bit PCM WAV of a float signal (what every browser plays)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def to_wav(audio_bytes: bytes) -> bytes:
    """Any audio soundfile can decode, as WAV (for formats a browser may not play)."""
    from voxbox.dataset.reader import decode_audio

    samples, sr = decode_audio(audio_bytes)
    return wav_bytes(samples, sr)
