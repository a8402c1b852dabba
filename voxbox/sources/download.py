"""Resumable, verified downloads (archive extraction is in :mod:`voxbox.sources.extract`).

Layout under ``--download-dir DIR``::

    DIR/archives/<file>            the downloaded archive (kept unless asked not to)
    DIR/archives/<file>.part       an unfinished transfer; the next run resumes it (HTTP Range)
    DIR/.voxbox/<file>.downloaded  completion marker (JSON: url, size, checksum)
    DIR/.voxbox/<file>.extracted   extraction marker; a rerun skips finished archives
    DIR/<whatever the archive holds>

A file becomes ``<file>`` only after its size and checksum were checked, so a crash or
a checksum mismatch never leaves something that looks complete. A ``.part`` file
that the server says is already past the end of its file is checked against the
server's size: only an exact match counts as complete, anything else is downloaded
again (a stale part must never be promoted).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, List, Optional, Union

from voxbox.sources.catalog import Archive, CorpusEntry, parse_checksum
from voxbox.errors import VoxboxError
from voxbox.sources.extract import safe_extract  # noqa: F401  (part of this module's API)

CHUNK = 1 << 20
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


@dataclass
class _Transfer:
    """One download in progress: where it goes, what is known of its size, retries used."""

    url: str
    target: Path
    size_bytes: Optional[int]        # what the catalog says, if anything
    retries: int
    timeout: float
    sleep: Callable[[float], None]
    log: Callable[[str], None]
    total: Optional[int] = None      # what the server says (or the catalog)
    attempt: int = 0
    bar: Any = None

    @property
    def part(self) -> Path:
        return self.target.with_name(self.target.name + ".part")

    def have(self) -> int:
        return self.part.stat().st_size if self.part.exists() else 0

    def retry(self, reason: str, final: str) -> None:
        """Wait before the next attempt, or raise ``final`` when the retries are spent.
        Waiting up to a minute in silence looks like a hang: say what is going on."""
        if self.attempt >= self.retries:
            raise VoxboxError(final)
        self.attempt += 1
        wait = min(2 ** self.attempt, 30)
        self.log(f"{self.target.name}: {reason}; retry {self.attempt} of {self.retries} in {wait} s")
        self.sleep(wait)


def fetch(url: str, target: Union[str, Path], checksum: Optional[str] = None,
          size_bytes: Optional[int] = None, retries: int = 5, timeout: float = 60.0,
          marker: Optional[Path] = None, progress: bool = True,
          sleep: Callable[[float], None] = time.sleep, log: Callable[[str], None] = lambda s: None) -> FetchResult:
    """Download url to target, resuming target.part with HTTP Range after interruptions
    (within this run: up to `retries` reconnects, each announced through `log`; across
    runs: from the .part file)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    marker = marker or target.with_name(target.name + ".downloaded")
    done = _already_complete(url, target, marker, checksum)
    if done is not None:
        return done
    t = _Transfer(url, target, size_bytes, retries, timeout, sleep, log, total=size_bytes)
    first_offset = t.have()
    try:
        while not _attempt(t):
            pass
    finally:
        if t.bar is not None:
            t.bar.close()
    have = _verify(t, checksum)
    os.replace(t.part, target)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"url": url, "size": have, "checksum": checksum}))
    return FetchResult(target, url, have, checksum, resumed_from=first_offset)


def _already_complete(url: str, target: Path, marker: Path, checksum: Optional[str]) -> Optional[FetchResult]:
    """The result of an earlier run that finished this file, when its marker agrees."""
    if not (target.is_file() and marker.is_file()):
        return None
    try:
        info = json.loads(marker.read_text())
    except ValueError:
        return None
    if not isinstance(info, dict) or info.get("size") != target.stat().st_size or info.get("checksum") != checksum:
        return None
    return FetchResult(target, url, info["size"], checksum, skipped=True)


def _attempt(t: _Transfer) -> bool:
    """One request from where the .part file ends; True once it holds the whole file."""
    offset = t.have()
    resp = _request(t, offset)
    if resp is None:
        return False
    if resp is True:
        return True
    with resp:
        if not _receive(t, resp, offset):
            return False
    have = t.have()
    if t.total is not None and have < t.total:
        t.retry(f"got {have} of {t.total} bytes",
                f"download interrupted: {t.url}: {have} of {t.total} bytes; rerun to resume")
        return False
    return True


