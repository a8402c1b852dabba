"""A fast signature of an audio file's content, part of a build's input fingerprint.

A record's metadata does not change when its audio is re-processed in place at the
same length (denoised, re-normalised, re-encoded): without looking at the audio a
rerun would resume into shards made from the old audio. Hashing every file whole
would read the whole corpus before the build starts, so the signature is the file's
size plus the SHA-256 of three 16 KiB blocks (start, middle, end); files up to 48 KiB
are hashed whole. Re-processing changes samples everywhere, so it changes these
blocks; an edit confined to bytes outside them (one sample in the middle of a long
file, same size) goes unnoticed, a documented limit. The file's time stamps are not
used: a copy of the corpus to another disk must not look like other input.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, List, Union

from voxbox.limits import FileRefused, open_regular

BLOCK = 16 * 1024


def audio_signature(path: Union[str, Path]) -> str:
    """32 hex digits for the file's size and sampled content, or ``unreadable:<reason>``
    (the record is rejected later by the stage that reads it). A remote root's file
    (a :class:`voxbox.storage.RemotePath`) is signed by :func:`voxbox.storage.signature`: size + the storage's content
    identity (ETag, the Hub's sha256), no data read."""
    from voxbox import storage

    if storage.is_remote(path):
        return storage.signature(storage.as_remote(path))
    try:
        with open_regular(path) as fh:
            size = os.fstat(fh.fileno()).st_size
            return sampled_signature(size, lambda offset, n: os.pread(fh.fileno(), n, offset))
    except FileRefused as e:
        return f"unreadable:{e.reason}"
    except OSError as e:
        return f"unreadable:{e.errno}"


def sampled_signature(size: int, read: Callable[[int, int], bytes]) -> str:
    """The signature of a file of ``size`` bytes whose bytes ``read(offset, n)`` gives."""
    h = hashlib.sha256(f"{size}\n".encode())
    if size <= 3 * BLOCK:
        h.update(read(0, size))
    else:
        for offset in (0, size // 2 - BLOCK // 2, size - BLOCK):
            h.update(read(offset, BLOCK))
    return h.hexdigest()[:32]


def audio_signatures(paths: Iterable[Union[str, Path]], workers: int = 8) -> List[str]:
    """Signatures of many files, read in threads (the reads wait on the disk, not the CPU)."""
    paths = list(paths)
    if len(paths) < 2 or workers <= 1:
        return [audio_signature(p) for p in paths]
    with ThreadPoolExecutor(max_workers=min(workers, len(paths))) as pool:
        return list(pool.map(audio_signature, paths))
