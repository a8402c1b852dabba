"""Progress bars: the audio rate is measured from when the work began."""

from __future__ import annotations

import time

from voxbox.progress import Progress


def test_audio_rate_counts_from_the_given_start(monkeypatch, capsys):
    monkeypatch.setenv("VOXBOX_PROGRESS", "1")
    bar = Progress("annotate", start=time.monotonic() - 10.0)  # work began 10 s ago
    bar.update(3, audio_seconds=360.0)
    postfix = bar._bar.postfix
    bar.close()
    assert "0.10 h audio" in postfix
    rate = float(postfix.split("(")[1].split("x real time")[0])
    assert 30 <= rate <= 36  # 360 audio-s in a little over 10 s, not 360 audio-s in ~0 s


def test_bars_stay_quiet_when_disabled(monkeypatch, capsys):
    monkeypatch.setenv("VOXBOX_PROGRESS", "0")
    with Progress("x") as bar:
        bar.update(1, audio_seconds=1.0)
    assert capsys.readouterr().err == ""
