"""Checks on a build's output folder, before anything is written, and on resume.

- a foreign folder (not empty, not made by voxbox build) is refused;
- a folder built from another pipeline or input is refused unless ``force``, except when
  its earlier run finished no shard (nothing to protect: start over);
- the folder must be writable, found with a probe file rather than at the first shard.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable, Dict, Optional, Union

from voxbox.errors import VoxboxError
from voxbox.shards import index as ix

WORK_DIR = ".work"
_OWN_FILES = (ix.INDEX_NAME, ix.JOURNAL_NAME, ix.PIPELINE_NAME, ix.PROVENANCE_NAME, ix.REJECTS_NAME)
Log = Callable[[str], None]


def clean(out: Path) -> None:
    """Remove what a previous build wrote (only our own names)."""
    for n in _OWN_FILES:
        for p in (out / n, out / (n + ix.PARTIAL_SUFFIX)):
            if p.exists():
                p.unlink()
    for d in ix.FORMAT_DIRS.values():
        sub = out / d
        if sub.is_dir():
            for p in sub.iterdir():
                if p.suffix in (".tar", ".parquet", ix.PARTIAL_SUFFIX):
                    p.unlink()


def check_foreign(out: Path, force: bool) -> None:
    """Refuse a non-empty folder that no voxbox build made (before writing anything)."""
    ours = (*_OWN_FILES, WORK_DIR, *ix.FORMAT_DIRS.values())
    if (out / ix.JOURNAL_NAME).exists() or (out / ix.INDEX_NAME).exists():
        return
    others = sorted(p.name for p in out.iterdir() if p.name not in ours)
    if others and not force:
        raise VoxboxError(f"{out}: folder is not empty and is not a voxbox build "
                          f"(found {', '.join(others[:3])}); choose another --out")


def check_out_dir(out_dir: Union[str, Path], force: bool = False) -> None:
    """Refuse a foreign --out before any slow work (a corpus download) starts."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise VoxboxError(f"{out}: exists and is not a folder; choose another --out")
    if out.is_dir():
        check_foreign(out, force)


def make_writable(out: Path) -> None:
    """Create ``out`` and prove it takes a file now, not after the first shard's work."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / (".write-test" + ix.PARTIAL_SUFFIX)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ix.io_error(out, e) from None


def changed(old: Optional[dict], new: Dict[str, str]) -> list:
    """Which of ``pipeline`` and ``input`` differ between two fingerprints."""
    return [k for k in ("pipeline", "input") if (old or {}).get(k) != new[k]]


def check_existing(out: Path, fingerprint: Dict[str, str], force: bool, log: Log) -> None:
    """Resume a folder built from the same pipeline and input; otherwise start over
    (nothing finished, or ``force``) or refuse."""
    journal = ix.Journal(out / ix.JOURNAL_NAME)
    old = (journal.start() or {}).get("fingerprint")
    if old is None:
        old = _index_fingerprint(out)
    if old is None:
        clean(out)  # leftovers of a run that died before its first journal line
        return
    what = changed(old, fingerprint)
    if not what:
        return
    if not journal.shards() and not (out / ix.INDEX_NAME).exists():
        # The earlier run failed before finishing any shard (say, a wrong model folder):
        # nothing to protect, so the corrected command just starts over.
        log(f"{out}: the previous run finished no shard; starting over")
        clean(out)
        return
    said = " and ".join({"pipeline": "a different pipeline", "input": "different input"}[k] for k in what)
    if not force:
        shutil.rmtree(out / WORK_DIR, ignore_errors=True)
        redo = "from scratch" if "pipeline" in what else "(only the shards whose input changed are redone)"
        raise VoxboxError(f"{out}: this folder was built from {said}; "
                          f"use another --out, or --force to rebuild it {redo}")
    if what == ["input"]:
        # Same pipeline: a shard whose records and audio are unchanged is still right.
        log(f"--force: {out} was built from different input; redoing the shards whose input changed")
        _restart_journal(out, fingerprint)
        return
    log(f"--force: {out} was built from {said}; rebuilding from scratch")
    clean(out)


def _restart_journal(out: Path, fingerprint: Dict[str, str]) -> None:
    """Start the journal over with ``fingerprint``, keeping its shard entries (the build
    keeps those whose per-shard input hash still matches, and redoes the rest). The old
    index goes first: a killed rebuild must not leave a folder that looks finished."""
    journal = ix.Journal(out / ix.JOURNAL_NAME)
    start = journal.start() or {}
    kept = journal.shards()
    shards = [kept[k] for k in sorted(kept)]
    (out / ix.INDEX_NAME).unlink(missing_ok=True)
    tmp = out / (ix.JOURNAL_NAME + ix.PARTIAL_SUFFIX)
    lines = [{**start, "kind": "start", "fingerprint": fingerprint}] + shards
    try:
        tmp.write_text("".join(ix.canonical_json(e) + "\n" for e in lines), encoding="utf-8")
        ix.commit_file(tmp, out / ix.JOURNAL_NAME)
    except OSError as e:
        raise ix.io_error(out, e) from None


def remove_unplanned(out: Path, name: str, shards: int) -> None:
    """Shard files numbered beyond the plan (left by a larger input before a --force
    rebuild): they belong to no shard of this build."""
    for d in ix.FORMAT_DIRS.values():
        sub = out / d
        if not sub.is_dir():
            continue
        for p in sub.iterdir():
            stem = p.name.split(".", 1)[0]
            num = stem[len(name) + 1:] if stem.startswith(name + "-") else ""
            if num.isdigit() and int(num) >= shards and p.suffix in (".tar", ".parquet"):
                p.unlink()


def _index_fingerprint(out: Path) -> Optional[dict]:
    """The fingerprint of a finished folder (its journal is gone), or None."""
    if not (out / ix.INDEX_NAME).exists():
        return None
    try:
        return json.loads((out / ix.INDEX_NAME).read_text(encoding="utf-8")).get("fingerprint") or {}
    except (OSError, json.JSONDecodeError):
        return {}
