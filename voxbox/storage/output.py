"""Writing a built folder to object storage: ``voxbox build --out s3://bucket/prefix``.

Any fsspec URL works as ``--out`` (``s3://``, ``gs://``, ``hf://``, ``memory://``,
...; the scheme's package, e.g. s3fs, and its credentials from the environment). A
local path never comes here: local builds write the folder directly, as always.

The build itself runs unchanged against a local *staging* folder (a fresh temporary
folder: the prepared input, the plan, the shard being written); :class:`RemoteOutput`
keeps the store the truth:

- **pull** at the start: the store's journal (``journal.jsonl`` plus the per-line
  objects ``.journal/NNNNNNNNN.json`` a running build appends, in order) and
  ``index.json`` come down, so the build's guards and resume rules see the store's
  state. No shard is downloaded. A prefix holding other objects is refused as foreign;
  ``*.partial`` keys of a killed upload are removed.
- **commit**: a shard committed in staging is uploaded under ``NAME.partial``, its size
  checked, then moved to its final key (a server-side copy on S3: the final key never
  holds a partial object), the local copy removed; only then is its journal line
  written, as its own object (object stores cannot append).
- **resume**: a journalled shard is kept only if the object under its final key has the
  journalled size and sha256 (read back from the store); else it is redone.
- **finish**: rejects.jsonl, pipeline.yaml, provenance.json and the whole journal
  (``journal.jsonl``; the line objects then go) are uploaded, ``index.json`` last, so a
  prefix without ``index.json`` is an unfinished build, as for a local folder.

Every store operation is retried on transient failures, with the bounded backoff of
remote reads (:mod:`voxbox.storage.retry`), and is safe to repeat after an answer was
lost; a failure left after the last try is one :class:`~voxbox.storage.StorageError`
line, and what is already stored and journalled stays for the rerun.

The lock is a lease: the object ``.voxbox-lock`` names its holder and is renewed every
``LEASE_S / 5`` seconds by a thread; a build finding a lease renewed less than
``LEASE_S`` ago (``VOXBOX_LEASE_S``, default 300) refuses to start, an older one (a
killed build) is taken over. Limit: object stores give no atomic create here, so two
builds started within the same second on one prefix are not reliably told apart, and
hosts' clocks must agree to within the lease; run one build per prefix.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, List, Optional, Tuple, TypeVar

from voxbox.build.engine.common import fault_point
from voxbox.errors import VoxboxError
from voxbox.shards import index as ix

JOURNAL_DIR = ".journal"
LOCK_NAME = ".voxbox-lock"
_OWN = {ix.INDEX_NAME, ix.JOURNAL_NAME, ix.PIPELINE_NAME, ix.PROVENANCE_NAME, ix.REJECTS_NAME, LOCK_NAME}
_OWN_DIRS = {JOURNAL_DIR, *ix.FORMAT_DIRS.values()}
_CHUNK = 8 << 20
Log = Callable[[str], None]
T = TypeVar("T")


def _reported(method):
    """Storage failures (network, permissions, a missing bucket) become one clear line:
    what is in the store stays, and a rerun resumes from it."""
    import functools

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        from voxbox.storage.retry import StorageError

        try:
            return method(self, *args, **kwargs)
        except StorageError as e:
            raise StorageError(e.reason, str(e) if "rerun" in str(e) else
                               f"{e}; committed shards stay in the store, rerun to resume") from None
        except VoxboxError:
            raise
        except Exception as e:  # noqa: BLE001 - every backend raises its own types
            url = self.store.url if hasattr(self, "store") else self.url
            raise VoxboxError(f"{url}: {type(e).__name__}: {e}; committed shards stay in the store, "
                              "rerun to resume") from e
    return wrapper


def is_output_url(out) -> bool:
    """True for ``scheme://...`` other than ``file://`` (a local folder stays a path)."""
    text = str(out) if not isinstance(out, Path) else ""
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.isidentifier() and scheme.lower() not in ("file", "local")


