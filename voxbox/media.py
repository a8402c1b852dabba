"""Where a record's audio comes from: a file, a span of a file, or a member of an archive.

Every reader of audio (prepare's header check, the annotate front end, tokenize, the
shard writer) goes through here, so spans and archive members work in every stage.

Two representations, both plain record fields:

- **Span**: ``span_offset`` and ``span_duration`` (seconds) cut the record out of the
  longer recording at ``source_path`` (GigaSpeech's long opus files, a podcast). The
  span is taken in whole source samples: ``start = round(offset * sr)``, ``frames =
  round(duration * sr)``, so a span written from sample counts cuts exactly those
  samples. ``num_samples`` of a span record is the span's length; shards store only
  the cut audio and the record keeps ``source_path`` + span as provenance.
- **Archive member**: ``source_path`` = ``<archive>/<member>`` where ``<archive>`` is a
  ``.tar``, ``.tar.gz`` or ``.tgz`` *file* under the corpus root (a folder of that name
  is just a folder). Nothing is extracted:

  - an uncompressed tar (Emilia's WebDataset tars, voxbox's own shards) is indexed once
    per process (member -> byte offset and size, from the tar headers alone: one seek
    per member, no data read) and a member is one ``pread`` of its byte range;
  - a ``.tar.gz`` cannot seek, so its members are streamed in one sequential pass:
    :func:`prefetch` reads every member a task needs from each archive in one pass (the
    build engine wraps each task in it), and a read outside a prefetch streams the
    archive up to that member (correct, but a pass per read).

  Under a remote root (``--root hf://...``, any fsspec URL: :mod:`voxbox.storage`) the
  same happens over the network: the tar index is read from the headers by range
  requests, a member is one range read, a ``.tar.gz`` is streamed; a whole remote file
  is read into memory (no local copy unless ``--cache`` is set). Storage failures that
  remain after the retries become rejections with the storage's reason code, except a
  refused access (gated repo), which stops the run with its one-line message.

  When the user asked for extraction (recipe option ``extract=true``) the archive's
  extracted copy under ``<root>/.voxbox/extracted/<archive>/`` is read instead; the
  record is the same, so the output is byte-identical either way.

Errors are :class:`MediaError` with a reason code of :mod:`voxbox.reasons`.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import tarfile
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, Optional, Tuple

from voxbox import storage
from voxbox.errors import VoxboxError, first_line

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")
EXTRACTED = ".voxbox/extracted"   # <root>/EXTRACTED/<archive>/ holds an opted-in extraction
EXTRACTED_MARKER = ".voxbox-complete"
MAX_MEMBER_BYTES = 2 << 30        # one audio member read into memory at most (2 GiB)


class MediaError(VoxboxError):
    """Audio that cannot be read; ``reason`` is a code of voxbox/reasons.py."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def is_archive(name: str) -> bool:
    return name.endswith(ARCHIVE_SUFFIXES)


def is_compressed(name: str) -> bool:
    return name.endswith((".tar.gz", ".tgz"))


def member_name(name: str) -> str:
    """A tar member name as records spell it: "/"-separated, no leading "./"."""
    return posixpath.normpath(name).lstrip("/") if name not in (".", "./") else ""


# ------------------------------------------------------------------------------------
# Where a record's bytes are
# ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    file: Path                    # the file to open (the archive, for a member); a RemotePath under a remote root
    member: Optional[str] = None  # member name inside ``file``

    @property
    def compressed(self) -> bool:
        return self.member is not None and is_compressed(self.file.name)


def split_member(root: Path, rel: str) -> Optional[Tuple[str, str]]:
    """(archive, member) when ``rel`` names a member of an archive *file* under ``root``
    (a folder named ``x.tar`` is just a folder)."""
    parts = rel.split("/")
    for i, part in enumerate(parts[:-1]):
        if is_archive(part):
            archive = "/".join(parts[:i + 1])
            if _archive_info(root, archive)[0]:
                return archive, "/".join(parts[i + 1:])
    return None


# (root, archive) -> (is a file, its finished extraction or None). Looked up once per
# process: a stage reads thousands of members of one archive, and these few stats per
# read cost more than the read. An archive must not change while a command runs;
# :func:`forget_archives` drops the cache (an extraction just finished).
_ARCHIVE_INFO: Dict[Tuple[str, str], Tuple[bool, Optional[Path]]] = {}


