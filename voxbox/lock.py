"""One voxbox run per output: an exclusive lock on what a command writes.

Two builds into one folder used to interleave their shards (one reported success
while its shards no longer matched ``index.json``). Every command that writes an
output (``build --out``, ``prepare``/``annotate``/``tokenize --out``) holds
:class:`OutputLock` for the whole run; a second run is refused at once with
``OUT is being written by another voxbox run (pid N)``.

The lock is ``flock`` on ``<OUT>.lock`` beside the output (a folder or a file), holding
the owner's pid. The kernel drops the lock when its process dies, however it dies, so
a lock left by a killed run is simply taken over by the next one (the pid in the file
is only for the message). The file is removed when the run ends.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Callable, Optional, Union

from voxbox.errors import VoxboxError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock, runs are not serialised
    fcntl = None  # type: ignore[assignment]


def lock_path(target: Union[str, Path]) -> Path:
    p = Path(os.path.abspath(target))
    return p.with_name(p.name + ".lock")


def _read_pid(fd: int) -> Optional[int]:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OutputLock:
    """Hold the lock on ``target`` for a ``with`` block (see the module docstring)."""

    def __init__(self, target: Union[str, Path], log: Callable[[str], None] = lambda s: None):
        self.target = Path(target)
        self.path = lock_path(target)
        self.log = log
        self._fd: Optional[int] = None

    def __enter__(self) -> "OutputLock":
        if fcntl is not None:
            self._acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def _acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            return  # the command's own write will name the problem
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                pid = _read_pid(fd)
                os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise VoxboxError(f"{self.target} is being written by another voxbox run (pid {pid or '?'})") \
                        from None
                self.log(f"note: {self.path}: this file system has no locks ({e.strerror}); "
                         "nothing stops a second run on the same output")
                return
            # The previous holder may have removed the file between our open and our lock:
            # then we hold a lock on a file nobody else will ever see. Lock the one at the path.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        old = _read_pid(fd)
        if old and old != os.getpid() and _alive(old) is False:
            self.log(f"note: took over the lock of {self.target} left by pid {old}, which is no longer running")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)  # while still holding it: a waiting run then retries on a fresh file
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None
