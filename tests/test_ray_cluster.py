"""A build across a simulated 3-node Ray cluster, one node killed mid-build.

``ray.cluster_utils.Cluster`` starts a head (no CPUs: it only coordinates) and three
worker raylets of one CPU each on this machine. The build joins the cluster by address
(``--ray-address``) from a working directory of its own; shard tasks get their records
through the object store (shard plans), never through a path only the driver made. When
a shard task is running on a worker node, that node is removed (its raylet and workers
killed). Whatever the first build then does (Ray reruns the lost shard elsewhere, or the
build stops), a rerun completes, and the shards and index are byte-identical to a local
build. Slow: four raylets start on two cores.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from voxbox.build.pipeline import load_pipeline
from voxbox.build.run import build
from voxbox.build.sources import manifest_source
from voxbox.errors import VoxboxError

from conftest import S3_BUCKET
from voxbox_build_fixtures import TESTS, journalled_shards, shard_bytes, write_corpus_manifest, write_pipeline


def _ancestors(pid: int):
    """The parent pids of a live process, nearest first (Linux /proc)."""
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state
        yield pid


def _node_running_a_shard(cluster, busy: Path):
    """The worker node whose raylet is an ancestor of a process now inside a record
    (TinyStage touches a file named by its pid in ``busy`` as it starts a record, then
    sleeps 0.4 s), or None."""
    raylets = {n.all_processes["raylet"][0].process.pid: n for n in cluster.worker_nodes}
    now = time.time()
    for f in busy.iterdir():
        if now - f.stat().st_mtime > 0.3:
            continue
        for parent in _ancestors(int(f.name)):
            if parent in raylets:
                return raylets[parent]
    return None


def _kill_a_busy_node(cluster, busy: Path, journalled, killed: list) -> None:
    """Once a shard is journalled (``journalled()`` counts them: the build is under way),
    remove a node that is running a shard task."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        n = journalled()
        node = _node_running_a_shard(cluster, busy) if n >= 1 else None
        if node is not None:
            killed.append((node, n))
            cluster.remove_node(node, allow_graceful=False)
            return
        time.sleep(0.05)


def _store_journal(fs, prefix: str):
    """Counter of the shard lines a build into s3://S3_BUCKET/prefix has journalled."""
    def count() -> int:
        fs.invalidate_cache()
        try:
            lines = [fs.cat(k).decode() for k in fs.find(f"{S3_BUCKET}/{prefix}/.journal")]
        except FileNotFoundError:  # the build folds its journal objects together as it ends
            return 0
        return sum(1 for line in lines if '"kind":"shard"' in line.replace(" ", ""))
    return count


@pytest.mark.slow
@pytest.mark.parametrize("output", ["folder", "s3"])
def test_build_on_three_nodes_survives_a_lost_node(tmp_path, monkeypatch, output, request):
    """``folder``: --out is a folder (here every node sees it); ``s3``: --out is an S3
    prefix, so the nodes share nothing but the object store: each shard task commits on
    its own node and uploads its shard."""
    ray = pytest.importorskip("ray", reason="needs the ray extra: pip install 'voxbox[ray]'")
    from ray.cluster_utils import Cluster

    # Raylets inherit this environment: their workers import the test stages.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), str(TESTS.parent)]))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    manifest = write_corpus_manifest(tmp_path, n=18)
    busy = tmp_path / "busy"
    busy.mkdir()
    stages = [{"stage": "voxbox_build_fixtures:TinyStage",
               "params": {"tokens": True, "sleep": 0.4, "busy_dir": str(busy)}},
              {"stage": "voxbox_build_fixtures:TinyBatchStage", "params": {}}]
    pipe = load_pipeline(write_pipeline(tmp_path / "p.yaml", stages=stages, shard_records=2))
    build(manifest_source(manifest), tmp_path / "local", pipe, workers=1)

    if output == "s3":
        _, fs = request.getfixturevalue("s3")
        out, journalled = f"s3://{S3_BUCKET}/cluster", _store_journal(fs, "cluster")
    else:
        out = tmp_path / "cluster"
        journalled = lambda: journalled_shards(out / "journal.jsonl")  # noqa: E731
    driver_cwd = tmp_path / "driver"
    driver_cwd.mkdir()
    monkeypatch.chdir(driver_cwd)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False,
                                                            "object_store_memory": 80 * 2**20})
    killed: list = []
    try:
        for _ in range(3):
            cluster.add_node(num_cpus=1, object_store_memory=80 * 2**20)
        cluster.wait_for_nodes()
        killer = threading.Thread(target=_kill_a_busy_node, args=(cluster, busy, journalled, killed))
        killer.start()
        try:
            build(manifest_source(manifest), out, pipe, engine="ray", workers=3, ray_address=cluster.address)
            first = "completed (Ray reran the lost shard on another node)"
        except VoxboxError as e:
            first = f"stopped: {e}"
        killer.join()
        assert killed, "no worker node was seen running a shard"
        assert killed[0][1] < 9, "the node was removed after the build had finished"
        assert len(cluster.worker_nodes) == 2
        # The rerun (resume) on the two nodes left.
        index = build(manifest_source(manifest), out, pipe, engine="ray", workers=2, ray_address=cluster.address)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
    print(f"first build {first}; node removed after {killed[0][1]} shard(s) were journalled")
    assert index["totals"]["records"] == 18
    if output == "s3":
        fs.invalidate_cache()
        fs.get(f"{S3_BUCKET}/cluster/", str(tmp_path / "from-s3"), recursive=True)
        out = tmp_path / "from-s3"
    assert shard_bytes(out) == shard_bytes(tmp_path / "local")