def _archive_info(root: Path, archive: str) -> Tuple[bool, Optional[Path]]:
    key = (str(root), archive)
    info = _ARCHIVE_INFO.get(key)
    if info is None:
        is_file = (root / archive).is_file()
        local = is_file and not storage.is_remote(root)  # a remote root is never extracted
        info = (is_file, extracted_copy(root, archive) if local else None)
        if len(_ARCHIVE_INFO) > 4096:
            _ARCHIVE_INFO.clear()
        _ARCHIVE_INFO[key] = info
    return info


def forget_archives() -> None:
    _ARCHIVE_INFO.clear()
    with _INDEX_LOCK:
        _INDEX_CACHE.clear()


def locate(root: Path, rel: str) -> Location:
    """Where the bytes of ``rel`` (relative to ``root``) are."""
    found = split_member(root, rel)
    if found is None:
        return Location(root / rel)
    archive, member = found
    copy = _archive_info(root, archive)[1]
    if copy is not None:
        return Location(copy / member)
    return Location(root / archive, member)


def extracted_copy(root: Path, archive: str) -> Optional[Path]:
    """The finished opt-in extraction of ``archive``: ``<folder>/.voxbox/extracted/<rest>``
    for the root or any folder between it and the archive (a recipe extracts below the
    folder its layout starts at, which may sit below the root)."""
    parts = archive.split("/")
    for i in range(len(parts)):
        copy = root.joinpath(*parts[:i], *EXTRACTED.split("/"), *parts[i:])
        if (copy / EXTRACTED_MARKER).is_file():
            return copy
    return None


def record_location(rec) -> Location:
    if rec.source_path is None:
        raise MediaError("no_audio_path", rec.missing_audio_detail())
    root = rec.corpus_root
    return locate((storage.root_path(root) if storage.is_url(root) else Path(root)) if root else Path("."),
                  rec.source_path)


def is_plain(rec) -> bool:
    """True when the record's audio is a whole file on disk (no span, no archive, not
    under a remote root)."""
    if rec.span_offset is not None or rec.span_duration is not None or rec.source_path is None:
        return False
    if rec.corpus_root and storage.is_url(rec.corpus_root):
        return False
    loc = record_location(rec)
    # An extracted member is a file, but not at corpus_root/source_path.
    return loc.member is None and loc.file == rec.audio_path


# ------------------------------------------------------------------------------------
# Uncompressed tars: an index built once per tar, members by byte range
# ------------------------------------------------------------------------------------

_INDEX_CACHE: "OrderedDict[str, Dict[str, Tuple[int, int]]]" = OrderedDict()
_INDEX_LOCK = threading.Lock()
_INDEX_KEEP = 64


def tar_index(path: Path) -> Dict[str, Tuple[int, int]]:
    """member -> (data offset, size) for the regular files of an uncompressed tar.

    Built from the headers alone (tarfile seeks over member data) and cached per
    process (:func:`forget_archives` drops it; an archive must not change while a
    command runs).
    Links, devices and folders are left out: only regular members are ever read.
    """
    with _INDEX_LOCK:
        hit = _INDEX_CACHE.get(str(path))
        if hit is not None:
            return hit
    index: Dict[str, Tuple[int, int]] = {}
    try:
        with _open_tar(path, "r:") as tf:
            for ti in tf:
                if ti.isreg():
                    index.setdefault(member_name(ti.name), (ti.offset_data, ti.size))
    except (tarfile.TarError, EOFError) as e:
        raise MediaError("bad_archive", f"{path}: not a readable tar ({e})") from None
    with _INDEX_LOCK:
        _INDEX_CACHE[str(path)] = index
        while len(_INDEX_CACHE) > _INDEX_KEEP:
            _INDEX_CACHE.popitem(last=False)
    return index


def _open_tar(path, mode: str) -> tarfile.TarFile:
    """tarfile over a local file, or over a remote one read by range (:mod:`voxbox.storage`)."""
    if storage.is_remote(path):
        return tarfile.open(fileobj=path.open(), mode=mode)
    return tarfile.open(path, mode=mode)


