"""Mean pitch and pitch variability, as VoxBox defines them (spec section 3.4).

Backends:

- ``world`` (default, the VoxBox definition): WORLD DIO + StoneMask at a 5 ms hop
  with DIO's default 71-800 Hz search range; values outside 50-2400 Hz are unvoiced.
- ``praat``: Praat's autocorrelation pitch (parselmouth) over the same 5 ms hop and
  75-600 Hz range, for users who prefer Praat's tracker. It is a different tracker:
  do not mix backends inside one dataset (the backend is stored per record).

``pitch`` is the mean voiced F0 in Hz; ``pitch_std`` is the standard deviation of
the voiced track after min-max normalisation to [0, 1] (unitless). Both are 0 when
no frame is voiced, as in the release.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Tuple

import numpy as np

from voxbox.errors import VoxboxError

BACKENDS = ("world", "praat")
FRAME_PERIOD_MS = 5.0


def import_pyworld():
    """Import pyworld even where setuptools no longer ships ``pkg_resources``.

    pyworld 0.3.5 reads its own version through pkg_resources at import time;
    recent setuptools removed that module. A throw-away stand-in answers that one
    call and is removed again so no other library mistakes it for the real thing.
    """
    try:
        return importlib.import_module("pyworld")
    except ModuleNotFoundError as e:
        if e.name != "pkg_resources":
            raise
    from importlib import metadata

    shim = types.ModuleType("pkg_resources")
    shim.get_distribution = lambda name: types.SimpleNamespace(version=metadata.version(name))
    sys.modules["pkg_resources"] = shim
    try:
        for name in [m for m in sys.modules if m == "pyworld" or m.startswith("pyworld.")]:
            del sys.modules[name]
        return importlib.import_module("pyworld")
    finally:
        if sys.modules.get("pkg_resources") is shim:
            del sys.modules["pkg_resources"]


def f0_world(audio: np.ndarray, sr: int, pyworld=None) -> np.ndarray:
    """F0 per 5 ms frame (0 = unvoiced) by DIO + StoneMask."""
    pw = pyworld or import_pyworld()
    x = np.ascontiguousarray(audio, dtype=np.float64)
    frame_period = int(sr * FRAME_PERIOD_MS / 1000) / sr * 1000
    f0, t = pw.dio(x, sr, frame_period=frame_period)
    f0 = pw.stonemask(x, f0, t, sr)
    f0[(f0 < 50) | (f0 > 2400) | ~np.isfinite(f0)] = 0.0
    return f0


def f0_praat(audio: np.ndarray, sr: int, floor: float = 75.0, ceiling: float = 600.0) -> np.ndarray:
    """F0 per 5 ms frame (0 = unvoiced) by Praat's autocorrelation method."""
    import parselmouth

    snd = parselmouth.Sound(np.ascontiguousarray(audio, dtype=np.float64), sampling_frequency=sr)
    # Praat needs a few periods of the floor; shorter clips have no analysable frame.
    if snd.duration < 3.0 / floor:
        return np.zeros(0)
    pitch = snd.to_pitch_ac(time_step=FRAME_PERIOD_MS / 1000, pitch_floor=floor, pitch_ceiling=ceiling)
    f0 = np.nan_to_num(pitch.selected_array["frequency"], nan=0.0)
    f0[(f0 < 50) | (f0 > 2400)] = 0.0
    return f0


def f0_track(audio: np.ndarray, sr: int, backend: str = "world", pyworld=None) -> np.ndarray:
    if backend == "world":
        return f0_world(audio, sr, pyworld)
    if backend == "praat":
        return f0_praat(audio, sr)
    raise VoxboxError(f"unknown pitch backend '{backend}' (choose from {', '.join(BACKENDS)})")


def pitch_stats(f0: np.ndarray) -> Tuple[float, float, int]:
    """(mean voiced F0 in Hz, std of the min-max normalised voiced F0, voiced frames)."""
    voiced = f0[f0 > 0]
    if voiced.size == 0:
        return 0.0, 0.0, 0
    mean = float(np.mean(voiced))
    lo, hi = float(np.min(voiced)), float(np.max(voiced))
    # A flat track has no spread; the release returned the raw values, whose std is 0 too.
    norm = voiced if hi == lo else (voiced - lo) / (hi - lo)
    return mean, float(np.std(norm)), int(voiced.size)
