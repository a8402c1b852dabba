"""Resumable, verified downloads and safe archive extraction.

Layout under ``--download-dir DIR``::

    DIR/archives/<file>            the downloaded archive (kept unless asked not to)
    DIR/archives/<file>.part       an unfinished transfer; the next run resumes it (HTTP Range)
    DIR/.voxbox/<file>.downloaded  completion marker (JSON: url, size, checksum)
    DIR/.voxbox/<file>.extracted   extraction marker; a rerun skips finished archives
    DIR/<whatever the archive holds>

A file becomes ``<file>`` only after its size and checksum were checked, so a crash or
a checksum mismatch never leaves something that looks complete. Extraction refuses
absolute member paths, ``..`` components, links that point outside the destination,
and device/FIFO members, before writing each member.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import stat
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, List, Optional, Union

from voxbox.sources.catalog import Archive, CorpusEntry, parse_checksum
from voxbox.errors import VoxboxError

CHUNK = 1 << 20
# tarfile's extraction filters exist from Python 3.11.4 / 3.12 on.
_FILTER_ERRORS = (tarfile.FilterError,) if hasattr(tarfile, "FilterError") else ()
USER_AGENT = "voxbox-download"


@dataclass
class FetchResult:
    path: Path
    url: str
    bytes: int
    checksum: Optional[str]   # what was verified, "md5:<hex>", or None
    skipped: bool = False     # already complete before this run
    resumed_from: int = 0     # bytes that were already there when the transfer (re)started


def _hasher(checksum: Optional[str]):
    if not checksum:
        return None, None, None
    algo, digest = parse_checksum(checksum)
    return hashlib.new(algo), algo, digest


def _marker_dir(dest: Path) -> Path:
    return dest / ".voxbox"


def fetch(url: str, target: Union[str, Path], checksum: Optional[str] = None,
          size_bytes: Optional[int] = None, retries: int = 5, timeout: float = 60.0,
          marker: Optional[Path] = None, progress: bool = True,
          sleep: Callable[[float], None] = time.sleep, log: Callable[[str], None] = lambda s: None) -> FetchResult:
    """Download url to target, resuming target.part with HTTP Range after interruptions
    (within this run: up to `retries` reconnects, each announced through `log`; across
    runs: from the .part file)."""
    from voxbox.progress import Progress

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    marker = marker or target.with_name(target.name + ".downloaded")
    if target.is_file() and marker.is_file():
        try:
            info = json.loads(marker.read_text())
        except ValueError:
            info = {}
        if info.get("size") == target.stat().st_size and info.get("checksum") == checksum:
            return FetchResult(target, url, info["size"], checksum, skipped=True)
    part = target.with_name(target.name + ".part")
    first_offset = part.stat().st_size if part.exists() else 0
    attempt = 0
    total: Optional[int] = size_bytes
    bar = None

    def backoff(reason) -> None:
        # Waiting up to a minute in silence looks like a hang: say what is going on.
        nonlocal attempt
        attempt += 1
        wait = min(2 ** attempt, 30)
        log(f"{target.name}: {reason}; retry {attempt} of {retries} in {wait} s")
        sleep(wait)
    try:
        while True:
            offset = part.stat().st_size if part.exists() else 0
            req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
            if offset:
                req.add_header("Range", f"bytes={offset}-")
            try:
                resp = urllib.request.urlopen(req, timeout=timeout)
            except urllib.error.HTTPError as e:
                if e.code == 416 and offset and (total is None or offset >= total):
                    # The server has nothing past what we hold: the part is complete.
                    break
                if e.code in (404, 410, 401, 403):
                    raise VoxboxError(f"download failed: HTTP {e.code} {e.reason} for {url}"
                                      + (" (the URL may have moved; try --mirror)" if e.code in (404, 410) else "")) from None
                if attempt >= retries:
                    raise VoxboxError(f"download failed: HTTP {e.code} {e.reason} for {url} after {attempt} retries") from None
                backoff(f"HTTP {e.code} {e.reason}")
                continue
            except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
                if attempt >= retries:
                    raise VoxboxError(f"download failed: {url}: {getattr(e, 'reason', e)} (after {attempt} "
                                      "retries; check the network, or try --mirror)") from None
                backoff(getattr(e, "reason", e))
                continue
            with resp:
                status = resp.status
                length = resp.headers.get("Content-Length")
                if status == 206:
                    crange = resp.headers.get("Content-Range", "")
                    start = int(crange.split()[1].split("-")[0]) if crange.startswith("bytes ") else -1
                    if start != offset:
                        raise VoxboxError(f"download failed: {url}: server resumed at {start}, expected {offset}")
                    if "/" in crange and crange.rsplit("/", 1)[1].isdigit():
                        total = int(crange.rsplit("/", 1)[1])
                    mode = "ab"
                else:
                    # A 200 answer to a Range request: the server cannot resume; start over.
                    offset = 0
                    if length and length.isdigit():
                        total = int(length)
                    mode = "wb"
                if size_bytes is not None and total is not None and total != size_bytes:
                    raise VoxboxError(f"download failed: {url} is {total} bytes, the catalog says {size_bytes}")
                if bar is None:
                    bar = Progress(f"download {target.name}",
                                   total=round(total / 2**20, 1) if total else None, unit="MiB")
                    bar.update(offset / 2**20)
                try:
                    with open(part, mode) as fh:
                        while True:
                            buf = resp.read(CHUNK)
                            if not buf:
                                break
                            fh.write(buf)
                            bar.update(len(buf) / 2**20)
                except (OSError, urllib.error.URLError, http.client.HTTPException) as e:
                    # Connection dropped mid-body (reset, timeout, IncompleteRead): resume.
                    if attempt >= retries:
                        raise VoxboxError(f"download interrupted: {url}: {e}; rerun to resume") from None
                    backoff(f"connection dropped ({e})")
                    continue
            have = part.stat().st_size
            if total is not None and have < total:
                if attempt >= retries:
                    raise VoxboxError(f"download interrupted: {url}: {have} of {total} bytes; rerun to resume")
                backoff(f"got {have} of {total} bytes")
                continue
            break
    finally:
        if bar is not None:
            bar.close()

    have = part.stat().st_size
    if total is not None and have != total:
        part.unlink()
        raise VoxboxError(f"download failed: {url}: got {have} bytes, expected {total}; the partial file was removed")
    if checksum:
        h, algo, want = _hasher(checksum)
        with open(part, "rb") as fh:
            for buf in iter(lambda: fh.read(CHUNK), b""):
                h.update(buf)
        got = h.hexdigest()
        if got != want:
            # Never keep a file that failed verification: a rerun must fetch it again.
            part.unlink()
            raise VoxboxError(f"checksum mismatch for {target.name}: expected {algo} {want}, got {got}; "
                              "the file was removed, rerun to download it again")
    os.replace(part, target)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"url": url, "size": have, "checksum": checksum}))
    return FetchResult(target, url, have, checksum, resumed_from=first_offset)


# ------------------------------------------------------------------------------------
# Safe extraction
# ------------------------------------------------------------------------------------


def _inside(dest: Path, rel: str) -> bool:
    target = os.path.realpath(os.path.join(dest, rel))
    return target == str(dest) or target.startswith(str(dest) + os.sep)


def _check_name(name: str) -> Optional[str]:
    if not name:
        return "empty member name"
    if name.startswith(("/", "\\")) or PurePosixPath(name).is_absolute() or (len(name) > 1 and name[1] == ":"):
        return f"absolute path {name!r}"
    if ".." in name.replace("\\", "/").split("/"):
        return f"'..' in member path {name!r}"
    return None


def _check_tar_member(m: tarfile.TarInfo, dest: Path) -> Optional[str]:
    bad = _check_name(m.name)
    if bad:
        return bad
    if m.ischr() or m.isblk() or m.isfifo() or m.isdev():
        return f"device or FIFO member {m.name!r}"
    if m.issym():
        link = os.path.join(os.path.dirname(m.name), m.linkname)
        if os.path.isabs(m.linkname) or not _inside(dest, link):
            return f"symlink {m.name!r} -> {m.linkname!r} points outside the destination"
    if m.islnk():
        if os.path.isabs(m.linkname) or _check_name(m.linkname) or not _inside(dest, m.linkname):
            return f"hard link {m.name!r} -> {m.linkname!r} points outside the destination"
    if not _inside(dest, m.name):
        return f"member {m.name!r} resolves outside the destination"
    return None


def safe_extract(archive: Union[str, Path], dest: Union[str, Path]) -> int:
    """Extract a tar(.gz/.bz2/.xz) or zip archive into dest; returns members written.

    Zip members are all checked before anything is written. Tar archives are
    streamed (one pass over a possibly huge compressed file) and every member is
    checked before it is written; a bad member stops the extraction with an error and
    nothing is ever written outside dest.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    dest = Path(os.path.realpath(dest))
    if zipfile.is_zipfile(archive):
        return _extract_zip(archive, dest)
    try:
        tf = tarfile.open(archive, mode="r|*")
    except (tarfile.TarError, OSError) as e:
        raise VoxboxError(f"{archive.name}: not a tar or zip archive ({e})") from None
    count = 0
    with tf:
        try:
            for m in tf:
                bad = _check_tar_member(m, dest)
                if bad:
                    raise VoxboxError(f"{archive.name}: unsafe archive, refused: {bad}")
                if hasattr(tarfile, "data_filter"):
                    tf.extract(m, dest, filter="data")
                else:  # Python < 3.11.4: our own checks above are the guard
                    tf.extract(m, dest)
                count += 1
        except _FILTER_ERRORS as e:
            raise VoxboxError(f"{archive.name}: unsafe archive, refused: {e}") from None
        except (tarfile.TarError, EOFError, OSError) as e:
            raise VoxboxError(f"{archive.name}: damaged archive ({e}); delete it and download again") from None
    return count


