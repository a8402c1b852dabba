"""Archive extraction that never writes outside the destination.

We do not trust ``os.path.realpath`` or tarfile's ``filter="data"`` for this: both
resolve links with ``realpath``, which gives up silently on paths longer than the
system limit, and a chain of nested links then makes an escaping member look inside
(CVE-2025-4517). Instead every member is checked against the destination as it
stands on disk, resolving links ourselves one component at a time, and written by
us (never by ``tarfile.extract``):

- member names: no absolute paths, no ``..``, nothing under ``DEST/.voxbox`` or
  ``DEST/archives`` (where ``voxbox download`` keeps its markers and archives: an
  archive could otherwise forge a completion marker or overwrite itself);
- no member writes through a link: every folder on its path must be a real folder,
  and the member itself is created fresh (``O_EXCL | O_NOFOLLOW``), never opened
  through an existing link or hard link;
- symbolic links: relative, resolved component by component with at most
  ``MAX_LINK_HOPS`` links followed, and the result must stay inside. Their target may
  only climb (``..``) before it descends, never after, so that no later member can
  change where an accepted link points;
- hard links: only to a regular file this extraction has already written;
- devices, FIFOs and other special members are refused.

A refused member stops the extraction with a one-line error naming it.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO, List, Optional, Set, Union

from voxbox.errors import VoxboxError

MAX_LINK_HOPS = 40          # links followed while resolving one path (Linux's MAXSYMLINKS)
RESERVED_DIRS = (".voxbox", "archives")  # voxbox download's own folders in DEST
CHUNK = 1 << 20


class Unsafe(Exception):
    """Internal: a member that must not be extracted; the message says why."""


def check_name(name: str) -> Optional[str]:
    """Why a member name is unacceptable on its own (before looking at the disk), or None."""
    if not name or not name.strip("/"):
        return "empty member name"
    if name.startswith(("/", "\\")) or PurePosixPath(name).is_absolute() or (len(name) > 1 and name[1] == ":"):
        return f"absolute path {name!r}"
    if ".." in name.replace("\\", "/").split("/"):
        return f"'..' in member path {name!r}"
    return None


def _parts(name: str) -> List[str]:
    return [p for p in name.split("/") if p not in ("", ".")]


class Destination:
    """The folder being extracted into, and what this extraction wrote there."""

    def __init__(self, root: Union[str, Path]):
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        self.root = os.path.realpath(root)  # the user's own links above DEST are theirs to choose
        self.files: Set[str] = set()        # regular files written by this extraction ("/"-joined)

    def path(self, parts: List[str]) -> str:
        return os.path.join(self.root, *parts)

    # -- checks ------------------------------------------------------------------------
    def resolve(self, parts: List[str]) -> List[str]:
        """Where ``parts`` (relative to DEST) leads, following links as the kernel would,
        as parts relative to DEST; raises Unsafe if it leaves DEST or loops."""
        todo, done, hops = list(parts), [], 0
        while todo:
            c = todo.pop(0)
            if c in ("", "."):
                continue
            if c == "..":
                if not done:
                    raise Unsafe("leaves the destination")
                done.pop()
                continue
            st = self._lstat(done + [c])
            if st is None or not stat.S_ISLNK(st.st_mode):
                done.append(c)  # a real entry, or nothing yet (then only names follow)
                continue
            hops += 1
            if hops > MAX_LINK_HOPS:
                raise Unsafe(f"more than {MAX_LINK_HOPS} links to follow")
            target = os.readlink(self.path(done + [c]))
            if os.path.isabs(target):
                raise Unsafe(f"goes through the absolute link {'/'.join(done + [c])!r} -> {target!r}")
            todo = target.split("/") + todo
        return done

    def _lstat(self, parts: List[str]) -> Optional[os.stat_result]:
        try:
            return os.lstat(self.path(parts))
        except FileNotFoundError:
            return None
        except OSError as e:  # ENAMETOOLONG, ELOOP, ...: never guess, refuse
            raise Unsafe(f"cannot check {'/'.join(parts)!r} ({e.strerror or e})") from None

    def place(self, name: str, is_dir: bool = False) -> List[str]:
        """The parts of a member's own path after every check that does not depend on its
        type: a valid name, not reserved, no link or file on the way, and nothing at the
        spot that it may not replace. Missing parent folders are created."""
        bad = check_name(name)
        if bad:
            raise Unsafe(bad)
        parts = _parts(name)
        if not parts:
            if is_dir:
                return parts  # "./": DEST itself
            raise Unsafe(f"member {name!r} has no file name")
        if parts[0].casefold() in RESERVED_DIRS:
            raise Unsafe(f"member {name!r} writes into DEST/{parts[0]}, which voxbox download keeps for itself")
        for i in range(1, len(parts)):
            st = self._lstat(parts[:i])
            if st is None:
                os.mkdir(self.path(parts[:i]), 0o755)
            elif stat.S_ISLNK(st.st_mode):
                raise Unsafe(f"member {name!r} would write through the link {'/'.join(parts[:i])!r}")
            elif not stat.S_ISDIR(st.st_mode):
                raise Unsafe(f"member {name!r} needs {'/'.join(parts[:i])!r} to be a folder, it is a file")
        st = self._lstat(parts)
        if st is not None:
            if stat.S_ISLNK(st.st_mode) and is_dir:
                raise Unsafe(f"member {name!r} would write through the link {name!r}")
            if stat.S_ISDIR(st.st_mode) and not is_dir:
                raise Unsafe(f"member {name!r} would replace a folder")
        return parts

    def _clear(self, parts: List[str]) -> None:
        """Remove a non-folder at the spot, so what we write is a new file and never goes
        through an existing link or into another file's inode (a hard link)."""
        st = self._lstat(parts)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            os.unlink(self.path(parts))
            self.files.discard("/".join(parts))

    # -- writers -----------------------------------------------------------------------
    def make_dir(self, name: str) -> None:
        parts = self.place(name, is_dir=True)
        if parts and self._lstat(parts) is None:
            os.mkdir(self.path(parts), 0o755)

    def write_file(self, name: str, data: IO[bytes], mode: int, mtime: Optional[float] = None) -> None:
        parts = self.place(name)
        self._clear(parts)
        perm = 0o755 if mode & 0o111 else 0o644  # as filter="data": no setuid, no odd modes
        fd = os.open(self.path(parts), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, perm)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(data, out, CHUNK)
        if mtime is not None:
            os.utime(self.path(parts), (mtime, mtime), follow_symlinks=False)
        self.files.add("/".join(parts))

    def make_symlink(self, name: str, target: str) -> None:
        parts = self.place(name)
        if not target or os.path.isabs(target) or target.startswith("\\") or (len(target) > 1 and target[1] == ":"):
            raise Unsafe(f"symlink {name!r} -> {target!r} points outside the destination (absolute)")
        tparts = _parts(target)
        climbs = 0
        while climbs < len(tparts) and tparts[climbs] == "..":
            climbs += 1
        if ".." in tparts[climbs:]:
            # "a/../b" could later point elsewhere, once a later member makes "a" a link.
            raise Unsafe(f"symlink {name!r} -> {target!r}: '..' after a folder name is not accepted")
        try:
            self.resolve(parts[:-1] + tparts)
        except Unsafe as e:
            raise Unsafe(f"symlink {name!r} -> {target!r} points outside the destination ({e})") from None
        self._clear(parts)
        os.symlink(target, self.path(parts))

    def make_hardlink(self, name: str, target: str) -> None:
        parts = self.place(name)
        bad = check_name(target)
        tparts = _parts(target) if not bad else []
        if bad or "/".join(tparts) not in self.files:
            raise Unsafe(f"hard link {name!r} -> {target!r} points outside the destination or to something "
                         "this archive did not extract before it")
        if tparts == parts:
            return
        self._clear(parts)
        os.link(self.path(tparts), self.path(parts), follow_symlinks=False)
        self.files.add("/".join(parts))


