"""What every recipe shares: the Recipe base class, header reads, text reads, the
tree walk, label maps and the streaming prepare loop.

A recipe only knows its corpus layout. Its ``scan()`` walks the tree and yields, in a
deterministic order, one :class:`Item` per utterance it can explain (relative audio
path plus native labels) or a :class:`~voxbox.record.Rejection` for anything it
cannot use (missing transcript, non-UTF-8 text, a file the layout does not explain).
The base class then reads audio *headers* only, in a small thread pool (libsndfile
releases the GIL), turns items into :class:`~voxbox.record.Utterance` records and
rejects unreadable, empty or truncated audio and duplicate ids.
"""

from __future__ import annotations

import errno
import io
import os
import posixpath
import stat
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from voxbox.errors import VoxboxError, first_line
from voxbox.limits import (MAX_TABLE_BYTES, MAX_TEXT_CHARS, MAX_TRANSCRIPT_BYTES, FileRefused, audio_problem,
                           open_regular, read_regular)
from voxbox.record import NATIVE, Rejection, Utterance, age_group, make_index

STAGE = "prepare"
# (reason, detail) of a record whose id the layout repeats; the first one is kept.
DUPLICATE_ID = ("duplicate_id", "the layout lists this file (or segment) twice")
# What `voxbox download` adds next to the corpus; never part of a layout.
DOWNLOAD_DIRS = ("archives", ".voxbox")
AUDIO_EXTS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".au", ".w64", ".caf")

# ------------------------------------------------------------------------------------
# Label maps shared by recipes
# ------------------------------------------------------------------------------------

_GENDERS = {"f": "female", "female": "female", "w": "female", "woman": "female",
            "m": "male", "male": "male", "man": "male"}


def map_gender(value: Optional[str]) -> Optional[str]:
    if value is None:
        return None
    return _GENDERS.get(str(value).strip().lower())


def speaker_genders(lines: Iterable[str], sep: str) -> Iterator[Tuple[str, str]]:
    """(speaker, gender) for each table row whose second column names a gender; rows
    without one (headers, unknown values) are passed over."""
    for line in lines:
        cols = [c.strip() for c in line.split(sep)]
        if len(cols) >= 2 and map_gender(cols[1]):
            yield cols[0], map_gender(cols[1])


def map_age_years(value: Any) -> Optional[str]:
    try:
        years = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    if years <= 0 or years > 120:
        return None
    return age_group(years)


# Native emotion words -> VoxBox's 25 upper-case classes. Only unambiguous mappings;
# the raw label always travels in extra["native_emotion"].
EMOTION_WORDS = {
    "neutral": "NEUTRAL", "neu": "NEUTRAL", "calm": "NEUTRAL",
    "angry": "ANGRY", "anger": "ANGRY", "ang": "ANGRY", "mad": "ANGRY",
    "happy": "HAPPY", "hap": "HAPPY", "happiness": "HAPPY", "joy": "HAPPY", "amused": "HAPPY",
    "sad": "SAD", "sadness": "SAD",
    "fear": "FEARFUL", "fearful": "FEARFUL", "fea": "FEARFUL",
    "disgust": "DISGUSTED", "disgusted": "DISGUSTED", "dis": "DISGUSTED",
    "surprise": "SURPRISED", "surprised": "SURPRISED", "sur": "SURPRISED",
    "sleepy": "SLEEPY", "sleepiness": "SLEEPY",
    "sarcastic": "SARCASTIC", "excited": "EXCITED", "confused": "CONFUSED",
    "whisper": "WHISPER", "laughing": "LAUGHING", "singing": "SINGING",
    "contempt": "CONTEMPT", "unknown": "UNKNOWN",
    # ESD's Mandarin speakers write the emotion in Chinese in their transcript files.
    "中立": "NEUTRAL", "快乐": "HAPPY", "生气": "ANGRY", "伤心": "SAD", "惊喜": "SURPRISED",
}


def map_emotion(value: Optional[str]) -> Optional[str]:
    if value is None:
        return None
    v = str(value).strip()
    from voxbox.record import EMOTIONS

    if v.upper() in EMOTIONS:
        return v.upper()
    return EMOTION_WORDS.get(v.lower())


# ------------------------------------------------------------------------------------
# Items, header reads, text reads
# ------------------------------------------------------------------------------------


