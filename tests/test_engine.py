"""The local engine: ordered results from a real process pool, bounded in-flight work,
per-stage stats, and workers that exit when the build is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from voxbox.build.engine.common import Task, run_task
from voxbox.build.engine.local import LocalEngine
from voxbox.record import Rejection
from voxbox.shards.encode import EncodedSample

from voxbox_build_fixtures import (TinyStage, make_corpus, subprocess_env, voxbox_cmd, write_corpus_manifest,
                                   write_pipeline)


def _tasks(recs, per_task=2):
    out = []
    for i in range(0, len(recs), per_task):
        out.append(Task(shard=i // 4, seq=i, last=False, records=recs[i:i + per_task]))
    return out


def test_pool_results_in_task_order_and_equal_to_inline(tmp_path):
    recs = make_corpus(tmp_path / "c", n=12, reject_every=5)
    tasks = _tasks(recs)
    stages = [TinyStage(tokens=True)]
    inline = list(LocalEngine(stages, "flac", workers=1).run(tasks))
    eng = LocalEngine(stages, "flac", workers=2, max_in_flight=3)
    pooled = list(eng.run(iter(tasks)))
    assert [r.task.seq for r in pooled] == [t.seq for t in tasks]
    for a, b in zip(inline, pooled):
        assert a.outcomes == b.outcomes
    flat = [o for r in pooled for o in r.outcomes]
    assert len(flat) == len(recs)
    assert sum(isinstance(o, Rejection) for o in flat) == 3  # i = 1, 6, 11
    assert all(isinstance(o, EncodedSample) and o.audio[:4] == b"fLaC" for o in flat if not isinstance(o, Rejection))
    n_in = sum(r.stats["tiny"][0] for r in pooled)
    assert n_in == len(recs) and eng.threads >= 1


def test_run_task_stats_and_encoding_rejection(tmp_path):
    recs = make_corpus(tmp_path / "c", n=3, bad=True)
    res = run_task([], "flac", Task(0, 0, True, recs))
    assert [type(o).__name__ for o in res.outcomes] == ["EncodedSample"] * 3 + ["Rejection"]
    assert res.outcomes[-1].reason == "unreadable_audio" and res.outcomes[-1].stage == "shard"


def _children(pid: int):
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_workers_exit_when_the_build_is_killed(tmp_path):
    manifest = write_corpus_manifest(tmp_path, n=16)
    pfile = write_pipeline(tmp_path / "p.yaml", stages=[
        {"stage": "voxbox_build_fixtures:TinyStage", "params": {"sleep": 0.5}}])
    proc = subprocess.Popen(voxbox_cmd("build", "--manifest", str(manifest), "--pipeline", str(pfile),
                                       "--workers", "2", "--out", str(tmp_path / "out")),
                            env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        kids = []
        for _ in range(300):  # wait (up to ~60 s on a busy box) for both workers
            kids = [k for k in _children(proc.pid) if _alive(k)]
            if len(kids) >= 2 and any((tmp_path / "out" / ".work").glob("prepared.jsonl")):
                break
            time.sleep(0.2)
        assert len(kids) >= 2
        os.kill(proc.pid, signal.SIGKILL)  # only the main process, as `kill -9 PID` would
        proc.wait()
        for _ in range(150):
            if not any(_alive(k) for k in kids):
                break
            time.sleep(0.2)
        assert not any(_alive(k) for k in kids), "orphaned workers kept running"
    finally:
        if proc.poll() is None:
            proc.kill()
