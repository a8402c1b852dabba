"""What every engine runs per batch, and the test-only fault hook.

A *task* is a batch of consecutive records of one shard. Running it means: the
pipeline's stages in order (rejections leave the batch), then, for a build, the shard
audio encoding (FLAC or original bytes) of the survivors (``audio_format=None``, as in
``voxbox annotate`` and ``voxbox tokenize``, keeps the records). Engines differ only in
where this runs.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

from voxbox import media
from voxbox.record import Rejection, Utterance, audio_seconds
from voxbox.shards.encode import EncodedAudio, EncodedSample, encode_audio, encode_record, storage_rejection, with_audio
from voxbox.stages import Stage

Outcome = Union[EncodedSample, Utterance, Rejection]


@dataclass
class Task:
    shard: int
    seq: int           # position of this batch inside its shard
    last: bool         # True for the shard's final batch
    records: List[Utterance]


@dataclass
class ShardPlan:
    """One whole shard as a unit of work (engines that write shards themselves, e.g. Ray):
    its number and its records as the prepared input's JSON lines, in shard order. The
    worker makes the records from these bytes itself, wherever it runs: no record is
    unpickled on the driver and no path only the driver sees (``OUT/.work``) is read."""

    shard: int
    lines: bytes
    batch_size: int

    def tasks(self) -> Iterator[Task]:
        """The shard's batches, cut exactly as the local engine cuts them (same batches,
        same batched-stage results)."""
        recs = [Utterance.from_dict(json.loads(line)) for line in self.lines.split(b"\n") if line]
        n = max(1, self.batch_size)
        starts = range(0, len(recs), n)
        for j, i in enumerate(starts):
            yield Task(shard=self.shard, seq=j, last=i + n >= len(recs), records=recs[i:i + n])


def add_stats(total: Dict[str, list], more: Dict[str, list]) -> None:
    """Sum per-stage stats (records in, out, audio seconds, cpu seconds) into ``total``."""
    for name, vals in more.items():
        acc = total.setdefault(name, [0, 0, 0.0, 0.0])
        for k in range(4):
            acc[k] += vals[k]


@dataclass
class TaskResult:
    task: Task
    outcomes: List[Outcome]                 # in record order; rejections included
    # stage -> [records in, records out, audio seconds in, cpu seconds]
    stats: Dict[str, list] = field(default_factory=dict)
    # A task's first part (run_front): per outcome, its shard audio, to join the records
    # once the device stages have run (finish_task); None for a rejection.
    audio: Optional[List[Optional[Union[EncodedAudio, Rejection]]]] = None


_fault_counts: Dict[str, int] = {}


def fault_point(name: str) -> None:
    """Test hook: ``VOXBOX_KILL_AT=name:N`` SIGKILLs this build's process group the N-th
    time ``name`` is reached in this process. Lets crash tests hit exact moments
    (during a stage, in the middle of a shard, between shards) without timing games."""
    spec = os.environ.get("VOXBOX_KILL_AT")
    if not spec:
        return
    point, _, n = spec.rpartition(":")
    if point != name:
        return
    _fault_counts[name] = _fault_counts.get(name, 0) + 1
    if _fault_counts[name] >= int(n):
        os.killpg(os.getpgrp(), signal.SIGKILL)


_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def limit_threads(n: int) -> None:
    """Cap BLAS/OpenMP and torch threads of this worker process to ``n``."""
    import sys

    for k in _THREAD_ENV:
        os.environ[k] = str(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


def run_stages_on(stages: Sequence[Stage], recs: List[Utterance]) -> Tuple[List[Union[Utterance, Rejection]], Dict[str, list]]:
    """Run the stages over a batch; return outcomes in input order and per-stage stats."""
    slots: List[Union[Utterance, Rejection]] = list(recs)
    stats: Dict[str, list] = {}
    for st in stages:
        live = [i for i, r in enumerate(slots) if isinstance(r, Utterance)]
        if not live:
            break
        batch = [slots[i] for i in live]
        t0 = time.process_time()
        out = st.safe_process_batch(batch)
        stats[st.name] = [len(batch), 0, sum(audio_seconds(r) for r in batch), time.process_time() - t0]
        for i, res in zip(live, out):
            slots[i] = res
            if isinstance(res, Utterance):
                stats[st.name][1] += 1
        fault_point(f"stage:{st.name}")
    return slots, stats


def encode_all(slots: Sequence[Union[Utterance, Rejection]], audio_format: Optional[str]) -> List[Outcome]:
    """The survivors' shard audio (``audio_format`` None: the records as they are)."""
    if audio_format is None:
        return list(slots)
    return [encode_record(r, audio_format) if isinstance(r, Utterance) else r for r in slots]


def run_task(stages: Sequence[Stage], audio_format: Optional[str], task: Task) -> TaskResult:
    # Members of .tar.gz archives: one sequential pass per archive for the whole task.
    with media.prefetch(task.records):
        slots, stats = run_stages_on(stages, storable(task.records, audio_format))
        return TaskResult(task, encode_all(slots, audio_format), stats)


def run_front(stages: Sequence[Stage], audio_format: Optional[str], task: Task) -> TaskResult:
    """The part of a task that runs on a CPU worker when the last stages run on a device
    in one process (see :func:`split_at_device`): the CPU stages, then the shard audio of
    their survivors. Audio depends only on where it is read, not on what stages add, so
    encoding before the device stages gives the bytes encoding after them would."""
    with media.prefetch(task.records):
        slots, stats = run_stages_on(stages, storable(task.records, audio_format))
        audio = [encode_audio(r, audio_format) if isinstance(r, Utterance) and audio_format else None
                 for r in slots]
    return TaskResult(task, slots, stats, audio)


def finish_task(stages: Sequence[Stage], audio_format: Optional[str], part: TaskResult) -> TaskResult:
    """The device stages over a task's first part, then each survivor joined with its
    audio: the outcomes :func:`run_task` gives for the whole task."""
    with media.prefetch([r for r in part.outcomes if isinstance(r, Utterance)]):
        slots, stats = run_stages_on(stages, part.outcomes)
    if audio_format is None:
        return TaskResult(part.task, slots, {**part.stats, **stats})
    outcomes: List[Outcome] = []
    for rec, audio in zip(slots, part.audio, strict=True):
        if isinstance(rec, Utterance):
            outcomes.append(audio if isinstance(audio, Rejection) else with_audio(rec, audio))
        else:
            outcomes.append(rec)
    return TaskResult(part.task, outcomes, {**part.stats, **stats})


def split_at_device(stages: Sequence[Stage]) -> Tuple[List[Stage], List[Stage]]:
    """(CPU stages, device stages): the device part starts at the first stage that asks
    for a GPU (``resources: num_gpus``, set by a ``cuda`` device or the pipeline file)."""
    for i, st in enumerate(stages):
        if float((getattr(st, "resources", None) or {}).get("num_gpus", 0) or 0) > 0:
            return list(stages[:i]), list(stages[i:])
    return list(stages), []


def storable(recs: List[Utterance], audio_format: Optional[str]) -> List[Union[Utterance, Rejection]]:
    """Audio no FLAC shard holds (10 channels, 720 kHz) is rejected before the stages, not
    after them (see :func:`voxbox.shards.encode.storage_rejection`)."""
    if audio_format != "flac":
        return list(recs)
    return [storage_rejection(r) or r for r in recs]