@dataclass
class Item:
    """One utterance as the layout explains it, before its header is read."""

    path: str                       # relative to the corpus root, "/"-separated
    fields: Dict[str, Any] = field(default_factory=dict)  # Utterance fields (speaker, text, ...)
    extra: Dict[str, Any] = field(default_factory=dict)
    # The header when the recipe already read it (a .tar.gz member, read in the one
    # sequential pass over its archive), or the InputError it raised; None: read it here.
    header: Any = None
    # What the record's index is made from when the path alone is not unique (a segment
    # of a longer recording: "<path>#<segment id>"); None: the path.
    key: Optional[str] = None


@dataclass
class Skip:
    """Files left out on purpose by an option (e.g. VCTK's other microphone).

    Counted and reported in the summary, never written as rejections: they are not
    bad input.
    """

    path: str
    reason: str


class InputError(Exception):
    """Internal: a file is unusable; carries the rejection reason code."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail


_WAV_SUBTYPES = {(1, 8): "PCM_U8", (1, 16): "PCM_16", (1, 24): "PCM_24", (1, 32): "PCM_32",
                 (3, 32): "FLOAT", (3, 64): "DOUBLE"}


def _wav_header(fh, size: int):
    """Parse a RIFF/WAVE header ourselves: one small read instead of a libsndfile open,
    and it sees what libsndfile hides (libsndfile silently clips the frame count of a
    truncated file). Returns (sr, frames, channels, "WAV", subtype), or None when the
    file is not a plain PCM/float WAV, so the caller falls back to libsndfile."""
    head = fh.read(4096)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, fmt = 12, None
    while True:
        if pos + 8 > len(head):
            if pos + 8 > size:
                return None
            fh.seek(pos)  # chunk headers past the first 4 KiB (large LIST chunks)
            head = head[:pos].ljust(pos, b"\0") + fh.read(64)
            if len(head) < pos + 8:
                return None
        cid, clen = head[pos:pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        if cid == b"fmt ":
            if pos + 8 + 16 > len(head):
                return None
            tag, channels, sr, _, align, bits = struct.unpack_from("<HHIIHH", head, pos + 8)
            if tag == 0xFFFE and clen >= 40 and pos + 8 + 26 <= len(head):
                tag = struct.unpack_from("<H", head, pos + 8 + 24)[0]  # WAVE_FORMAT_EXTENSIBLE sub-format
            fmt = (tag, channels, sr, align, bits)
        elif cid == b"data":
            if fmt is None or clen in (0, 0xFFFFFFFF):
                return None  # odd chunk order or a streaming writer: let libsndfile decide
            tag, channels, sr, align, bits = fmt
            subtype = _WAV_SUBTYPES.get((tag, bits))
            if subtype is None or not channels or not sr or not align:
                return None
            have = size - (pos + 8)
            if clen > have:
                raise InputError("truncated_audio", f"data chunk declares {clen} bytes, file has {have}")
            frames = clen // align
            if frames <= 0:
                raise InputError("no_audio_samples", "header reports 0 frames")
            return sr, frames, channels, "WAV", subtype
        pos += 8 + clen + (clen & 1)


def read_header(path, check_tail: bool = True) -> Tuple[int, int, int, str, str]:
    """(sample_rate, frames, channels, format, subtype) from the header only.

    Raises InputError with a reason code for missing, special (FIFO, device, link
    loop), empty, unreadable, sample-less or truncated files (what no shard holds and
    what is longer than the duration cap is refused by the caller, for a span of the
    span). Plain WAVs are parsed directly; everything else goes through libsndfile, and
    for compressed formats a truncated body is found by decoding the last frame only.
    A file under a remote root (:mod:`voxbox.storage`) is read whole, then parsed.
    """
    from voxbox import storage

    if storage.is_remote(path):
        return read_header_bytes(_remote_audio(storage.as_remote(path)), check_tail)
    try:
        fh = open_regular(path, missing="missing_audio")
    except FileRefused as e:
        raise InputError(e.reason, e.detail) from None
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            raise InputError("empty_file", "zero bytes")
        try:
            parsed = _wav_header(fh, size)
        except struct.error:
            parsed = None
        if parsed is None:
            fh.seek(0)
            parsed = _sf_header(fh, check_tail)
    return parsed


def _remote_audio(rp) -> bytes:
    """A remote audio file's bytes, or InputError; a refused access is raised as it is
    (it stops the run: it concerns every file of the root)."""
    from voxbox import media

    try:
        return media.location_bytes(media.Location(rp))
    except media.MediaError as e:
        raise InputError(e.reason, str(e)) from None


def read_header_bytes(data: bytes, check_tail: bool = True) -> Tuple[int, int, int, str, str]:
    """:func:`read_header` of audio held in memory (an archive member)."""
    if not data:
        raise InputError("empty_file", "zero bytes")
    try:
        parsed = _wav_header(io.BytesIO(data), len(data))
    except struct.error:
        parsed = None
    return parsed if parsed is not None else _sf_header(io.BytesIO(data), check_tail)


def item_header(root: Path, rel: str, check_tail: bool = True) -> Tuple[int, int, int, str, str]:
    """:func:`read_header` of a corpus file, or of an archive member (``x.tar/member``)
    read by byte range through :mod:`voxbox.media` (nothing is extracted)."""
    from voxbox import media

    loc = media.locate(root, rel)
    if loc.member is None:
        return read_header(loc.file, check_tail)
    try:
        return read_header_bytes(media.location_bytes(loc), check_tail)
    except media.MediaError as e:
        raise InputError(e.reason, str(e)) from None


def span_header(item: "Item", header):
    """The header of an item that is a span of its recording: the span's frame count, after
    checking the span lies inside the recording (InputError span_out_of_range)."""
    from voxbox import media

    offset, duration = item.fields.get("span_offset"), item.fields.get("span_duration")
    if offset is None and duration is None:
        return header
    sr, frames, channels, fmt, subtype = header
    try:
        _, count = media.span_frames(offset, duration, sr, frames)
    except media.MediaError as e:
        raise InputError(e.reason, str(e)) from None
    return sr, count, channels, fmt, subtype


def _sf_header(src, check_tail: bool) -> Tuple[int, int, int, str, str]:
    """The libsndfile part of :func:`read_header`; ``src`` is an open file (never a path:
    libsndfile refuses paths over 1 KiB, and the file was checked to be a regular one)."""
    import soundfile as sf

    try:
        with sf.SoundFile(src) as f:
            sr, frames, channels, fmt, subtype = f.samplerate, f.frames, f.channels, f.format, f.subtype
            if frames <= 0:
                raise InputError("no_audio_samples", "header reports 0 frames")
            if check_tail and fmt in ("FLAC", "OGG", "MPEG"):
                try:
                    f.seek(frames - 1)
                    if len(f.read(1)) != 1:
                        raise InputError("truncated_audio", "last frame not readable")
                except (RuntimeError, sf.LibsndfileError) as e:
                    raise InputError("truncated_audio", f"last frame not readable: {e}") from None
    except InputError:
        raise
    except Exception as e:  # libsndfile's errors vary by format and version
        msg = first_line(e)
        raise InputError("unreadable_audio", msg) from None
    return sr, frames, channels, fmt, subtype


def read_text_file(path: Union[str, Path]) -> str:
    """A transcript file, strictly UTF-8 (a BOM is allowed), stripped; a regular file of
    at most MAX_TRANSCRIPT_BYTES.

    Raises InputError('missing_transcript' | 'not_a_regular_file' | 'symlink_loop' |
    'text_too_long' | 'text_not_utf8' | 'empty_transcript').
    """
    try:
        data = read_regular(path, MAX_TRANSCRIPT_BYTES, missing="missing_transcript", too_large="text_too_long")
    except FileRefused as e:
        name = Path(path).name
        raise InputError(e.reason, f"{name} not found" if e.detail == "not found" else f"{name}: {e.detail}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError("text_not_utf8", f"byte {e.start}: {e.reason}") from None
    return check_text(" ".join(text.split()))


def check_text(text: str) -> str:
    """A transcript as a record may hold it: not empty, at most MAX_TEXT_CHARS."""
    if not text:
        raise InputError("empty_transcript", "transcript is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError("text_too_long", f"{len(text)} characters; a transcript holds at most {MAX_TEXT_CHARS}")
    return text


def read_table_lines(path: Union[str, Path]) -> Tuple[List[str], Optional[str]]:
    """Lines of a metadata table, UTF-8. Returns (lines, error) instead of raising, so
    a recipe can reject what depends on the table and carry on."""
    try:
        data = read_regular(path, MAX_TABLE_BYTES)
    except FileRefused as e:
        return [], f"cannot read: {e.detail}"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        return [], f"not UTF-8 at byte {e.start}"
    return text.splitlines(), None


def csv_table(text: str, delimiter: str = ",") -> Tuple[List[str], Iterator[Tuple[int, Optional[dict], Optional[str]]]]:
    """The header of a CSV/TSV text and its rows as (line number, row, error).

    A row csv cannot parse is an error naming its line, never an exception that stops
    the table. csv's 128 KiB field limit (which used to end a whole prepare without
    naming the file) is raised to the table limit: the caller checks the values it
    uses (see :func:`check_text`). No header: ``([], no rows)``.
    """
    import csv

    csv.field_size_limit(max(csv.field_size_limit(), MAX_TABLE_BYTES))
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        return [], iter(())
    return header, _csv_rows(reader, header)


def _csv_rows(reader, header: List[str]) -> Iterator[Tuple[int, Optional[dict], Optional[str]]]:
    import csv

    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            yield line, None, f"line {line}: {e}"
            continue
        if cells:
            yield line, dict(zip(header, cells + [""] * (len(header) - len(cells)))), None


def table_text(path: str, utt: str, texts: Dict[str, str], err: Optional[str], table: str,
               corpus: str) -> Union[str, Rejection]:
    """The transcript of ``utt`` from a table read with :func:`read_table_lines` (``err``
    its error), or the rejection of the audio file ``path`` when there is none."""
    if err and "UTF-8" in err:
        return reject(path, "text_not_utf8", f"{table}: {err}", corpus)
    if not texts.get(utt):
        return reject(path, "missing_transcript", err or f"{utt} not in {table}", corpus)
    return texts[utt]


class OddPath(str):
    """A path from :func:`walk` that is no file a layout can use: a link that loops, a
    link to a folder that holds the corpus (following it would walk the corpus again, or
    the whole disk for a link to ``/``), a folder listed already through another link,
    a folder too deep to open. Recipes handle it like any path; :func:`unexplained`
    turns it into a rejection with its own ``reason`` and ``detail``."""

    reason: str
    detail: str

    def __new__(cls, path: str, reason: str, detail: str) -> "OddPath":
        obj = super().__new__(cls, path)
        obj.reason, obj.detail = reason, detail
        return obj


def walk(root: Path, top: Union[str, Path] = "") -> Iterator[str]:
    """Relative paths ("/"-separated) of all files under root/top, sorted per folder,
    depth first: deterministic on every file system. Iterative, so depth is no limit;
    links to folders are followed unless they loop or lead to a folder holding the root
    (those come out as :class:`OddPath`)."""
    prefix = str(top).replace(os.sep, "/").strip("/") if top else ""
    if not isinstance(root, Path):  # a remote root (voxbox.storage.RemotePath)
        yield from _walk_remote(root, prefix)
        return
    root_real = os.path.realpath(root)
    visited: Dict[Tuple[int, int], str] = {}
    stack: List[Tuple[str, str]] = [(str(root / top) if top else str(root), prefix)]
    while stack:
        d, rel = stack.pop()
        listed = _list_folder(d, rel, visited)
        if isinstance(listed, OddPath):
            yield listed
            continue
        dirs = []
        for e in listed:
            r = f"{rel}/{e.name}" if rel else e.name
            kind = _entry_kind(e, r, root_real)
            if kind == "dir":
                dirs.append((e.path, r))
            else:
                yield kind if isinstance(kind, OddPath) else r
        stack.extend(reversed(dirs))


def _walk_remote(root, prefix: str) -> Iterator[str]:
    """:func:`walk` under a remote root: the same order (a folder's files by name, then
    its folders, depth first), from one listing per folder. Remote trees have no links."""
    stack = [prefix]
    while stack:
        rel = stack.pop()
        folder = root / rel if rel else root
        if not folder.is_dir():
            continue
        dirs = []
        for child in folder.iterdir():
            r = f"{rel}/{child.name}" if rel else child.name
            if child.is_dir():
                dirs.append(r)
            else:
                yield r
        stack.extend(reversed(dirs))


def _list_folder(d: str, rel: str, visited: Dict[Tuple[int, int], str]) -> Union[List[os.DirEntry], OddPath]:
    """A folder's entries sorted by name; an OddPath when it was listed already (a link
    loop, or two links to one folder) or cannot be opened for its depth."""
    try:
        st = os.stat(d)
        key = (st.st_dev, st.st_ino)
        if key in visited:
            return OddPath(rel, "duplicate_folder", f"the same folder as {visited[key] or 'the root'!r} "
                                                   "(through a link); its files are listed there")
        visited[key] = rel
        with os.scandir(d) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as e:
        if e.errno in (errno.ENAMETOOLONG, errno.ELOOP):
            return OddPath(rel, "path_too_long", f"cannot open this folder ({e.strerror})")
        # Not a rejection: everything below the folder would be lost without a trace.
        raise VoxboxError(f"{d}: cannot list this folder ({(e.strerror or str(e)).lower()}); "
                          "fix its permissions or move it out of the corpus") from None


def _entry_kind(e: os.DirEntry, rel: str, root_real: str) -> Union[str, OddPath]:
    """'dir' for a folder to walk into, 'file' for anything a reader will look at (the
    readers refuse what is not a regular file), or an OddPath for a link not to follow."""
    try:
        if not e.is_symlink():
            return "dir" if e.is_dir(follow_symlinks=False) else "file"
        st = os.stat(e.path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return OddPath(rel, "symlink_loop", "a symbolic link that leads back to itself")
        if err.errno == errno.ENOENT:
            return OddPath(rel, "broken_link", f"a link to {_readlink(e.path)!r}, which does not exist")
        return "file"
    if not stat.S_ISDIR(st.st_mode):
        return "file"
    target = os.path.realpath(e.path)
    if root_real == target or root_real.startswith(target.rstrip(os.sep) + os.sep):
        return OddPath(rel, "link_to_ancestor", f"a link to {target}, a folder that holds the corpus; not followed")
    return "dir"


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def by_folder(paths: Iterable[str]) -> Iterator[Tuple[str, List[str]]]:
    """(folder, its files) for each run of paths in one folder. :func:`walk` lists a
    folder's files together, so this streams a corpus one folder at a time."""
    group: List[str] = []
    parent = None
    for rel in paths:
        d = posixpath.dirname(rel)
        if d != parent and group:
            yield parent, group
            group = []
        parent = d
        group.append(rel)
    if group:
        yield parent, group


