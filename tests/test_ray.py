"""--engine ray on a local Ray instance with 2 CPUs: same shards, same bytes as local.

One build and one manifest run only (Ray start-up is slow on 2 cores). The pipeline has
a plain stage (Ray tasks) and a batched stage (an actor pool with fractional CPUs).
Skipped, with the reason, where the ray extra is not installed.
"""

from __future__ import annotations

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
