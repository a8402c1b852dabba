"""``voxbox build --dry-run``: prepare and plan a build, process no audio, write no output.

The same planning code as a real build (:mod:`voxbox.build.input`: an on-disk sort of
the records' keys, duplicates rejected, shards cut by the same rule), so the shard count
and contents it reports are the ones a build makes before any stage runs (a stage may
still reject records, which leaves their shard smaller). What it does not do: audio
signatures, the copy of the records, the plan file, anything under ``--out``. Its
scratch files (the sort runs, about 100 bytes per record) live in a temporary folder
(``TMPDIR``, or ``work``) that is removed at the end.

From a manifest nothing of the audio is touched (no open, no stat); from ``--corpus``
the recipe's prepare reads the audio headers, as it always does.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Iterable, Optional, Tuple, Union

from voxbox.build.extsort import RUN_ITEMS
from voxbox.build.input import DUPLICATE_INDEX, Plan, PlannedShard, no_usable_records, prepare_input
from voxbox.build.pipeline import Pipeline
from voxbox.manifest import read_rejects
from voxbox.record import Result, format_reason_counts


def dry_run(source: Iterable[Result], pipe: Pipeline, work: Optional[Union[str, Path]] = None,
            run_items: int = RUN_ITEMS, duplicate: Tuple[str, Optional[str]] = DUPLICATE_INDEX) -> dict:
    """Plan the build of ``source`` with ``pipe``'s shard settings; return the summary
    (shards, records, hours, estimated bytes, rejects, per split, the largest shard)."""
    with tempfile.TemporaryDirectory(prefix="voxbox-dry-run-", dir=work) as tmp:
        prep = prepare_input(source, Path(tmp), pipe.audio_format, hashes=False, keep_records=False,
                             run_items=run_items, duplicate=duplicate)
        try:
            if not prep.count:
                raise no_usable_records(prep)
            plan = prep.plan(pipe.shard_mb, pipe.shard_records, keep_members=False)
            rejects = Counter(f"{r.stage}: {r.reason}" for r in read_rejects(prep.rejects_path))
        finally:
            prep.close()
    return summarize_plan(plan, rejects, pipe)


def _shard_facts(k: int, s: PlannedShard) -> dict:
    return {"shard": k, "split": s.split, "records": s.records, "hours": round(s.seconds / 3600.0, 6),
            "estimated_mb": round(s.est_bytes / 1e6, 3), "first_index": s.first, "last_index": s.last}


def summarize_plan(plan: Plan, rejects: Counter, pipe: Pipeline) -> dict:
    shards = plan.shards
    splits: dict = {}
    for s in shards:
        d = splits.setdefault(s.split, {"shards": 0, "records": 0, "audio_seconds": 0.0})
        d["shards"] += 1
        d["records"] += s.records
        d["audio_seconds"] += s.seconds
    for d in splits.values():
        d["hours"] = round(d.pop("audio_seconds") / 3600.0, 6)
    largest = max(range(len(shards)), key=lambda k: (shards[k].est_bytes, -k))
    seconds = sum(s.seconds for s in shards)
    return {
        "dry_run": True, "name": pipe.name, "formats": list(pipe.formats), "audio_format": pipe.audio_format,
        "shard_mb": pipe.shard_mb, "shard_records": pipe.shard_records,
        "shards": len(shards), "records": sum(s.records for s in shards),
        "hours": round(seconds / 3600.0, 6),
        "estimated_mb": round(sum(s.est_bytes for s in shards) / 1e6, 3),
        "rejects": {"count": sum(rejects.values()), "by_reason": dict(sorted(rejects.items()))},
        "splits": dict(sorted(splits.items())),
        "largest_shard": _shard_facts(largest, shards[largest]),
    }


def format_dry_run(s: dict) -> str:
    """The text a person reads: what a build would make, and its biggest shard."""
    big = s["largest_shard"]
    lines = [f"dry run: {s['records']} records, {s['hours']:.3f} h of audio in {s['shards']} shard(s) "
             f"(~{s['estimated_mb']:.1f} MB estimated per format, audio {s['audio_format']}; "
             f"shards of <= {s['shard_mb']:g} MB, <= {s['shard_records']} records)",
             f"largest shard: {pipe_shard_name(s['name'], big['shard'])} ({big['split'] or 'no split'}): "
             f"{big['records']} records, {big['hours']:.3f} h, ~{big['estimated_mb']:.1f} MB"]
    for name, d in s["splits"].items():
        lines.append(f"split {name or '(none)'}: {d['shards']} shard(s), {d['records']} records, {d['hours']:.3f} h")
    rej = s["rejects"]
    lines.append(f"{rej['count']} rejected" + (f": {format_reason_counts(rej['by_reason'])}" if rej["count"] else ""))
    lines.append("nothing written; no audio processed")
    return "\n".join(lines)


def pipe_shard_name(name: str, shard: int) -> str:
    return f"{name}-{shard:06d}"
