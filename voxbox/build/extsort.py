"""Sorting more items than fit in memory: sorted runs on disk, merged k-way.

A build plans tens of millions of records (VoxBox is 47 M); holding one key per record
in a Python dict or set costs gigabytes. :class:`ExternalSort` keeps at most
``run_items`` items in memory: a full buffer is sorted and written to a run file under
``work``; iterating merges the runs with :func:`heapq.merge`, at most ``fan_in`` files
open at once (more runs are first merged into bigger ones, so memory and open files
stay bounded however many records there are).

Items are tuples of ``str``/``int``/``float``/``bytes`` (what :mod:`marshal` writes
exactly and fast). Ties are broken by the whole tuple, so callers that need a stable
order put a sequence number after the key. The merged order equals ``sorted(items)``.
"""

from __future__ import annotations

import heapq
import marshal
import os
import struct
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, List, Union

RUN_ITEMS = 250_000  # ~100 MB of planning tuples per run
FAN_IN = 64
_LEN = struct.Struct("<I")
_BUF = 1 << 20


def write_items(fh: BinaryIO, items: Iterable[tuple]) -> int:
    """Append ``items`` to ``fh`` as length-prefixed marshal frames; return bytes written."""
    n = 0
    for item in items:
        data = marshal.dumps(item)
        fh.write(_LEN.pack(len(data)))
        fh.write(data)
        n += _LEN.size + len(data)
    return n


def read_items(fh: BinaryIO, limit: int = -1) -> Iterator[tuple]:
    """Items written by :func:`write_items`, from the current position (at most ``limit``)."""
    while limit != 0:
        head = fh.read(_LEN.size)
        if len(head) < _LEN.size:
            return
        yield marshal.loads(fh.read(_LEN.unpack(head)[0]))
        limit -= 1


class ExternalSort:
    """Add items, then iterate them sorted; run files live in ``work`` until :meth:`close`."""

    def __init__(self, work: Union[str, Path], run_items: int = RUN_ITEMS, fan_in: int = FAN_IN):
        self.work = Path(work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.run_items = max(1, int(run_items))
        self.fan_in = max(2, int(fan_in))
        self.buffer: List[tuple] = []
        self.runs: List[Path] = []
        self.count = 0

    def add(self, item: tuple) -> None:
        self.buffer.append(item)
        self.count += 1
        if len(self.buffer) >= self.run_items:
            self._spill()

    def add_sorted(self, items: Iterable[tuple]) -> None:
        """Take items already in order as one run, without sorting or holding them."""
        self._spill()
        path = self._new_run()
        with open(path, "ab", buffering=_BUF) as fh:
            for item in items:
                write_items(fh, (item,))
                self.count += 1

    def __iter__(self) -> Iterator[tuple]:
        if not self.runs:  # everything fitted in one buffer: no files at all
            self.buffer.sort()
            return iter(self.buffer)
        self._spill()
        while len(self.runs) > self.fan_in:
            group, self.runs = self.runs[:self.fan_in], self.runs[self.fan_in:]
            path = self._new_run()
            with open(path, "ab", buffering=_BUF) as fh:
                write_items(fh, self._merge(group))
            for p in group:
                p.unlink()
        return self._merge(list(self.runs))

    def close(self) -> None:
        for p in self.runs:
            try:
                p.unlink()
            except OSError:
                pass
        self.runs, self.buffer = [], []

    def __enter__(self) -> "ExternalSort":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _new_run(self) -> Path:
        fd, name = tempfile.mkstemp(prefix="run-", suffix=".bin", dir=self.work)
        os.close(fd)
        self.runs.append(Path(name))
        return Path(name)

    def _spill(self) -> None:
        if not self.buffer:
            return
        self.buffer.sort()
        with open(self._new_run(), "ab", buffering=_BUF) as fh:
            write_items(fh, self.buffer)
        self.buffer = []

    @staticmethod
    def _merge(paths: List[Path]) -> Iterator[tuple]:
        with ExitStack() as stack:
            streams = [read_items(stack.enter_context(open(p, "rb", buffering=_BUF))) for p in paths]
            yield from heapq.merge(*streams)
