"""Voice activity segmentation: long recordings cut into utterance spans with Silero VAD.

``voxbox prepare folder --segment vad`` runs :func:`segment_recording` on every
recording; each segment becomes a *span* record (``span_offset``/``span_duration``, see
:mod:`voxbox.media`), so nothing is cut on disk and the shards store the span's own
samples.

The model is Silero VAD's ONNX export as the ``silero-vad`` pip package ships it
(``silero_vad/data/silero_vad.onnx``, MIT), run here with onnxruntime on one thread:
offline, and about three times faster on a CPU than the package's TorchScript model.
The package's own Python helpers are not used: they need torch tensors; this module
feeds the ONNX graph numpy windows itself (its inputs: ``input`` = 64 samples of context
+ a 512-sample window at 16 kHz, ``state`` (2, 1, 128), ``sr``; output: the speech
probability of the window).

From the per-window speech probabilities (32 ms windows) to segments, deterministically:

1. speech starts where the probability reaches ``threshold`` and ends where it falls
   below ``threshold - 0.15`` (hysteresis, so one dip does not cut a word);
2. pauses shorter than ``min_silence`` are bridged;
3. a region longer than ``max_duration`` (less the padding) is cut at its least
   speech-like window (lowest probability, then lowest energy, then earliest) such that
   both parts keep at least ``min_duration``, again until every part fits;
4. each segment gets ``padding`` seconds on both sides, never past the recording or into
   a neighbour's padding (a gap shorter than two paddings is shared at its middle);
5. segments still shorter than ``min_duration`` are left out (counted).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Iterable, Iterator, List, Optional, Tuple

import numpy as np

from voxbox.errors import VoxboxError

VAD_SR = 16000
WINDOW = 512                # samples per VAD window at 16 kHz (32 ms)
CONTEXT = 64                # samples of the previous window the model sees
HYSTERESIS = 0.15           # speech ends below threshold - this
BLOCK_S = 30                # seconds of the source decoded at a time (flat memory)


@dataclass(frozen=True)
class VadConfig:
    """Segmentation settings (the folder recipe's vad_* options); seconds."""

    threshold: float = 0.5
    min_duration: float = 1.0
    max_duration: float = 20.0
    padding: float = 0.2
    min_silence: float = 0.3

    def check(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise VoxboxError(f"vad_threshold must be between 0 and 1, got {self.threshold}")
        for name in ("min_duration", "max_duration", "padding", "min_silence"):
            v = getattr(self, name)
            if not np.isfinite(v) or v < 0:
                raise VoxboxError(f"vad_{name} must be a finite number >= 0, got {v}")
        if self.max_duration < 2 * self.padding + 2 * WINDOW / VAD_SR:
            raise VoxboxError(f"vad_max_duration {self.max_duration} s leaves no room for speech between "
                              f"two paddings of {self.padding} s")
        if self.min_duration > self.max_duration:
            raise VoxboxError(f"vad_min_duration {self.min_duration} s is above vad_max_duration "
                              f"{self.max_duration} s")


@dataclass
class Track:
    """One recording's VAD track: per-window speech probability and energy (16 kHz windows)."""

    probs: np.ndarray       # (windows,) float32 in [0, 1]
    energy: np.ndarray      # (windows,) mean square of the 16 kHz window
    samples16: int          # the recording's length at 16 kHz


@dataclass(frozen=True)
class Segment:
    start: int              # first frame, at the recording's own sample rate
    count: int              # frames
    speech_prob: float      # mean speech probability of its windows (before padding)


def model_path() -> str:
    """The ONNX model the silero-vad package ships (found without importing the package,
    whose __init__ imports torch)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise VoxboxError("--segment vad needs the silero-vad package: pip install 'voxbox[vad]'")
    path = os.path.join(list(spec.submodule_search_locations)[0], "data", "silero_vad.onnx")
    if not os.path.isfile(path):
        raise VoxboxError(f"the silero-vad package has no {path}; reinstall it (pip install 'voxbox[vad]')")
    return path


class SileroVad:
    """The Silero VAD ONNX graph, one window at a time with its recurrent state."""

    def __init__(self):
        try:
            import onnxruntime as ort
        except ImportError:
            raise VoxboxError("--segment vad needs onnxruntime: pip install 'voxbox[vad]'") from None
        opts = ort.SessionOptions()
        # One thread: the graph is tiny (a thread pool only adds overhead) and the result
        # does not depend on the machine's core count.
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(model_path(), sess_options=opts, providers=["CPUExecutionProvider"])
        self._sr = np.array(VAD_SR, dtype=np.int64)

    def track(self, blocks: Iterable[np.ndarray]) -> "Track":
        """The VAD track of a recording given as consecutive mono float32 16 kHz blocks
        (any sizes): memory stays flat however long the recording. The recurrent state
        starts at zero; the last partial window is zero-padded."""
        state = np.zeros((2, 1, 128), dtype=np.float32)
        buf = np.zeros(CONTEXT, dtype=np.float32)  # 64 samples of context, then unread samples
        probs: List[np.ndarray] = []
        energy: List[np.ndarray] = []
        total = 0
        for block in blocks:
            total += len(block)
            buf = np.concatenate([buf, np.asarray(block, dtype=np.float32)])
            n = (len(buf) - CONTEXT) // WINDOW
            state = self._windows(buf, n, state, probs, energy)
            buf = buf[n * WINDOW:]
        if len(buf) > CONTEXT:
            tail = np.zeros(CONTEXT + WINDOW, dtype=np.float32)
            tail[:len(buf)] = buf
            self._windows(tail, 1, state, probs, energy)
        cat = (lambda xs: np.concatenate(xs) if xs else np.zeros(0, np.float32))
        return Track(probs=cat(probs), energy=cat(energy), samples16=total)

    def _windows(self, buf: np.ndarray, n: int, state: np.ndarray, probs: list, energy: list) -> np.ndarray:
        """Run ``n`` windows of ``buf`` (each with the CONTEXT samples before it); returns the state."""
        out = np.empty(n, dtype=np.float32)
        run = self.session.run
        for i in range(n):
            prob, state = run(None, {"input": buf[None, i * WINDOW:(i + 1) * WINDOW + CONTEXT],
                                     "state": state, "sr": self._sr})
            out[i] = prob[0, 0]
        frames = buf[CONTEXT:CONTEXT + n * WINDOW].reshape(n, WINDOW)
        probs.append(out)
        energy.append(np.square(frames, dtype=np.float32).mean(axis=1))
        return state


def read_mono16(fh) -> Iterator[np.ndarray]:
    """An open audio file as blocks of mono float32 at 16 kHz, decoded and resampled
    BLOCK_S seconds at a time.

    Raises ValueError("non_finite") for NaN or infinite samples.
    """
    import soundfile as sf
    import soxr

    with sf.SoundFile(fh) as f:
        stream = soxr.ResampleStream(f.samplerate, VAD_SR, 1, dtype="float32") if f.samplerate != VAD_SR else None
        while True:
            block = f.read(BLOCK_S * f.samplerate, dtype="float32", always_2d=True)
            last = len(block) < BLOCK_S * f.samplerate
            mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
            if not np.all(np.isfinite(mono)):
                raise ValueError("non_finite")
            yield stream.resample_chunk(mono, last=last) if stream else mono
            if last:
                return


def speech_regions(probs: np.ndarray, threshold: float) -> List[Tuple[int, int]]:
    """[start, end) window ranges of speech, with hysteresis."""
    off = max(threshold - HYSTERESIS, 0.01)
    regions: List[Tuple[int, int]] = []
    start: Optional[int] = None
    for i, p in enumerate(probs.tolist()):
        if start is None and p >= threshold:
            start = i
        elif start is not None and p < off:
            regions.append((start, i))
            start = None
    if start is not None:
        regions.append((start, len(probs)))
    return regions


def bridge(regions: List[Tuple[int, int]], max_gap: int) -> List[Tuple[int, int]]:
    """Regions separated by at most ``max_gap`` windows joined into one."""
    out: List[Tuple[int, int]] = []
    for s, e in regions:
        if out and s - out[-1][1] <= max_gap:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def split_long(start: int, end: int, t: Track, max_w: int, min_w: int) -> List[Tuple[int, int]]:
    """[start, end) cut into parts of at most ``max_w`` windows, each cut at the least
    speech-like window that leaves both sides at least ``min_w`` (a hard cut at ``max_w``
    when no such window exists)."""
    parts: List[Tuple[int, int]] = []
    while end - start > max_w:
        lo, hi = start + max(min_w, 1), min(start + max_w, end - min_w)
        if hi <= lo:
            cut = start + max_w
        else:
            # lexsort: last key first; stable, so equal (prob, energy) keeps the earliest.
            cut = lo + int(np.lexsort((t.energy[lo:hi + 1], t.probs[lo:hi + 1]))[0])
        parts.append((start, cut))
        start = cut
    parts.append((start, end))
    return parts


def segments(t: Track, cfg: VadConfig, sr: int, frames: int) -> Tuple[List[Segment], int]:
    """(segments at the recording's rate, number left out as shorter than min_duration)."""
    win_s = WINDOW / VAD_SR
    regions = bridge(speech_regions(t.probs, cfg.threshold), int(cfg.min_silence / win_s))
    max_w = max(int((cfg.max_duration - 2 * cfg.padding) / win_s), 1)
    min_w = int(np.ceil(max(cfg.min_duration - 2 * cfg.padding, 0.0) / win_s))
    cores = [p for s, e in regions for p in split_long(s, e, t, max_w, min_w)]
    pad = int(round(cfg.padding * VAD_SR))
    out: List[Segment] = []
    short = 0
    for i, (s, e) in enumerate(cores):
        # 16 kHz samples: padding never reaches past the middle of the gap to a neighbour.
        s16, e16 = s * WINDOW, min(e * WINDOW, t.samples16)
        prev_end = cores[i - 1][1] * WINDOW if i else None
        next_start = cores[i + 1][0] * WINDOW if i + 1 < len(cores) else None
        a = max(s16 - pad, 0 if prev_end is None else (prev_end + s16 + 1) // 2)
        b = min(e16 + pad, t.samples16 if next_start is None else (e16 + next_start) // 2)
        first, last = round(a * sr / VAD_SR), min(round(b * sr / VAD_SR), frames)
        if last - first < cfg.min_duration * sr or last <= first:
            short += 1
            continue
        out.append(Segment(first, last - first, round(float(t.probs[s:e].mean()), 4)))
    return out, short
