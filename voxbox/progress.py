"""Progress bars for long work, on stderr.

Bars show records/s and, when durations are known, audio-hours processed. They turn
themselves off when stderr is not a terminal (CI logs stay readable) unless
VOXBOX_PROGRESS=1 forces them on, or VOXBOX_PROGRESS=0 forces them off.
"""

from __future__ import annotations

import os
import sys
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

    def __init__(self, desc: str, total: Optional[int] = None, unit: str = "rec"):
        from tqdm import tqdm

        self.audio_seconds = 0.0
        self._bar = tqdm(total=total, desc=desc, unit=unit, disable=_disabled(),
                         file=sys.stderr, dynamic_ncols=True, smoothing=0.1)

    def update(self, n: int = 1, audio_seconds: float = 0.0) -> None:
        self.audio_seconds += audio_seconds
        self._bar.update(n)
        if audio_seconds and not self._bar.disable:
            elapsed = max(self._bar.format_dict.get("elapsed", 0.0), 1e-9)
            self._bar.set_postfix_str(
                f"{self.audio_seconds / 3600:.2f} h audio, {self.audio_seconds / 3600 / elapsed * 3600:.2f} h/h",
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
