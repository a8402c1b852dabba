"""--engine ray on a local Ray instance with 2 CPUs: same shards, same bytes as local.

One build and one manifest run only (Ray start-up is slow on 2 cores). The pipeline has
a plain stage (Ray tasks) and a batched stage (an actor pool with fractional CPUs).
Skipped, with the reason, where the ray extra is not installed.
"""

from __future__ import annotations

import json
import os

import pytest

from voxbox.build.pipeline import load_pipeline
from voxbox.build.run import build
from voxbox.build.sources import manifest_source
from voxbox.dataset.reader import open_dataset

from voxbox_build_fixtures import TESTS, shard_bytes, write_corpus_manifest, write_pipeline


@pytest.mark.slow
def test_ray_build_and_manifest_run_match_local(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray", reason="needs the ray extra: pip install 'voxbox[ray]'")
    from voxbox.build.manifest_run import run_manifest
    from voxbox_build_fixtures import TinyBatchStage, TinyStage

    # Ray workers are fresh processes: let them import the test stages.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), str(TESTS.parent)]))
    monkeypatch.setenv("RAY_DEDUP_LOGS", "0")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    manifest = write_corpus_manifest(tmp_path, n=10, bad=True, reject_every=4)
    pipe = load_pipeline(write_pipeline(tmp_path / "p.yaml", stages=[
        {"stage": "voxbox_build_fixtures:TinyStage", "params": {"tokens": True}},
        {"stage": "voxbox_build_fixtures:TinyBatchStage", "params": {}},
    ]))
    build(manifest_source(manifest), tmp_path / "local", pipe, workers=1)
    stages = [TinyStage(tokens=True), TinyBatchStage()]
    run_manifest(manifest, tmp_path / "local.jsonl", stages, batch_size=3, part_records=4)
    try:
        index = build(manifest_source(manifest), tmp_path / "ray", pipe, engine="ray", workers=2)
        # The build shut its private Ray instance down (RayEngine.close).
        assert not ray.is_initialized()
        run_manifest(manifest, tmp_path / "ray.jsonl", stages, engine="ray", workers=2, batch_size=3,
                     part_records=4)
        assert not ray.is_initialized()
    finally:
        if ray.is_initialized():
            ray.shutdown()
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    assert (tmp_path / "ray.rejects.jsonl").read_bytes() == (tmp_path / "local.rejects.jsonl").read_bytes()
    assert shard_bytes(tmp_path / "ray") == shard_bytes(tmp_path / "local")
    ds = open_dataset(tmp_path / "ray")
    assert index["rejects"]["count"] == 4 and len(ds) == 7
    assert all(len(r.global_tokens) == 32 for r in ds.records())


def test_ray_engine_groups_stages():
    from voxbox.build.engine.ray import _segments

    from voxbox_build_fixtures import TinyBatchStage, TinyStage

    a, b, c = TinyStage(), TinyStage(), TinyBatchStage()
    assert [(k, len(g)) for k, g in _segments([a, b, c, a])] == [("tasks", 2), ("actors", 1), ("tasks", 1)]


@pytest.mark.slow
def test_ray_streams_shards_past_a_held_shard(tmp_path, monkeypatch):
    """Shard 0 is held until every other shard is journalled: only an engine that
    streams shards (one task per shard, the next submitted as one finishes) gets there;
    one that waits for a window of shards would time the gate out. Bytes equal local's."""
    ray = pytest.importorskip("ray", reason="needs the ray extra: pip install 'voxbox[ray]'")
    from voxbox.manifest import read_manifest

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), str(TESTS.parent)]))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    manifest = write_corpus_manifest(tmp_path, n=12)
    first = min(r.index for r in read_manifest(manifest))
    tiny = [{"stage": "voxbox_build_fixtures:TinyStage", "params": {"tokens": True}},
            {"stage": "voxbox_build_fixtures:TinyBatchStage", "params": {}}]
    local = load_pipeline(write_pipeline(tmp_path / "l.yaml", stages=tiny, shard_records=2))
    n = build(manifest_source(manifest), tmp_path / "local", local, workers=1)["totals"]["shards"]
    gate = {"stage": "voxbox_build_fixtures:GateStage",
            "params": {"journal": str(tmp_path / "ray" / "journal.jsonl"), "index": first, "shards": n - 1,
                       "wait_s": 90.0}}
    held = load_pipeline(write_pipeline(tmp_path / "r.yaml", stages=[tiny[0], gate, tiny[1]], shard_records=2))
    try:
        index = build(manifest_source(manifest), tmp_path / "ray", held, engine="ray", workers=2)
    finally:
        if ray.is_initialized():
            ray.shutdown()
    assert n >= 5 and index["totals"]["shards"] == n and index["rejects"]["count"] == 0
    lines = [json.loads(x) for x in (tmp_path / "ray" / "journal.jsonl").read_text().splitlines()]
    assert [e["shard"] for e in lines if e["kind"] == "shard"][-1] == 0  # the held shard came last
    shards = lambda d: {k: v for k, v in shard_bytes(d).items() if "/" in k}  # noqa: E731 - not the index
    assert shards(tmp_path / "ray") == shards(tmp_path / "local")


