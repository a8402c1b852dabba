"""A remote folder tree behind a path object the recipes already know how to use.

:class:`RemotePath` has the part of :class:`pathlib.Path` that recipes and
:mod:`voxbox.media` use (``/``, ``name``, ``parent``, ``is_dir``, ``is_file``,
``exists``, ``iterdir``, ``relative_to``, ``read_bytes``, ``read_text``, ``open``),
answered from one listing per folder (kept for the process) and byte-range reads
(:mod:`voxbox.storage.blocks`). It has no ``__fspath__`` on purpose: code that would
hand it to ``open()`` or ``os.stat()`` fails loudly instead of reading a local file.

``str(path)`` is the URL (credentials removed), which is what records keep as
``corpus_root``: no token, no cache path.
"""

from __future__ import annotations

import posixpath
import threading
from pathlib import PurePosixPath
from types import SimpleNamespace
from typing import Dict, Iterator, Optional, Tuple

from voxbox.storage import retry
from voxbox.storage.url import redact, split_url

_TREES: Dict[str, "Tree"] = {}
_TREES_LOCK = threading.Lock()


def open_fs(url: str) -> Tuple[object, str]:
    """(fsspec filesystem, path inside it) for a URL. ``hf://`` uses huggingface_hub's
    HfFileSystem with the endpoint and token voxbox's Hub commands use (``HF_ENDPOINT``,
    ``HF_TOKEN`` or the stored login); any other scheme is fsspec's own."""
    scheme, rest = split_url(url)
    if scheme == "hf":
        return _hf_fs(), rest
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as e:  # an unknown scheme, or its package is missing
        from voxbox.errors import VoxboxError
        from voxbox.release.hub import _first_line

        raise VoxboxError(f"{redact(url)}: cannot open this storage ({_first_line(e)}); install the scheme's "
                          "fsspec package (s3fs for s3://, gcsfs for gs://)") from None


def _hf_fs():
    from huggingface_hub import HfFileSystem, constants

    from voxbox.errors import VoxboxError
    from voxbox.release.hub import endpoint_url, resolve_token

    endpoint = endpoint_url()
    if constants.is_offline_mode():
        raise VoxboxError(f"cannot read hf:// roots from {endpoint}: offline mode is on "
                          "(unset HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)")
    return HfFileSystem(endpoint=endpoint, token=resolve_token() or None)


_PINS: Dict[str, str] = {}


def pinned(url: str) -> str:
    """An ``hf://`` URL without a revision, with the commit its repo's head is at
    (``hf://datasets/O/N@<sha>/PATH``); other URLs as they are. Looked up once per process;
    a repo that cannot be read is left unpinned (its listing reports why)."""
    from voxbox.storage.url import hub_repo

    url = redact(url).rstrip("/")
    repo = hub_repo(url)
    if repo is None:
        return url
    kind, repo_id = repo
    parts = split_url(url)[1].split("/")
    head = 3 if kind else 2  # "datasets/O/N" or "O/N" (a model repo)
    if "@" in parts[head - 1]:
        return url  # a revision was given
    with _TREES_LOCK:
        if url in _PINS:
            return _PINS[url]
    try:
        sha = retry.call(lambda: _hub_head(repo_id, {"datasets": "dataset", "spaces": "space"}.get(kind, "model")),
                         url, "reading the repo's head commit")
    except retry.StorageError:
        return url
    out = f"hf://{'/'.join(parts[:head])}@{sha}" + ("/" + "/".join(parts[head:]) if parts[head:] else "")
    with _TREES_LOCK:
        _PINS[url] = out
    return out


def _hub_head(repo_id: str, repo_type: str) -> str:
    from voxbox.release.hub import make_api, resolve_token

    return make_api(token=resolve_token() or None).repo_info(repo_id, repo_type=repo_type).sha


