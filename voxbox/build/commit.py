"""Committing engine results shard by shard, and what a journal says is finished.

Shared by the build (:mod:`voxbox.build.run`, shard files) and by manifest runs
(:mod:`voxbox.build.manifest_run`, manifest parts), so both follow one set of journal
rules: a unit of work is committed (tmp name, fsync, rename) and only then journalled
with its sha256 and rejects; on resume a journalled unit is kept only when its files
still match and its record count is the planned one, else it is redone.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterable, Optional, Sequence

from voxbox.build.engine.common import TaskResult, fault_point
from voxbox.shards import index as ix

Log = Callable[[str], None]


def finished(journal: ix.Journal, root, sizes: Sequence[int], log: Log, unit: str = "shard",
             inputs: Optional[Sequence[str]] = None,
             verify: Callable[[object, dict], Optional[str]] = ix.verify_shard_entry) -> Dict[int, dict]:
    """Journal entries of units that are done: files verified (``verify``: by default
    under ``root``; an object store's copy for a remote build), as many records plus
    rejects as planned (``sizes[k]``), and, when ``inputs`` is given, made from the
    planned input (``inputs[k]``: the unit's records and their audio). Others are logged
    and left to redo."""
    done: Dict[int, dict] = {}
    for k, entry in sorted(journal.shards().items()):
        if k >= len(sizes):
            continue
        problem = verify(root, entry)
        if problem is None and entry.get("records", 0) + len(entry.get("rejects", [])) != sizes[k]:
            problem = "record count differs from the plan"
        if problem is None and inputs is not None and entry.get("input") != inputs[k]:
            problem = "its input (records or audio) changed since it was built"
        if problem is None:
            done[k] = entry
        else:
            log(f"{unit} {k}: {problem}; redoing it")
    return done


def commit_in_order(results: Iterable[TaskResult], open_unit: Callable[[int], object],
                    on_commit: Callable[[dict], None],
                    on_result: Optional[Callable[[TaskResult], None]] = None) -> None:
    """Feed each result's outcomes to its unit's committer (``open_unit(k)``), commit the
    unit at its last task and hand the entry to ``on_commit``. A failure aborts the open
    unit (its temporary files go); committed ones stay for the resume."""
    committer = None
    try:
        for res in results:
            if on_result is not None:
                on_result(res)
            if committer is None:
                committer = open_unit(res.task.shard)
            for o in res.outcomes:
                committer.add(o)
                fault_point("shard_write")
            if res.task.last:
                entry = committer.commit()
                committer = None
                on_commit(entry)
    except BaseException:
        if committer is not None:
            committer.abort()
        raise