def _request(t: _Transfer, offset: int):
    """The server's response for the bytes from ``offset`` on; None to try again, True
    when a 416 answer shows the .part file already holds the whole file."""
    req = urllib.request.Request(t.url, headers={"User-Agent": USER_AGENT})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    try:
        return urllib.request.urlopen(req, timeout=t.timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            return True if _range_past_end(t, e, offset) else None
        if e.code in (404, 410, 401, 403):
            raise VoxboxError(f"download failed: HTTP {e.code} {e.reason} for {t.url}"
                              + (" (the URL may have moved; try --mirror)" if e.code in (404, 410) else "")) from None
        t.retry(f"HTTP {e.code} {e.reason}",
                f"download failed: HTTP {e.code} {e.reason} for {t.url} after {t.attempt} retries")
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", e)
        t.retry(str(reason), f"download failed: {t.url}: {reason} (after {t.attempt} "
                             "retries; check the network, or try --mirror)")
    return None


def _range_past_end(t: _Transfer, e: urllib.error.HTTPError, offset: int) -> bool:
    """HTTP 416: the server has no bytes past ``offset``. The .part file is complete only
    when it is exactly as long as the server's file (``Content-Range: bytes */N``, or the
    catalog's size); a longer or unverifiable one is stale (another version of the file,
    a different server) and is downloaded again from the start."""
    crange = (e.headers.get("Content-Range", "") if e.headers else "") or ""
    size = crange.rsplit("/", 1)[1] if crange.startswith("bytes */") else ""
    known = int(size) if size.isdigit() else t.size_bytes
    if known is not None and offset == known:
        t.total = known
        return True
    t.log(f"{t.target.name}: the partial download holds {offset} bytes but the server's file has "
          f"{known if known is not None else 'an unknown number of'} bytes; downloading it again")
    t.part.unlink()
    t.total = t.size_bytes
    return False


def _receive(t: _Transfer, resp, offset: int) -> bool:
    """Append (206) or write (200) the response body to the .part file; False when the
    connection dropped mid-body and the caller should resume."""
    from voxbox.progress import Progress

    if resp.status == 206:
        crange = resp.headers.get("Content-Range", "")
        start = int(crange.split()[1].split("-")[0]) if crange.startswith("bytes ") else -1
        if start != offset:
            raise VoxboxError(f"download failed: {t.url}: server resumed at {start}, expected {offset}")
        if "/" in crange and crange.rsplit("/", 1)[1].isdigit():
            t.total = int(crange.rsplit("/", 1)[1])
        mode = "ab"
    else:
        # A 200 answer to a Range request: the server cannot resume; start over.
        offset, length = 0, resp.headers.get("Content-Length")
        if length and length.isdigit():
            t.total = int(length)
        mode = "wb"
    if t.size_bytes is not None and t.total is not None and t.total != t.size_bytes:
        raise VoxboxError(f"download failed: {t.url} is {t.total} bytes, the catalog says {t.size_bytes}")
    if t.bar is None:
        t.bar = Progress(f"download {t.target.name}", total=round(t.total / 2**20, 1) if t.total else None,
                         unit="MiB")
        t.bar.update(offset / 2**20)
    try:
        with open(t.part, mode) as fh:
            for buf in iter(lambda: resp.read(CHUNK), b""):
                fh.write(buf)
                t.bar.update(len(buf) / 2**20)
    except (OSError, urllib.error.URLError, http.client.HTTPException) as e:
        # Connection dropped mid-body (reset, timeout, IncompleteRead): resume.
        t.retry(f"connection dropped ({e})", f"download interrupted: {t.url}: {e}; rerun to resume")
        return False
    return True


def _verify(t: _Transfer, checksum: Optional[str]) -> int:
    """Size and checksum of the finished .part file; a file that fails is removed, so
    nothing that failed verification ever looks complete. Returns its size."""
    have = t.have()
    if t.total is not None and have != t.total:
        t.part.unlink()
        raise VoxboxError(f"download failed: {t.url}: got {have} bytes, expected {t.total}; "
                          "the partial file was removed")
    if checksum:
        h, algo, want = _hasher(checksum)
        with open(t.part, "rb") as fh:
            for buf in iter(lambda: fh.read(CHUNK), b""):
                h.update(buf)
        got = h.hexdigest()
        if got != want:
            t.part.unlink()
            raise VoxboxError(f"checksum mismatch for {t.target.name}: expected {algo} {want}, got {got}; "
                              "the file was removed, rerun to download it again")
    return have


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