def test_pool_size_follows_declared_resources():
    from voxbox.build.engine.ray import RayEngine, pool_size
    from voxbox.errors import VoxboxError

    from voxbox_build_fixtures import TinyBatchStage

    st = TinyBatchStage()
    assert pool_size([st], {"CPU": 2}, workers=2, actor_cpus=0.5) == {"num_cpus": 0.5, "num_gpus": 0.0, "actors": 2}
    st.resources = {"num_gpus": 0.25, "num_cpus": 1}
    # Four actors per GPU, on each of the cluster's two GPUs.
    assert pool_size([st], {"CPU": 16, "GPU": 2}, workers=4, actor_cpus=0.5) == \
        {"num_cpus": 1.0, "num_gpus": 0.25, "actors": 8}
    st.resources = {"num_gpus": 0.25, "actors": 3}
    assert pool_size([st], {"CPU": 16, "GPU": 2}, workers=4, actor_cpus=0.5)["actors"] == 3
    with pytest.raises(VoxboxError, match="asks for 0.25 GPU per actor, but the Ray cluster has 0 GPU"):
        pool_size([st], {"CPU": 16}, workers=4, actor_cpus=0.5)
    eng = RayEngine.__new__(RayEngine)
    eng.workers = 2
    assert eng._task_cpus(2.0, 1.0) == 0.5  # two shard tasks share what the pool leaves
    assert eng._task_cpus(64.0, 4.0) == 1.0
    with pytest.raises(VoxboxError, match="actor pools take all 2 CPUs"):
        eng._task_cpus(2.0, 2.0)


def test_pipeline_stage_resources_are_checked_and_not_identity(tmp_path):
    from voxbox.build.pipeline import make_stages
    from voxbox.errors import VoxboxError

    def pipe(resources):
        return load_pipeline(write_pipeline(tmp_path / "p.yaml", stages=[
            {"stage": "voxbox_build_fixtures:TinyBatchStage", "params": {}, "resources": resources}]))

    declared = pipe({"num_gpus": 0.25, "num_cpus": 1, "actors": 4})
    assert make_stages(declared)[0].resources == {"num_gpus": 0.25, "num_cpus": 1, "actors": 4}
    assert "resources:" in declared.to_yaml()
    # Where a stage runs does not change its output: same fingerprint, so a build resumes.
    assert declared.fingerprint() == pipe(None).fingerprint()
    for bad, msg in (({"num_gpu": 1}, "unknown key 'num_gpu' \\(did you mean 'num_gpus'\\?\\)"),
                     ({"num_gpus": -1}, "resources 'num_gpus' must be a finite number >= 0"),
                     ({"actors": 0.5}, "resources 'actors' must be a whole number of at least 1"),
                     ({"num_cpus": "two"}, "must be a finite number"), ([1], "'resources' must be a mapping")):
        with pytest.raises(VoxboxError, match=msg):
            pipe(bad)


@pytest.mark.slow
def test_ray_model_that_does_not_load_fails_once_with_its_message(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray", reason="needs the ray extra: pip install 'voxbox[ray]'")
    from voxbox.errors import VoxboxError

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), str(TESTS.parent)]))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    manifest = write_corpus_manifest(tmp_path, n=4)
    pipe = load_pipeline(write_pipeline(tmp_path / "p.yaml", stages=[
        {"stage": "voxbox_build_fixtures:BrokenModelStage", "params": {}}]))
    with pytest.raises(VoxboxError) as err:
        build(manifest_source(manifest), tmp_path / "ray", pipe, engine="ray", workers=2)
    assert str(err.value) == "the model folder /models/x has no config.yaml"
    assert not ray.is_initialized()  # the private instance went with the failed build
    assert not list((tmp_path / "ray").glob("*/*.tar"))


@pytest.mark.slow
def test_ray_build_killed_before_a_journal_line_resumes_byte_identical(tmp_path):
    """SIGKILL the driver (and its private Ray instance: one process group) when the 3rd
    shard entry is about to be journalled; other shards may be committed on disk without
    a journal line. The journal is the truth: the rerun keeps the 2 journalled shards
    (verified) and redoes the rest, byte-identical to a local build."""
    pytest.importorskip("ray", reason="needs the ray extra: pip install 'voxbox[ray]'")
    import subprocess

    from voxbox_build_fixtures import subprocess_env, voxbox_cmd

    manifest = write_corpus_manifest(tmp_path, n=12, reject_every=5)
    pfile = write_pipeline(tmp_path / "p.yaml", shard_records=2, stages=[
        {"stage": "voxbox_build_fixtures:TinyStage", "params": {"tokens": True}},
        {"stage": "voxbox_build_fixtures:TinyBatchStage", "params": {}}])
    args = ["build", "--manifest", str(manifest), "--pipeline", str(pfile)]
    build(manifest_source(manifest), tmp_path / "local", load_pipeline(pfile), workers=1)
    out = tmp_path / "ray"

    def run(**env):
        return subprocess.run(voxbox_cmd(*args, "--engine", "ray", "-j", "2", "--out", str(out)),
                              env={**subprocess_env(**env), "RAY_ADDRESS": ""}, capture_output=True, text=True,
                              start_new_session=True, timeout=600)

    killed = run(VOXBOX_KILL_AT="before_journal:3")
    assert killed.returncode == -9, killed.stderr
    assert not (out / "index.json").exists()
    resumed = run()
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming: 2 of" in resumed.stderr
    assert shard_bytes(out) == shard_bytes(tmp_path / "local")
    assert not list(out.rglob("*.partial"))
