"""Progress bars for long work, on stderr.

Bars show records/s and, when durations are known, audio-hours processed. They turn
themselves off when stderr is not a terminal (CI logs stay readable) unless
VOXBOX_PROGRESS=1 forces them on, or VOXBOX_PROGRESS=0 forces them off.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Iterable, Iterator, Optional, TypeVar

T = TypeVar("T")


def _disabled() -> Optional[bool]:
    env = os.environ.get("VOXBOX_PROGRESS")
    if env == "1":
        return False
    if env == "0":
        return True
    return not sys.stderr.isatty()


class Progress:
    """A counter bar that also tracks audio seconds, for audio-hours/s."""

    def __init__(self, desc: str, total: Optional[int] = None, unit: str = "rec",
                 start: Optional[float] = None):
        """``start`` (a time.monotonic() value) is when the measured work began, for bars
        created after it (e.g. a stage bar that appears with the first finished batch)."""
        from tqdm import tqdm

        self.audio_seconds = 0.0
        self._t0 = time.monotonic() if start is None else start
        self._bar = tqdm(total=total, desc=desc, unit=unit, disable=_disabled(),
                         file=sys.stderr, dynamic_ncols=True, smoothing=0.1)

    def update(self, n: int = 1, audio_seconds: float = 0.0) -> None:
        self.audio_seconds += audio_seconds
        self._bar.update(n)
        if audio_seconds and not self._bar.disable:
            rate = self.audio_seconds / max(time.monotonic() - self._t0, 1e-3)  # audio-s per s
            self._bar.set_postfix_str(
                f"{self.audio_seconds / 3600:.2f} h audio, {rate / 3600:.3g} audio-h/s ({rate:.0f}x real time)",
                refresh=False,
            )

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def track(items: Iterable[T], desc: str, total: Optional[int] = None, unit: str = "rec") -> Iterator[T]:
    with Progress(desc, total=total, unit=unit) as p:
        for item in items:
            yield item
            p.update(1)