def tree(url: str) -> "Tree":
    """The process-wide :class:`Tree` of a root URL (listings are fetched once)."""
    key = redact(url).rstrip("/")
    with _TREES_LOCK:
        found = _TREES.get(key)
    if found is None:
        found = Tree(key)
        with _TREES_LOCK:
            found = _TREES.setdefault(key, found)
    return found


def forget_trees() -> None:
    """Drop every cached listing (the remote tree changed; tests)."""
    with _TREES_LOCK:
        _TREES.clear()
        _PINS.clear()


class Tree:
    """One remote root: its filesystem, and each folder's listing once fetched."""

    def __init__(self, url: str):
        self.url = url
        self.fs, base = open_fs(url)
        self.base = base.rstrip("/")
        self.is_hf = split_url(url)[0] == "hf"
        self.token = getattr(self.fs, "token", None) if self.is_hf else None  # for the Hub's range GETs
        self.down = 0  # reads in a row that failed for good (voxbox.storage.blocks.fetch)
        self._dirs: Dict[str, Optional[Dict[str, dict]]] = {}
        self.missing: Dict[str, str] = {}  # folder -> why its listing found nothing (the storage's words)
        self._lock = threading.Lock()

    def url_of(self, rel: str) -> str:
        return f"{self.url}/{rel}" if rel else self.url

    def fs_path(self, rel: str) -> str:
        return f"{self.base}/{rel}" if rel else self.base

    def listing(self, rel: str) -> Optional[Dict[str, dict]]:
        """name -> entry (fsspec's info dict) of a folder's members; None when ``rel`` is
        not a folder. Fetched once per process (with retries)."""
        with self._lock:
            if rel in self._dirs:
                return self._dirs[rel]
        try:
            found = retry.call(lambda: self.fs.ls(self.fs_path(rel), detail=True), self.url_of(rel), "listing")
        except retry.StorageError as e:
            if e.reason != "remote_missing":
                raise
            found = None
            self.missing[rel] = str(e)
        entries = None
        if found is not None:
            entries = {posixpath.basename(e["name"].rstrip("/")): e for e in found}
            only = next(iter(entries.values()), None) if len(entries) == 1 else None
            if only is not None and only.get("type") != "directory" and \
                    only["name"].strip("/") == self.fs_path(rel).strip("/"):
                entries = None  # some filesystems list a file as itself
        with self._lock:
            self._dirs[rel] = entries
        return entries

    def entry(self, rel: str) -> Optional[dict]:
        """The info of one path (None when it does not exist); the root is a folder when
        it can be listed."""
        if not rel:
            return {"type": "directory", "name": self.base, "size": 0} if self.listing("") is not None else None
        parent, _, name = rel.rpartition("/")
        listed = self.listing(parent)
        return listed.get(name) if listed is not None else None


def version(entry: dict) -> Optional[str]:
    """A content identity of a listed file: the Hub's LFS sha256, Xet hash or git blob id,
    an object store's ETag / MD5 / checksum; None when the storage gives none."""
    lfs = entry.get("lfs")
    if lfs:
        sha = lfs.get("sha256") or lfs.get("oid") if isinstance(lfs, dict) else getattr(lfs, "sha256", None)
        if sha:
            return f"sha256:{sha}"
    for key in ("xet_hash", "blob_id", "ETag", "etag", "md5Hash", "sha256", "checksum", "md5", "crc32c"):
        if entry.get(key):
            value = str(entry[key]).strip('"')  # S3 ETags come quoted
            return f"{key}:{value}"
    return None