def reject(path: str, reason: str, detail: Optional[str] = None, corpus: Optional[str] = None) -> Rejection:
    index = make_index(corpus, path) if corpus else None
    return Rejection(stage=STAGE, path=path, reason=reason, index=index, detail=detail)


def unexplained(path: str, what: str = "") -> Rejection:
    if isinstance(path, OddPath):  # walk() already knows what is wrong with it
        return Rejection(stage=STAGE, path=str(path), reason=path.reason, detail=path.detail)
    return Rejection(stage=STAGE, path=path, reason="unexplained_file",
                     detail=what or "the corpus layout does not explain this file")


def is_audio(name: str) -> bool:
    return name.lower().endswith(AUDIO_EXTS)


# ------------------------------------------------------------------------------------
# Recipe
# ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecipeOption:
    default: Any
    help: str


def _option_value(recipe: str, key: str, default: Any, value: Any) -> Any:
    """A ``-o key=value`` string as the option's type: "false" must not read as true."""
    if isinstance(default, bool) and isinstance(value, str):
        word = value.strip().lower()
        if word in ("true", "1", "yes", "on"):
            return True
        if word in ("false", "0", "no", "off"):
            return False
        raise VoxboxError(f"{recipe}: option {key} wants true or false, got {value!r}")
    return value


