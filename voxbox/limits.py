"""What voxbox agrees to read, in one place: regular files only, each with a size
limit, and audio no longer than a duration cap read from its header.

A corpus is input from elsewhere. A FIFO named ``.wav`` would block a reader forever,
a transcript linked to ``/dev/zero`` would fill the memory, a 3-hour recording would
be decoded whole (gigabytes) before anything notices it is no utterance. Readers open
files through :func:`open_regular` / :func:`read_regular` and turn
:class:`FileRefused` into a rejection with its reason code.

``VOXBOX_MAX_DURATION_S`` sets the duration cap (seconds; default 1800 = 30 min, far
above any TTS utterance, and a clip that long still decodes in well under 1 GB).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO, Optional, Union

DEFAULT_MAX_DURATION_S = 1800.0
MAX_TEXT_CHARS = 64 * 1024          # one transcript, from any source (file, table cell, manifest)
MAX_TRANSCRIPT_BYTES = 4 * MAX_TEXT_CHARS  # one transcript file (UTF-8: at most 4 bytes a character)
MAX_TABLE_BYTES = 1 << 30           # a metadata table read whole (Common Voice TSVs are ~100s of MB)
MAX_AUDIO_BYTES = 4 << 30           # an audio file kept as its original bytes
MAX_MANIFEST_LINE_CHARS = 64 << 20  # one manifest record (30 min of tokens is ~0.5 MB)

# Channels and rates a FLAC shard can hold (the FLAC format's limits).
FLAC_MAX_CHANNELS = 8
FLAC_MAX_SAMPLE_RATE = 655_350
MIN_SAMPLE_RATE = 1_000             # below this nothing is speech; sure sign of a bad header


def max_duration_s() -> float:
    """The duration cap in seconds (``VOXBOX_MAX_DURATION_S``, default 1800)."""
    raw = os.environ.get("VOXBOX_MAX_DURATION_S", "")
    try:
        value = float(raw) if raw.strip() else DEFAULT_MAX_DURATION_S
    except ValueError:
        value = DEFAULT_MAX_DURATION_S
    return value if value > 0 and value == value else DEFAULT_MAX_DURATION_S


class FileRefused(Exception):
    """A file voxbox will not read; ``reason`` is a rejection code, ``detail`` says why."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def file_kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "a special file"


def open_regular(path: Union[str, Path], missing: str = "missing_file") -> BinaryIO:
    """Open a regular file for reading without ever blocking: O_NONBLOCK makes opening a
    FIFO return at once, and anything but a regular file is refused after fstat.

    Raises FileRefused with ``missing`` (not found, broken link), ``symlink_loop``,
    ``not_a_regular_file`` or ``unreadable_file``.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        broken = os.path.islink(path)
        raise FileRefused(missing, f"broken link to {os.readlink(path)!r}" if broken else "not found") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise FileRefused("symlink_loop", "a symbolic link that leads back to itself") from None
        try:
            mode = os.stat(path).st_mode  # a socket cannot even be opened (ENXIO)
        except OSError:
            mode = stat.S_IFREG
        if not stat.S_ISREG(mode):
            raise FileRefused("not_a_regular_file", f"{file_kind(mode)}, not a regular file") from None
        raise FileRefused("unreadable_file", (e.strerror or str(e)).lower()) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise FileRefused("not_a_regular_file", f"{file_kind(st.st_mode)}, not a regular file")
    return os.fdopen(fd, "rb")


def read_regular(path: Union[str, Path], limit: int, missing: str = "missing_file",
                 too_large: str = "file_too_large") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (see :func:`open_regular`);
    a file under a remote root (:class:`voxbox.storage.RemotePath`) is read by range."""
    from voxbox import storage

    if storage.is_remote(path):
        return _read_remote(storage.as_remote(path), limit, missing, too_large)
    with open_regular(path, missing) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            raise FileRefused(too_large, f"{size} bytes, more than the {limit} bytes voxbox reads from such a file")
        data = fh.read(limit + 1)
    if len(data) > limit:  # grew while we read it
        raise FileRefused(too_large, f"more than the {limit} bytes voxbox reads from such a file")
    return data


def _read_remote(path, limit: int, missing: str, too_large: str) -> bytes:
    from voxbox.storage import StorageError

    try:
        return path.read_bytes(limit)
    except FileNotFoundError:
        raise FileRefused(missing, "not found") from None
    except OverflowError as e:
        raise FileRefused(too_large, str(e)) from None
    except StorageError as e:
        if e.reason == "remote_denied":
            raise
        raise FileRefused(missing if e.reason == "remote_missing" else e.reason, str(e)) from None


def storage_problem(sample_rate: int, channels: int) -> Optional[FileRefused]:
    """Why audio with this header cannot be stored in a shard, or None."""
    if not channels or channels > FLAC_MAX_CHANNELS:
        return FileRefused("too_many_channels", f"{channels} channels; a FLAC shard holds at most {FLAC_MAX_CHANNELS}")
    if not MIN_SAMPLE_RATE <= sample_rate <= FLAC_MAX_SAMPLE_RATE:
        return FileRefused("unsupported_sample_rate", f"{sample_rate} Hz; voxbox stores {MIN_SAMPLE_RATE} to "
                                                      f"{FLAC_MAX_SAMPLE_RATE} Hz (the FLAC limit)")
    return None


def duration_problem(sample_rate: int, frames: int) -> Optional[FileRefused]:
    """Why audio this long is refused (longer than :func:`max_duration_s`), or None."""
    cap = max_duration_s()
    if sample_rate > 0 and frames / sample_rate > cap:
        return FileRefused("too_long", f"{frames / sample_rate:.1f} s; the cap is {cap:g} s "
                                       "(set VOXBOX_MAX_DURATION_S to change it)")
    return None


def audio_problem(sample_rate: int, frames: int, channels: int) -> Optional[FileRefused]:
    """Why audio with this header cannot become a record (unstorable or too long), or None."""
    return storage_problem(sample_rate, channels) or duration_problem(sample_rate, frames)
