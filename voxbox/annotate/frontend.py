"""The VoxBox audio front end, shared by every stage that reads audio.

The release computed its numbers from audio prepared exactly like this
(spec/voxbox.md section 3.4), so every step here mirrors it, quirks included:

1. read with soundfile as float64, keep channel 0;
2. resample to 16 kHz with soxr at quality "VHQ" (only when the rate differs);
3. volume normalisation (:func:`volume_normalize`, shared with spark_tokenize);
4. ``duration`` = normalised length / rate;
5. RMS end trimming (:func:`speech_bounds`: 0.1 s window, hop 0.01 s,
   threshold 0.01, margin 0.2 s); ``speech_duration`` = trimmed length / rate.

Errors a caller can record as a rejection raise :class:`AudioError` with a short
``reason`` code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, Optional, Tuple, Union

import numpy as np

# One implementation of the VoxBox/Spark-TTS volume normalisation for the whole
# project (it reproduces the release's order of operations, quirk included).
from spark_tokenize.audio import volume_normalize  # noqa: F401  (re-exported)

from voxbox.errors import VoxboxError, first_line
from voxbox.limits import FileRefused, duration_problem, open_regular

TARGET_SR = 16000
TRIM_WINDOW_S = 0.1
TRIM_THRESHOLD = 0.01
TRIM_MARGIN_WINDOWS = 2


class AudioError(VoxboxError):
    """Audio that cannot be annotated; ``reason`` is a stable code for rejects."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def read_audio(path: Union[str, Path]) -> Tuple[np.ndarray, int, int]:
    """Channel 0 as float64, the file's rate and its channel count.

    Only a regular file is opened (a FIFO would block forever, a link to /dev/zero
    never end), and its length is checked against the duration cap from the header,
    before decoding (a 3-hour clip would take gigabytes). Raises AudioError with
    reason missing_audio, not_a_regular_file, symlink_loop, too_long or
    unreadable_audio.
    """
    try:
        fh = open_regular(path, missing="missing_audio")
    except FileRefused as e:
        raise AudioError(e.reason, f"{path}: {'audio file not found' if e.detail == 'not found' else e.detail}") from None
    with fh:
        return _decode_channel0(fh, path)


def _decode_channel0(fh, path) -> Tuple[np.ndarray, int, int]:
    import soundfile as sf

    try:
        # The open file, not the path: it is the one checked, and libsndfile refuses
        # paths longer than 1 KiB on its own.
        with sf.SoundFile(fh) as f:
            sr, channels = int(f.samplerate), int(f.channels)
            too_long = duration_problem(sr, f.frames)
            if too_long is not None:
                raise AudioError(too_long.reason, f"{path}: {too_long.detail}")
            if channels == 1:
                audio = f.read(dtype="float64")
            else:
                # Block by block, keeping channel 0: a long multichannel file never
                # sits in memory with all its channels.
                parts = [block[:, 0].copy() for block in f.blocks(blocksize=1 << 18, dtype="float64",
                                                                  always_2d=True)]
                audio = np.concatenate(parts) if parts else np.zeros(0)
    except AudioError:
        raise
    except Exception as e:  # libsndfile raises several types for damaged files
        msg = first_line(e)
        raise AudioError("unreadable_audio", f"{path}: cannot decode audio ({msg})") from None
    return np.ascontiguousarray(audio, dtype=np.float64), sr, channels


def resample(audio: np.ndarray, sr: int, target_sr: int = TARGET_SR) -> np.ndarray:
    if sr == target_sr:
        return audio
    import soxr

    return soxr.resample(audio, sr, target_sr, quality="VHQ")


def speech_bounds(audio: np.ndarray, sr: int, window_s: float = TRIM_WINDOW_S,
                  threshold: float = TRIM_THRESHOLD,
                  margin_windows: int = TRIM_MARGIN_WINDOWS) -> Tuple[int, int]:
    """[start, end) of speech by windowed RMS, as the release trimmed it.

    Windows of ``window_s`` at a hop of a tenth of that; the first and last windows
    whose RMS reaches ``threshold`` are kept with ``margin_windows`` windows of margin.
    As in the release, ``end`` is the *start* of the last loud window plus the margin.
    Raises AudioError("audio_too_short") for clips shorter than one window and
    AudioError("silent_audio") when no window reaches the threshold.
    """
    win = int(window_s * sr)
    hop = win // 10
    margin = margin_windows * win
    if audio.shape[0] < win:
        raise AudioError("audio_too_short", f"clip shorter than one {window_s:g} s trimming window")
    # Running sums give every window's energy in O(n) without a (windows x win) array.
    csum = np.concatenate(([0.0], np.cumsum(audio * audio)))
    starts = np.arange(0, audio.shape[0] - win + 1, hop)
    energy = np.sqrt(np.maximum(csum[starts + win] - csum[starts], 0.0) / win)
    loud = energy >= threshold
    if not loud.any():
        raise AudioError("silent_audio", "no speech found: every window is below the RMS threshold")
    first = int(np.argmax(loud))
    last = int(loud.shape[0] - 1 - np.argmax(loud[::-1]))
    start = max(0, first * hop - margin)
    end = min(audio.shape[0], last * hop + margin)
    return start, end