class Recipe:
    """Base class. Subclasses set ``name`` (the catalog name; a class attribute or a class
    keyword, see ``__init_subclass__``) and implement ``scan``.

    ``options`` declares recipe-specific settings (``voxbox prepare -o key=value``).
    ``non_emotional``: records get emotion ``UNKNOWN`` with ``emotion_source
    "native"``: the corpus asserts nothing about emotion, which is VoxBox's own
    convention for such corpora (spec 2.1); an annotate pipeline may still overwrite
    it with a prediction.
    """

    name: str = ""
    subset_help: str = "none (the whole corpus)"  # what --subset selects at prepare time
    options: Dict[str, RecipeOption] = {}
    non_emotional: bool = True
    check_tail: bool = True
    top_dirs: Tuple[str, ...] = ()  # folders the layout may sit in, below the root given

    def __init_subclass__(cls, *, name: Optional[str] = None, subsets: Optional[str] = None,
                          emotional: bool = False, top_dirs: Optional[Tuple[str, ...]] = None, **kw: Any):
        """Recipe facts as class keywords: ``class RAVDESS(Recipe, name="ravdess", emotional=True)``
        (``emotional``: the corpus labels emotion, so ``non_emotional`` is off)."""
        super().__init_subclass__(**kw)
        for attr, value in (("name", name), ("subset_help", subsets), ("top_dirs", top_dirs)):
            if value is not None:
                setattr(cls, attr, value)
        if emotional:
            cls.non_emotional = False

    def __init__(self, **options: Any):
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            known = ", ".join(sorted(self.options)) or "none"
            raise VoxboxError(f"{self.name}: unknown option {', '.join(unknown)} (known: {known})")
        self.opts = {k: o.default for k, o in self.options.items()}
        self.opts.update({k: _option_value(self.name, k, self.options[k].default, v) for k, v in options.items()})
        self.skipped: Dict[str, int] = {}
        self._entry = None

    # -- catalog facts --------------------------------------------------------------
    @property
    def entry(self):
        if self._entry is None:
            from voxbox.sources.catalog import load_catalog

            self._entry = load_catalog().get(self.name)
        return self._entry

    @property
    def license(self) -> Optional[str]:
        return self.entry.license if self.entry else None

    @property
    def language(self) -> Optional[str]:
        if self.entry and len(self.entry.languages) == 1:
            return self.entry.languages[0]
        return None

    # -- to implement ----------------------------------------------------------------
    def scan(self, root: Path, subsets: Optional[List[str]]) -> Iterator[Union[Item, Rejection, Skip]]:
        raise NotImplementedError

    def find_root(self, root: Path) -> Path:
        """The folder the layout starts at: the first of ``top_dirs`` found under the root
        (so recipes accept the download folder too), else the root itself."""
        for name in self.top_dirs:
            if (root / name).is_dir():
                return root / name
        return root

    # -- shared -----------------------------------------------------------------------
    def check_subsets(self, subsets: Optional[List[str]], available: List[str]) -> List[str]:
        if not subsets:
            if not available:
                raise VoxboxError(f"{self.name}: no subset found under the root "
                                  f"(expected: {self.subset_help}; see `voxbox corpora {self.name}` for the layout)")
            return available
        missing = [s for s in subsets if s not in available]
        if missing:
            raise VoxboxError(
                f"{self.name}: subset {', '.join(missing)} not found under the root "
                f"(found: {', '.join(available) or 'none'})"
            )
        return list(subsets)

    def make_record(self, root: Path, item: Item, header) -> Utterance:
        sr, frames, channels, fmt, subtype = header
        f = dict(item.fields)
        rel = item.path
        extra = {"header_duration": round(frames / sr, 4), "format": fmt, "subtype": subtype}
        extra.update(item.extra)
        for label in ("gender", "age", "emotion"):
            if f.get(label) is not None and not f.get(f"{label}_source"):
                f[f"{label}_source"] = NATIVE
        if self.non_emotional and f.get("emotion") is None:
            f["emotion"], f["emotion_source"] = "UNKNOWN", NATIVE
        # The corpus's own id; for most corpora the file name is the id (recipes set it otherwise).
        f.setdefault("utt_id", posixpath.splitext(posixpath.basename(rel))[0])
        f.setdefault("language", self.language)
        f.setdefault("license", self.license)
        f.setdefault("split", "train")
        f.setdefault("corpus", self.name)
        return Utterance(
            index=make_index(f["corpus"], item.key or rel), source_path=rel,
            corpus_root=str(root), sample_rate=sr, num_samples=frames, channels=channels,
            extra=extra, **f,
        )

    def prepare(self, root: Union[str, Path], subsets: Optional[List[str]] = None,
                workers: int = 4, chunk: int = 1024,
                ignore: Tuple[Union[str, Path], ...] = (),
                dedupe: bool = True) -> Iterator[Union[Utterance, Rejection]]:
        """Stream records and rejections in a deterministic order.

        ``ignore``: files or folders that are not part of the corpus even if they sit
        inside the root (the manifest being written, its rejects file, a build's output).
        ``dedupe=False``: repeated ids are passed on, for a caller that finds them itself
        in bounded memory (``voxbox build`` does, from its on-disk sort, with the same
        rejection: :data:`DUPLICATE_ID`); the default keeps a set of 64-bit ids.
        """
        from voxbox import storage

        root = storage.root_path(root)
        if not root.is_dir():
            raise VoxboxError(f"{root}: corpus root is not a folder" if root.exists() or not storage.is_remote(root)
                              else f"corpus root {root.not_found()}")
        root = root.resolve()
        _ = self.entry  # load the catalog once, before worker threads need it
        base = self.find_root(root)
        self.skipped = {}
        run = _PrepareRun(self, root, base, ignore, workers, dedupe)
        try:
            batch: List = []
            for x in self.scan(base, subsets):
                batch.append(x)
                if len(batch) >= chunk:
                    yield from run.batch(batch)
                    batch = []
            if batch:
                yield from run.batch(batch)
        finally:
            run.close()