def remove_tree(path: Union[str, Path], missing_ok: bool = True) -> None:
    """``shutil.rmtree`` without recursion: before Python 3.12 it recurses once per folder
    level, and an archive of 1,100 nested folders would end it (and the run) with a
    RecursionError. Links are removed, never followed."""
    path = str(path)
    if missing_ok and not os.path.lexists(path):
        return
    if not os.path.isdir(path) or os.path.islink(path):
        os.unlink(path)
        return
    stack = [path]
    while stack:
        subdirs = []
        with os.scandir(stack[-1]) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    subdirs.append(e.path)
                else:
                    os.unlink(e.path)
        if subdirs:
            stack.extend(subdirs)
        else:
            os.rmdir(stack.pop())


def safe_extract(archive: Union[str, Path], dest: Union[str, Path]) -> int:
    """Extract a tar(.gz/.bz2/.xz) or zip archive into dest; returns members written.

    Tar archives are streamed (one pass over a possibly huge compressed file); every
    member is checked just before it is written, and a bad member stops the extraction
    with an error. Nothing is ever written outside dest.
    """
    archive = Path(archive)
    d = Destination(dest)
    if zipfile.is_zipfile(archive):
        return _extract_zip(archive, d)
    try:
        tf = tarfile.open(archive, mode="r|*")
    except (tarfile.TarError, OSError) as e:
        raise VoxboxError(f"{archive.name}: not a tar or zip archive ({e})") from None
    count = 0
    with tf:
        try:
            for m in tf:
                _extract_tar_member(tf, m, d)
                count += 1
        except Unsafe as e:
            raise VoxboxError(f"{archive.name}: unsafe archive, refused: {e}") from None
        except (tarfile.TarError, EOFError, OSError) as e:
            raise VoxboxError(f"{archive.name}: damaged archive ({e}); delete it and download again") from None
    return count


