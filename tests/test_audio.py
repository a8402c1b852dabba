"""The VoxBox front end: loading, resampling, normalisation, trimming, bad audio."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from voxbox.annotate.frontend import (AudioError, clipping_ratio, front_end, load_audio, prepare_array,
                          speech_bounds, volume_normalize)

SR = 16000


def tone(seconds: float, sr: int = SR, amp: float = 0.5, f: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return amp * np.sin(2 * np.pi * f * t)


def test_volume_normalize_level_and_quiet_quirk():
    x = tone(1.0, amp=0.5)
    y = volume_normalize(x)
    mags = np.sort(np.abs(y[np.abs(x) > 0.01]))
    n = mags.shape[0]
    assert np.mean(mags[int(0.9 * n): int(0.99 * n)]) == pytest.approx(0.2, rel=1e-6)
    # Quiet input: the level estimate uses the magnitudes *before* the 0.1-peak boost
    # (the release's order), so the gain is 0.2 / (unscaled level), applied to the
    # boosted signal: peak 0.1 * 0.2 / 0.0497 = 0.40, not the 0.20 of the "fixed" order.
    q = tone(1.0, amp=0.05)
    qm = np.sort(np.abs(q))
    qm = qm[qm > 0.01]
    level = np.mean(qm[int(0.9 * len(qm)): int(0.99 * len(qm))])
    yq = volume_normalize(q)
    assert np.max(np.abs(yq)) == pytest.approx(0.1 * 0.2 / level, rel=1e-9)
    assert np.max(np.abs(yq)) > 0.35
    # Fewer than 11 samples above 0.01: only the peak boost applies.
    z = np.zeros(100)
    z[3] = 0.02
    assert np.max(np.abs(volume_normalize(z))) == pytest.approx(0.1)


def _naive_bounds(x: np.ndarray, sr: int):
    """The release's definition written the slow, obvious way."""
    win = int(0.1 * sr)
    hop = win // 10
    windows = np.lib.stride_tricks.sliding_window_view(x, win)[::hop]
    loud = np.sqrt(np.mean(windows ** 2, axis=1)) >= 0.01
    first = int(np.argmax(loud))
    last = len(loud) - 1 - int(np.argmax(loud[::-1]))
    return max(0, first * hop - 2 * win), min(len(x), last * hop + 2 * win)


def test_speech_bounds_match_the_windowed_rms_definition():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.zeros(SR), tone(1.0), np.zeros(SR)])
    assert speech_bounds(x, SR) == _naive_bounds(x, SR)
    # First loud window starts at 14560 (needs ~2 tone samples): start = 14560 - 3200.
    assert speech_bounds(x, SR)[0] == 14560 - 3200
    for _ in range(5):
        n = int(rng.integers(SR // 2, 3 * SR))
        y = rng.normal(0, 0.02, n) * (rng.random(n) < 0.3)
        y[: int(rng.integers(0, n // 3))] *= 0.01
        assert speech_bounds(y, SR) == _naive_bounds(y, SR)
    # Speech right at the end: end is clamped to the clip length.
    z = np.concatenate([np.zeros(SR), tone(0.5)])
    assert speech_bounds(z, SR)[1] == z.shape[0]


def test_too_short_and_silent_raise_with_reason():
    with pytest.raises(AudioError) as e:
        speech_bounds(tone(0.05), SR)
    assert e.value.reason == "audio_too_short"
    with pytest.raises(AudioError) as e:
        speech_bounds(np.zeros(SR), SR)
    assert e.value.reason == "silent_audio"


def test_front_end_resamples_channel0_and_measures_clipping(tmp_path):
    sr = 24000
    left = tone(2.0, sr=sr, amp=0.3)
    right = np.ones_like(left) * 0.0
    left[:240] = 1.0  # 240 full-scale samples out of 48000
    p = tmp_path / "stereo.wav"
    sf.write(p, np.stack([left, right], axis=1), sr, subtype="FLOAT")
    fe = front_end(p)
    assert fe.sr == SR and fe.source_sr == sr and fe.channels == 2
    assert fe.audio.shape[0] == 2 * SR
    assert fe.duration == pytest.approx(2.0)
    assert fe.clipping_ratio == pytest.approx(240 / 48000)
    # Channel 0 was used: the right channel is silent and would have raised "silent_audio".
    assert fe.speech_duration > 1.5
    # Same result through the in-memory path.
    fe2 = prepare_array(left, sr)
    assert np.allclose(fe2.audio, fe.audio)
    assert clipping_ratio(np.zeros(10)) == 0.0


def test_flac_and_ogg_load(tmp_path):
    x = tone(1.0, sr=22050, amp=0.4)
    for ext, fmt in ((".flac", "FLAC"), (".ogg", "OGG")):
        p = tmp_path / f"a{ext}"
        sf.write(p, x, 22050, format=fmt)
        y = load_audio(p)
        assert y.shape[0] == SR
        assert np.max(np.abs(y)) <= 1.0


def test_bad_files(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wav file")
    with pytest.raises(AudioError) as e:
        front_end(bad)
    assert e.value.reason == "unreadable_audio"
    with pytest.raises(AudioError) as e:
        front_end(tmp_path / "missing.wav")
    assert e.value.reason == "missing_audio"
    x = tone(1.0)
    x[100] = np.nan
    nanf = tmp_path / "nan.wav"
    sf.write(nanf, x, SR, subtype="FLOAT")
    with pytest.raises(AudioError) as e:
        front_end(nanf)
    assert e.value.reason == "non_finite_samples"
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0), SR)
    with pytest.raises(AudioError) as e:
        front_end(empty)
    assert e.value.reason == "no_audio_samples"
