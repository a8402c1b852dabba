"""Archives inside a corpus tree (the VoxBox release's ``.tar.gz`` shards, Emilia's
WebDataset tars, WenetSpeech4TTS's tier tarballs), listed without extracting them.

:func:`list_archive` gives a recipe what it needs from one archive: the names of its
audio members, the contents of its small text members (json, txt) and, for a
``.tar.gz``, each audio member's header, all from **one** pass:

- an uncompressed tar is listed from its headers alone (:func:`voxbox.media.tar_index`,
  one seek per member); text members are read by byte range, audio headers are read
  later by the prepare thread pool, also by byte range;
- a ``.tar.gz`` is streamed once, sequentially: text members are kept, each audio
  member's header is read from its bytes as it passes and the bytes are dropped.

Records name a member as ``<archive>/<member>``; :mod:`voxbox.media` reads it in place in
every later stage. With the recipe option ``extract=true`` the archive is extracted once,
safely, into ``<root>/.voxbox/extracted/<archive>/`` (members checked by
:func:`voxbox.sources.download.safe_extract`; a marker with the archive's size and
mtime says the extraction finished) and the copies are read instead: the records, and
so the built shards, are the same either way. A damaged archive is one ``bad_archive``
rejection and the other archives carry on.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

from voxbox import media
from voxbox.errors import VoxboxError
from voxbox.record import Rejection
from voxbox.sources.corpora.base import InputError, RecipeOption, is_audio, read_header_bytes, reject, walk

TEXT_SUFFIXES = (".json", ".txt")
MAX_TEXT_MEMBER = 16 << 20  # a metadata member larger than this is not read into memory
EXTRACT_OPTION = RecipeOption(False, "extract each archive once into <root>/.voxbox/extracted and read the "
                                     "copies (default: members are read in place, nothing is extracted)")


def is_archive(name: str) -> bool:
    return media.is_archive(name)


@dataclass
class Listing:
    """One archive's members, in archive order (names without a leading "./")."""

    archive: str                                         # relative to the recipe's base
    audio: List[str] = field(default_factory=list)
    texts: Dict[str, bytes] = field(default_factory=dict)
    headers: Dict[str, Any] = field(default_factory=dict)  # .tar.gz: member -> header | InputError
    other: List[str] = field(default_factory=list)

    def path(self, member: str) -> str:
        """The record path of a member: ``<archive>/<member>``."""
        return f"{self.archive}/{member}"


def list_archive(base: Path, rel: str, corpus: str, extract: bool = False,
                 check_tail: bool = True) -> Union[Listing, Rejection]:
    """The members of ``base/rel``, or one ``bad_archive`` rejection."""
    from voxbox import storage

    if extract and storage.is_remote(base):
        raise VoxboxError(f"{corpus}: -O extract=true needs a local --root (it extracts beside the archive); "
                          f"under {base} archives are read in place")
    try:
        if extract:
            return _list_extracted(base, rel, corpus)
        if media.is_compressed(rel):
            return _list_stream(base, rel, check_tail)
        return _list_tar(base, rel)
    except media.MediaError as e:
        return reject(rel, "bad_archive", str(e), corpus)


def _sort(listing: Listing, name: str, size: int) -> str:
    """Which list a member goes to: "audio", "text" (small json/txt) or "other"."""
    if name.startswith("../") or name == "..":
        return "other"  # never used: a member name that climbs out is not part of the layout
    if is_audio(name):
        return "audio"
    if name.endswith(TEXT_SUFFIXES) and size <= MAX_TEXT_MEMBER:
        return "text"
    return "other"


def _list_tar(base: Path, rel: str) -> Listing:
    path = base / rel
    out = Listing(rel)
    for name, (_, size) in media.tar_index(path).items():
        kind = _sort(out, name, size)
        if kind == "text":
            out.texts[name] = media.read_tar_member(path, name)
        else:
            (out.audio if kind == "audio" else out.other).append(name)
    return out


def _list_stream(base: Path, rel: str, check_tail: bool) -> Listing:
    out = Listing(rel)
    for name, data in media.stream_members(base / rel):
        kind = _sort(out, name, len(data))
        if kind == "text":
            out.texts[name] = data
        elif kind == "audio":
            out.audio.append(name)
            try:
                out.headers[name] = read_header_bytes(data, check_tail)
            except InputError as e:
                out.headers[name] = e
        else:
            out.other.append(name)
    return out


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size} {st.st_mtime_ns}"


def _list_extracted(base: Path, rel: str, corpus: str) -> Union[Listing, Rejection]:
    dest = extract(base, rel, corpus)
    if isinstance(dest, Rejection):
        return dest
    out = Listing(rel)
    for p in walk(base, dest):
        name = p[len(dest) + 1:]
        if name == media.EXTRACTED_MARKER:
            continue
        kind = _sort(out, name, (base / p).stat().st_size)
        if kind == "text":
            out.texts[name] = (base / p).read_bytes()
        else:
            (out.audio if kind == "audio" else out.other).append(name)
    return out


def extract(base: Path, archive_rel: str, corpus: str) -> Union[str, Rejection]:
    """Opt-in (``extract=true``): the folder (relative to ``base``) holding ``archive_rel``'s
    members, extracting it first when needed; a ``bad_archive`` rejection when it cannot."""
    from voxbox.sources.extract import remove_tree, safe_extract

    dest_rel = f"{media.EXTRACTED}/{archive_rel}"
    dest, src = base / dest_rel, base / archive_rel
    marker = dest / media.EXTRACTED_MARKER
    if marker.is_file() and marker.read_text(encoding="utf-8") == _stamp(src):
        media.forget_archives()
        return dest_rel
    tmp = dest.with_name(dest.name + ".partial")
    try:
        for d in (dest, tmp):
            remove_tree(d)  # not shutil.rmtree: an archive's folders may nest past the recursion limit
        tmp.mkdir(parents=True)
        safe_extract(src, tmp)
        (tmp / media.EXTRACTED_MARKER).write_text(_stamp(src), encoding="utf-8")
        os.replace(tmp, dest)
        media.forget_archives()  # readers in this process now take the copies
    except VoxboxError as e:
        try:
            remove_tree(tmp)
        except OSError:
            pass
        return reject(archive_rel, "bad_archive", str(e), corpus)
    except OSError as e:
        raise VoxboxError(f"{corpus}: cannot extract {archive_rel} into {dest.parent} "
                          f"({e.strerror or e}); the corpus folder must be writable") from None
    return dest_rel


def member_pairs(listing: Listing, suffix: str) -> List[Tuple[str, str]]:
    """(audio member, text member named like it with ``suffix``) for each audio member."""
    return [(a, posixpath.splitext(a)[0] + suffix) for a in listing.audio]
