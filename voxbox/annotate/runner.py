"""Annotate a manifest (``voxbox annotate``) and recompute level boundaries (``voxbox levels``).

Annotation runs on the build's engines and journal rules
(:mod:`voxbox.build.manifest_run`): bounded, in input order, resumable, ``--engine
local`` or ``ray``. Rejections go to the rejects file next to the output manifest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Union

from voxbox.errors import VoxboxError
from voxbox.manifest import count_manifest, read_manifest
from voxbox.record import Rejection, Utterance

CHUNK_SIZE = 8  # records per task handed to a worker


def annotate_records(records: Iterable[Utterance], workers: int = 1, chunk_size: int = CHUNK_SIZE,
                     engine: str = "local", **params: Any) -> Iterator[Union[Utterance, Rejection]]:
    """Annotated records (or rejections), in input order."""
    from voxbox.annotate.stage import AnnotateStage
    from voxbox.build.manifest_run import stream_records

    stage = AnnotateStage(**params)  # validates options before any worker starts
    yield from stream_records(records, [stage], engine=engine, workers=workers, batch_size=chunk_size)


def annotate_manifest(src: Union[str, Path], out: Union[str, Path], workers: int = 1,
                      chunk_size: int = CHUNK_SIZE, limit: Optional[int] = None, engine: str = "local",
                      ray_address: Optional[str] = None, log=None, allow_absolute_paths: bool = False,
                      gender_by: str = "clip", **params: Any) -> dict:
    """Annotate ``src`` into ``out`` (JSONL, JSONL.gz or Parquet); returns a summary
    (see :func:`voxbox.build.manifest_run.run_manifest`).

    ``gender_by="speaker"``: the clip-level run goes to a work file beside ``out``
    (``OUT.by-clip.jsonl``, resumable like any run); a second pass gives every clip with
    a speaker id and no native gender its speaker's confidence-weighted vote
    (:mod:`voxbox.labels.speakers`) and writes ``out``. A per-record stage cannot vote,
    so this is an annotate option, not a build one.
    """
    from voxbox.annotate.stage import AnnotateStage
    from voxbox.build.manifest_run import run_manifest
    from voxbox.manifest import rejects_path

    if gender_by not in ("clip", "speaker"):
        raise VoxboxError(f"--gender-by must be clip or speaker, got {gender_by!r}")
    stage = AnnotateStage(**params)
    src, out = Path(src), Path(out)
    first = out.with_name(out.name + ".by-clip.jsonl") if gender_by == "speaker" else out
    summary = run_manifest(src, first, [stage], engine=engine, workers=workers, batch_size=chunk_size, limit=limit,
                           ray_address=ray_address, allow_absolute_paths=allow_absolute_paths, log=log)
    if gender_by == "speaker":
        summary["speaker_votes"] = _vote_pass(first, out, stage.boundaries)
        if rejects_path(first).exists():
            rejects_path(first).replace(rejects_path(out))
        if summary.get("rejects"):
            summary["rejects"] = str(rejects_path(out))
    return summary


def _vote_pass(clips: Path, out: Path, boundaries) -> dict:
    """``out`` = the clip-level file with speaker votes applied; the votes summarised."""
    from voxbox.labels.speakers import VoteTally, apply_vote, speaker_key, votable
    from voxbox.manifest import ManifestWriter

    tally = VoteTally()
    for rec in read_manifest(clips):
        if votable(rec):
            tally.add(speaker_key(rec.corpus, rec.speaker), rec.gender_clip, rec.gender_clip_confidence)
    votes = tally.votes()
    with ManifestWriter(out) as writer:
        for rec in read_manifest(clips):
            writer.write(apply_vote(rec, votes, boundaries))
    clips.unlink()
    flagged = [{"speaker": k, "gender": v.label, "clips": v.clips, "disagree_rate": round(v.disagree_rate, 3),
                "counts": v.counts} for k, v in votes.items() if v.inconsistent]
    flagged.sort(key=lambda d: (-d["disagree_rate"], d["speaker"]))
    return {"speakers": len(votes), "inconsistent": flagged}


def levels_from_manifest(src: Union[str, Path], out: Union[str, Path], min_count: int = 20) -> dict:
    """Recompute percentile boundaries from an annotated manifest and write them as JSON."""
    from voxbox.progress import track
    from voxbox.annotate.levels import compute_boundaries

    table = compute_boundaries(track(read_manifest(src), "levels", total=count_manifest(src)),
                               min_count=min_count)
    table["source"] = f"recomputed from {Path(src).name}"
    if not any(table.get(attr) for attr in ("pitch", "speed", "pitch_std", "loudness")):
        # An all-empty table would silently turn every level null in a later annotate run.
        skipped = table.get("skipped") or {}
        if not skipped:
            raise VoxboxError(f"{src}: no annotated pitch or speed values (run `voxbox annotate` first)")
        found = ", ".join(f"{k} {n}" for k, n in skipped.items())
        raise VoxboxError(f"{src}: no group has --min-count {min_count} values ({found}); "
                          "use more records or a lower --min-count")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return table