def _extract_zip(archive: Path, dest: Path) -> int:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:
            bad = _check_name(info.filename)
            mode = info.external_attr >> 16
            if not bad and (stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode)):
                bad = f"device or FIFO member {info.filename!r}"
            if not bad and stat.S_ISLNK(mode):
                target = zf.read(info).decode("utf-8", "replace")
                link = os.path.join(os.path.dirname(info.filename), target)
                if os.path.isabs(target) or not _inside(dest, link):
                    bad = f"symlink {info.filename!r} -> {target!r} points outside the destination"
            if not bad and not _inside(dest, info.filename):
                bad = f"member {info.filename!r} resolves outside the destination"
            if bad:
                raise VoxboxError(f"{archive.name}: unsafe archive, refused: {bad}")
        try:
            for info in infos:
                zf.extract(info, dest)
        except (zipfile.BadZipFile, OSError) as e:
            raise VoxboxError(f"{archive.name}: damaged archive ({e}); delete it and download again") from None
    return len(infos)


# ------------------------------------------------------------------------------------
# A corpus
# ------------------------------------------------------------------------------------


@dataclass
class ArchiveReport:
    archive: Archive
    url: str
    path: Path
    downloaded: bool
    extracted: bool
    verified: Optional[str]   # the checksum verified, or None when the catalog has none
    members: int = 0


