"""Byte-range reads of remote files, in 1 MiB blocks, with an optional local cache.

A read of bytes ``[offset, offset + size)`` is served block by block: from a small
in-memory LRU (``MEMORY_BLOCKS`` blocks per process), then from the local cache folder
when one is set (``--cache DIR`` or ``VOXBOX_REMOTE_CACHE``), and the blocks still
missing are fetched with **one range request per contiguous run** (so a 40 MB member is
one request, and a tar's 512-byte headers share the block they sit in).

Cache entries are keyed by the file's URL and content identity (the Hub's sha256 or
blob id, an ETag; size and modification time when the storage gives neither), so a
changed remote file is never read from a stale cache. Blocks are written to a
temporary name and renamed: a killed run leaves no half block. The cache holds no
token and records never name it.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from voxbox.storage import retry

BLOCK = 1 << 20
MEMORY_BLOCKS = 48
DOWN_AFTER = 3  # reads in a row that failed for good before a root counts as down
CACHE_ENV = "VOXBOX_REMOTE_CACHE"
_HUB_REVISION = re.compile(r"@[^/]+")

_MEM: "OrderedDict[Tuple[str, int], bytes]" = OrderedDict()
_MEM_LOCK = threading.Lock()


def set_cache_dir(path) -> Path:
    """Use ``path`` as the local block cache, in this process and the worker processes
    it starts (the setting travels in the environment)."""
    path = Path(path).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    os.environ[CACHE_ENV] = str(path)
    return path


def cache_dir() -> Optional[Path]:
    value = os.environ.get(CACHE_ENV, "").strip()
    return Path(value) if value else None


def file_key(rp) -> str:
    """The cache key of a remote file: its URL and content identity."""
    from voxbox.storage.remote import version

    entry = rp.info() or {}
    stamp = entry.get("mtime") or entry.get("LastModified") or entry.get("created")
    ident = version(entry)
    # With a content hash the revision does not matter: a file unchanged by a new commit
    # of a Hub repo keeps its cached blocks.
    where = _HUB_REVISION.sub("", str(rp), count=1) if ident and rp.tree.is_hf else str(rp)
    ident = ident or f"size={entry.get('size')};mtime={stamp}"
    return hashlib.sha256(f"{where}\0{ident}".encode()).hexdigest()[:40]


def read_range(rp, offset: int, size: int) -> bytes:
    """Bytes ``[offset, offset + size)`` of the remote file ``rp`` (fewer at its end)."""
    total = rp.size()
    size = max(0, min(size, total - offset))
    if size <= 0:
        return b""
    key = file_key(rp)
    first, last = offset // BLOCK, (offset + size - 1) // BLOCK
    got: Dict[int, bytes] = {}
    for n in range(first, last + 1):
        data = _cached(key, n)
        if data is not None:
            got[n] = data
    for a, b in _runs([n for n in range(first, last + 1) if n not in got]):
        start, end = a * BLOCK, min((b + 1) * BLOCK, total)
        data = fetch(rp, start, end)
        for n in range(a, b + 1):
            got[n] = data[(n - a) * BLOCK:(n - a + 1) * BLOCK]
            _store(key, n, got[n])
    joined = b"".join(got[n] for n in range(first, last + 1))
    skip = offset - first * BLOCK
    return joined[skip:skip + size]


def _runs(numbers: List[int]) -> List[Tuple[int, int]]:
    """Contiguous runs (first, last) of sorted block numbers."""
    out: List[Tuple[int, int]] = []
    for n in numbers:
        if out and out[-1][1] == n - 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def fetch(rp, start: int, end: int) -> bytes:
    """One range request for bytes ``[start, end)``, with retries; a short answer is a
    transient failure (a connection cut mid-body). After ``DOWN_AFTER`` reads of one
    root in a row failed for good, the next ones get a single try until one succeeds: an
    outage costs a try per record, not a full backoff each."""
    tree, path = rp.tree, rp.tree.fs_path(rp.rel)

    def get() -> bytes:
        data = _hub_range(tree, path, start, end) if tree.is_hf else tree.fs.cat_file(path, start=start, end=end)
        if len(data) != end - start:
            raise ConnectionResetError(f"short read: {len(data)} of {end - start} bytes")
        return data

    try:
        data = retry.call(get, str(rp), f"reading bytes {start}-{end - 1}",
                          attempts=1 if tree.down >= DOWN_AFTER else None)
    except retry.StorageError as e:
        if e.reason == "remote_unavailable":
            tree.down += 1
        raise
    tree.down = 0
    return data


def _hub_range(tree, path: str, start: int, end: int) -> bytes:
    """A range GET of a Hub file's resolve URL, made here rather than by HfFileSystem's
    file object (which retries 5xx on its own, with waits up to 8 s): one retry policy,
    voxbox's. Redirects (LFS / Xet storage) are followed by huggingface_hub's session."""
    from huggingface_hub import constants
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    headers = build_hf_headers(token=tree.token)
    headers["Range"] = f"bytes={start}-{end - 1}"
    r = get_session().get(tree.fs.url(path), headers=headers, timeout=constants.HF_HUB_DOWNLOAD_TIMEOUT)
    hf_raise_for_status(r)
    return r.content if r.status_code == 206 else r.content[start:end]  # 200: a server that ignores Range


def _block_file(key: str, n: int) -> Optional[Path]:
    root = cache_dir()
    return root / "blocks" / key[:2] / f"{key}.{n}" if root is not None else None


def _cached(key: str, n: int) -> Optional[bytes]:
    with _MEM_LOCK:
        data = _MEM.get((key, n))
        if data is not None:
            _MEM.move_to_end((key, n))
            return data
    path = _block_file(key, n)
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    _remember(key, n, data)
    return data


def _store(key: str, n: int, data: bytes) -> None:
    _remember(key, n, data)
    path = _block_file(key, n)
    if path is None:
        return
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:  # a full or read-only cache only costs speed
        try:
            tmp.unlink()
        except OSError:
            pass


def _remember(key: str, n: int, data: bytes) -> None:
    with _MEM_LOCK:
        _MEM[(key, n)] = data
        _MEM.move_to_end((key, n))
        while len(_MEM) > MEMORY_BLOCKS:
            _MEM.popitem(last=False)


def forget_blocks() -> None:
    """Drop the in-memory blocks (tests; the disk cache stays)."""
    with _MEM_LOCK:
        _MEM.clear()


class RemoteFile(io.RawIOBase):
    """A read-only, seekable file object over :func:`read_range` (what tarfile and
    soundfile need)."""

    def __init__(self, rp):
        super().__init__()
        self.rp, self.pos, self.length = rp, 0, rp.size()
        self.name = str(rp)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.length}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buf) -> int:
        data = read_range(self.rp, self.pos, len(buf))
        buf[:len(data)] = data
        self.pos += len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        size = self.length - self.pos if size is None or size < 0 else size
        data = read_range(self.rp, self.pos, size)
        self.pos += len(data)
        return data