CLIP_LEVEL = 0.999


def clipping_ratio(raw: np.ndarray, level: float = CLIP_LEVEL) -> float:
    """Fraction of source samples at full scale (|x| >= 0.999; int16 full scale is
    0.99997). Measured before resampling and normalisation, which would hide it."""
    if raw.shape[0] == 0:
        return 0.0
    return float(np.count_nonzero(np.abs(raw) >= level)) / raw.shape[0]


@dataclass
class FrontEnd:
    """A clip after the VoxBox front end."""

    audio: np.ndarray        # volume-normalised, full length, at ``sr``
    sr: int
    start: int               # speech bounds in ``audio``
    end: int
    source_sr: int
    channels: int
    source_samples: int
    clipping_ratio: float = 0.0  # of the source samples (channel 0) at full scale

    @property
    def speech(self) -> np.ndarray:
        return self.audio[self.start:self.end]

    @property
    def duration(self) -> float:
        return self.audio.shape[0] / self.sr

    @property
    def speech_duration(self) -> float:
        return (self.end - self.start) / self.sr


def load_audio(path: Union[str, Path], sr: int = TARGET_SR, normalize: bool = True) -> np.ndarray:
    """Channel 0, resampled to ``sr``, optionally volume-normalised (no trimming)."""
    audio, source_sr, _ = read_audio(path)
    audio = resample(audio, source_sr, sr)
    return volume_normalize(audio) if normalize else audio


def front_end(src, sr: int = TARGET_SR) -> FrontEnd:
    """Load, check, resample, normalise and find the speech bounds of one clip.

    ``src`` is a path or a record; a record's span or archive member is read through
    :mod:`voxbox.media` (a whole file on disk takes the plain path)."""
    from voxbox import media

    if not isinstance(src, (str, Path)):
        if not media.is_plain(src):
            raw, source_sr, channels = read_record_channel0(src)
            where = src.source_path
            return _analyse(raw, source_sr, sr, channels, f"{where}: span has", f"{where}: audio contains")
        src = src.audio_path
    raw, source_sr, channels = read_audio(src)
    return _analyse(raw, source_sr, sr, channels, f"{src}: file has", f"{src}: audio contains")


def read_record_channel0(rec) -> Tuple[np.ndarray, int, int]:
    """Channel 0 of a record's span or archive member as float64, its rate and channels."""
    from voxbox import media

    try:
        data, source_sr, _ = media.read_frames(rec, dtype="float64", always_2d=True)
    except media.MediaError as e:
        raise AudioError(e.reason, str(e)) from None
    return np.ascontiguousarray(data[:, 0]), source_sr, int(data.shape[1])


def prepare_array(audio: np.ndarray, sr: int, target_sr: int = TARGET_SR,
                  source_sr: Optional[int] = None) -> FrontEnd:
    """The same front end for audio already in memory (mono float array)."""
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim > 1:
        audio = audio[:, 0]
    fe = _analyse(audio, sr, target_sr, 1, "audio has", "audio contains")
    if source_sr:
        fe.source_sr = source_sr
    return fe


def _analyse(raw: np.ndarray, source_sr: int, sr: int, channels: int, has: str, contains: str) -> FrontEnd:
    """The checks and steps shared by files and arrays; ``has``/``contains`` start the messages."""
    if raw.shape[0] == 0:
        raise AudioError("no_audio_samples", f"{has} no samples")
    if not np.all(np.isfinite(raw)):
        raise AudioError("non_finite_samples", f"{contains} NaN or infinite samples")
    clipped = clipping_ratio(raw)
    audio = volume_normalize(resample(raw, source_sr, sr))
    start, end = speech_bounds(audio, sr)
    return FrontEnd(audio=audio, sr=sr, start=start, end=end, source_sr=source_sr,
                    channels=channels, source_samples=int(raw.shape[0]), clipping_ratio=clipped)


def labelled_front_ends(recs: Iterable, label_of: Callable, skipped: Dict[str, int],
                        reason: str) -> Iterator[Tuple[object, str, FrontEnd]]:
    """(record, label, front end) for each record with a label whose audio reads, for the
    trainers; the others are counted in ``skipped`` by reason (``reason`` when the record
    has no label, else the audio's)."""
    for rec in recs:
        label, why = label_of(rec), reason
        if label is not None:
            try:
                fe = front_end(rec)
            except AudioError as e:
                why = e.reason
            else:
                yield rec, label, fe
                continue
        skipped[why] = skipped.get(why, 0) + 1