def download_corpus(entry: CorpusEntry, dest: Union[str, Path], subsets: Optional[List[str]] = None,
                    mirror: Optional[str] = None, extract: bool = True, keep_archives: bool = True,
                    retries: int = 5, log: Callable[[str], None] = lambda s: None) -> List[ArchiveReport]:
    """Fetch, verify and extract a corpus's archives into dest (rerun-safe)."""
    dest = Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    marks = _marker_dir(dest)
    marks.mkdir(exist_ok=True)
    reports = []
    for a in entry.archives_for(subsets):
        url = a.resolved_url(mirror)
        target = dest / "archives" / a.filename
        done_extract = marks / f"{a.filename}.extracted"
        if extract and done_extract.is_file():
            log(f"{a.filename}: already downloaded and extracted, skipped")
            reports.append(ArchiveReport(a, url, target, False, False, a.checksum))
            continue
        if not a.checksum:
            log(f"{a.filename}: the catalog has no checksum for this archive; it will NOT be verified "
                "(only its size, when the server states one)")
        res = fetch(url, target, checksum=a.checksum, size_bytes=a.size_bytes, retries=retries,
                    marker=marks / f"{a.filename}.downloaded", log=log)
        log(f"{a.filename}: {'already complete' if res.skipped else 'downloaded'} ({res.bytes} bytes"
            + (f", {a.checksum.split(':')[0]} verified)" if a.checksum else ", not verified: no checksum)"))
        members = 0
        if extract:
            members = safe_extract(target, dest)
            done_extract.write_text(json.dumps({"archive": a.filename, "members": members}))
            log(f"{a.filename}: extracted {members} members into {dest}")
            if not keep_archives:
                target.unlink()
        reports.append(ArchiveReport(a, url, target, not res.skipped, extract, a.checksum, members))
    return reports