def _extract_tar_member(tf: tarfile.TarFile, m: tarfile.TarInfo, d: Destination) -> None:
    if m.isdir():
        d.make_dir(m.name)
    elif m.isreg():
        d.write_file(m.name, tf.extractfile(m), m.mode, m.mtime)
    elif m.issym():
        d.make_symlink(m.name, m.linkname)
    elif m.islnk():
        d.make_hardlink(m.name, m.linkname)
    else:
        raise Unsafe(f"device or FIFO member {m.name!r}")


def _zip_kind(info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    if info.is_dir():
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_IFMT(mode) and not stat.S_ISREG(mode):  # permission bits only: a plain file
        return "special"
    return "file"


def _extract_zip(archive: Path, d: Destination) -> int:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        # Everything a name alone can tell is checked before anything is written.
        for info in infos:
            bad = check_name(info.filename)
            if not bad and _zip_kind(info) == "special":
                bad = f"device or FIFO member {info.filename!r}"
            if bad:
                raise VoxboxError(f"{archive.name}: unsafe archive, refused: {bad}")
        try:
            for info in infos:
                kind = _zip_kind(info)
                if kind == "dir":
                    d.make_dir(info.filename)
                elif kind == "symlink":
                    d.make_symlink(info.filename, zf.read(info).decode("utf-8", "replace"))
                else:
                    with zf.open(info) as src:
                        d.write_file(info.filename, src, (info.external_attr >> 16) or 0o644)
        except Unsafe as e:
            raise VoxboxError(f"{archive.name}: unsafe archive, refused: {e}") from None
        except (zipfile.BadZipFile, OSError) as e:
            raise VoxboxError(f"{archive.name}: damaged archive ({e}); delete it and download again") from None
    return len(infos)
