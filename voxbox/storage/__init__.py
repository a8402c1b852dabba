"""Reading corpora from remote storage: ``--root hf://datasets/OWNER/NAME/PATH``, ``s3://``,
``gs://``, ``memory://`` or any other fsspec URL, listed and read in place.

The reading API (everything else in the package is internal):

- :func:`is_url` (a ``scheme://`` string) and :func:`root_path` (a ``--root`` or a
  record's ``corpus_root`` as a :class:`pathlib.Path`, or as a :class:`RemotePath`
  for a URL; ``file://`` is local). An ``hf://`` root without a revision is pinned to
  the commit its repo's head is at (``hf://datasets/O/N@<sha>/PATH``), so every process
  of a run, and a later build from the manifest, reads the same files;
- :class:`RemotePath`: the part of ``pathlib.Path`` recipes use (``/``, ``name``,
  ``parent``, ``is_dir``, ``is_file``, ``exists``, ``iterdir``, ``relative_to``,
  ``size``, ``read_bytes``, ``read_text``, ``open`` -> a seekable binary file), with one
  listing per folder per process; :func:`is_remote` tells it from a local path;
- :func:`read_range` (bytes ``[offset, offset + size)``: how tar members are read, by
  the byte range :func:`voxbox.media.tar_index` found) and :func:`signature` (a
  remote file's content identity for the build's input fingerprint);
- :func:`set_cache_dir` (``--cache DIR``: a local block cache, shared by the worker
  processes through ``VOXBOX_REMOTE_CACHE``);
- :class:`StorageError` (a :class:`~voxbox.errors.VoxboxError` with a ``reason`` code:
  ``remote_unavailable``, ``remote_denied``, ``remote_missing``, ``remote_error``).

Every request is retried on transient failures (bounded, with backoff:
:mod:`voxbox.storage.retry`); reads are cut in 1 MiB blocks, cached in memory and,
with a cache folder, on disk (:mod:`voxbox.storage.blocks`). ``hf://`` goes through
huggingface_hub's ``HfFileSystem`` with ``HF_ENDPOINT`` and ``HF_TOKEN`` (or the stored
login); other schemes through fsspec and the scheme's package (s3fs, gcsfs, ...), with
credentials from the environment as that package reads them. A URL never carries a
secret into a record: records keep the URL with any ``user:secret@`` removed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Union

from voxbox.storage.blocks import BLOCK, RemoteFile, cache_dir, read_range, set_cache_dir
from voxbox.storage.remote import RemotePath, forget_trees, pinned, tree, version
from voxbox.storage.retry import StorageError
from voxbox.storage.url import LOCAL_SCHEMES, is_url, redact, split_url

__all__ = ["BLOCK", "RemoteFile", "RemotePath", "StorageError", "as_remote", "cache_dir", "forget", "is_remote",
           "is_url", "read_range", "redact", "root_path", "set_cache_dir", "signature"]

AnyPath = Union[Path, RemotePath]


def root_path(root: Union[str, Path, RemotePath]) -> AnyPath:
    """A root as the recipes walk it: a local :class:`Path` (``~`` expanded), or a
    :class:`RemotePath` for a URL (nothing is requested until it is used)."""
    if isinstance(root, RemotePath):
        return root
    if is_url(str(root)):
        scheme, rest = split_url(str(root))
        if scheme in LOCAL_SCHEMES:
            return Path("/" + rest.lstrip("/"))
        return RemotePath(tree(pinned(str(root))))
    return Path(root).expanduser()


def is_remote(path) -> bool:
    """A RemotePath, or a URL string (a recipe that joins paths as strings)."""
    return isinstance(path, RemotePath) or (isinstance(path, str) and is_url(path))


def as_remote(path: Union[str, RemotePath]) -> RemotePath:
    """A remote file as a RemotePath: a URL string is placed in the tree of the root it
    lies under (the tree already listed, so no new listing is made)."""
    if isinstance(path, RemotePath):
        return path
    url = redact(path).rstrip("/")
    from voxbox.storage.remote import _TREES, _TREES_LOCK

    with _TREES_LOCK:
        roots = sorted((u for u in _TREES if url == u or url.startswith(u + "/")), key=len)
    if roots:
        return RemotePath(tree(roots[-1])) / url[len(roots[-1]) + 1:]
    parent, _, name = url.rpartition("/")
    return RemotePath(tree(parent)) / name


def signature(rp: RemotePath) -> str:
    """32 hex digits naming a remote file's content without reading it: its size and the
    storage's content identity (the Hub's LFS sha256 or git blob id, an object store's
    ETag). A storage that gives none (``memory://``) gets the local files' signature,
    size plus three sampled 16 KiB blocks (:mod:`voxbox.build.signature`), by range reads.
    ``unreadable:<reason>`` when it cannot be listed or read."""
    try:
        entry = rp.info()
        if entry is None or entry.get("type") == "directory":
            return "unreadable:missing_audio"
        size, ident = int(entry.get("size") or 0), version(entry)
        if ident is not None:
            return hashlib.sha256(f"{size}\n{ident}".encode()).hexdigest()[:32]
        from voxbox.build.signature import sampled_signature

        return sampled_signature(size, lambda offset, n: read_range(rp, offset, n))
    except StorageError as e:
        return f"unreadable:{e.reason}"


def forget() -> None:
    """Drop the cached listings and in-memory blocks of this process (tests; a remote
    tree that changed while the process runs)."""
    from voxbox.storage.blocks import forget_blocks

    forget_trees()
    forget_blocks()
