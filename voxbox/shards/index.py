"""The index, the build journal, checksums and crash-safe commits.

A built folder is committed shard by shard. Each shard file is written under a
temporary name, flushed and fsynced, renamed into place, and only then recorded as a
line in ``journal.jsonl`` (itself fsynced). A crash can therefore leave at most
temporary files (``*.partial``, discarded on the next run) or a finished file that the
journal does not know yet (rewritten on the next run, with the same bytes). A shard in
the journal is verified by its sha256 before it is skipped.

``index.json`` is written last, from the journal, and holds no timestamps, so the same
inputs give the same bytes.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Union

from voxbox.errors import VoxboxError

INDEX_NAME = "index.json"
JOURNAL_NAME = "journal.jsonl"
PIPELINE_NAME = "pipeline.yaml"
PROVENANCE_NAME = "provenance.json"
REJECTS_NAME = "rejects.jsonl"
PARTIAL_SUFFIX = ".partial"
FORMAT_VERSION = "voxbox-built/1"
FORMAT_DIRS = {"webdataset": "webdataset", "parquet": "parquet"}
FORMAT_EXT = {"webdataset": "tar", "parquet": "parquet"}

PathLike = Union[str, Path]


def shard_filename(name: str, shard: int, fmt: str) -> str:
    """Relative path of one shard file, e.g. ``webdataset/libritts-000003.tar``."""
    return f"{FORMAT_DIRS[fmt]}/{name}-{shard:06d}.{FORMAT_EXT[fmt]}"


def sha256_file(path: PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_json(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def fsync_dir(path: PathLike) -> None:
    """Make a rename durable: fsync the directory entry (no-op where unsupported)."""
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def io_error(path: PathLike, exc: OSError) -> VoxboxError:
    """Turn an OS error while writing output into a one-line, actionable message."""
    if exc.errno == errno.ENOSPC:
        why = "no space left on device"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "output is not writable"
    else:
        why = exc.strerror or str(exc)
    return VoxboxError(
        f"{path}: {why}; finished shards are kept, free space or fix permissions and rerun to resume"
    )


def commit_file(tmp: PathLike, final: PathLike) -> None:
    """fsync ``tmp``, rename it to ``final`` and fsync the folder."""
    tmp, final = Path(tmp), Path(final)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    fsync_dir(final.parent)


def write_text_atomic(path: PathLike, text: str) -> None:
    """Write a small file so that readers see the old or the new content, never half."""
    path = Path(path)
    tmp = path.with_name(path.name + PARTIAL_SUFFIX)
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as e:
        raise io_error(path, e) from None


def remove_partials(out_dir: PathLike) -> List[Path]:
    """Delete temporary files a crashed run left behind; return what was removed."""
    out_dir = Path(out_dir)
    removed = []
    for sub in [out_dir, *(out_dir / d for d in FORMAT_DIRS.values())]:
        if not sub.is_dir():
            continue
        for p in sorted(sub.iterdir()):
            if p.name.endswith(PARTIAL_SUFFIX):
                p.unlink()
                removed.append(p)
    return removed


class Journal:
    """Append-only JSONL log of committed work; each line is fsynced.

    Lines are dicts with a ``kind`` (``"start"``, ``"shard"``). A torn last line (the
    process died while writing it) is ignored on reading: its shard is simply redone.
    """

    def __init__(self, path: PathLike):
        self.path = Path(path)

    def entries(self) -> Iterator[dict]:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                if not line.endswith("\n"):
                    break  # torn write from a crash
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    break

    def append(self, entry: dict) -> None:
        line = json.dumps(entry, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"
        try:
            # Drop a torn tail first so the new line starts on its own line.
            if self.path.exists():
                size = self.path.stat().st_size
                if size:
                    with open(self.path, "rb") as fh:
                        fh.seek(size - 1)
                        if fh.read(1) != b"\n":
                            self._truncate_torn()
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as e:
            raise io_error(self.path, e) from None

    def _truncate_torn(self) -> None:
        data = self.path.read_bytes()
        keep = data[: data.rfind(b"\n") + 1]
        with open(self.path, "wb") as fh:
            fh.write(keep)
            fh.flush()
            os.fsync(fh.fileno())

    def shards(self) -> Dict[int, dict]:
        """Committed shards by number (the last entry wins)."""
        out: Dict[int, dict] = {}
        for e in self.entries():
            if e.get("kind") == "shard":
                out[int(e["shard"])] = e
        return out

    def start(self) -> Optional[dict]:
        for e in self.entries():
            if e.get("kind") == "start":
                return e
        return None


def verify_shard_entry(out_dir: PathLike, entry: dict) -> Optional[str]:
    """None when every file of a journalled shard exists with its recorded sha256,
    else a one-line description of the first problem."""
    out_dir = Path(out_dir)
    for fmt, info in sorted(entry.get("files", {}).items()):
        p = out_dir / info["path"]
        if not p.exists():
            return f"{info['path']}: missing"
        if p.stat().st_size != info["bytes"]:
            return f"{info['path']}: size {p.stat().st_size} != {info['bytes']} in the journal"
        if sha256_file(p) != info["sha256"]:
            return f"{info['path']}: sha256 does not match the journal"
    return None


def _only_split(entry: dict) -> Optional[str]:
    splits = list(((entry.get("counts") or {}).get("split") or {}))
    return splits[0] if len(splits) == 1 else None


def build_index(*, name: str, formats: Iterable[str], audio_format: str, shard_entries: List[dict],
                rejects_by_reason: Dict[str, int], fingerprint: Dict[str, str],
                summary: Optional[dict] = None) -> dict:
    """The ``index.json`` content: shards, per-shard files with sha256, totals, rejects."""
    formats = list(formats)
    shards = []
    total_records = 0
    total_seconds = 0.0
    for e in sorted(shard_entries, key=lambda e: e["shard"]):
        total_records += e["records"]
        total_seconds += e["audio_seconds"]
        shards.append({
            "shard": e["shard"],
            "records": e["records"],
            "audio_seconds": round(e["audio_seconds"], 6),
            "hours": round(e["audio_seconds"] / 3600.0, 6),
            "first_index": e.get("first_index"),
            "last_index": e.get("last_index"),
            # Shards never mix splits (plan_shards), so each names its own: what a Hub
            # split or a reader's split= selects. None only for an empty shard.
            "split": _only_split(e),
            # Fixed key order, whether the entry came fresh or from the journal.
            "files": {fmt: {k: e["files"][fmt][k] for k in ("path", "sha256", "bytes")}
                      for fmt in formats if fmt in e["files"]},
        })
    n_rejects = sum(rejects_by_reason.values())
    return {
        "format": FORMAT_VERSION,
        "name": name,
        "formats": list(formats),
        "audio_format": audio_format,
        "shards": shards,
        "totals": {
            "shards": len(shards),
            "records": total_records,
            "audio_seconds": round(total_seconds, 6),
            "hours": round(total_seconds / 3600.0, 6),
            "bytes": {fmt: sum(s["files"][fmt]["bytes"] for s in shards if fmt in s["files"])
                      for fmt in formats},
        },
        "rejects": {"count": n_rejects, "by_reason": dict(sorted(rejects_by_reason.items())),
                    "file": REJECTS_NAME},
        "fingerprint": fingerprint,
        "summary": summary or {},
    }


MAX_INDEX_BYTES = 1 << 30  # index.json is read whole (a shard entry is ~1 KB)


def read_index(out_dir: PathLike) -> dict:
    path = Path(out_dir) / INDEX_NAME
    if not path.exists():
        raise not_built(out_dir)
    return parse_index(path.read_text(encoding="utf-8"), path)


def not_built(out_dir) -> VoxboxError:
    return VoxboxError(f"{out_dir}: not a built dataset (no {INDEX_NAME}; run `voxbox build` first, "
                       f"or rerun it to finish an interrupted build)")


def parse_index(text: str, where) -> dict:
    """index.json's text as a dict, its format checked (``where`` names it in errors:
    a local path or a URL)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise VoxboxError(f"{where}: not valid JSON ({e.msg})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
        found = data.get("format") if isinstance(data, dict) else None
        raise VoxboxError(f"{where}: unknown index format {found!r} (expected {FORMAT_VERSION})")
    return data