class RemotePath:
    """A file or folder below a remote root; see the module docstring."""

    __slots__ = ("tree", "rel")

    def __init__(self, tree_: Tree, rel: str = ""):
        self.tree, self.rel = tree_, rel

    # -- naming ------------------------------------------------------------------------
    def __str__(self) -> str:
        return self.tree.url_of(self.rel)

    def __repr__(self) -> str:
        return f"RemotePath({str(self)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, RemotePath) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __lt__(self, other: "RemotePath") -> bool:
        return str(self) < str(other)

    def __truediv__(self, other) -> "RemotePath":
        other = str(other).replace("\\", "/")
        joined = posixpath.normpath(posixpath.join(self.rel, other)) if other else self.rel
        if joined in (".", ""):
            joined = ""
        if joined.startswith("../") or joined == ".." or other.startswith("/"):
            raise ValueError(f"{other!r} leaves the remote root {self.tree.url}")
        return RemotePath(self.tree, joined)

    def joinpath(self, *parts) -> "RemotePath":
        out = self
        for p in parts:
            out = out / p
        return out

    @property
    def name(self) -> str:
        return self.rel.rsplit("/", 1)[-1] if self.rel else posixpath.basename(self.tree.url)

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix

    @property
    def stem(self) -> str:
        return PurePosixPath(self.name).stem

    @property
    def parent(self) -> "RemotePath":
        return RemotePath(self.tree, self.rel.rpartition("/")[0])

    def relative_to(self, other: "RemotePath") -> PurePosixPath:
        if not isinstance(other, RemotePath) or other.tree is not self.tree:
            raise ValueError(f"{self} is not below {other}")
        return PurePosixPath(self.rel or ".").relative_to(other.rel or ".") if other.rel else PurePosixPath(self.rel)

    def as_posix(self) -> str:
        return str(self)

    def resolve(self) -> "RemotePath":
        return self

    expanduser = absolute = resolve

    # -- what is there -----------------------------------------------------------------
    def info(self) -> Optional[dict]:
        return self.tree.entry(self.rel)

    def is_dir(self) -> bool:
        e = self.info()
        return e is not None and e.get("type") == "directory"

    def not_found(self) -> str:
        """Why this folder is not there, in one line (the storage's own reason when it gave
        one: no such repo, revision or path)."""
        self.tree.listing(self.rel)
        return self.tree.missing.get(self.rel) or f"{self}: not found"

    def is_file(self) -> bool:
        e = self.info()
        return e is not None and e.get("type") != "directory"

    def exists(self) -> bool:
        return self.info() is not None

    def is_symlink(self) -> bool:
        return False

    def iterdir(self) -> Iterator["RemotePath"]:
        listed = self.tree.listing(self.rel)
        if listed is None:
            raise NotADirectoryError(f"{self}: not a folder")
        return iter([self / name for name in sorted(listed)])

    def glob(self, pattern: str) -> Iterator["RemotePath"]:
        """Members of this folder whose names match ``pattern`` (one level: no "/")."""
        import fnmatch

        if "/" in pattern:
            raise NotImplementedError(f"{self}: remote glob takes one folder level, got {pattern!r}")
        listed = self.tree.listing(self.rel) or {}
        return iter([self / n for n in sorted(listed) if fnmatch.fnmatchcase(n, pattern)])

    def size(self) -> int:
        e = self.info()
        if e is None or e.get("type") == "directory":
            raise FileNotFoundError(f"{self}: no such file")
        return int(e.get("size") or 0)

    def stat(self) -> SimpleNamespace:
        return SimpleNamespace(st_size=self.size(), st_mode=0o100444)

    # -- reading -------------------------------------------------------------------------
    def open(self, mode: str = "rb"):
        from voxbox.storage.blocks import RemoteFile

        import io

        from voxbox.storage.blocks import BLOCK

        if mode != "rb":
            raise ValueError(f"{self}: remote files open in mode 'rb' only, not {mode!r}")
        return io.BufferedReader(RemoteFile(self), buffer_size=BLOCK)  # buffered: line iteration, small reads

    def read_bytes(self, limit: Optional[int] = None) -> bytes:
        from voxbox.storage.blocks import read_range

        size = self.size()
        if limit is not None and size > limit:
            raise OverflowError(f"{size} bytes, more than the {limit} bytes voxbox reads from such a file")
        return read_range(self, 0, size)

    def read_text(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self.read_bytes().decode(encoding, errors)