def read_tar_member(path: Path, member: str) -> bytes:
    entry = tar_index(path).get(member)
    if entry is None:
        raise MediaError("missing_audio", f"{path}: no regular member {member!r}")
    offset, size = entry
    if size > MAX_MEMBER_BYTES:
        raise MediaError("unreadable_audio", f"{path}: member {member!r} is {size} bytes, over the "
                                             f"{MAX_MEMBER_BYTES >> 20} MiB a member may have")
    if storage.is_remote(path):
        data = storage.read_range(path, offset, size)
        if len(data) != size:
            raise MediaError("truncated_audio", f"{path}: member {member!r} cut short ({len(data)} of {size} bytes)")
        return data
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.pread(fd, size, offset)
    finally:
        os.close(fd)
    if len(data) != size:
        raise MediaError("truncated_audio", f"{path}: member {member!r} cut short ({len(data)} of {size} bytes)")
    return data


# ------------------------------------------------------------------------------------
# Compressed tars: one sequential pass
# ------------------------------------------------------------------------------------

_PREFETCHED: Dict[Tuple[str, str], bytes] = {}


def stream_members(path: Path, wanted: Optional[set] = None) -> Iterator[Tuple[str, bytes]]:
    """(member, bytes) of the regular members of a (compressed) tar, in archive order, in
    one sequential pass; with ``wanted``, only those, stopping once all were seen."""
    left = set(wanted) if wanted is not None else None
    try:
        with _open_tar(path, "r|*") as tf:
            for ti in tf:
                if left is not None and not left:
                    return
                name = member_name(ti.name)
                if not ti.isreg() or (left is not None and name not in left):
                    continue
                if ti.size > MAX_MEMBER_BYTES:
                    raise MediaError("bad_archive", f"{path}: member {name!r} is over "
                                                    f"{MAX_MEMBER_BYTES >> 20} MiB")
                fh = tf.extractfile(ti)
                data = fh.read() if fh is not None else b""
                if left is not None:
                    left.discard(name)
                yield name, data
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:  # gzip damage is OSError or zlib.error
        raise MediaError("bad_archive", f"{path}: cannot read the archive ({e})") from None


@contextlib.contextmanager
def prefetch(records: Iterable) -> Iterator[None]:
    """Read every compressed-archive member ``records`` need, one pass per archive, and
    keep them in memory while the block runs (a task's records: one shard's audio)."""
    wanted: Dict[Path, set] = {}
    for rec in records:
        try:
            loc = record_location(rec)
        except (MediaError, OSError):
            continue
        if loc.compressed:
            wanted.setdefault(loc.file, set()).add(loc.member)
    keys = []
    try:
        for path, names in sorted(wanted.items(), key=lambda kv: str(kv[0])):
            try:
                for name, data in stream_members(path, names):
                    _PREFETCHED[(str(path), name)] = data
                    keys.append((str(path), name))
            except MediaError:
                pass  # every read of it fails the same way below, as a rejection per record
        yield
    finally:
        for k in keys:
            _PREFETCHED.pop(k, None)


def read_compressed_member(path: Path, member: str) -> bytes:
    data = _PREFETCHED.get((str(path), member))
    if data is not None:
        return data
    for _, data in stream_members(path, {member}):
        return data
    raise MediaError("missing_audio", f"{path}: no regular member {member!r}")


# ------------------------------------------------------------------------------------
# Reading
# ------------------------------------------------------------------------------------


def _refused(path: Path, e) -> MediaError:
    return MediaError(e.reason, f"{path}: {'audio file not found' if e.detail == 'not found' else e.detail}")


def location_bytes(loc: Location) -> bytes:
    """The bytes of a whole file or member (a regular file only, of at most
    MAX_MEMBER_BYTES: a FIFO would block, a link to /dev/zero never end)."""
    if storage.is_remote(loc.file):
        return _remote_bytes(loc)
    from voxbox.limits import FileRefused, read_regular

    if loc.member is None:
        try:
            return read_regular(loc.file, MAX_MEMBER_BYTES, missing="missing_audio")
        except FileRefused as e:
            raise _refused(loc.file, e) from None
    if loc.compressed:
        return read_compressed_member(loc.file, loc.member)
    try:
        return read_tar_member(loc.file, loc.member)
    except OSError as e:
        raise MediaError("missing_audio" if isinstance(e, FileNotFoundError) else "unreadable_audio",
                         f"{loc.file}: {e.strerror or e}") from None


