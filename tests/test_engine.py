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

from voxbox_build_fixtures import (DeviceStage, TinyStage, make_corpus, subprocess_env, voxbox_cmd,
                                   write_corpus_manifest, write_pipeline)


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


def test_a_gpu_stage_runs_once_in_this_process_fed_by_the_workers(tmp_path):
    """With -j 2 the stages from the first one asking for a GPU run here, once (one model
    load, not one per worker), while workers run the CPU stages and encode the audio; the
    outcomes are the inline run's, rejections (by either part, or by the encoder) included."""
    recs = make_corpus(tmp_path / "c", n=12, reject_every=5, bad=True)
    tasks = _tasks(recs)
    loads = tmp_path / "loads"
    for front in ([TinyStage(tokens=True)], []):
        inline = list(LocalEngine([*front, DeviceStage(setup_log=loads)], "flac", workers=1).run(tasks))
        loads.unlink()
        eng = LocalEngine([*front, DeviceStage(setup_log=loads)], "flac", workers=2, max_in_flight=3)
        assert [s.name for s in eng.pool_stages] == [s.name for s in front]
        assert [s.name for s in eng.device_stages] == ["device"] and "runs once" in eng.describe()
        pooled = list(eng.run(iter(tasks)))
        assert [a.outcomes for a in inline] == [b.outcomes for b in pooled]
        assert loads.read_text().split() == [str(os.getpid())]
        loads.unlink()
        flat = [o for r in pooled for o in r.outcomes]
        assert len(flat) == len(recs)
        assert {o.record.extra["ran_in"] for o in flat if isinstance(o, EncodedSample)} == {"main"}
        why = {(o.stage, o.reason) for o in flat if isinstance(o, Rejection)}
        if not front:  # the encoder (in a worker) rejects the broken file the device stage let through
            assert why == {("device", "tiny_reject"), ("shard", "unreadable_audio")}
        seen = [sum(r.stats.get("device", [0])[0] for r in run) for run in (inline, pooled)]
        assert seen[0] == seen[1] > 0


def test_rejection_details_name_no_file_descriptor():
    """soundfile names the file object it was given ("<_io.BufferedReader name=12>"): its
    descriptor differs between processes, and rejects must not (found comparing -j 1 and -j 2)."""
    from voxbox.errors import first_line

    a = first_line(RuntimeError("Error opening <_io.BufferedReader name=12>: Error in WAV file.\nmore"))
    b = first_line(RuntimeError("Error opening <_io.BufferedReader name=5>: Error in WAV file."))
    assert a == b == "Error opening the file: Error in WAV file."
    assert first_line(ValueError("")) == "ValueError" and first_line(ValueError(""), "") == ""


def test_tokenize_alone_on_a_gpu_runs_inline_when_there_is_no_audio_to_encode():
    eng = LocalEngine([DeviceStage()], None, workers=4)
    assert eng.workers == 1 and eng.device_stages == [] and eng.describe() is None


def test_a_build_with_a_gpu_stage_gives_the_same_shards_with_workers(tmp_path):
    manifest = write_corpus_manifest(tmp_path, n=14, reject_every=4)
    pfile = write_pipeline(tmp_path / "p.yaml", stages=[
        {"stage": "voxbox_build_fixtures:TinyStage", "params": {"tokens": True}},
        {"stage": "voxbox_build_fixtures:DeviceStage", "resources": {"num_gpus": 0.5}}])
    outs = {}
    for j in (1, 2):
        outs[j] = tmp_path / f"out{j}"
        r = subprocess.run(voxbox_cmd("build", "--manifest", str(manifest), "--pipeline", str(pfile),
                                      "--workers", str(j), "--out", str(outs[j])),
                           env=subprocess_env(), capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert ("stage device runs once, in this process" in r.stderr) == (j == 2)
    shards = sorted(p.relative_to(outs[1]) for p in outs[1].rglob("*") if p.suffix in (".tar", ".parquet"))
    assert shards and all((outs[1] / p).read_bytes() == (outs[2] / p).read_bytes() for p in shards)


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


def test_workers_exit_within_a_second_of_the_build_being_killed_even_mid_task(tmp_path):
    # Workers used to look for a dead parent only when their queue ran dry: one busy in a
    # task outlived the build by as long as the task took (12-32 s on real stages).
    manifest = write_corpus_manifest(tmp_path, n=16)
    busy = tmp_path / "busy"
    busy.mkdir()
    pfile = write_pipeline(tmp_path / "p.yaml", stages=[
        {"stage": "voxbox_build_fixtures:TinyStage", "params": {"sleep": 120.0, "busy_dir": str(busy)}}])
    proc = subprocess.Popen(voxbox_cmd("build", "--manifest", str(manifest), "--pipeline", str(pfile),
                                       "--workers", "2", "--out", str(tmp_path / "out")),
                            env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        kids = []
        for _ in range(600):  # wait (up to ~120 s on a busy box) for both workers to be inside a task
            kids = [int(p.name) for p in busy.iterdir()]
            if len(kids) >= 2:
                break
            time.sleep(0.2)
        assert len(kids) >= 2 and all(_alive(k) for k in kids)
        os.kill(proc.pid, signal.SIGKILL)  # only the main process, as `kill -9 PID` would
        proc.wait()
        for _ in range(50):  # 10 s at most, while their task would take 2 minutes
            if not any(_alive(k) for k in kids):
                break
            time.sleep(0.2)
        assert not any(_alive(k) for k in kids), "workers kept running after the build was killed"
    finally:
        if proc.poll() is None:
            proc.kill()
        for k in kids:
            if _alive(k):
                os.kill(k, signal.SIGKILL)

def test_audio_no_shard_holds_is_rejected_before_the_stages(tmp_path):
    # A 10-channel or 720 kHz file in a manifest that does not say so was annotated, then
    # rejected by the shard writer: the stages' time was lost.
    import numpy as np
    import soundfile as sf

    from voxbox.record import Rejection

    recs = make_corpus(tmp_path / "c", n=2)
    sf.write(tmp_path / "c" / "ch10.wav", np.zeros((1600, 10)), 16000, subtype="PCM_16")
    odd = recs[0].replace(index="synth_ch10", source_path="ch10.wav", channels=None, sample_rate=None,
                          num_samples=None)
    res = run_task([TinyStage()], "flac", Task(0, 0, True, recs + [odd]))
    last = res.outcomes[-1]
    assert isinstance(last, Rejection) and (last.reason, last.stage) == ("too_many_channels", "shard")
    assert res.stats["tiny"][0] == 2                       # the stage never saw it
