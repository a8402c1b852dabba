"""Annotate a manifest: stream records through the annotate stage, in parallel.

Memory stays bounded whatever the manifest size: records are read lazily and at
most ``2 * workers`` chunks are in flight; results are written in input order.
Rejections go to the rejects file next to the output manifest.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Union

from voxbox.errors import VoxboxError
from voxbox.record import Rejection, Utterance, audio_seconds
from voxbox.manifest import ManifestWriter, RejectsWriter, count_manifest, open_manifest, read_manifest, rejects_path

_WORKER: Dict[str, Any] = {}


def _init_worker(params: dict) -> None:
    import sys

    from voxbox.annotate.stage import AnnotateStage

    try:
        stage = AnnotateStage(**params)
        stage.ensure_setup()
    except Exception as e:  # noqa: BLE001
        # A failing initializer makes Pool respawn workers forever; keep the error and
        # raise it from the first task instead, so the parent sees it and stops.
        _WORKER["error"] = e if isinstance(e, VoxboxError) else VoxboxError(f"worker set-up failed: {e}")
        return
    if "torch" in sys.modules:  # only when a Hugging Face model was loaded
        sys.modules["torch"].set_num_threads(1)  # one core per worker: the pool is the parallelism
    _WORKER["stage"] = stage


def _pool_context():
    """fork starts workers in milliseconds; spawn is the safe choice once torch (and its
    thread pools) lives in the parent, where a forked child can deadlock."""
    import multiprocessing as mp
    import sys

    if "torch" not in sys.modules and "fork" in mp.get_all_start_methods():
        return mp.get_context("fork")
    return mp.get_context("spawn")


def _run_chunk(recs: List[Utterance]) -> list:
    if "error" in _WORKER:
        raise _WORKER["error"]
    return _WORKER["stage"].safe_process_batch(recs)


def _chunks(it: Iterable[Utterance], size: int) -> Iterator[List[Utterance]]:
    it = iter(it)
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        yield chunk


def annotate_records(records: Iterable[Utterance], workers: int = 1, chunk_size: int = 8,
                     **params: Any) -> Iterator[Union[Utterance, Rejection]]:
    """Annotated records (or rejections), in input order."""
    from voxbox.annotate.stage import AnnotateStage

    stage = AnnotateStage(**params)  # validates options before any worker starts
    if workers <= 1:
        stage.ensure_setup()
        for chunk in _chunks(records, chunk_size):
            yield from stage.safe_process_batch(chunk)
        return
    ctx = _pool_context()
    with ctx.Pool(workers, initializer=_init_worker, initargs=(stage.params,)) as pool:
        pending: deque = deque()
        for chunk in _chunks(records, chunk_size):
            pending.append(pool.apply_async(_run_chunk, (chunk,)))
            if len(pending) >= 2 * workers:
                yield from pending.popleft().get()
        while pending:
            yield from pending.popleft().get()


def annotate_manifest(src: Union[str, Path], out: Union[str, Path], workers: int = 1,
                      chunk_size: int = 8, limit: Optional[int] = None, gender_by: str = "clip",
                      **params: Any) -> dict:
    """Annotate ``src`` into ``out`` (JSONL, JSONL.gz or Parquet); returns a summary.

    ``gender_by="speaker"``: a second pass gives every clip with a speaker id (and no
    native gender) its speaker's confidence-weighted vote (:mod:`voxbox.labels.speakers`);
    the first pass writes clip-level answers to a work file beside ``out``.
    """
    from voxbox.labels.speakers import VoteTally, speaker_key, votable
    from voxbox.progress import Progress

    src, out = Path(src), Path(out)
    if gender_by not in ("clip", "speaker"):
        raise VoxboxError(f"--gender-by must be clip or speaker, got {gender_by!r}")
    if src.resolve() == out.resolve():
        raise VoxboxError(f"{out}: output must differ from the input manifest")
    total, records = open_manifest(src, limit)
    first = out.with_name(out.name + ".by-clip.jsonl") if gender_by == "speaker" else out
    rej_path = rejects_path(out)
    audio_s, tally = 0.0, VoteTally()
    with ManifestWriter(first) as writer, RejectsWriter(rej_path) as rejects, \
            Progress("annotate", total=total) as bar:
        for res in annotate_records(records, workers=workers, chunk_size=chunk_size, **params):
            if isinstance(res, Rejection):
                rejects.write(res)
                bar.update(1)
                continue
            writer.write(res)
            if votable(res):
                tally.add(speaker_key(res.corpus, res.speaker), res.gender_clip, res.gender_clip_confidence)
            secs = audio_seconds(res)
            audio_s += secs
            bar.update(1, audio_seconds=secs)
        if rejects.count and not writer.count:
            # Raising inside the writer's block keeps the empty manifest from being written;
            # the rejects file stays, with a reason per record.
            raise VoxboxError(f"every record was rejected, nothing to write: {rejects.summary()}")
        summary = {"records": writer.count, "rejected": rejects.count, "audio_hours": round(audio_s / 3600, 4),
                   "rejects": str(rej_path) if rejects.count else None, "reject_summary": rejects.summary()}
    if gender_by == "speaker":
        summary["speaker_votes"] = _vote_pass(first, out, tally.votes(), params.get("boundaries"))
    return summary


def _vote_pass(clips: Path, out: Path, votes: dict, boundaries: Optional[str]) -> dict:
    """Rewrite the clip-level work file into ``out`` with speaker votes; summarise them."""
    from voxbox.annotate.levels import Boundaries
    from voxbox.labels.speakers import apply_vote

    bounds = Boundaries.load(boundaries)
    try:
        with ManifestWriter(out) as writer:
            for rec in read_manifest(clips):
                writer.write(apply_vote(rec, votes, bounds))
    finally:
        clips.unlink(missing_ok=True)
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