def _remote_bytes(loc: Location) -> bytes:
    """:func:`location_bytes` under a remote root. A storage failure left after the
    retries is a MediaError with the storage's reason; a refused access is not (it
    concerns every record, so it stops the run)."""
    try:
        if loc.member is None:
            return loc.file.read_bytes(MAX_MEMBER_BYTES)
        if loc.compressed:
            return read_compressed_member(loc.file, loc.member)
        return read_tar_member(loc.file, loc.member)
    except FileNotFoundError:
        raise MediaError("missing_audio", f"{loc.file}: audio file not found") from None
    except OverflowError as e:
        raise MediaError("unreadable_audio", f"{loc.file}: {e}") from None
    except storage.StorageError as e:
        if e.reason == "remote_denied":
            raise
        raise MediaError("missing_audio" if e.reason == "remote_missing" else e.reason, str(e)) from None


@contextlib.contextmanager
def open_location(loc: Location):
    """A binary file object soundfile can read: the file itself, or the member's (or the
    remote file's) bytes. A remote file is read whole first: an error inside
    libsndfile's read callbacks could not be told from a damaged file."""
    from voxbox.limits import FileRefused, open_regular

    if loc.member is None and not storage.is_remote(loc.file):
        try:
            fh = open_regular(loc.file, missing="missing_audio")
        except FileRefused as e:
            raise _refused(loc.file, e) from None
        with fh:
            yield fh
    else:
        yield io.BytesIO(location_bytes(loc))


def span_frames(offset: Optional[float], duration: Optional[float], sr: int, frames: int,
                where: str = "") -> Tuple[int, int]:
    """(first frame, frame count) of a span in a recording of ``frames`` frames at ``sr``;
    the whole recording when there is no span. MediaError("span_out_of_range") when the
    span does not lie inside the recording."""
    if offset is None and duration is None:
        return 0, frames
    start = round((offset or 0.0) * sr)
    count = round(duration * sr) if duration is not None else frames - start
    if start < 0 or count <= 0 or start + count > frames:
        end_s = (start + count) / sr
        raise MediaError("span_out_of_range",
                         f"{where}span {offset}+{duration} s (frames {start}..{start + count}, ends at "
                         f"{end_s:.3f} s) lies outside the recording ({frames} frames, {frames / sr:.3f} s)")
    return start, count


def read_frames(rec, dtype="float64", always_2d: bool = True):
    """(samples, sample rate, subtype) of the record's audio: the span when it has one.
    ``dtype`` is a numpy dtype name or a function of the file's subtype giving one."""
    import soundfile as sf

    loc = record_location(rec)
    with open_location(loc) as fh:
        try:
            with sf.SoundFile(fh) as f:
                start, count = span_frames(rec.span_offset, rec.span_duration, f.samplerate, f.frames,
                                           f"{rec.source_path}: ")
                _check_length(rec, f.samplerate, count)
                if start:
                    f.seek(start)
                want = dtype(f.subtype) if callable(dtype) else dtype
                data = f.read(count, dtype=want, always_2d=always_2d)
                sr, subtype = int(f.samplerate), f.subtype
        except MediaError:
            raise
        except Exception as e:  # libsndfile raises several types for damaged files
            msg = first_line(e)
            raise MediaError("unreadable_audio", f"{rec.source_path}: cannot decode audio ({msg})") from None
    if data.shape[0] != count:
        raise MediaError("truncated_audio", f"{rec.source_path}: read {data.shape[0]} of {count} frames")
    return data, sr, subtype


def _check_length(rec, sr: int, count: int) -> None:
    """The duration cap, from the header, before decoding (see :mod:`voxbox.limits`)."""
    from voxbox.limits import duration_problem

    problem = duration_problem(sr, count)
    if problem is not None:
        raise MediaError(problem.reason, f"{rec.source_path}: {problem.detail}")


def record_bytes(rec) -> bytes:
    """The original bytes of a record without a span (a file or an archive member)."""
    return location_bytes(record_location(rec))