class _PrepareRun:
    """One streaming prepare: header reads in a thread pool (one task per worker and
    batch, not per file: futures cost more than a header read), paths made relative to
    the root the user gave (``scan()`` works below ``base``), duplicate ids rejected."""

    def __init__(self, recipe: Recipe, root: Path, base: Path, ignore, workers: int, dedupe: bool = True):
        self.recipe, self.root, self.workers = recipe, root, workers
        self.prefix = base.relative_to(root).as_posix() if base != root else ""
        self.ignored = set()
        for p in ignore if isinstance(root, Path) else ():  # nothing local sits inside a remote root
            try:
                self.ignored.add(Path(os.path.abspath(p)).relative_to(root).as_posix())
            except ValueError:
                pass
        self.dedupe_ids = dedupe
        from voxbox.idset import IdSet

        self.seen = IdSet()  # the ids' 64 hash bits in a numpy table: ~20 bytes an id, not ~90
        self.pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None

    def is_ignored(self, rel: str) -> bool:
        """A path that is one of ``ignore`` or inside one of them (the run's own output:
        a build's --out folder inside its --root must not be read as corpus files)."""
        full = self.full(rel)
        return any(full == ig or full.startswith(ig + "/") for ig in self.ignored)

    def close(self) -> None:
        if self.pool:
            self.pool.shutdown(wait=True)

    def full(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else str(rel)

    def finish(self, item: Item) -> Union[Utterance, Rejection]:
        rel = self.full(item.path)
        try:
            text = item.fields.get("text")
            if isinstance(text, str) and len(text) > MAX_TEXT_CHARS:
                check_text(text)
            if isinstance(item.header, InputError):
                raise item.header
            header = span_header(item, item.header or item_header(self.root, rel, self.recipe.check_tail))
            problem = audio_problem(header[0], header[1], header[2])  # of the span, for a span
            if problem is not None:
                raise InputError(problem.reason, problem.detail)
        except InputError as e:
            # A segment is rejected under its key ("<recording>#<segment id>").
            return reject(self.full(item.key) if item.key else rel, e.reason, e.detail, self.recipe.name)
        item.path = rel
        item.key = self.full(item.key) if item.key else None
        return self.recipe.make_record(self.root, item, header)

    def finish_all(self, items: List[Item]) -> List[Union[Utterance, Rejection]]:
        return [self.finish(i) for i in items]

    def headers(self, items: List[Item]) -> Iterator[Union[Utterance, Rejection]]:
        if not self.pool or len(items) < 2:
            return iter(self.finish_all(items))
        step = -(-len(items) // self.workers)
        parts = self.pool.map(self.finish_all, [items[i:i + step] for i in range(0, len(items), step)])
        return iter([r for part in parts for r in part])

    def batch(self, batch: List) -> Iterator[Union[Utterance, Rejection]]:
        batch = [x for x in batch if isinstance(x, Skip) or not self.is_ignored(x.path)]
        done = self.headers([x for x in batch if isinstance(x, Item)])
        for x in batch:
            if isinstance(x, Item):
                res = next(done)
            elif isinstance(x, Skip):
                self.recipe.skipped[x.reason] = self.recipe.skipped.get(x.reason, 0) + 1
                continue
            else:
                res = Rejection(x.stage, self.full(x.path), x.reason,
                                make_index(self.recipe.name, self.full(x.path)) if x.index else None, x.detail)
            yield self.dedupe(res) if self.dedupe_ids else res

    def dedupe(self, res: Union[Utterance, Rejection]) -> Union[Utterance, Rejection]:
        if isinstance(res, Utterance):
            if not self.seen.add(int(res.index[-16:], 16)):
                return Rejection(STAGE, res.source_path, DUPLICATE_ID[0], res.index, DUPLICATE_ID[1])
        return res