def lease_s() -> float:
    try:
        return max(1.0, float(os.environ.get("VOXBOX_LEASE_S", "300")))
    except ValueError:
        raise VoxboxError(f"VOXBOX_LEASE_S={os.environ['VOXBOX_LEASE_S']!r}: not a number of seconds") from None


def verify_mode() -> str:
    """How a resume checks shards it finds in the store when the store keeps no hash of
    its own: ``hash`` (default: read and hash each one) or ``size`` (trust the size)."""
    mode = os.environ.get("VOXBOX_VERIFY_REMOTE", "hash").strip().lower()
    if mode not in ("hash", "size"):
        raise VoxboxError(f"VOXBOX_VERIFY_REMOTE={mode!r}: use hash or size")
    return mode


def _protocol(fs) -> str:
    proto = fs.protocol
    return (proto[0] if isinstance(proto, (tuple, list)) else proto) or ""


class Store:
    """An output prefix in an fsspec file system, addressed by relative names. Every
    operation is retried on transient failures (:func:`voxbox.storage.retry.call`: the
    same tries and backoff as reads, ``VOXBOX_REMOTE_TRIES``, ``VOXBOX_REMOTE_BACKOFF_S``)
    and written so that a retry after a lost answer does no harm; what fails for good is a
    :class:`~voxbox.storage.StorageError` naming the prefix."""

    def __init__(self, url: str):
        from voxbox.storage.remote import open_fs

        try:  # the same file systems (and Hub endpoint and token checks) as remote roots
            self.fs, self.root = open_fs(url)
        except VoxboxError as e:
            raise VoxboxError(f"--out {e}") from None
        self.url = url.rstrip("/")
        self.root = self.root.rstrip("/")

    def key(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def _call(self, fn: Callable[[], T], what: str) -> T:
        from voxbox.storage import retry

        return retry.call(fn, self.url, what)

    def files(self) -> List[str]:
        """Every object under the prefix, relative, sorted."""
        def find() -> List[str]:
            self.fs.invalidate_cache()
            if not self.fs.exists(self.root):
                return []
            return sorted(p[len(self.root) + 1:] for p in self.fs.find(self.root) if p.startswith(self.root + "/"))
        return self._call(find, "listing")

    def size(self, rel: str) -> Optional[int]:
        return self._call(lambda: self._size(rel), f"reading the size of {rel}")

    def _size(self, rel: str) -> Optional[int]:
        self.fs.invalidate_cache()
        try:
            return int(self.fs.info(self.key(rel))["size"])
        except FileNotFoundError:
            return None

    def sha256(self, rel: str) -> str:
        def digest() -> str:  # a retry hashes the object again from its start
            h = hashlib.sha256()
            with self.fs.open(self.key(rel), "rb", block_size=_CHUNK) as fh:
                for block in iter(lambda: fh.read(_CHUNK), b""):
                    h.update(block)
            return h.hexdigest()
        return self._call(digest, f"reading {rel}")

    def stat(self, rel: str) -> Optional[Tuple[int, Optional[str]]]:
        """(size, the object's sha256 as the store keeps it) without reading the object, or
        None when it is missing. The hash is the Hub's LFS hash (computed by the Hub from the
        bytes; the same request as the size) or, on S3, the ``sha256`` metadata voxbox set at
        upload (gone if anything else rewrote the object); None when the store keeps none:
        then only reading the object tells."""
        def ask() -> Optional[Tuple[int, Optional[str]]]:
            self.fs.invalidate_cache()
            try:
                info = self.fs.info(self.key(rel))
                stored = None
                if _protocol(self.fs) == "hf":
                    lfs = info.get("lfs")
                    stored = lfs.get("sha256") if isinstance(lfs, dict) else None
                elif _protocol(self.fs) == "s3":
                    stored = (self.fs.metadata(self.key(rel)) or {}).get("sha256")
            except FileNotFoundError:
                return None
            return int(info["size"]), stored
        return self._call(ask, f"reading the size and stored hash of {rel}")

    def read_text(self, rel: str) -> Optional[str]:
        def read() -> Optional[str]:
            try:
                return self.fs.cat_file(self.key(rel)).decode("utf-8")
            except FileNotFoundError:
                return None
        return self._call(read, f"reading {rel}")

    def put_file(self, local: Path, rel: str, sha256: Optional[str] = None) -> None:
        """Upload under a temporary key, check its size, move it to ``rel``. A short
        upload is tried again; the final key never holds a partial object. ``sha256`` (the
        file's, from the journal) goes with the object where the store keeps metadata (S3),
        so a resume checks it without downloading the object."""
        tmp = rel + ix.PARTIAL_SUFFIX
        want = local.stat().st_size
        tags = {"Metadata": {"sha256": sha256}} if sha256 and _protocol(self.fs) == "s3" else {}

        def upload() -> None:
            self.fs.put_file(str(local), self.key(tmp), **tags)
            fault_point("upload")  # test hook: a kill here leaves only the temporary key
            got = self._size(tmp)
            if got != want:
                raise ConnectionResetError(f"uploaded {got} bytes of {want}")  # transient: upload again
        self._call(upload, f"uploading {rel}")
        self._call(lambda: self._move(tmp, rel, want), f"moving {tmp} to {rel}")

    def _move(self, tmp: str, rel: str, want: int) -> None:
        try:
            self.fs.mv(self.key(tmp), self.key(rel))
        except FileNotFoundError:
            # The temporary key was there (its size was just checked): a move retried after
            # its answer was lost finds it gone and the object already in place.
            if self._size(tmp) is not None or self._size(rel) != want:
                raise

    def put_text(self, rel: str, text: str) -> None:
        with tempfile.NamedTemporaryFile("wb", delete=False) as fh:
            fh.write(text.encode("utf-8"))
        try:
            self.put_file(Path(fh.name), rel)
        finally:
            os.unlink(fh.name)

    def remove(self, rels: List[str]) -> None:
        if rels:
            self._call(lambda: self._remove([self.key(r) for r in rels]), f"removing {len(rels)} object(s)")

    def _remove(self, keys: List[str]) -> None:
        one = self.url.startswith("hf://")  # HfFileSystem removes one path per call (one commit each)
        for batch in ([k] for k in keys) if one else [keys]:
            try:
                self.fs.rm(batch[0] if one else batch)
            except FileNotFoundError:  # a retry after a lost answer: some are gone already
                self.fs.invalidate_cache()
                left = [k for k in batch if self.fs.exists(k)]
                if left:
                    self.fs.rm(left[0] if one else left)


class StoreLock:
    """The lease on an output prefix (see the module docstring)."""

    def __init__(self, store: Store, log: Log):
        self.store, self.log = store, log
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _body(self) -> str:
        return json.dumps({"owner": self.token, "host": socket.gethostname(), "pid": os.getpid(),
                           "renewed": time.time()})

    def acquire(self) -> None:
        old = self.store.read_text(LOCK_NAME)
        if old is not None:
            held = _parse_lock(old)
            age = time.time() - float(held.get("renewed", 0))
            if age < lease_s():
                raise VoxboxError(f"{self.store.url} is being written by another voxbox run "
                                  f"(host {held.get('host', '?')}, pid {held.get('pid', '?')}, lease renewed "
                                  f"{age:.0f} s ago; a killed run's lease expires after {lease_s():.0f} s)")
            self.log(f"note: took over the expired lease of {self.store.url} (host {held.get('host', '?')}, "
                     f"pid {held.get('pid', '?')}, {age:.0f} s old)")
        self.store.put_text(LOCK_NAME, self._body())
        if _parse_lock(self.store.read_text(LOCK_NAME) or "").get("owner") != self.token:
            raise VoxboxError(f"{self.store.url}: another voxbox run took the lease at the same moment")
        self._thread = threading.Thread(target=self._renew, name="voxbox-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(lease_s() / 5):
            try:
                self.store.put_text(LOCK_NAME, self._body())
            except Exception as e:  # noqa: BLE001 - a missed renewal is retried; the build goes on
                self.log(f"note: could not renew the lease on {self.store.url}: {e}")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            try:
                if _parse_lock(self.store.read_text(LOCK_NAME) or "").get("owner") == self.token:
                    self.store.remove([LOCK_NAME])
            except Exception:  # noqa: BLE001 - an expired lease is taken over anyway
                pass


def _parse_lock(text: str) -> dict:
    try:
        data = json.loads(text)
        return data if isinstance(data, dict) else {}
    except json.JSONDecodeError:
        return {}


def journal_line(entry: dict) -> str:
    """The journal's own line format (:class:`voxbox.shards.index.Journal`)."""
    return json.dumps(entry, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"


class RemoteOutput:
    """A build's output in a store, staged locally (see the module docstring)."""

    def __init__(self, url: str, force: bool = False, log: Optional[Log] = None):
        self.log = log or (lambda msg: None)
        self.store = Store(url)
        self.force = force
        self.lock = StoreLock(self.store, self.log)
        self.staging = Path(tempfile.mkdtemp(prefix="voxbox-out-"))
        self.lines = 0  # journal lines the store holds

    @_reported
    def __enter__(self) -> "RemoteOutput":
        try:
            self._check_foreign()
            self.lock.acquire()
            self.pull()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.lock.release()
        shutil.rmtree(self.staging, ignore_errors=True)

    def _check_foreign(self) -> None:
        names = self.store.files()
        ours = {n for n in names if n in _OWN or n.split("/", 1)[0] in _OWN_DIRS}
        built = {ix.INDEX_NAME, ix.JOURNAL_NAME} & set(names) or any(n.startswith(JOURNAL_DIR + "/") for n in names)
        others = [n for n in names if n not in ours]
        if others and not built and not self.force:
            raise VoxboxError(f"{self.store.url}: holds objects that no voxbox build wrote "
                              f"(found {', '.join(others[:3])}); choose another --out")

    def pull(self) -> None:
        """The store's index.json and journal into the staging folder; partial uploads go."""
        names = self.store.files()
        partial = [n for n in names if n.endswith(ix.PARTIAL_SUFFIX)]
        for n in partial:
            self.log(f"removed unfinished upload {n}")
        self.store.remove(partial)
        index = self.store.read_text(ix.INDEX_NAME)
        if index is not None:
            (self.staging / ix.INDEX_NAME).write_text(index, encoding="utf-8")
        text = self.store.read_text(ix.JOURNAL_NAME) or ""
        for n in sorted(n for n in names if n.startswith(JOURNAL_DIR + "/") and n.endswith(".json")):
            text += self.store.read_text(n) or ""
        text = text[: text.rfind("\n") + 1]  # a torn tail is dropped, as the local journal does
        if text:
            (self.staging / ix.JOURNAL_NAME).write_text(text, encoding="utf-8")
        self.pulled = text
        self.lines = text.count("\n")

    @_reported
    def sync_start(self, shards: int, name: str) -> None:
        """After the guards and the journal start: mirror what they changed in staging
        (a cleaned or restarted journal, a removed index) and drop unplanned shards."""
        if not (self.staging / ix.INDEX_NAME).exists():
            self.store.remove([ix.INDEX_NAME] if self.store.size(ix.INDEX_NAME) is not None else [])
        path = self.staging / ix.JOURNAL_NAME
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if not text.startswith(self.pulled):
            self._replace_journal(text)
        else:
            for line in text[len(self.pulled):].splitlines(keepends=True):
                self._put_line(line)
        # Shard objects the journal does not list (a --force rebuild cleared it, or a kill
        # came between upload and journal line) are redone anyway: they go now, as a
        # local rebuild deletes its files, and so do shards numbered beyond the plan.
        listed = {f["path"] for e in ix.Journal(path).shards().values() for f in e.get("files", {}).values()}
        self.store.remove([n for n in self.store.files()
                           if _unplanned(n, name, shards) or (_is_shard(n) and n not in listed)])

    def _replace_journal(self, text: str) -> None:
        self.store.put_text(ix.JOURNAL_NAME, text)
        self.store.remove([n for n in self.store.files() if n.startswith(JOURNAL_DIR + "/")])
        self.pulled, self.lines = text, text.count("\n")

    def _put_line(self, line: str) -> None:
        self.store.put_text(f"{JOURNAL_DIR}/{self.lines:09d}.json", line)
        self.lines += 1

    @_reported
    def verify(self, _root, entry: dict) -> Optional[str]:
        """The store's copy of a journalled shard: None when every file matches. The
        sha256 comes from the store's own record of the object when it keeps one (S3
        metadata set at upload, the Hub's LFS hash): a resume at terabyte scale then reads
        no shard. Otherwise the object is read and hashed, unless
        ``VOXBOX_VERIFY_REMOTE=size`` says sizes are enough."""
        for _fmt, info in sorted(entry.get("files", {}).items()):
            found = self.store.stat(info["path"])
            if found is None:
                return f"{info['path']}: missing in {self.store.url}"
            size, stored = found
            if size != info["bytes"]:
                return f"{info['path']}: size {size} != {info['bytes']} in the journal"
            if stored is None and verify_mode() == "size":
                continue
            if (stored or self.store.sha256(info["path"])) != info["sha256"]:
                return f"{info['path']}: sha256 does not match the journal"
        return None

    @_reported
    def committed(self, entry: dict) -> None:
        """Upload a shard committed in staging (before its journal line is written),
        unless the process that wrote it uploaded it already (``entry["uploaded"]``, set
        by :func:`upload_shard` on a worker that does not share the staging folder)."""
        if not entry.pop("uploaded", False):
            upload_shard(self.store, self.staging, entry)
        entry.pop("uploaded", None)  # not part of the journal line

    @_reported
    def journalled(self, entry: dict) -> None:
        self._put_line(journal_line(entry))

    @_reported
    def finish(self) -> None:
        """The folder's small files, the whole journal, and index.json last."""
        for name in (ix.REJECTS_NAME, ix.PIPELINE_NAME, ix.PROVENANCE_NAME):
            if (self.staging / name).exists():
                self.store.put_file(self.staging / name, name)
        self._replace_journal((self.staging / ix.JOURNAL_NAME).read_text(encoding="utf-8"))
        self.store.put_file(self.staging / ix.INDEX_NAME, ix.INDEX_NAME)


def upload_shard(store, root: Path, entry: dict) -> None:
    """Upload the files of a shard committed under ``root`` (a local folder) to ``store``
    (a :class:`Store` or its URL), remove the local copies and mark the entry
    ``uploaded`` (an engine whose workers commit shards on their own disks calls this
    on the worker; :meth:`RemoteOutput.committed` then only journals it)."""
    store = store if isinstance(store, Store) else Store(store)
    for _fmt, info in sorted(entry["files"].items()):
        local = Path(root) / info["path"]
        store.put_file(local, info["path"], sha256=info.get("sha256"))
        local.unlink()
    entry["uploaded"] = True


def _is_shard(rel: str) -> bool:
    folder, _, base = rel.partition("/")
    return folder in ix.FORMAT_DIRS.values() and base.endswith((".tar", ".parquet"))


def _unplanned(rel: str, name: str, shards: int) -> bool:
    folder, _, base = rel.partition("/")
    if folder not in ix.FORMAT_DIRS.values() or not base.startswith(name + "-"):
        return False
    num = base[len(name) + 1:].split(".", 1)[0]
    return num.isdigit() and int(num) >= shards and base.endswith((".tar", ".parquet"))
